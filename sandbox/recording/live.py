"""Live replay: the recording unfolds in real time, shifted to now, in a real Prometheus that
evaluates the sandbox's real rules and a real Alertmanager that pages a webhook.

``LiveReplay`` (a context manager) does the plumbing, all on free ports of 127.0.0.1 and in a
temporary run directory, so it never touches the live stack's data or ports:

1. Prometheus starts with the remote-write receiver on and no rule; Alertmanager starts with the
   sandbox's config pointed at the replay's own webhook;
2. the recording is shifted so that ``baseline_s`` before the injection is *now*, and everything
   recorded up to then is written at once (history for rate windows and dashboards), the
   source's own rule results included (history for rules over rules);
3. the sandbox's rules are loaded (``/-/reload``); from here they evaluate the replayed data as
   it arrives, and the rules' own outputs recorded at the source are no longer fed;
4. a feeder writes each later sample when its shifted time comes; spans go to the replay's
   trace file the same way (``SANDBOX_RUN_DIR=<run_dir> sandbox traces`` shows them).

Rules start evaluating at the replay's start: an alert's ``for:`` counts from there, as in a
live drill whose stack was just started. Replay runs at real speed only: rate windows and
``for:`` durations mean what they meant live.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import yaml

from sandbox.components.alertmanager import render_alertmanager_config
from sandbox.components.base import free_port
from sandbox.components.prometheus import render_prometheus_config
from sandbox.drill.webhook import AlertReceiver
from sandbox.recording.feeder import Feeder, SpanFeeder
from sandbox.recording.format import Recording
from sandbox.recording.process import Child, ReplayError, start_child
from sandbox.recording.remote_write import RemoteWriter
from sandbox.recording.staleness import staleness_markers
from sandbox.settings import Settings, load_settings
from sandbox.tracesink.store import spans_path

__all__ = ["BASELINE_S", "LiveReplay"]

BASELINE_S = 60.0
READY_TIMEOUT_S = 15.0


class LiveReplay:
    def __init__(
        self,
        recording: Recording,
        settings: Settings | None = None,
        baseline_s: float = BASELINE_S,
        say: Any = print,
    ) -> None:
        self.recording = recording
        self.base = settings or load_settings()
        self.baseline_s = baseline_s
        self.say = say
        self.children: list[Child] = []
        self.tmp: Path | None = None
        self.feeder: Feeder | None = None
        self.spans: SpanFeeder | None = None
        self.receiver: AlertReceiver | None = None
        self.offset_s = 0.0
        self.ready_s = 0.0

    # -- time ------------------------------------------------------------------------------
    @property
    def start_recorded(self) -> float:
        """The recorded instant replayed at the replay's start."""
        meta = self.recording.meta
        anchor = meta.injected_at if meta.injected_at is not None else meta.window.start
        return max(meta.window.start, anchor - self.baseline_s)

    def wall(self, recorded: float) -> float:
        return recorded + self.offset_s

    def recorded(self, wall: float) -> float:
        return wall - self.offset_s

    # -- plumbing --------------------------------------------------------------------------
    def _settings(self, run_dir: Path) -> Settings:
        host = self.base.host
        return self.base.model_copy(
            update={
                "run_dir": run_dir,
                "prometheus_port": free_port(host),
                "alertmanager_port": free_port(host),
                "alert_webhook_port": free_port(host),
                "scrape_interval_s": self.recording.meta.scrape_interval_s,
            }
        )

    def _prometheus_config(self, with_rules: bool) -> Path:
        path = render_prometheus_config(self.settings)
        config = yaml.safe_load(path.read_text())
        config["scrape_configs"] = []  # nothing is scraped: the feeder writes the samples
        if not with_rules:
            config["rule_files"] = []
        path.write_text(yaml.safe_dump(config, sort_keys=False))
        return path

    def __enter__(self) -> LiveReplay:
        began = time.monotonic()
        self.tmp = Path(tempfile.mkdtemp(prefix="sandbox-live-replay-"))
        self.settings = self._settings(self.tmp)
        s = self.settings
        try:
            self.receiver = AlertReceiver(s.host, s.alert_webhook_port).start()
            am = start_child(
                "alertmanager (replay)",
                [
                    s.alertmanager_bin,
                    f"--config.file={render_alertmanager_config(s)}",
                    f"--storage.path={self.tmp / 'alertmanager'}",
                    f"--web.listen-address={s.host}:{s.alertmanager_port}",
                    "--cluster.listen-address=",
                ],
                self.tmp / "logs" / "alertmanager.log",
            )
            self.children.append(am)
            prom = start_child(
                "prometheus (replay)",
                [
                    s.prometheus_bin,
                    f"--config.file={self._prometheus_config(with_rules=False)}",
                    f"--storage.tsdb.path={self.tmp / 'prometheus'}",
                    f"--web.listen-address={s.host}:{s.prometheus_port}",
                    "--web.enable-remote-write-receiver",
                    "--web.enable-lifecycle",
                    "--storage.tsdb.retention.time=1d",
                ],
                self.tmp / "logs" / "prometheus.log",
            )
            self.children.append(prom)
            am.wait_ready(f"{s.alertmanager_url}/-/ready", READY_TIMEOUT_S)
            prom.wait_ready(f"{s.prometheus_url}/-/ready", READY_TIMEOUT_S)
            self._feed()
            self._load_rules()
        except BaseException:
            self.__exit__(None, None, None)
            raise
        self.ready_s = time.monotonic() - began
        return self

    def _feed(self) -> None:
        meta = self.recording.meta
        rules = set(meta.recorded_rules)
        start_ms = round(self.start_recorded * 1000)
        self.offset_s = round(time.time() * 1000 - start_ms) / 1000
        offset_ms = round(self.offset_s * 1000)
        writer = RemoteWriter(self.settings.prometheus_url)
        history = [s for s in self.recording.series if s.name not in {"ALERTS", "ALERTS_FOR_STATE"}]
        markers = staleness_markers(history, rules, round(meta.window.end * 1000))
        ours = [i for i, s in enumerate(history) if s.name not in rules]
        theirs = [i for i, s in enumerate(history) if s.name in rules]
        # The source's rule results up to the start: history that rules over rules look back on.
        Feeder(
            writer, [history[i] for i in theirs], offset_ms, markers=[markers[i] for i in theirs]
        ).preload(start_ms)
        self.feeder = Feeder(
            writer,
            [history[i] for i in ours],
            offset_ms,
            on_error=self.say,
            markers=[markers[i] for i in ours],
        )
        self.feeder.preload(start_ms)
        self.feeder.start()
        self.spans = SpanFeeder(
            self.recording.spans, offset_ms, spans_path(self.settings.run_dir)
        ).start()

    def _load_rules(self) -> None:
        self._prometheus_config(with_rules=True)
        url = f"{self.settings.prometheus_url}/-/reload"
        response = httpx.post(url, timeout=10)
        if response.status_code != 200:
            raise ReplayError(f"Prometheus refused the rules ({url}): {response.text[:300]}")

    def __exit__(self, *exc: object) -> None:
        for part in (self.feeder, self.spans):
            if part is not None:
                part.stop()
        if self.receiver is not None:
            self.receiver.stop()
        for child in reversed(self.children):
            child.stop()
        self.children = []
        if self.tmp is not None:
            shutil.rmtree(self.tmp, ignore_errors=True)
            self.tmp = None

    # -- what the learner is told ----------------------------------------------------------
    def environment(self) -> str:
        s = self.settings
        return (
            f"SANDBOX_RUN_DIR={s.run_dir} SANDBOX_PROMETHEUS_PORT={s.prometheus_port} "
            f"SANDBOX_ALERTMANAGER_PORT={s.alertmanager_port}"
        )
