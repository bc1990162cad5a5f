"""Before the fault: the stack ready, the incident's setup changes, its traffic, and a baseline
held steady with no check breached and no alert firing (the steady-state hypothesis)."""

from __future__ import annotations

import time
from typing import Any

import faults
from sandbox.drill.context import POLL_S, REPORT_EVERY_S, DrillContext
from sandbox.drill.manifest import Check, SetupStep
from sandbox.drill.result import DrillFailure
from sandbox.drill.signature import current_breaches, format_value
from sandbox.drill.traffic import TrafficError, start_traffic
from sandbox.engine_speed import EngineSpeedError, measure_engine, rate_scale
from sandbox.waiting import NotYet, wait_until

__all__ = ["baseline", "scaled_setup", "setup", "stack_ready", "start_drill_traffic"]


def stack_ready(d: DrillContext) -> None:
    from sandbox import stack

    if not d.options.start_stack:
        return
    d.say("== 1. stack: starting what is not running and waiting until every component is ready")
    # An engine started here starts with the setup's engine settings: setup() then finds it
    # running as asked, instead of restarting it at once (20-30 s on a 2-core machine).
    overrides = faults.setting_overrides(
        (faults.get_change(s.change), s.params) for s in d.m.setup if not s.scale_with_load
    )
    try:
        stack.up(d.settings, d.runtime, progress=d.progress(), engine_overrides=overrides)
    except stack.StackError as exc:
        raise DrillFailure("stack", str(exc)) from exc


def setup(d: DrillContext) -> None:
    """Apply the setup's steps, except those with rates to scale (``scaled_setup`` applies
    them once the probe has read the engine)."""
    # Several engine settings (cold-start: batch size and cores) take one restart, not one each.
    try:
        with faults.one_engine_restart(d.ctx, "the incident's setup"):
            for spec in d.m.setup:
                if not spec.scale_with_load:
                    _apply_setup_step(d, spec, spec.params)
    except faults.FaultError as exc:
        raise DrillFailure("change", str(exc)) from exc


def scaled_setup(d: DrillContext) -> None:
    """The setup's steps whose rates scale with the load, at ``d.rate_scale``.

    A rate in a setup step (cold-start's autoscaler target, in requests per second per replica)
    was sized on the machine the incident was tuned on, like the profile's rates: scaled with
    them, the signal's distance from its target is the same on any machine."""
    try:
        for spec in d.m.setup:
            if spec.scale_with_load:
                _apply_setup_step(d, spec, spec.params_at(d.rate_scale))
    except faults.FaultError as exc:
        raise DrillFailure("change", str(exc)) from exc


def _apply_setup_step(d: DrillContext, spec: SetupStep, params: dict[str, Any]) -> None:
    d.tell(f"== setup: {spec.change} {params}")
    d.change(spec.change, params, ttl_s=d.budget_s(), source=f"{d.source}:setup")


def start_drill_traffic(d: DrillContext) -> None:
    d.tell(f"== 2. traffic: profile {d.m.workload.profile}", "== 2. traffic: starting")
    scale = d.rate_scale = load_scale(d)
    scaled_setup(d)
    try:
        d.traffic = start_traffic(
            d.settings,
            d.runtime,
            d.m.workload.profile,
            progress=d.progress(secret=True),
            rate_scale=scale,
        )
    except TrafficError as exc:
        raise DrillFailure("traffic", str(exc)) from exc
    d.event("drill.traffic", profile=d.m.workload.profile, rate_scale=scale)


def load_scale(d: DrillContext) -> float:
    """1, or today's engine speed over the one the incident was tuned on (see engine_speed)."""
    reference = d.m.workload.engine_reference
    if reference is None:
        return 1.0
    try:
        speed = measure_engine(d.settings.engine_url, d.settings.served_model_name)
    except EngineSpeedError as exc:
        raise DrillFailure("traffic", str(exc)) from exc
    scale = rate_scale(speed, reference)
    d.say(
        f"  sized the load to this engine: {speed.requests_per_s:.2f} probe requests/s (median "
        f"of {len(speed.rounds)} rounds) against {reference:g} where the incident was tuned, "
        f"rates x{scale:.2f}"
    )
    d.event(
        "drill.engine_speed",
        requests_per_s=round(speed.requests_per_s, 3),
        rounds=[round(r, 3) for r in speed.rounds],
        tokens_per_s=round(speed.tokens_per_s, 1),
        reference=reference,
        rate_scale=round(scale, 3),
    )
    return scale


def baseline(d: DrillContext) -> None:
    """Hold until no check is breached and no alert fires for ``steady_s``, after at least
    ``baseline_min_s`` of traffic; fail naming what was not steady after the timeout."""
    t = d.m.timing
    checks: list[Check] = [*d.m.signature.anomalous, *d.m.signature.normal]
    if d.m.workload.traffic_check:
        checks.append(d.m.workload.traffic_check.scaled(d.rate_scale))
    d.say(
        f"== 2. baseline: at least {t.baseline_min_s:.0f} s, then {t.steady_s:.0f} s steady "
        "with no alert"
    )
    start = time.monotonic()
    earliest_streak = max(0.0, t.baseline_min_s - t.steady_s)

    def steady() -> bool | NotYet:
        breaches = current_breaches(d.prom, checks)
        firing = d.firing()
        if not breaches and not firing:
            if time.monotonic() - start < earliest_streak:
                return NotYet("traffic settling")
            return True
        if not (d.revealed or d.options.mode == "auto"):
            return NotYet("not steady yet")
        why = "; ".join(f"{c.describe()} (now {format_value(v, c.unit)})" for c, v in breaches)
        if firing:
            why = "; ".join(filter(None, [why, f"alerts firing: {', '.join(firing)}"]))
        return NotYet(why)

    wait_until(
        steady,
        "a steady baseline",
        t.baseline_timeout_s,
        interval_s=POLL_S,
        hold_s=t.steady_s,
        progress=d.progress(),
        report_every_s=REPORT_EVERY_S,
        fail=lambda message: DrillFailure("baseline", message),
    )
    d.say(f"  steady after {time.monotonic() - start:.0f} s")
    d.event("drill.baseline_steady", after_s=round(time.monotonic() - start, 1))
