"""Record a Prometheus that is not the sandbox's (one that scrapes only itself), replay it
offline, and get the same query results: exact for raw samples, within 1% for rates and
quantiles (they come out exact too, since the samples are the same)."""

from __future__ import annotations

import math
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from sandbox.cli import cli
from sandbox.promapi import PrometheusClient
from sandbox.recording import read_recording, serve_recording
from tests.support import throwaway_prometheus

RAW = [
    "prometheus_http_requests_total",
    "prometheus_tsdb_head_series",
    'up{job="prometheus"}',
]
DERIVED = [
    "sum by (handler) (rate(prometheus_http_requests_total[10s]))",
    "histogram_quantile(0.9, sum by (le) (rate(prometheus_http_request_duration_seconds_bucket[10s])))",
    "max_over_time(process_resident_memory_bytes[10s])",
    "increase(prometheus_tsdb_head_samples_appended_total[10s])",
]


def _by_labels(prom: PrometheusClient, expr: str, at: float) -> dict[str, float]:
    return {str(sorted(s.labels.items())): s.value for s in prom.instant(expr, at)}


def _close(a: float, b: float) -> bool:
    if math.isnan(a) and math.isnan(b):
        return True
    return a == b or abs(a - b) <= 0.01 * max(abs(a), abs(b))


def test_record_then_serve_gives_the_same_answers(tmp_path: Path) -> None:
    (tmp_path / "source").mkdir()
    with throwaway_prometheus(tmp_path / "source", scrape_self=True) as url:
        start = time.time()
        with PrometheusClient(url) as prom:  # some traffic, so rates move
            for _ in range(40):
                prom.instant("up", None)
                time.sleep(0.5)
        end = time.time()
        out = tmp_path / "self.tar.gz"
        result = CliRunner().invoke(
            cli,
            [
                "record",
                "--prometheus",
                url,
                "--start",
                f"{start:.3f}",
                "--end",
                f"{end:.3f}",
                "-o",
                str(out),
            ],
        )
        assert result.exit_code == 0, result.output
        instants = [start + 12 + i * 1.7 for i in range(5)]
        with PrometheusClient(url) as live:
            expected = {(e, t): _by_labels(live, e, t) for e in RAW + DERIVED for t in instants}
    recording = read_recording(out)
    assert recording.meta.scrape_interval_s == 1.0 and recording.meta.source == "record"
    with serve_recording(out) as served:
        assert (served.start, served.end) == (recording.start, recording.end)
        with served.client() as replay:
            for (expr, at), want in expected.items():
                got = _by_labels(replay, expr, at)
                assert got.keys() == want.keys(), (expr, at)
                for key, value in want.items():
                    if expr in RAW:
                        assert got[key] == value or (math.isnan(got[key]) and math.isnan(value))
                    else:
                        assert _close(got[key], value), (expr, at, key, got[key], value)


def test_record_errors_are_clear(tmp_path: Path) -> None:
    runner = CliRunner()
    dead = runner.invoke(
        cli,
        [
            "record",
            "--prometheus",
            "http://127.0.0.1:1",
            "--start",
            "now-5m",
            "-o",
            str(tmp_path / "x.tar.gz"),
        ],
    )
    assert dead.exit_code == 1 and "ConnectError" in dead.output
    (tmp_path / "empty").mkdir()
    with throwaway_prometheus(tmp_path / "empty") as url:
        empty = runner.invoke(
            cli,
            [
                "record",
                "--prometheus",
                url,
                "--start",
                "2020-01-01T00:00:00Z",
                "--end",
                "2020-01-01T00:15:00Z",
            ],
        )
    assert empty.exit_code == 1 and "no series matching" in empty.output


def test_serve_refuses_a_damaged_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.tar.gz"
    bad.write_bytes(b"\x1f\x8b\x08\x00garbage")
    from sandbox.recording import RecordingError

    with pytest.raises(RecordingError, match=r"bad\.tar\.gz"):
        with serve_recording(bad):
            pass
