"""The page receiver with real Alertmanager-format (v4) POSTs over HTTP."""

from __future__ import annotations

import threading
import time
from typing import Any

import httpx

from sandbox.drill.webhook import AlertReceiver
from tests.support import free_port


def _payload(status: str, name: str = "TimeToFirstTokenSLOBreach") -> dict[str, Any]:
    alert = {
        "status": status,
        "labels": {"alertname": name, "severity": "page", "tenant": "interactive"},
        "annotations": {
            "summary": "TTFT p99 over SLO",
            "description": "p99 4.2 s",
            "dashboard": "overview",
        },
        "startsAt": "2026-11-26T10:00:00Z",
        "endsAt": "0001-01-01T00:00:00Z" if status == "firing" else "2026-11-26T10:05:00Z",
        "generatorURL": "http://127.0.0.1:9090/graph?g0.expr=...",
        "fingerprint": "c0ffee",
    }
    return {
        "version": "4",
        "groupKey": f'{{}}:{{alertname="{name}"}}',
        "truncatedAlerts": 0,
        "status": status,
        "receiver": "drill",
        "groupLabels": {"alertname": name},
        "commonLabels": alert["labels"],
        "commonAnnotations": alert["annotations"],
        "externalURL": "http://127.0.0.1:9093",
        "alerts": [alert],
    }


def test_page_arrives_then_resolves() -> None:
    messages: list[str] = []
    with AlertReceiver("127.0.0.1", free_port()) as receiver:
        assert (
            receiver.wait_for(["TimeToFirstTokenSLOBreach"], 0.3, progress=messages.append) is None
        )

        def post_later() -> None:
            time.sleep(0.3)
            httpx.post(receiver.url, json=_payload("firing"), timeout=5).raise_for_status()

        threading.Thread(target=post_later).start()
        page = receiver.wait_for(["TimeToFirstTokenSLOBreach"], 10, progress=messages.append)
        assert page is not None and page.name == "TimeToFirstTokenSLOBreach"
        assert (
            page.annotations["dashboard"] == "overview" and page.labels["tenant"] == "interactive"
        )
        assert set(receiver.firing()) == {"TimeToFirstTokenSLOBreach"}
        assert receiver.first_firing_at("TimeToFirstTokenSLOBreach") is not None
        assert (
            receiver.wait_resolved(["TimeToFirstTokenSLOBreach"], 0.2, progress=messages.append)
            is False
        )
        httpx.post(receiver.url, json=_payload("resolved"), timeout=5).raise_for_status()
        assert receiver.wait_resolved(["TimeToFirstTokenSLOBreach"], 5) is True
        assert receiver.firing() == {}
        assert len(receiver.received) == 2


def test_other_alerts_do_not_page_and_bad_posts_are_refused() -> None:
    with AlertReceiver("127.0.0.1", free_port()) as receiver:
        httpx.post(
            receiver.url, json=_payload("firing", name="ScrapeTargetDown"), timeout=5
        ).raise_for_status()
        assert (
            receiver.wait_for(["TimeToFirstTokenSLOBreach"], 0.5, progress=lambda m: None) is None
        )
        bad = httpx.post(receiver.url, json={"version": "4", "status": "firing"}, timeout=5)
        assert (
            bad.status_code == 400
            and "Alertmanager v4" in bad.json()["error"]
            and receiver.rejected == 1
        )
        elsewhere = httpx.post(
            receiver.url.replace("/alerts", "/other"), json=_payload("firing"), timeout=5
        )
        assert elsewhere.status_code == 404


def test_progress_is_reported_while_waiting() -> None:
    messages: list[str] = []
    with AlertReceiver("127.0.0.1", free_port()) as receiver:
        receiver.wait_for(["X"], 1.3, progress=messages.append, report_every_s=0.5)
    assert messages and "waiting for X to fire" in messages[0]
