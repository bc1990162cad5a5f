"""Live replay plumbing on a synthetic recording (real Prometheus and Alertmanager, no engine),
and nothing left running when the replaying process is killed."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sandbox.promapi import PrometheusClient, Reduce
from sandbox.recording import Meta, RecordedSeries, Recording, write_recording
from sandbox.recording.format import Window
from sandbox.recording.live import LiveReplay
from sandbox.recording.remote_write import encode_write_request, snappy_literal

pytestmark = pytest.mark.skipif(
    shutil.which("prometheus") is None or shutil.which("prometheus-alertmanager") is None,
    reason="prometheus and prometheus-alertmanager are not installed (run `make setup`)",
)


def _synthetic(now: float, series: int = 200) -> Recording:
    t0 = int((now - 1800) * 1000)
    data = [
        RecordedSeries(
            {"__name__": f"replay_test_{j}", "job": "engine"},
            tuple(t0 + 2000 * i for i in range(900)),
            tuple(float(i) for i in range(900)),
        )
        for j in range(series)
    ]
    meta = Meta(
        created_at=now,
        source="record",
        window=Window(start=t0 / 1000, end=t0 / 1000 + 1798),
        scrape_interval_s=2,
        injected_at=t0 / 1000 + 600,
    )
    return Recording(meta, data)


def test_snappy_literal_block_layout() -> None:
    block = snappy_literal(b"x" * 70_000)
    assert block[:3] == bytes([0xF0, 0xA2, 0x04])  # varint 70000
    assert block[3] == 61 << 2  # a literal with a two-byte length follows
    assert encode_write_request([]) == b""


def test_live_replay_unfolds_shifted_to_now() -> None:
    recording = _synthetic(time.time())
    with LiveReplay(recording, say=lambda msg: None) as replay:
        assert replay.ready_s < 15
        # The replay started 60 s (recorded) before the injection: sample i = 270 at that instant.
        assert replay.recorded(time.time()) == pytest.approx(recording.meta.injected_at - 60, abs=5)
        time.sleep(3)
        with PrometheusClient(replay.settings.prometheus_url) as prom:
            value = prom.value("replay_test_7", Reduce.MAX)
            expected = (
                replay.recorded(time.time()) * 1000 - recording.series[0].times_ms[0]
            ) / 2000
            assert value is not None and expected - 2 <= value <= expected + 0.5
            rules = prom.get("/api/v1/rules", {}, "rules")["data"]["groups"]
            assert rules, "the sandbox's rules are loaded"
            history = prom.value("count_over_time(replay_test_7[5m])", Reduce.MAX)
            assert history is not None and history >= 149  # preloaded history
        tmp = replay.tmp
    assert tmp is not None and not tmp.exists()


SERVE = """
import sys, time
from pathlib import Path
from sandbox.recording import serve_recording
with serve_recording(Path(sys.argv[1])) as served:
    print(served.pid, flush=True)
    time.sleep(120)
"""


def test_a_killed_replay_leaves_nothing_running(tmp_path: Path) -> None:
    path = write_recording(tmp_path / "r.tar.gz", _synthetic(time.time(), series=5))
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    child = subprocess.Popen(
        [sys.executable, "-c", SERVE, str(path)], stdout=subprocess.PIPE, text=True, env=env
    )
    assert child.stdout is not None
    prometheus_pid = int(child.stdout.readline())
    os.kill(prometheus_pid, 0)  # running
    child.send_signal(signal.SIGKILL)
    child.wait(10)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.kill(prometheus_pid, 0)
        except ProcessLookupError:
            return
        # Reap it if it became our grandchild's orphan zombie; otherwise wait.
        time.sleep(0.2)
    status = Path(f"/proc/{prometheus_pid}/status").read_text().split("\n")[2]
    assert "Z" in status, f"prometheus {prometheus_pid} still running after its parent was killed"
