"""After the page: apply a mitigation for real and verify recovery (SLIs held within SLO and
the incident's alerts resolved), undo a mitigation that did not help, and judge the run's
window: the signature, the alerts that fired, and the matrix against every other incident."""

from __future__ import annotations

import time

import faults
from sandbox.drill.context import POLL_S, REPORT_EVERY_S, DrillContext
from sandbox.drill.grading import MitigationAttempt
from sandbox.drill.manifest import Mitigation, RevertFault, list_incidents, load_incident
from sandbox.drill.signature import (
    alerts_fired,
    current_breaches,
    evaluate_signature,
    format_value,
    known_metrics,
    unknown_metrics,
)
from sandbox.promapi import PrometheusError
from sandbox.waiting import NotYet, WaitTimeout, wait_until

__all__ = [
    "VERDICT_S",
    "apply",
    "judge_window",
    "matrix_row",
    "undo",
    "verdict_s",
    "wait_anomalies",
    "wait_recovery",
]

# A mitigation that does not help gets its verdict this long after it took effect (applied,
# engine restart included, and settled), plus the recovery's hold_s, so the learner can try
# another while the incident is still on. It is long enough for the recovery SLIs, read over
# 30 s windows, to show which way they go: after bad-rollout's rollback they were within SLO in
# 20 s, while after the wrong restart its 4xx share stayed at 5-22% for all 75 s (2026-12-07).
# Full recovery takes longer (the rollback's: 80 s, the alert resolving and the hold), so this
# judges the SLIs, which a wrong mitigation does not move. (Until 2026-12-07 the verdict came
# 120 s after the choice, restart included: about 95 s of watching after a 20 s CPU restart,
# barely a minute after a GPU restart of 60 s.)
VERDICT_S = 45.0


def apply(d: DrillContext, mitigation: Mitigation) -> MitigationAttempt:
    now = time.time()
    d.result.first_mitigation_at = d.result.first_mitigation_at or now
    d.say(f"== 5. mitigation: {mitigation.title}")
    d.event("drill.mitigation", id=mitigation.id, correct=mitigation.correct)
    action = mitigation.action
    d.acting = True
    try:
        if isinstance(action, RevertFault):
            handle = d.fault_handles.get(action.revert_fault)
            if handle is not None:
                faults.revert(d.ctx, handle.id, reason=f"mitigation {mitigation.id}")
        else:
            d.change(
                action.change,
                action.params,
                d.budget_s(),
                f"{d.source}:mitigation:{mitigation.id}",
            )
    finally:
        d.acting = False
    if mitigation.settle_s:
        d.wait(mitigation.settle_s, "letting it settle")
    # A wrong mitigation cannot bring recovery: its verdict comes after verdict_s of watching,
    # not after the full timeout.
    timeout = d.m.recovery.timeout_s
    if not mitigation.correct:
        timeout = min(timeout, verdict_s(d))
    recovered = wait_recovery(d, timeout)
    return MitigationAttempt(mitigation, recovered, now)


def verdict_s(d: DrillContext) -> float:
    """How long a mitigation that does not help is watched once it took effect."""
    return VERDICT_S + d.m.recovery.hold_s


def wait_recovery(d: DrillContext, timeout_s: float) -> bool:
    """True once the SLIs are within SLO and the incident's alerts resolved, held for
    ``recovery.hold_s``; False after ``timeout_s``."""
    r = d.m.recovery
    alerts = d.m.alerts.expected if r.alerts_resolved else []
    d.say(
        f"== 6. recovery: SLIs within SLO{' and alerts resolved' if alerts else ''} for "
        f"{r.hold_s:.0f} s (at most {timeout_s:.0f} s)"
    )
    start = time.monotonic()

    def recovered() -> bool | NotYet:
        breaches = current_breaches(d.prom, r.slis)
        firing = [a for a in d.firing() if a in alerts or a.startswith("(")]
        if not breaches and not firing:
            return True
        why = "; ".join(f"{c.describe()} (now {format_value(v, c.unit)})" for c, v in breaches)
        if firing:
            why = "; ".join(filter(None, [why, f"still firing: {', '.join(firing)}"]))
        return NotYet(why)

    try:
        wait_until(
            recovered,
            "recovery",
            timeout_s,
            interval_s=POLL_S,
            hold_s=r.hold_s,
            progress=d.progress(),
            report_every_s=REPORT_EVERY_S,
        )
    except WaitTimeout:
        d.say("  not recovered in time")
        return False
    d.result.recovered_at = time.time()
    d.event("drill.recovered")
    d.say(f"  recovered ({time.monotonic() - start:.0f} s)")
    return True


def undo(d: DrillContext, mitigation: Mitigation) -> None:
    if isinstance(mitigation.action, RevertFault):
        return
    source = f"{d.source}:mitigation:{mitigation.id}"
    d.acting = True
    try:
        for handle in faults.active_handles(d.ctx):
            if handle.source == source:
                faults.revert(d.ctx, handle.id, reason="mitigation did not help")
        d.restore_replaced(source)
    finally:
        d.acting = False
    d.say("  undone")
    d.event("drill.mitigation_undone", id=mitigation.id)


def wait_anomalies(d: DrillContext) -> None:
    """Watch the manifest's grace period after the page before auto mode mitigates.

    The whole period, even once every check has breached: a window that closed at the last
    breach would always show that check barely over its threshold, and the judged window would
    differ in length from run to run. A cause alert with its own ``for:`` may also fire a little
    after the page."""
    sig = d.m.signature
    deadline = (d.result.paged_at or time.time()) + sig.grace_s
    pending = list(sig.anomalous)
    alerts = set(d.m.alerts.expected)
    last_said = 0.0
    while time.time() < deadline:
        breached = [c for c, _ in current_breaches(d.prom, pending)]
        pending = [c for c in pending if c not in breached]
        try:
            alerts -= set(d.prom.firing_alerts())
        except PrometheusError:
            pass
        if time.time() - last_said >= REPORT_EVERY_S:
            last_said = time.time()
            d.say(
                f"  watching the incident for {deadline - time.time():.0f} s more "
                f"({len(pending)} check(s) and {len(alerts)} alert(s) not seen yet)"
            )
        time.sleep(min(POLL_S, max(0.0, deadline - time.time())))


def judge_window(d: DrillContext, until: float) -> None:
    """Judge the window from the injection to ``until``: every check of the signature (with
    unknown metric names named), the expected alerts fired and no other page, and which
    incidents' signatures the window satisfies (the matrix row)."""
    m, result = d.m, d.result
    start = result.injected_at or result.started_at
    end = result.judged_until = until
    step = max(1.0, d.settings.scrape_interval_s)
    result.signature = evaluate_signature(d.prom, m, start, end, step)
    failures: list[str] = []
    try:
        known = known_metrics(d.prom)
        checks = [*m.signature.anomalous, *m.signature.normal, *m.recovery.slis]
        for name, missing in unknown_metrics(checks, known).items():
            failures.append(f"check {name!r} names unknown metric(s) {', '.join(missing)}")
    except PrometheusError as exc:
        failures.append(f"metric names: {exc}")
    for r in result.signature:
        d.tell(
            f"  signature {r.kind:<9} {r.check.describe():<50} worst "
            f"{format_value(r.worst, r.check.unit):<10} {'ok' if r.ok else 'MISBEHAVED'}"
            + (f" ({r.error})" if r.error else ""),
            "",
        )
    bad = [r for r in result.signature if not r.ok]
    if bad:
        failures.append(
            "signature: "
            + "; ".join(
                f"{r.check.name} ({r.kind}) "
                + (r.error or ("never breached" if r.kind == "anomalous" else "breached"))
                for r in bad
            )
        )
    try:
        result.alerts = alerts_fired(d.prom, start, end, step)
    except PrometheusError as exc:
        failures.append(f"alerts: {exc}")
    fired = {a.name for a in result.alerts}
    missing = [a for a in m.alerts.expected if a not in fired]
    if missing:
        failures.append(f"alerts: expected {', '.join(missing)} never fired")
    stray = [
        a.name
        for a in result.alerts
        if a.severity == "page" and m.alerts.verdict(a.name) == "NOT expected"
    ]
    if stray:
        failures.append(f"alerts: page(s) this incident does not expect fired: {', '.join(stray)}")
    result.matrix = matrix_row(d, start, end, step)
    others = [i for i, ok in result.matrix.items() if ok and i != m.id]
    if others:
        failures.append(f"matrix: this run also satisfies the signature of {', '.join(others)}")
    result.failures.extend(failures)


def matrix_row(d: DrillContext, start: float, end: float, step: float) -> dict[str, bool]:
    """Incident id -> whether this window satisfies that incident's whole signature."""
    row: dict[str, bool] = {}
    for incident_id in list_incidents(d.incident.folder.parent):
        if incident_id == d.m.id:
            row[incident_id] = all(r.ok for r in d.result.signature)
            continue
        other = load_incident(incident_id, d.incident.folder.parent).manifest
        row[incident_id] = all(r.ok for r in evaluate_signature(d.prom, other, start, end, step))
    return row
