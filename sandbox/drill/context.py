"""The state every step of a drill shares: the incident, the clients, the changes it made, its
result, and how it speaks to the learner without giving the scenario away."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import faults
from faults import FaultConflict, FaultError, FaultHandle, StackContext
from sandbox import timeline
from sandbox.components.base import Component
from sandbox.console.links import dashboard_link
from sandbox.drill.live import write_live
from sandbox.drill.manifest import Incident, IncidentManifest
from sandbox.drill.result import DrillFailure, DrillOptions, DrillResult
from sandbox.promapi import AlertmanagerClient, PrometheusClient, PrometheusError
from sandbox.runtime.base import Runtime
from sandbox.settings import Settings

__all__ = ["COVER", "LEARNER_TIME_S", "POLL_S", "REPORT_EVERY_S", "DrillContext"]

POLL_S = 2.0
REPORT_EVERY_S = 10.0
COVER = "setting up the scenario"
# A learner takes far longer than the reference mitigation does: in interactive mode every
# change of the drill lives this much longer, so the incident does not revert itself while they
# investigate. (One learner came back to their prompt after an hour to "no page firing now".)
LEARNER_TIME_S = 2 * 3600.0


@dataclass
class DrillContext:
    incident: Incident
    settings: Settings
    options: DrillOptions
    runtime: Runtime
    say: Callable[[str], None]
    ctx: StackContext
    prom: PrometheusClient
    alertmanager: AlertmanagerClient
    result: DrillResult
    rng: random.Random
    fault_handles: dict[str, FaultHandle] = field(default_factory=dict)
    traffic: Component | None = None
    # The profile's rates times this (engine_speed): traffic expectations scale with it.
    rate_scale: float = 1.0
    # Interactive drills keep the scenario hidden until the learner has answered.
    revealed: bool = False
    # While the learner's own mitigation is applied or undone, its progress is theirs to see.
    acting: bool = False
    # The drill's own changes that a later change replaced, by that change's source: undoing a
    # wrong mitigation puts them back, or the scenario would stay half fixed by the attempt.
    replaced: dict[str, list[FaultHandle]] = field(default_factory=dict)

    @property
    def m(self) -> IncidentManifest:
        return self.incident.manifest

    @property
    def source(self) -> str:
        return f"drill:{self.m.id}"

    # -- speaking without spoilers ------------------------------------------------------
    def tell(self, secret: str, cover: str = COVER) -> None:
        """Say ``secret`` once the scenario may be known (auto mode, or answered); until
        then say ``cover`` instead (nothing when it is empty)."""
        if self.revealed or self.options.mode == "auto":
            self.say(secret)
        elif cover:
            self.say(cover)

    def progress(self, secret: bool = False) -> Callable[[str], None]:
        """A progress printer for long steps; a secret one stays quiet until revealed."""

        def show(msg: str) -> None:
            if not secret or self.revealed or self.acting or self.options.mode == "auto":
                self.say(f"  {msg}")

        return show

    # -- the console's view of the drill (sandbox/drill/live.py) ---------------------------
    def page_window(self) -> tuple[str | None, float, float | None]:
        """The page's dashboard (its alert's ``dashboard`` annotation), from 2 min before the fault."""
        r = self.result
        path = r.page.annotations.get("dashboard") if r.page else None
        return path, (r.injected_at or r.started_at) - 120, r.ended_at

    def publish(self, step: str) -> None:
        """Write the drill's state for the console; never stops the drill. Until the learner has
        answered, the title (which tells the story) stays out of it."""
        r, page = self.result, self.result.page
        shown = self.revealed or self.options.mode == "auto" or step == "ended"
        try:
            write_live(
                self.settings.run_dir,
                {
                    "incident": self.m.id,
                    "title": self.m.title if shown else COVER,
                    "scenario_shown": shown,  # the console hides the fault's marks until then
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
                        "link": dashboard_link(self.settings, *self.page_window()),
                    },
                },
            )
        except OSError as exc:
            self.say(f"  (console state not written: {exc})")

    # -- helpers --------------------------------------------------------------------------
    def event(self, kind: str, **detail: Any) -> None:
        timeline.record(self.settings.run_dir, kind, {"incident": self.m.id, **detail})

    def wait(self, seconds: float, what: str) -> None:
        end = time.monotonic() + seconds
        last = time.monotonic()
        while (left := end - time.monotonic()) > 0:
            if time.monotonic() - last >= REPORT_EVERY_S:
                last = time.monotonic()
                self.say(f"  {what}: {left:.0f} s left")
            time.sleep(min(1.0, left))

    def firing(self) -> list[str]:
        try:
            return self.alertmanager.active_alerts()
        except PrometheusError as exc:
            return [f"(Alertmanager unreachable: {exc})"]

    def budget_s(self) -> float:
        """How long the drill's setup and mitigations may live before they revert themselves."""
        t, r = self.m.timing, self.m.recovery
        attempts = len(self.m.mitigations)
        return self.ttl_s(
            t.baseline_timeout_s
            + t.page_timeout_s
            + attempts * (r.timeout_s + r.hold_s + 600)
            + 1800
        )

    def ttl_s(self, planned: float) -> float:
        """A change's time to live: as planned in auto mode, plus the learner's time in
        interactive mode. It is the safety net for a drill that dies without cleaning up."""
        return planned + (LEARNER_TIME_S if self.options.mode == "interactive" else 0.0)

    def scenario_left_s(self) -> float | None:
        """Seconds until the first of the incident's faults reverts itself (None before any)."""
        if not self.fault_handles:
            return None
        return min(h.expires_at for h in self.fault_handles.values()) - time.time()

    def change(self, name: str, params: dict[str, Any], ttl_s: float, source: str) -> FaultHandle:
        """Inject a change; a change of this drill already on the same target is replaced
        (e.g. a larger KV budget replaces the setup's small one: one engine restart, not two)."""
        try:
            try:
                return faults.inject(self.ctx, name, params, ttl_s=ttl_s, source=source)
            except FaultConflict as conflict:
                return self._replace(name, params, ttl_s, source, conflict)
        except FaultError as exc:
            raise DrillFailure("change", str(exc)) from exc

    def _replace(
        self,
        name: str,
        params: dict[str, Any],
        ttl_s: float,
        source: str,
        conflict: FaultConflict,
    ) -> FaultHandle:
        change = faults.get_change(name)
        target = change.target(change.parse(params))
        mine = [
            h
            for h in faults.active_handles(self.ctx)
            if h.target == target and h.source.startswith(self.source)
        ]
        if not mine:
            raise conflict  # the target is another owner's change
        if change.replaces_in_place and all(h.change == name for h in mine):
            ids = [h.id for h in mine]
            return faults.inject(self.ctx, name, params, ttl_s=ttl_s, source=source, replaces=ids)
        for handle in mine:
            faults.revert(self.ctx, handle.id, reason=f"replaced by {name}")
        self.replaced[source] = mine
        return faults.inject(self.ctx, name, params, ttl_s=ttl_s, source=source)

    def restore_replaced(self, source: str) -> None:
        """Put back the drill's changes that the change from ``source`` replaced (after that
        change was reverted): a wrong mitigation undone leaves the scenario as it found it."""
        for handle in self.replaced.pop(source, []):
            restored = self.change(handle.change, handle.params, self.budget_s(), handle.source)
            for step, held in self.fault_handles.items():
                if held.id == handle.id:
                    self.fault_handles[step] = restored
