"""Prometheus remote write (protocol 1.0), enough to push samples into a Prometheus started
with ``--web.enable-remote-write-receiver``.

The body is a protobuf ``WriteRequest`` compressed with Snappy's block format. Both are small
enough to write by hand, which spares two dependencies:

- protobuf: ``WriteRequest{repeated TimeSeries timeseries = 1}``,
  ``TimeSeries{repeated Label labels = 1; repeated Sample samples = 2}``,
  ``Label{string name = 1; string value = 2}``, ``Sample{double value = 1; int64 timestamp = 2}``;
- Snappy: the uncompressed length as a varint, then literal chunks. A stream of literals is a
  valid Snappy block (it is simply not compressed), and on 127.0.0.1 size does not matter.

Labels are sent sorted by name, as the protocol requires; samples of a series in time order.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Mapping, Sequence

import httpx
import numpy as np

from sandbox.promapi import PrometheusError

__all__ = ["RemoteWriter", "encode_series", "encode_write_request", "snappy_literal"]

_MAX_LITERAL = 1 << 16


def _varint(value: int) -> bytes:
    value &= (1 << 64) - 1  # negative int64 as two's complement
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _field(number: int, payload: bytes) -> bytes:
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _label(name: str, value: str) -> bytes:
    return _field(1, _field(1, name.encode()) + _field(2, value.encode()))


def _sample(value: float, timestamp_ms: int) -> bytes:
    body = b"\x09" + struct.pack("<d", value) + b"\x10" + _varint(timestamp_ms)
    return _field(2, body)


def _varint_width(value: int) -> int:
    return max(1, (value.bit_length() + 6) // 7)


def _sample_fields(times: np.ndarray, values: np.ndarray) -> bytes:
    """Every ``Sample`` field of a series at once (numpy): a drill holds about a million."""
    n = len(times)
    if n == 0:
        return b""
    width = _varint_width(int(times[0]))
    if int(times.min()) < 0 or _varint_width(int(times.max())) != width:
        # Rare (timestamps of mixed varint widths, or before 1970): one at a time.
        return b"".join(_sample(float(v), int(t)) for t, v in zip(times, values, strict=True))
    out = np.empty((n, 12 + width), dtype=np.uint8)
    out[:, 0] = 0x12  # field 2 (samples), length-delimited
    out[:, 1] = 10 + width
    out[:, 2] = 0x09  # field 1 (value), 64-bit
    out[:, 3:11] = np.ascontiguousarray(values, dtype="<f8").view(np.uint8).reshape(n, 8)
    out[:, 11] = 0x10  # field 2 (timestamp), varint
    for i in range(width):
        byte = (times >> (7 * i)) & 0x7F
        out[:, 12 + i] = byte | (0x80 if i < width - 1 else 0)
    return out.tobytes()


def encode_series(labels: Mapping[str, str], times: np.ndarray, values: np.ndarray) -> bytes:
    """One ``TimeSeries`` field of a ``WriteRequest`` (times: int64 ms, values: float64)."""
    body = b"".join(_label(k, labels[k]) for k in sorted(labels))
    return _field(1, body + _sample_fields(times, values))


def encode_write_request(
    series: Iterable[tuple[Mapping[str, str], Sequence[tuple[int, float]]]],
) -> bytes:
    """A ``WriteRequest`` of (labels, [(timestamp_ms, value), ...]) pairs."""
    return b"".join(
        encode_series(
            labels,
            np.array([t for t, _ in samples], dtype=np.int64),
            np.array([v for _, v in samples], dtype=np.float64),
        )
        for labels, samples in series
    )


def snappy_literal(data: bytes) -> bytes:
    """``data`` as a Snappy block made of literal chunks only."""
    out = bytearray(_varint(len(data)))
    for i in range(0, len(data), _MAX_LITERAL):
        chunk = data[i : i + _MAX_LITERAL]
        n = len(chunk) - 1
        if n < 60:
            out.append(n << 2)
        elif n < 1 << 8:
            out += bytes([60 << 2, n])
        else:
            out += bytes([61 << 2]) + struct.pack("<H", n)
        out += chunk
    return bytes(out)


class RemoteWriter:
    """POSTs samples to ``<url>/api/v1/write``; errors name the URL and Prometheus' answer."""

    def __init__(self, url: str, timeout_s: float = 30.0) -> None:
        self.url = url.rstrip("/") + "/api/v1/write"
        self._http = httpx.Client(timeout=timeout_s)

    def close(self) -> None:
        self._http.close()

    def write(
        self, series: Sequence[tuple[Mapping[str, str], Sequence[tuple[int, float]]]]
    ) -> None:
        if series:
            self.write_encoded(encode_write_request(series))

    def write_encoded(self, request: bytes) -> None:
        """POST an encoded ``WriteRequest`` (``encode_series`` fields joined)."""
        if not request:
            return
        body = snappy_literal(request)
        try:
            response = self._http.post(
                self.url,
                content=body,
                headers={
                    "Content-Encoding": "snappy",
                    "Content-Type": "application/x-protobuf",
                    "X-Prometheus-Remote-Write-Version": "0.1.0",
                },
            )
        except httpx.HTTPError as exc:
            raise PrometheusError(f"remote write to {self.url}: {type(exc).__name__}") from exc
        if response.status_code >= 300:
            raise PrometheusError(
                f"remote write to {self.url}: {response.status_code} {response.text[:300]}"
            )
