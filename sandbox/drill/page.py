"""The fault and the page: inject the incident's faults on schedule, then wait for the page
from Alertmanager and show it as a pager would (the page-severity alerts that fired, their
summary and where to look), with the signature's values recorded for the report."""

from __future__ import annotations

import time

from sandbox.console.links import page_links
from sandbox.drill.context import DrillContext
from sandbox.drill.result import DrillFailure
from sandbox.drill.webhook import AlertReceiver
from sandbox.promapi import PrometheusError, Reduce

__all__ = ["inject", "pager_view", "scenario_clock", "wait_page"]


def inject(d: DrillContext) -> None:
    d.tell("== 3. inject")
    d.result.injected_at = time.time()
    d.event("drill.inject", faults=[f.id for f in d.m.faults])
    d.publish("injected")
    base = time.monotonic()
    for step in sorted(d.m.faults, key=lambda f: f.after_s):
        delay = base + step.after_s - time.monotonic()
        if delay > 0:
            d.wait(delay, f"next fault ({step.id})" if d.revealed else "setting up")
        started = time.monotonic()
        d.fault_handles[step.id] = d.change(step.change, step.params, d.ttl_s(step.ttl_s), d.source)
        # The time a step takes to apply (a canary's start-up: 70-110 s on two cores) does not
        # eat into the next step's interval: bad-rollout's shadow once had 16 s instead of 120
        # and mirrored no failing request.
        base += time.monotonic() - started
        d.tell(f"  injected {step.id} ({step.change})", "")


def pager_view(d: DrillContext) -> str:
    """What a pager shows: the page-severity alerts firing now, their value and summary, and how
    long the scenario stays broken."""
    return f"{firing_pages(d)}\n{scenario_clock(d)}"


def firing_pages(d: DrillContext) -> str:
    # The alert that paged counts whatever its severity: bad-rollout's page is a warning.
    paged_by = d.result.page.name if d.result.page else None
    try:
        alerts = d.prom.alerts()
    except PrometheusError as exc:
        return f"  (Prometheus unreachable: {exc})"
    lines = []
    for alert in alerts:
        labels = alert.get("labels", {})
        pages = labels.get("severity") == "page" or labels.get("alertname") == paged_by
        if alert.get("state") != "firing" or not pages:
            continue
        try:
            value = f"{float(alert.get('value', 'nan')):.3g}"
        except ValueError:
            value = str(alert.get("value"))
        summary = alert.get("annotations", {}).get("summary", "")
        lines.append(f"  FIRING {labels.get('alertname', '?')} (value {value}): {summary}")
    return "\n".join(lines) or "  no page firing now"


def scenario_clock(d: DrillContext) -> str:
    """How long the incident stays broken: its faults revert themselves at their TTL."""
    left = d.scenario_left_s()
    if left is None:
        return "  the scenario has not started yet"
    if left <= 0:
        return (
            "  the scenario's time is up: its faults have reverted themselves, so what you see "
            "now is a healthy system. Type q and start the drill again to retry."
        )
    return f"  the scenario stays broken for {left / 60:.0f} more min"


def wait_page(d: DrillContext, receiver: AlertReceiver) -> None:
    t = d.m.timing
    page_alert = d.m.alerts.page_alert
    d.tell(
        f"== 4. waiting for the page ({page_alert}), at most {t.page_timeout_s:.0f} s",
        f"== 4. {'setting up the scenario; the pager will ring'}",
    )
    page = receiver.wait_for([page_alert], t.page_timeout_s, progress=d.progress(secret=True))
    if page is None:
        raise DrillFailure(
            "page",
            f"{page_alert} did not page within {t.page_timeout_s:.0f} s "
            f"(firing in Alertmanager: {', '.join(d.firing()) or 'none'})",
        )
    d.result.paged_at = time.time()
    d.result.page = page
    d.event("drill.page", alert=page.name, labels=page.labels)
    for check in [*d.m.signature.anomalous, *d.m.signature.normal]:
        try:
            d.result.signature_at_page[check.name] = d.prom.value(check.expr, Reduce.MAX)
        except PrometheusError:
            d.result.signature_at_page[check.name] = None
    d.say("")
    d.say(f"PAGE after {d.result.paged_at - (d.result.injected_at or 0):.0f} s: {page.name}")
    for key in ("summary", "description"):
        if page.annotations.get(key):
            d.say(f"  {key}: {page.annotations[key]}")
    d.say(d.m.page.rstrip())
    d.publish("paged")
    for line in page_links(d.settings, *d.page_window()):
        d.say(line)
