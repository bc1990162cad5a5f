"""The drill loop of DESIGN.md ("The drill"), bounded in time at every step.

stack ready -> setup changes -> baseline traffic until steady with no alert -> inject (timeline)
-> wait for the page on the webhook -> interactive (hints, graded diagnosis, the learner's
mitigation applied for real, retried after a wrong one) or auto (the reference mitigation)
-> recovery verified (alerts resolved, SLIs held) -> report -> revert every change of the drill
and stop its traffic, also when a step failed or the learner quit.

``MODE=auto`` is the end-to-end test of an incident: ``DrillResult.ok`` is False (and the CLI
exits non-zero) when the page does not come in time, a signature check misbehaves, or recovery
is not reached.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import faults
from faults import FaultConflict, FaultError, FaultHandle, StackContext
from sandbox.components.base import Component
from sandbox.console.links import dashboard_link, page_links
from sandbox.drill.grading import DiagnosisGrade, MitigationAttempt, Score, score_drill
from sandbox.drill.live import console_hints, write_live
from sandbox.drill.manifest import Check, Incident, Mitigation, RevertFault
from sandbox.drill.prompts import GiveUp, Prompter
from sandbox.drill.quiz import ask_diagnosis, ask_mitigation
from sandbox.drill.signature import CheckResult, current_breaches, evaluate, format_value
from sandbox.drill.timeline import read_events, record_event
from sandbox.drill.traffic import TrafficError, start_traffic, stop_traffic
from sandbox.drill.webhook import AlertNotification, AlertReceiver
from sandbox.exceptions import SandboxError
from sandbox.promapi import AlertmanagerClient, PrometheusClient, PrometheusError, Reduce
from sandbox.runtime import runtime_for, webhook_bind_host
from sandbox.runtime.base import Runtime
from sandbox.settings import Settings

__all__ = ["Drill", "DrillFailure", "DrillOptions", "DrillResult"]

Mode = Literal["auto", "interactive"]
POLL_S = 2.0
REPORT_EVERY_S = 10.0
REAPER_EVERY_S = 5.0


class DrillFailure(SandboxError):
    def __init__(self, step: str, reason: str) -> None:
        super().__init__(f"{step}: {reason}")
        self.step = step
        self.reason = reason


@dataclass
class DrillOptions:
    mode: Mode = "auto"
    seed: int | None = None
    start_stack: bool = True
    report_dir: Path | None = None


@dataclass
class DrillResult:
    incident: Incident
    mode: Mode
    started_at: float
    ended_at: float | None = None
    injected_at: float | None = None
    paged_at: float | None = None
    page: AlertNotification | None = None
    diagnosed_at: float | None = None
    recovered_at: float | None = None
    first_mitigation_at: float | None = None
    diagnosis: DiagnosisGrade | None = None
    attempts: list[MitigationAttempt] = field(default_factory=list)
    hints_used: int = 0
    signature: list[CheckResult] = field(default_factory=list)
    signature_at_page: dict[str, float | None] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)
    score: Score | None = None
    events: list[dict[str, Any]] = field(default_factory=list)
    report_paths: list[Path] = field(default_factory=list)
    gave_up: bool = False

    @property
    def ok(self) -> bool:
        return not self.failures and self.recovered_at is not None

    def since_inject(self, ts: float | None) -> float | None:
        return None if ts is None or self.injected_at is None else ts - self.injected_at


class Drill:
    def __init__(
        self,
        incident: Incident,
        settings: Settings,
        options: DrillOptions | None = None,
        runtime: Runtime | None = None,
        prompter: Callable[..., Prompter] | None = None,
        say: Callable[[str], None] = print,
    ) -> None:
        self.incident = incident
        self.m = incident.manifest
        self.settings = settings
        self.options = options or DrillOptions()
        self.runtime = runtime or runtime_for(settings)
        self.say = say
        self.ctx = StackContext.from_settings(
            settings, self.runtime, progress=lambda msg: say(f"  {msg}")
        )
        self.prom = PrometheusClient(settings.prometheus_url)
        self.alertmanager = AlertmanagerClient(settings.alertmanager_url)
        self.source = f"drill:{self.m.id}"
        self.fault_handles: dict[str, FaultHandle] = {}
        self.traffic: Component | None = None
        self.prompter_factory = prompter or Prompter
        self.result = DrillResult(incident, self.options.mode, time.time())
        self._stop_reaper = threading.Event()

    # -- helpers -------------------------------------------------------------------------
    def _event(self, kind: str, **detail: Any) -> None:
        record_event(self.settings.run_dir, kind, {"incident": self.m.id, **detail})

    def _wait(self, seconds: float, what: str) -> None:
        end = time.monotonic() + seconds
        last = time.monotonic()
        while (left := end - time.monotonic()) > 0:
            if time.monotonic() - last >= REPORT_EVERY_S:
                last = time.monotonic()
                self.say(f"  {what}: {left:.0f} s left")
            time.sleep(min(1.0, left))

    def _reaper(self) -> None:
        while not self._stop_reaper.wait(REAPER_EVERY_S):
            try:
                faults.reap_expired(self.ctx)
            except Exception as exc:
                self.say(f"  fault reaper: {exc}")

    def _firing(self) -> list[str]:
        try:
            return self.alertmanager.active_alerts()
        except PrometheusError as exc:
            return [f"(Alertmanager unreachable: {exc})"]

    # -- the loop ------------------------------------------------------------------------
    def run(self) -> DrillResult:
        reaper = threading.Thread(target=self._reaper, name="fault-reaper", daemon=True)
        reaper.start()
        self._publish("started")
        receiver = AlertReceiver(
            webhook_bind_host(self.settings, self.runtime), self.settings.alert_webhook_port
        )
        self.receiver = receiver  # the recording keeps the pages it received
        try:
            self._stack_ready()
            receiver.start()
            self._setup()
            self._start_traffic()
            self._baseline()
            self._inject()
            self._wait_page(receiver)
            if self.options.mode == "interactive":
                self._interactive(receiver)
            else:
                self._auto()
            # Let Alertmanager deliver its "resolved" notices while we still listen: its
            # notification log then holds nothing firing, so the next drill's page is not
            # deduplicated away as already sent.
            receiver.wait_resolved(self.m.alerts.expected, timeout_s=45, progress=lambda msg: None)
        except DrillFailure as exc:
            self.result.failures.append(str(exc))
            self.say(f"DRILL FAILED at {exc.step}: {exc.reason}")
            self._event("drill.failed", step=exc.step, reason=exc.reason)
        except GiveUp:
            self.result.gave_up = True
            self.result.failures.append("the learner gave up")
            self._event("drill.gave_up")
        finally:
            self._cleanup()
            receiver.stop()
            self._stop_reaper.set()
            reaper.join(REAPER_EVERY_S + 1)
            self._finish()
        return self.result

    def _stack_ready(self) -> None:
        from sandbox import stack

        if not self.options.start_stack:
            return
        self.say(
            "== 1. stack: starting what is not running and waiting until every component is ready"
        )
        try:
            stack.up(self.settings, self.runtime, progress=lambda msg: self.say(f"  {msg}"))
        except stack.StackError as exc:
            raise DrillFailure("stack", str(exc)) from exc

    def _setup(self) -> None:
        for spec in self.m.setup:
            self.say(f"== setup: {spec.change} {spec.params}")
            self._change(
                spec.change,
                spec.params,
                ttl_s=self._drill_budget_s(),
                source=f"{self.source}:setup",
            )

    def _drill_budget_s(self) -> float:
        t, r = self.m.timing, self.m.recovery
        attempts = len(self.m.mitigations)
        return (
            t.baseline_timeout_s
            + t.page_timeout_s
            + attempts * (r.timeout_s + r.hold_s + 600)
            + 1800
        )

    def _start_traffic(self) -> None:
        self.say(f"== 2. traffic: profile {self.m.workload.profile}")
        try:
            self.traffic = start_traffic(
                self.settings,
                self.runtime,
                self.m.workload.profile,
                progress=lambda msg: self.say(f"  {msg}"),
            )
        except TrafficError as exc:
            raise DrillFailure("traffic", str(exc)) from exc
        self._event("drill.traffic", profile=self.m.workload.profile)

    def _baseline(self) -> None:
        t = self.m.timing
        checks: list[Check] = [*self.m.signature.anomalous, *self.m.signature.normal]
        if self.m.workload.traffic_check:
            checks.append(self.m.workload.traffic_check)
        self.say(
            f"== 2. baseline: at least {t.baseline_min_s:.0f} s, then {t.steady_s:.0f} s steady with no alert"
        )
        start = time.monotonic()
        steady_since: float | None = None
        last = start
        while True:
            breaches = current_breaches(self.prom, checks)
            firing = self._firing()
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
                self.say(f"  steady after {now - start:.0f} s")
                self._event("drill.baseline_steady", after_s=round(now - start, 1))
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
                self.say(
                    f"  baseline {now - start:.0f}/{t.baseline_timeout_s:.0f} s: {why or 'steady, holding'}"
                )
            time.sleep(POLL_S)

    def _change(self, name: str, params: dict[str, Any], ttl_s: float, source: str) -> FaultHandle:
        """Inject a change; a change of this drill already on the same target is replaced
        (e.g. a larger KV budget replaces the setup's small one)."""
        try:
            return faults.inject(self.ctx, name, params, ttl_s=ttl_s, source=source)
        except FaultConflict:
            change = faults.get_change(name)
            target = change.target(change.parse(params))
            mine = [
                h
                for h in faults.active_handles(self.ctx)
                if h.target == target and h.source.startswith(self.source)
            ]
            if not mine:
                raise
            for handle in mine:
                faults.revert(self.ctx, handle.id, reason=f"replaced by {name}")
            return faults.inject(self.ctx, name, params, ttl_s=ttl_s, source=source)
        except FaultError as exc:
            raise DrillFailure("change", str(exc)) from exc

    def _inject(self) -> None:
        self.say("== 3. inject")
        self.result.injected_at = time.time()
        self._event("drill.inject", faults=[f.id for f in self.m.faults])
        self._publish("injected")
        base = time.monotonic()
        for step in sorted(self.m.faults, key=lambda f: f.after_s):
            delay = base + step.after_s - time.monotonic()
            if delay > 0:
                self._wait(delay, f"next fault ({step.id})")
            self.fault_handles[step.id] = self._change(
                step.change, step.params, step.ttl_s, self.source
            )
            self.say(f"  injected {step.id} ({step.change})")

    def _wait_page(self, receiver: AlertReceiver) -> None:
        t = self.m.timing
        page_alert = self.m.alerts.page_alert
        self.say(f"== 4. waiting for the page ({page_alert}), at most {t.page_timeout_s:.0f} s")
        page = receiver.wait_for(
            [page_alert], t.page_timeout_s, progress=lambda msg: self.say(f"  {msg}")
        )
        if page is None:
            raise DrillFailure(
                "page",
                f"{page_alert} did not page within {t.page_timeout_s:.0f} s "
                f"(firing in Alertmanager: {', '.join(self._firing()) or 'none'})",
            )
        self.result.paged_at = time.time()
        self.result.page = page
        self._event("drill.page", alert=page.name, labels=page.labels)
        for check in [*self.m.signature.anomalous, *self.m.signature.normal]:
            try:
                self.result.signature_at_page[check.name] = self.prom.value(check.expr, Reduce.MAX)
            except PrometheusError:
                self.result.signature_at_page[check.name] = None
        self.say("")
        self.say(
            f"PAGE after {self.result.paged_at - (self.result.injected_at or 0):.0f} s: {page.name}"
        )
        for key in ("summary", "description"):
            if page.annotations.get(key):
                self.say(f"  {key}: {page.annotations[key]}")
        self.say(self.m.page.rstrip())
        self._publish("paged")
        for line in page_links(self.settings, *self._page_window()):
            self.say(line)

    def _signature(self, until: float) -> None:
        """Anomalous checks must breach (waiting up to the grace period); normal ones must not."""
        sig = self.m.signature
        deadline = (self.result.paged_at or time.time()) + sig.grace_s
        pending = list(sig.anomalous)
        while pending and time.time() < deadline:
            pending = [
                c for c in pending if c not in [b for b, _ in current_breaches(self.prom, pending)]
            ]
            if pending:
                self.say(
                    f"  signature: waiting for {', '.join(c.name for c in pending)} ({deadline - time.time():.0f} s left)"
                )
                time.sleep(POLL_S)
        start = self.result.injected_at or self.result.started_at
        end = max(until, time.time())
        step = max(1.0, self.settings.scrape_interval_s)
        results = [evaluate(self.prom, c, "anomalous", start, end, step) for c in sig.anomalous]
        results += [evaluate(self.prom, c, "normal", start, end, step) for c in sig.normal]
        self.result.signature = results
        for r in results:
            verdict = "ok" if r.ok else "MISBEHAVED"
            self.say(
                f"  signature {r.kind:<9} {r.check.describe():<50} worst {format_value(r.worst, r.check.unit):<10} {verdict}"
                + (f" ({r.error})" if r.error else "")
            )
        bad = [r for r in results if not r.ok]
        if bad:
            self.result.failures.append(
                "signature: "
                + "; ".join(
                    f"{r.check.name} ({r.kind}) {'never breached' if r.kind == 'anomalous' else 'breached'}"
                    for r in bad
                )
            )

    def _apply(self, mitigation: Mitigation) -> MitigationAttempt:
        now = time.time()
        self.result.first_mitigation_at = self.result.first_mitigation_at or now
        self.say(f"== 5. mitigation: {mitigation.title}")
        self._event("drill.mitigation", id=mitigation.id, correct=mitigation.correct)
        action = mitigation.action
        if isinstance(action, RevertFault):
            handle = self.fault_handles.get(action.revert_fault)
            if handle is not None:
                faults.revert(self.ctx, handle.id, reason=f"mitigation {mitigation.id}")
        else:
            self._change(
                action.change,
                action.params,
                self._drill_budget_s(),
                f"{self.source}:mitigation:{mitigation.id}",
            )
        if mitigation.settle_s:
            self._wait(mitigation.settle_s, "letting it settle")
        recovered = self._recovery()
        return MitigationAttempt(mitigation, recovered, now)

    def _recovery(self) -> bool:
        r = self.m.recovery
        alerts = self.m.alerts.expected if r.alerts_resolved else []
        self.say(
            f"== 6. recovery: SLIs within SLO{' and alerts resolved' if alerts else ''} for {r.hold_s:.0f} s "
            f"(at most {r.timeout_s:.0f} s)"
        )
        start = time.monotonic()
        held_since: float | None = None
        last = start
        while True:
            breaches = current_breaches(self.prom, r.slis)
            firing = [a for a in self._firing() if a in alerts or a.startswith("(")]
            now = time.monotonic()
            if breaches or firing:
                held_since = None
            elif held_since is None:
                held_since = now
            if held_since is not None and now - held_since >= r.hold_s:
                self.result.recovered_at = time.time()
                self._event("drill.recovered")
                self.say(f"  recovered ({now - start:.0f} s)")
                return True
            if now - start >= r.timeout_s:
                self.say("  not recovered in time")
                return False
            if now - last >= REPORT_EVERY_S:
                last = now
                why = "; ".join(
                    f"{c.describe()} (now {format_value(v, c.unit)})" for c, v in breaches
                )
                if firing:
                    why = "; ".join(filter(None, [why, f"still firing: {', '.join(firing)}"]))
                self.say(f"  recovery {now - start:.0f}/{r.timeout_s:.0f} s: {why or 'holding'}")
            time.sleep(POLL_S)

    def _auto(self) -> None:
        self._signature(until=time.time())
        self.result.diagnosed_at = None
        attempt = self._apply(self.m.reference_mitigation)
        self.result.attempts.append(attempt)
        if not attempt.recovered:
            raise DrillFailure(
                "recovery",
                f"not recovered within {self.m.recovery.timeout_s:.0f} s of "
                f"the reference mitigation ({attempt.mitigation.id})",
            )

    def _interactive(self, receiver: AlertReceiver) -> None:
        hints = iter(self.m.hints)

        def hint() -> str | None:
            text = next(hints, None)
            if text is not None:
                self.result.hints_used += 1
                self._event("drill.hint", n=self.result.hints_used)
            return text

        def status() -> str:
            lines = []
            for check in [*self.m.signature.anomalous, *self.m.signature.normal]:
                try:
                    value = self.prom.value(check.expr, Reduce.MAX)
                except PrometheusError as exc:
                    value = None
                    lines.append(f"  {check.name}: {exc}")
                    continue
                lines.append(f"  {check.name}: {format_value(value, check.unit)}")
            lines.append(f"  firing: {', '.join(receiver.firing()) or 'none'}")
            return "\n".join(lines)

        prompter = self.prompter_factory(on_hint=hint, on_status=status)
        prompter.wait_ready(
            "\nInvestigate (dashboards, traces). Enter = answer the diagnosis, h = hint, s = signals: "
        )
        self.result.diagnosis = ask_diagnosis(prompter, self.m.diagnosis)
        self.result.diagnosed_at = time.time()
        self._event("drill.diagnosed", fraction=round(self.result.diagnosis.fraction, 2))
        self._signature(until=time.time())
        remaining = list(self.m.mitigations)
        while remaining:
            mitigation = ask_mitigation(prompter, remaining)
            remaining.remove(mitigation)
            attempt = self._apply(mitigation)
            self.result.attempts.append(attempt)
            prompter.say(
                ("  it worked. " if attempt.recovered else "  it did not bring recovery. ")
                + mitigation.why.strip()
            )
            if attempt.recovered:
                return
            if not isinstance(mitigation.action, RevertFault):
                self._undo_mitigation(mitigation)
        raise DrillFailure("recovery", "no mitigation brought recovery")

    def _undo_mitigation(self, mitigation: Mitigation) -> None:
        source = f"{self.source}:mitigation:{mitigation.id}"
        for handle in faults.active_handles(self.ctx):
            if handle.source == source:
                faults.revert(self.ctx, handle.id, reason="mitigation did not help")

    # -- the end -------------------------------------------------------------------------
    def _cleanup(self) -> None:
        self.say("== 7. cleanup: reverting the drill's changes and stopping its traffic")
        for handle in reversed(faults.active_handles(self.ctx)):
            if handle.source.startswith(self.source):
                try:
                    faults.revert(self.ctx, handle.id, reason="drill over")
                except FaultError as exc:
                    self.result.failures.append(f"cleanup: {exc}")
        try:
            stop_traffic(self.settings, self.runtime, self.traffic)
        except Exception as exc:
            self.result.failures.append(f"cleanup: stopping traffic: {exc}")

    def _finish(self) -> None:
        from sandbox.drill.report import write_report

        r = self.result
        r.ended_at = time.time()
        recovered = r.recovered_at is not None
        ttd = None if r.diagnosed_at is None or r.paged_at is None else r.diagnosed_at - r.paged_at
        if r.mode == "interactive":
            r.score = score_drill(
                r.diagnosis,
                r.attempts,
                recovered,
                r.hints_used,
                ttd,
                self.m.timing.diagnosis_target_s,
            )
        r.events = read_events(self.settings.run_dir, since=r.started_at - 1)
        r.hints_used += console_hints(self.settings.run_dir, r.started_at)
        self._event("drill.end", ok=r.ok, failures=r.failures)
        try:
            r.report_paths = write_report(
                r, self.settings, self.prom, self.options.report_dir, say=self.say
            )
        except Exception as exc:
            self.say(f"  report failed: {type(exc).__name__}: {exc}")
        from sandbox.recording.drill_hook import record_drill

        if (recording := record_drill(self, say=self.say)) is not None:
            r.report_paths.append(recording)
        self._publish("ended")
        self.prom.close()
        self.alertmanager.close()

    # -- the console's view of the drill (sandbox/drill/live.py) -------------------------
    def _page_window(self) -> tuple[str | None, float, float | None]:
        """The page's dashboard (its alert's ``dashboard`` annotation), from 2 min before the fault."""
        r = self.result
        path = r.page.annotations.get("dashboard") if r.page else None
        return path, (r.injected_at or r.started_at) - 120, r.ended_at

    def _publish(self, step: str) -> None:
        r, page = self.result, self.result.page
        try:
            self._write_live(step, r, page)
        except OSError as exc:  # the console's view must never stop a drill
            self.say(f"  (console state not written: {exc})")

    def _write_live(self, step: str, r: DrillResult, page: AlertNotification | None) -> None:
        write_live(
            self.settings.run_dir,
            {
                "incident": self.m.id,
                "title": self.m.title,
                "mode": r.mode,
                "step": step,
                "started_at": r.started_at,
                "injected_at": r.injected_at,
                "paged_at": r.paged_at,
                "ended_at": r.ended_at,
                "ok": r.ok if step == "ended" else None,
                "page": None
                if page is None
                else {
                    "alert": page.name,
                    "labels": page.labels,
                    "annotations": page.annotations,
                    "text": self.m.page,
                    "link": dashboard_link(self.settings, *self._page_window()),
                },
            },
        )
