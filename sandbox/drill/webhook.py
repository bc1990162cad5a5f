"""The page receiver: Alertmanager's webhook (payload format version 4) on 127.0.0.1.

Alertmanager POSTs ``{"version": "4", "status": "firing|resolved", "alerts": [...], ...}`` to
``http://<host>:<alert_webhook_port>/alerts``. Every notification is kept with its arrival time;
``wait_for`` blocks (bounded, reporting progress) until a named alert is firing or resolved.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from http.server import ThreadingHTTPServer
from typing import TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from sandbox.http_handler import QuietHandler
from sandbox.waiting import Progress

__all__ = ["WEBHOOK_PATH", "AlertNotification", "AlertReceiver", "Notification"]

T = TypeVar("T")
REPORT_EVERY_S = 10.0  # by default, a line of progress this often while a wait lasts

WEBHOOK_PATH = "/alerts"


class AlertNotification(BaseModel):
    model_config = ConfigDict(extra="allow")

    status: str
    labels: dict[str, str]
    annotations: dict[str, str] = Field(default_factory=dict)
    startsAt: str = ""
    endsAt: str = ""
    generatorURL: str = ""
    fingerprint: str = ""

    @property
    def name(self) -> str:
        return self.labels.get("alertname", "?")


class Notification(BaseModel):
    """One webhook POST (Alertmanager's v4 format)."""

    model_config = ConfigDict(extra="allow")

    version: str
    status: str
    receiver: str = ""
    groupKey: str = ""
    groupLabels: dict[str, str] = Field(default_factory=dict)
    commonLabels: dict[str, str] = Field(default_factory=dict)
    commonAnnotations: dict[str, str] = Field(default_factory=dict)
    externalURL: str = ""
    alerts: list[AlertNotification]


class AlertReceiver:
    """Listens for Alertmanager's webhook; thread-safe; use as a context manager."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self._cond = threading.Condition()
        self.received: list[tuple[float, Notification]] = []
        self._latest: dict[
            str, tuple[float, AlertNotification]
        ] = {}  # fingerprint/labels -> latest
        self.rejected = 0
        self._server: ThreadingHTTPServer | None = None

    # -- server ------------------------------------------------------------------------------
    def start(self) -> AlertReceiver:
        receiver = self

        class Handler(QuietHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                if self.path.split("?")[0] != WEBHOOK_PATH:
                    self.reply_json(404, {"error": f"post pages to {WEBHOOK_PATH}"})
                    return
                try:
                    notification = Notification.model_validate(json.loads(raw))
                except (ValueError, ValidationError) as exc:
                    receiver.rejected += 1
                    self.reply_json(400, {"error": f"not an Alertmanager v4 payload: {exc}"[:500]})
                    return
                receiver._add(notification)
                self.reply_json(200, {"status": "ok"})

        try:
            self._server = ThreadingHTTPServer((self.host, self.port), Handler)
        except OSError as exc:
            raise OSError(
                f"cannot listen for pages on {self.host}:{self.port} ({exc}); is another drill running? "
                f"(SANDBOX_ALERT_WEBHOOK_PORT)"
            ) from exc
        self._server.daemon_threads = True
        threading.Thread(
            target=self._server.serve_forever, name="alert-webhook", daemon=True
        ).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> AlertReceiver:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}{WEBHOOK_PATH}"

    # -- state -------------------------------------------------------------------------------
    def _add(self, notification: Notification) -> None:
        now = time.time()
        with self._cond:
            self.received.append((now, notification))
            for alert in notification.alerts:
                key = alert.fingerprint or json.dumps(alert.labels, sort_keys=True)
                self._latest[key] = (now, alert)
            self._cond.notify_all()

    def firing(self) -> dict[str, AlertNotification]:
        """Alert name -> one firing instance, as the latest notifications say."""
        with self._cond:  # an RLock (Condition's default), so _wait may call this holding it
            return {a.name: a for _, a in self._latest.values() if a.status == "firing"}

    def first_firing_at(self, name: str, since: float = 0.0) -> float | None:
        with self._cond:
            times = [
                t
                for t, n in self.received
                if t >= since
                for a in n.alerts
                if a.name == name and a.status == "firing"
            ]
        return min(times) if times else None

    def wait_for(
        self,
        names: list[str],
        timeout_s: float,
        progress: Progress = print,
        report_every_s: float = REPORT_EVERY_S,
    ) -> AlertNotification | None:
        """Wait until one of ``names`` is firing; return it, or None after ``timeout_s``."""
        return self._wait(
            lambda firing: next((firing[n] for n in names if n in firing), None),
            f"{'/'.join(names)} to fire",
            timeout_s,
            progress,
            report_every_s,
        )

    def wait_resolved(
        self,
        names: list[str],
        timeout_s: float,
        progress: Progress = print,
        report_every_s: float = REPORT_EVERY_S,
    ) -> bool:
        """Wait until none of ``names`` is firing (a resolved notice came); False on timeout."""
        done = self._wait(
            lambda firing: True if not any(n in firing for n in names) else None,
            f"{'/'.join(names)} to resolve",
            timeout_s,
            progress,
            report_every_s,
        )
        return bool(done)

    def _wait(
        self,
        check: Callable[[dict[str, AlertNotification]], T | None],
        what: str,
        timeout_s: float,
        progress: Progress,
        report_every_s: float,
    ) -> T | None:
        start = time.monotonic()
        deadline = start + timeout_s
        last_report = start
        with self._cond:
            while True:
                firing = self.firing()
                result = check(firing)
                if result is not None:
                    return result
                now = time.monotonic()
                if now >= deadline:
                    return None
                if now - last_report >= report_every_s:
                    last_report = now
                    progress(
                        f"waiting for {what} ({now - start:.0f}/{timeout_s:.0f} s; firing now: "
                        f"{', '.join(sorted(firing)) or 'none'})"
                    )
                self._cond.wait(min(1.0, deadline - now))
