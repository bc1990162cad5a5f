"""Recorded samples and spans fed to a live replay, shifted to now, as their time comes.

Staleness markers (``staleness``) go with the samples. A recorded instant ``r`` is replayed at wall time ``r + offset``. ``preload(until)`` writes at
once everything recorded up to ``until`` (the history rate windows and dashboards need);
``start()`` then runs a thread that writes each later sample when the wall clock reaches its
shifted time (every ``TICK_S``), through Prometheus' remote-write receiver. Spans go the same
way into a trace sink file, with their times shifted, so ``sandbox traces`` shows them.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Self

import numpy as np

from sandbox.recording.format import RecordedSeries
from sandbox.recording.remote_write import RemoteWriter, encode_series
from sandbox.recording.staleness import with_markers

__all__ = ["TICK_S", "Feeder", "SpanFeeder"]

TICK_S = 0.5
BATCH_SAMPLES = 50_000


class _Feed:
    """A daemon thread that sends what has come due every ``tick_s``, until ``stop()`` or
    until nothing is left to send."""

    thread_name = "replay"
    tick_s = TICK_S

    def __init__(self) -> None:
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def done(self) -> bool:
        raise NotImplementedError

    def _send_due(self) -> None:
        """Send what is due at this moment of the wall clock."""
        raise NotImplementedError

    def _run(self) -> None:
        while not self._stop.wait(self.tick_s) and not self.done:
            self._send_due()

    def start(self) -> Self:
        self._thread = threading.Thread(target=self._run, name=self.thread_name, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)


class Feeder(_Feed):
    thread_name = "replay-feed"

    def __init__(
        self,
        writer: RemoteWriter,
        series: Sequence[RecordedSeries],
        offset_ms: int,
        on_error: Callable[[str], None] = print,
        markers: Sequence[np.ndarray] | None = None,
    ) -> None:
        """``markers``: each series' staleness markers (``staleness.staleness_markers``)."""
        super().__init__()
        self.writer = writer
        kept = [i for i, s in enumerate(series) if s.times_ms]
        self.series = [series[i] for i in kept]
        none = np.empty(0, dtype=np.int64)
        arrays = [with_markers(series[i], markers[i] if markers else none) for i in kept]
        self._times = [t for t, _ in arrays]
        self._values = [v for _, v in arrays]
        self.offset_ms = offset_ms
        self.on_error = on_error
        self._next = [0] * len(self.series)  # index of each series' next unsent sample
        self.sent = 0
        self.last_error = ""

    def _due(self, until_ms: int) -> None:
        """Send every sample whose shifted time is at most ``until_ms`` (recorded order kept)."""
        batch: list[bytes] = []
        size = 0
        limit = until_ms - self.offset_ms
        for i, s in enumerate(self.series):
            start = self._next[i]
            stop = int(np.searchsorted(self._times[i], limit, side="right"))
            if stop <= start:
                continue
            times = self._times[i][start:stop] + self.offset_ms
            batch.append(encode_series(s.labels, times, self._values[i][start:stop]))
            size += stop - start
            self._next[i] = stop
            if size >= BATCH_SAMPLES:
                self.writer.write_encoded(b"".join(batch))
                self.sent += size
                batch, size = [], 0
        self.writer.write_encoded(b"".join(batch))
        self.sent += size

    def preload(self, until_recorded_ms: int) -> None:
        self._due(until_recorded_ms + self.offset_ms)

    @property
    def done(self) -> bool:
        return all(n >= len(t) for n, t in zip(self._next, self._times, strict=True))

    def _send_due(self) -> None:
        try:
            self._due(int(time.time() * 1000))
        except Exception as exc:  # keep feeding; report once per distinct error
            if str(exc) != self.last_error:
                self.last_error = str(exc)
                self.on_error(f"replay feed: {exc}")


def _shift_spans(export: dict[str, Any], offset_ns: int) -> float:
    """Shift every span's times in place; returns the earliest new start (Unix seconds)."""
    first = float("inf")
    for resource in export.get("resourceSpans", []):
        for scope in resource.get("scopeSpans", []):
            for span in scope.get("spans", []):
                for key in ("startTimeUnixNano", "endTimeUnixNano"):
                    if key in span:
                        span[key] = str(int(span[key]) + offset_ns)
                for event in span.get("events", []):
                    if "timeUnixNano" in event:
                        event["timeUnixNano"] = str(int(event["timeUnixNano"]) + offset_ns)
                if "startTimeUnixNano" in span:
                    first = min(first, int(span["startTimeUnixNano"]) / 1e9)
    return first


class SpanFeeder(_Feed):
    """Appends the recorded OTLP lines, shifted, to ``out`` when their first span starts."""

    thread_name = "replay-spans"
    tick_s = 1.0

    def __init__(self, lines: Sequence[str], offset_ms: int, out: Path) -> None:
        super().__init__()
        items = []
        for line in lines:
            try:
                export = json.loads(line)
            except ValueError:
                continue
            at = _shift_spans(export, offset_ms * 1_000_000)
            items.append((at, json.dumps(export, separators=(",", ":"))))
        self.items = sorted(items, key=lambda item: item[0])
        self.out = out
        self._i = 0

    def _due(self, now: float) -> None:
        lines = []
        while self._i < len(self.items) and self.items[self._i][0] <= now:
            lines.append(self.items[self._i][1] + "\n")
            self._i += 1
        if lines:
            self.out.parent.mkdir(parents=True, exist_ok=True)
            with self.out.open("a") as f:
                f.writelines(lines)

    @property
    def done(self) -> bool:
        return self._i >= len(self.items)

    def _send_due(self) -> None:
        self._due(time.time())

    def start(self) -> Self:
        self._send_due()  # what is due already goes at once
        return super().start()
