"""The recording file: round trip, and a clear error for every kind of damage."""

from __future__ import annotations

import gzip
import io
import json
import math
import tarfile
from pathlib import Path

import numpy as np
import pytest

from sandbox.recording import (
    FORMAT_VERSION,
    Meta,
    RecordedSeries,
    Recording,
    RecordingError,
    read_recording,
    write_recording,
)
from sandbox.recording.archive import read_meta
from sandbox.recording.format import IncidentRef, Window

T0 = 1_796_000_000_123


def _recording() -> Recording:
    series = [
        RecordedSeries(
            {"__name__": "vllm:num_preemptions_total", "instance": "127.0.0.1:8100"},
            tuple(T0 + 2000 * i for i in range(450)),
            tuple(float(i // 7) for i in range(450)),
        ),
        RecordedSeries(
            {"__name__": "odd", "label": 'quote " back \\ new\nline'},
            (T0, T0 + 1, T0 + 5000),
            (0.1, math.inf, math.nan),
        ),
    ]
    meta = Meta(
        created_at=T0 / 1000,
        source="drill",
        window=Window(start=T0 / 1000, end=T0 / 1000 + 900),
        scrape_interval_s=2,
        injected_at=T0 / 1000 + 300,
        incident=IncidentRef(id="kv-exhaustion", manifest_sha256="ab"),
    )
    return Recording(
        meta,
        series,
        spans=['{"resourceSpans": []}'],
        events=[{"ts": T0 / 1000 + 300, "kind": "drill.inject", "detail": {}}],
        notifications=[{"received_at": T0 / 1000 + 400, "notification": {"status": "firing"}}],
        report={"ok": True},
        manifest_yaml="id: kv-exhaustion\n",
    )


def test_round_trip_is_exact(tmp_path: Path) -> None:
    path = write_recording(tmp_path / "r.tar.gz", _recording())
    back = read_recording(path)
    original = _recording()
    assert [s.labels for s in back.series] == sorted(
        (s.labels for s in original.series), key=lambda labels: sorted(labels.items())
    )
    by_name = {s.name: s for s in back.series}
    assert by_name["vllm:num_preemptions_total"] == original.series[0]
    odd = by_name["odd"]
    assert odd.times_ms == original.series[1].times_ms
    assert odd.values[:2] == (0.1, math.inf) and math.isnan(odd.values[2])
    assert back.meta.counts.samples == 453 and back.incident_id == "kv-exhaustion"
    assert back.spans == original.spans and back.events == original.events
    assert back.notifications == original.notifications and back.report == {"ok": True}
    assert back.manifest_yaml == "id: kv-exhaustion\n"
    assert read_meta(path).injected_at == original.meta.injected_at


def test_truncated_file_is_named(tmp_path: Path) -> None:
    path = write_recording(tmp_path / "r.tar.gz", _recording())
    data = path.read_bytes()
    cut = tmp_path / "cut.tar.gz"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(RecordingError, match=r"cut\.tar\.gz: truncated"):
        read_recording(cut)


def test_corrupt_file_is_named(tmp_path: Path) -> None:
    bad = tmp_path / "bad.tar.gz"
    bad.write_bytes(b"this is not gzip at all" * 10)
    with pytest.raises(RecordingError, match=r"bad\.tar\.gz: corrupt"):
        read_recording(bad)


def _rewrite(path: Path, out: Path, change: dict[str, bytes]) -> None:
    with tarfile.open(path, "r:gz") as src, tarfile.open(out, "w:gz") as dst:
        for info in src:
            data = change.get(info.name, src.extractfile(info).read())  # type: ignore[union-attr]
            info.size = len(data)
            dst.addfile(info, io.BytesIO(data))


def test_unknown_version_is_named(tmp_path: Path) -> None:
    path = write_recording(tmp_path / "r.tar.gz", _recording())
    meta = json.loads(read_meta(path).model_dump_json())
    meta["version"] = FORMAT_VERSION + 1
    newer = tmp_path / "newer.tar.gz"
    _rewrite(path, newer, {"meta.json": json.dumps(meta).encode()})
    with pytest.raises(RecordingError, match=r"newer\.tar\.gz: format version 2 is unknown"):
        read_recording(newer)


def test_altered_samples_are_detected(tmp_path: Path) -> None:
    path = write_recording(tmp_path / "r.tar.gz", _recording())
    short = tmp_path / "short.tar.gz"
    _rewrite(path, short, {"samples.jsonl": b""})
    with pytest.raises(RecordingError, match=r"short\.tar\.gz: truncated or altered"):
        read_recording(short)
    broken = tmp_path / "broken.tar.gz"
    _rewrite(path, broken, {"samples.jsonl": b'{"labels": {}, "t0": 1, "dt": [0], "v": [1, 2]}\n'})
    with pytest.raises(RecordingError, match=r"broken\.tar\.gz: samples\.jsonl line 1"):
        read_recording(broken)


def test_not_a_recording(tmp_path: Path) -> None:
    other = tmp_path / "other.tar.gz"
    with tarfile.open(other, "w:gz") as tar:
        info = tarfile.TarInfo("hello.txt")
        info.size = 2
        tar.addfile(info, io.BytesIO(b"hi"))
    with pytest.raises(RecordingError, match=r"no meta\.json"):
        read_recording(other)
    with pytest.raises(RecordingError, match="no such recording"):
        read_recording(tmp_path / "missing.tar.gz")
    assert gzip  # keeps the import honest for readers: the file is gzip


def test_staleness_markers_go_where_the_source_wrote_them() -> None:
    from sandbox.recording.staleness import staleness_markers, with_markers

    up = RecordedSeries(
        {"__name__": "up", "job": "engine", "instance": "e:1"},
        tuple(T0 + t for t in range(0, 90_000, 2000)),
        (1.0,) * 45,
    )
    # Missing from the target's scrapes for 20 s (a restart), then gone 30 s before the end.
    times = (*range(0, 20_000, 2000), *range(40_000, 60_000, 2000))
    gauge = RecordedSeries(
        {"__name__": "g", "job": "engine", "instance": "e:1"},
        tuple(T0 + t for t in times),
        (1.0,) * len(times),
    )
    # A rule whose evaluations were skipped for 20 s (an overloaded source): no marker there;
    # its output then ends 30 s before the window does while the source runs on (its input
    # went away): the next evaluation wrote a marker, one interval after its last sample.
    skipped = RecordedSeries(
        {"__name__": "job:g:sum"}, tuple(T0 + t for t in times), (1.0,) * len(times)
    )
    # A target that went away 30 s before the end: a marker one interval after its last sample.
    gone = RecordedSeries(
        {"__name__": "up", "job": "canary", "instance": "c:1"},
        tuple(T0 + t for t in range(0, 60_000, 2000)),
        (1.0,) * 30,
    )
    end = T0 + 90_000
    markers = staleness_markers([up, gauge, skipped, gone], {"job:g:sum"}, end)
    assert [list(m - T0) for m in markers] == [[], [20_000, 60_000], [60_000], [60_000]]
    merged_t, merged_v = with_markers(gauge, markers[1])
    assert list(merged_t) == sorted(merged_t) and int(np.isnan(merged_v).sum()) == 2
