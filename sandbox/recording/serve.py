"""Offline replay: the whole recorded window in a real Prometheus, queried at its own times.

``serve_recording(path)`` starts Debian's ``prometheus`` on an empty TSDB in a temporary
directory (127.0.0.1, a free port, no scrape job, no rule, the remote-write receiver on), writes
every recorded sample into it at its own timestamp, with the staleness markers the source wrote
(``staleness``), and yields a ``ServedRecording``: every series of the source is
there as it was stored, recording rules' results and ``ALERTS`` included. On leaving the ``with`` block Prometheus is stopped by its pid and
the directory deleted; if the caller is killed, the kernel stops Prometheus (see ``process``).

    with serve_recording(Path("incidents/kv-exhaustion/recording.tar.gz")) as served:
        served.url          # http://127.0.0.1:<port>
        served.start, served.end, served.injected_at, served.incident_id
        served.query("rate(vllm:num_preemptions_total[1m])", at=served.injected_at + 120)

Nothing is written into the live stack's data directory, and the live stack's ports are never
used (the port is chosen by the OS).
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from sandbox.components.base import free_port
from sandbox.promapi import PrometheusClient, Sample
from sandbox.recording.archive import read_recording
from sandbox.recording.feeder import Feeder
from sandbox.recording.format import Meta, Recording
from sandbox.recording.process import start_child
from sandbox.recording.remote_write import RemoteWriter
from sandbox.recording.staleness import staleness_markers
from sandbox.settings import Settings, load_settings

__all__ = ["READY_TIMEOUT_S", "ServedRecording", "serve_recording"]

READY_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class ServedRecording:
    """A recording served by a running Prometheus. Stable API (the dashboard grader uses it)."""

    url: str  # http://127.0.0.1:<port>
    start: float  # the recorded window, Unix seconds
    end: float
    injected_at: float | None  # the fault's injection time, Unix seconds (None without a drill)
    incident_id: str | None
    meta: Meta
    recording: Recording
    pid: int

    @property
    def paged_at(self) -> float | None:
        return self.meta.paged_at

    @property
    def step_s(self) -> float:
        """The source's scrape interval: the natural step of range queries over the window."""
        return self.meta.scrape_interval_s

    def client(self) -> PrometheusClient:
        return PrometheusClient(self.url)

    def query(self, expr: str, at: float) -> list[Sample]:
        """One instant query at a recorded time (a convenience; use ``client()`` for more)."""
        with self.client() as prom:
            return prom.instant(expr, at)


def _config(path: Path, meta: Meta) -> Path:
    interval = f"{max(1, round(meta.scrape_interval_s))}s"
    path.write_text(f"global:\n  scrape_interval: {interval}\n  evaluation_interval: {interval}\n")
    return path


@contextmanager
def serve_recording(
    path: Path | str,
    *,
    settings: Settings | None = None,
    port: int | None = None,
    recording: Recording | None = None,
) -> Iterator[ServedRecording]:
    """Serve the recording at ``path`` (or an already read ``recording``) until the block ends."""
    settings = settings or load_settings()
    recording = recording or read_recording(Path(path))
    meta = recording.meta
    with tempfile.TemporaryDirectory(prefix="sandbox-replay-") as tmp:
        work = Path(tmp)
        port = port or free_port(settings.host)
        url = f"http://{settings.host}:{port}"
        child = start_child(
            "prometheus (replay)",
            [
                settings.prometheus_bin,
                f"--config.file={_config(work / 'prometheus.yml', meta)}",
                f"--storage.tsdb.path={work / 'data'}",
                # Retention counts back from the newest data, not from today: keep everything.
                "--storage.tsdb.retention.time=100y",
                f"--web.listen-address={settings.host}:{port}",
                "--web.enable-remote-write-receiver",
            ],
            work / "prometheus.log",
        )
        try:
            child.wait_ready(f"{url}/-/ready", READY_TIMEOUT_S)
            writer = RemoteWriter(url)
            try:
                end_ms = round(meta.window.end * 1000)
                markers = staleness_markers(recording.series, meta.recorded_rules, end_ms)
                Feeder(writer, recording.series, 0, markers=markers).preload(end_ms)
            finally:
                writer.close()
            yield ServedRecording(
                url=url,
                start=meta.window.start,
                end=meta.window.end,
                injected_at=meta.injected_at,
                incident_id=recording.incident_id,
                meta=meta,
                recording=recording,
                pid=child.pid,
            )
        finally:
            child.stop()
