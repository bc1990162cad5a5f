"""The drill loop of DESIGN.md ("The drill"), bounded in time at every step.

Each job lives in its own module, sharing one ``DrillContext``:

- ``steady``: stack ready, setup changes, traffic, baseline held steady with no alert;
- ``page``: inject the faults (timeline), wait for the page on the webhook;
- ``respond``: auto (the reference mitigation) or interactive (hints, diagnosis and mitigation
  in the learner's order, a wrong mitigation undone and chosen again);
- ``recovery``: recovery verified (alerts resolved, SLIs held), and the window judged:
  signature, alerts, the matrix against every other incident;
- here: the order of those steps, then cleanup (revert every change of the drill and stop its
  traffic, also when a step failed or the learner quit) and the report.

``MODE=auto`` is the end-to-end test of an incident: ``DrillResult.ok`` is False (and the CLI
exits non-zero) when the page does not come in time, a signature check misbehaves, an expected
alert does not fire or an unexpected page does, the run matches another incident, or recovery
is not reached.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable

import faults
from faults import FaultError, StackContext
from sandbox import timeline
from sandbox.drill.context import DrillContext
from sandbox.drill.grading import score_drill
from sandbox.drill.live import console_hints
from sandbox.drill.manifest import Incident
from sandbox.drill.page import inject, wait_page
from sandbox.drill.prompts import GiveUp, Prompter
from sandbox.drill.report import write_report
from sandbox.drill.respond import respond_auto, respond_interactive
from sandbox.drill.result import DrillFailure, DrillOptions, DrillResult
from sandbox.drill.steady import baseline, setup, stack_ready, start_drill_traffic
from sandbox.drill.traffic import stop_traffic
from sandbox.drill.webhook import AlertReceiver
from sandbox.promapi import AlertmanagerClient, PrometheusClient
from sandbox.runtime import runtime_for, webhook_bind_host
from sandbox.runtime.base import Runtime
from sandbox.settings import Settings

__all__ = ["Drill", "DrillFailure", "DrillOptions", "DrillResult"]

REAPER_EVERY_S = 5.0


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
        options = options or DrillOptions()
        runtime = runtime or runtime_for(settings)
        seed = options.seed if options.seed is not None else random.SystemRandom().randrange(10**6)
        result = DrillResult(incident, options.mode, time.time(), seed=seed)
        self.d = DrillContext(
            incident=incident,
            settings=settings,
            options=options,
            runtime=runtime,
            say=say,
            # The changes' progress names them: secret until the learner has answered.
            ctx=StackContext.from_settings(settings, runtime, progress=lambda m: self._secret(m)),
            prom=PrometheusClient(settings.prometheus_url),
            alertmanager=AlertmanagerClient(settings.alertmanager_url),
            result=result,
            rng=random.Random(seed),
        )
        self.prompter_factory = prompter or Prompter
        self._stop_reaper = threading.Event()

    def _secret(self, msg: str) -> None:
        self.d.progress(secret=True)(msg)

    @property
    def result(self) -> DrillResult:
        return self.d.result

    @property
    def settings(self) -> Settings:
        return self.d.settings

    @property
    def options(self) -> DrillOptions:
        return self.d.options

    def _reaper(self) -> None:
        while not self._stop_reaper.wait(REAPER_EVERY_S):
            try:
                faults.reap_expired(self.d.ctx)
            except Exception as exc:
                self.d.say(f"  fault reaper: {exc}")

    def run(self) -> DrillResult:
        d = self.d
        reaper = threading.Thread(target=self._reaper, name="fault-reaper", daemon=True)
        reaper.start()
        d.publish("started")
        receiver = AlertReceiver(
            webhook_bind_host(d.settings, d.runtime), d.settings.alert_webhook_port
        )
        self.receiver = receiver  # the recording keeps the pages it received
        try:
            stack_ready(d)
            receiver.start()
            setup(d)
            start_drill_traffic(d)
            baseline(d)
            inject(d)
            wait_page(d, receiver)
            if d.options.mode == "interactive":
                respond_interactive(d, self.prompter_factory)
            else:
                respond_auto(d)
            # Let Alertmanager deliver its "resolved" notices while we still listen: its
            # notification log then holds nothing firing, so the next drill's page is not
            # deduplicated away as already sent.
            receiver.wait_resolved(d.m.alerts.expected, timeout_s=45, progress=lambda msg: None)
        except DrillFailure as exc:
            d.result.failures.append(str(exc))
            d.say(f"DRILL FAILED at {exc.step}: {exc.reason}")
            d.event("drill.failed", step=exc.step, reason=exc.reason)
        except GiveUp:
            d.result.gave_up = True
            d.result.failures.append("the learner gave up")
            d.event("drill.gave_up")
        finally:
            d.revealed = True
            self._cleanup()
            receiver.stop()
            self._stop_reaper.set()
            reaper.join(REAPER_EVERY_S + 1)
            self._finish()
        return d.result

    def _cleanup(self) -> None:
        d = self.d
        d.say("== 7. cleanup: stopping the drill's traffic and reverting its changes")
        # Traffic first: a revert may restart the engine, and requests sent meanwhile would be
        # 5xx answers that the error-budget alerts (5 and 30 minute windows) carry into the
        # next drill's baseline. A traffic change reverted after its load generator stopped
        # counts as reverted (its target is gone).
        try:
            stop_traffic(d.settings, d.runtime, d.traffic)
        except Exception as exc:
            d.result.failures.append(f"cleanup: stopping traffic: {exc}")
        try:
            with faults.one_engine_restart(d.ctx, "the drill is over"):
                for handle in reversed(faults.active_handles(d.ctx)):
                    if handle.source.startswith(d.source):
                        try:
                            faults.revert(d.ctx, handle.id, reason="drill over")
                        except FaultError as exc:
                            d.result.failures.append(f"cleanup: {exc}")
        except FaultError as exc:
            d.result.failures.append(f"cleanup: restarting the engine: {exc}")

    def _finish(self) -> None:
        d, r = self.d, self.d.result
        r.ended_at = time.time()
        # Hints asked for in the console cost like the terminal's.
        r.hints_used += console_hints(d.settings.run_dir, r.started_at)
        if r.mode == "interactive":
            r.score = score_drill(
                r.diagnosis,
                r.attempts,
                r.hints_used,
                r.time_to_diagnose,
                r.time_to_mitigate,
                d.m.timing.diagnosis_target_s,
                d.m.timing.mitigation_target_s,
            )
        r.events = timeline.read(d.settings.run_dir, since=r.started_at - 1)
        d.event("drill.end", ok=r.ok, failures=r.failures)
        try:
            r.report_paths = write_report(r, d.settings, d.prom, d.options.report_dir, say=d.say)
        except Exception as exc:
            d.say(f"  report failed: {type(exc).__name__}: {exc}")
        from sandbox.recording.drill_hook import record_drill  # the recording layer uses the drill

        if (recording := record_drill(self, say=d.say)) is not None:
            r.report_paths.append(recording)
        d.publish("ended")
        d.prom.close()
        d.alertmanager.close()
