"""Before the fault: the stack ready, the incident's setup changes, its traffic, and a baseline
held steady with no check breached and no alert firing (the steady-state hypothesis)."""

from __future__ import annotations

import time

from sandbox.drill.context import POLL_S, REPORT_EVERY_S, DrillContext
from sandbox.drill.manifest import Check
from sandbox.drill.result import DrillFailure
from sandbox.drill.signature import current_breaches, format_value
from sandbox.drill.traffic import TrafficError, start_traffic

__all__ = ["baseline", "setup", "stack_ready", "start_drill_traffic"]


def stack_ready(d: DrillContext) -> None:
    from sandbox import stack

    if not d.options.start_stack:
        return
    d.say("== 1. stack: starting what is not running and waiting until every component is ready")
    try:
        stack.up(d.settings, d.runtime, progress=d.progress())
    except stack.StackError as exc:
        raise DrillFailure("stack", str(exc)) from exc


def setup(d: DrillContext) -> None:
    for spec in d.m.setup:
        d.tell(f"== setup: {spec.change} {spec.params}")
        d.change(spec.change, spec.params, ttl_s=d.budget_s(), source=f"{d.source}:setup")


def start_drill_traffic(d: DrillContext) -> None:
    d.tell(f"== 2. traffic: profile {d.m.workload.profile}", "== 2. traffic: starting")
    try:
        d.traffic = start_traffic(
            d.settings, d.runtime, d.m.workload.profile, progress=d.progress(secret=True)
        )
    except TrafficError as exc:
        raise DrillFailure("traffic", str(exc)) from exc
    d.event("drill.traffic", profile=d.m.workload.profile)


def baseline(d: DrillContext) -> None:
    t = d.m.timing
    checks: list[Check] = [*d.m.signature.anomalous, *d.m.signature.normal]
    if d.m.workload.traffic_check:
        checks.append(d.m.workload.traffic_check)
    d.say(
        f"== 2. baseline: at least {t.baseline_min_s:.0f} s, then {t.steady_s:.0f} s steady "
        "with no alert"
    )
    start = time.monotonic()
    steady_since: float | None = None
    last = start
    while True:
        breaches = current_breaches(d.prom, checks)
        firing = d.firing()
        now = time.monotonic()
        if breaches or firing:
            steady_since = None
        elif steady_since is None:
            steady_since = now
        if (
            steady_since is not None
            and now - start >= t.baseline_min_s
            and now - steady_since >= t.steady_s
        ):
            d.say(f"  steady after {now - start:.0f} s")
            d.event("drill.baseline_steady", after_s=round(now - start, 1))
            return
        why = "; ".join(f"{c.describe()} (now {format_value(v, c.unit)})" for c, v in breaches)
        if firing:
            why = "; ".join(filter(None, [why, f"alerts firing: {', '.join(firing)}"]))
        if now - start >= t.baseline_timeout_s:
            raise DrillFailure(
                "baseline",
                f"not steady after {t.baseline_timeout_s:.0f} s: {why or 'not held long enough'}",
            )
        if now - last >= REPORT_EVERY_S:
            last = now
            shown = why if (d.revealed or d.options.mode == "auto") else "not steady yet"
            d.say(
                f"  baseline {now - start:.0f}/{t.baseline_timeout_s:.0f} s: "
                f"{shown if why else 'steady, holding'}"
            )
        time.sleep(POLL_S)
