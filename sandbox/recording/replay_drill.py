"""The drill on a recording (``sandbox replay PATH``, ``make replay INCIDENT=<id>``).

The learner's experience is the live drill's: a baseline, the page from the real Alertmanager
(fired by the real rules on the replayed data), dashboards, traces, hints, the graded
diagnosis. The one difference: a mitigation is not applied but graded against the manifest
(correct or not, and why) and the recorded outcome (the reference mitigation the recording
applied, and when it recovered); the data then unfolds as it did after that mitigation.

``MODE=auto`` checks what a live ``MODE=auto`` drill checks, on the replay: the page comes in
time, every expected alert fires, the signature's anomalous checks breach and its normal ones
do not, and the expected alerts resolve after the recorded mitigation. ``ok`` is False, and
the CLI exits non-zero, when any of them misbehaves.
"""

from __future__ import annotations

import hashlib
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from pydantic import ValidationError

from sandbox.drill.manifest import IncidentManifest, ManifestError, incidents_dir, load_incident
from sandbox.drill.prompts import GiveUp, Prompter
from sandbox.drill.quiz import ask_diagnosis, ask_mitigation
from sandbox.drill.result import Mode
from sandbox.drill.signature import CheckResult, evaluate, format_value
from sandbox.promapi import PrometheusClient
from sandbox.recording.archive import read_recording
from sandbox.recording.format import Recording, RecordingError
from sandbox.recording.live import BASELINE_S, LiveReplay
from sandbox.settings import Settings

__all__ = ["ReplayResult", "manifest_changed", "manifest_of", "run_live_replay"]


@dataclass
class ReplayResult:
    ready_s: float = 0.0
    paged_after_s: float | None = None
    fired: set[str] = field(default_factory=set)
    signature: list[CheckResult] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failures


def manifest_of(recording: Recording, path: Path) -> IncidentManifest | None:
    """The catalog's manifest of the recording's incident, else the copy the recording carries
    (an incident that is not in this catalog), else None.

    The catalog's comes first: the replay grades against the incident as it is now, and a copy
    written under an older manifest schema may no longer validate. ``manifest_changed`` tells
    whether it differs from the manifest the recording ran."""
    if recording.incident_id:
        try:
            return load_incident(recording.incident_id).manifest
        except ManifestError:
            pass
    if recording.manifest_yaml:
        try:
            return IncidentManifest.model_validate(yaml.safe_load(recording.manifest_yaml))
        except (ValidationError, yaml.YAMLError) as exc:
            raise RecordingError(f"{path}: incident.yaml does not validate: {exc}") from None
    return None


def manifest_changed(recording: Recording) -> bool:
    """True when the catalog's incident.yaml is not the one the recording ran."""
    ref = recording.meta.incident
    if ref is None or ref.manifest_sha256 is None:
        return False
    current = incidents_dir() / ref.id / "incident.yaml"
    if not current.exists():
        return False
    return hashlib.sha256(current.read_bytes()).hexdigest() != ref.manifest_sha256


def _wait(seconds: float) -> None:
    end = time.monotonic() + seconds
    while (left := end - time.monotonic()) > 0:
        time.sleep(min(1.0, left))


def _auto_and_grade(
    replay: LiveReplay,
    m: IncidentManifest,
    recording: Recording,
    result: ReplayResult,
    mode: Mode,
    say: Callable[[str], None],
    prompter: Prompter | None,
) -> None:
    meta = recording.meta
    report = recording.report or {}
    assert replay.receiver is not None and meta.injected_at is not None
    inject_wall = replay.wall(meta.injected_at)
    say(f"== baseline: {inject_wall - time.time():.0f} s of replayed baseline before the fault")
    page_alert = m.alerts.page_alert
    say(f"== waiting for the page ({page_alert})")
    budget = min(m.timing.page_timeout_s, meta.window.end - meta.injected_at)
    page = replay.receiver.wait_for(
        [page_alert], max(0.0, inject_wall + budget - time.time()), progress=lambda msg: None
    )
    if page is None:
        result.failures.append(f"page: {page_alert} did not page within {budget:.0f} s")
        return
    paged = time.time()
    result.paged_after_s = paged - inject_wall
    recorded_page = meta.paged_at - meta.injected_at if meta.paged_at else None
    say(
        f"PAGE after {result.paged_after_s:.0f} s: {page.name}"
        + (f" (live: {recorded_page:.0f} s)" if recorded_page is not None else "")
    )
    for key in ("summary", "description"):
        if page.annotations.get(key):
            say(f"  {key}: {page.annotations[key]}")
    say(m.page.rstrip())
    say(
        f"  Prometheus: {replay.settings.prometheus_url}; traces: {replay.environment()} sandbox traces"
    )

    # The recorded reference mitigation: until then the data shows the incident.
    mitigated = report.get("first_mitigation_at")
    mitigated_wall = replay.wall(mitigated) if mitigated else paged + m.signature.grace_s
    if mode == "interactive" and prompter is not None:
        prompter.wait_ready(
            "\nInvestigate (dashboards, traces). Enter = answer the diagnosis, h = hint: "
        )
        # Shuffled as in a live drill, so the order of the choices teaches nothing.
        rng = random.Random()
        grade = ask_diagnosis(prompter, m.diagnosis, rng)
        say(f"  diagnosis: {grade.fraction:.0%}")
        remaining = list(m.mitigations)
        rng.shuffle(remaining)
        while remaining:
            choice = ask_mitigation(prompter, remaining)
            remaining.remove(choice)
            verdict = "correct: it would bring recovery" if choice.correct else "it would not"
            say(f"  {verdict}. {choice.why.strip()}")
            if choice.correct:
                break
    if time.time() < mitigated_wall:
        say(f"== the recording's mitigation comes in {mitigated_wall - time.time():.0f} s")
        _wait(mitigated_wall - time.time())

    step = max(1.0, meta.scrape_interval_s)
    with PrometheusClient(replay.settings.prometheus_url) as prom:
        result.signature = [
            evaluate(prom, c, "anomalous", inject_wall, mitigated_wall, step)
            for c in m.signature.anomalous
        ] + [
            evaluate(prom, c, "normal", inject_wall, mitigated_wall, step)
            for c in m.signature.normal
        ]
    for r in result.signature:
        say(
            f"  signature {r.kind:<9} {r.check.describe():<50} worst "
            f"{format_value(r.worst, r.check.unit):<10} {'ok' if r.ok else 'MISBEHAVED'}"
        )
    bad = [r for r in result.signature if not r.ok]
    if bad:
        result.failures.append("signature: " + "; ".join(f"{r.check.name} ({r.kind})" for r in bad))
    attempts = report.get("attempts") or []
    if attempts:
        first = attempts[0]
        say(
            f"== recorded outcome: {first['mitigation']} applied "
            f"{'and recovered' if first.get('recovered') else 'without recovery'}"
        )
    end_wall = replay.wall(meta.window.end)
    for name in m.alerts.expected:  # an expected alert may come later than the page
        if replay.receiver.first_firing_at(name) is None and time.time() < end_wall:
            say(f"  waiting for {name} (until the recording ends)")
            replay.receiver.wait_for([name], end_wall - time.time(), progress=lambda msg: None)
    if mode == "interactive" and report.get("recovered_at"):
        say("== recovery, as recorded")
        resolved = replay.receiver.wait_resolved(
            m.alerts.expected, timeout_s=max(5.0, end_wall + 45 - time.time()), progress=say
        )
        say("  alerts resolved" if resolved else "  still firing when the recording ends")


def run_live_replay(
    path: Path,
    mode: Mode = "interactive",
    *,
    settings: Settings | None = None,
    say: Callable[[str], None] = print,
    prompter: Prompter | None = None,
    baseline_s: float | None = None,
) -> ReplayResult:
    """Replay the drill recorded at ``path``: ``baseline_s`` (default ``BASELINE_S``) of the
    recorded baseline unfold in real time before the fault; what came earlier is loaded at once,
    for the rate windows."""
    began = time.monotonic()
    recording = read_recording(path)
    manifest = manifest_of(recording, path)
    result = ReplayResult()
    say(
        f"replaying {path} ({recording.meta.counts.series} series, "
        f"{recording.end - recording.start:.0f} s recorded)"
    )
    if mode == "interactive" and prompter is None and manifest is not None:
        hints = iter(manifest.hints)
        prompter = Prompter(on_hint=lambda: next(hints, None))  # fails now without a terminal
    with LiveReplay(
        recording, settings, baseline_s=BASELINE_S if baseline_s is None else baseline_s, say=say
    ) as replay:
        result.ready_s = time.monotonic() - began
        say(
            f"ready in {result.ready_s:.1f} s: Prometheus {replay.settings.prometheus_url}, "
            f"Alertmanager {replay.settings.alertmanager_url}"
        )
        say(f"  for the console and `sandbox traces`: {replay.environment()}")
        try:
            if manifest is None or recording.meta.injected_at is None:
                say(
                    "no incident manifest or injection time: replaying the window, alerts as they come"
                )
                _wait(recording.end - replay.recorded(time.time()))
            else:
                say(f"incident {manifest.id}: {manifest.title}")
                if manifest_changed(recording):
                    say(
                        f"  note: incidents/{manifest.id}/incident.yaml changed since this "
                        "recording was made; it is graded against the current one "
                        "(`make recordings` refreshes it)"
                    )
                _auto_and_grade(replay, manifest, recording, result, mode, say, prompter)
        except GiveUp:
            result.failures.append("the learner gave up")
        assert replay.receiver is not None
        result.fired = {
            a.name for _, n in replay.receiver.received for a in n.alerts if a.status == "firing"
        }
    if manifest is not None and recording.meta.injected_at is not None:
        missing = [a for a in manifest.alerts.expected if a not in result.fired]
        if missing:
            result.failures.append(f"alerts: expected but never fired: {', '.join(missing)}")
    say(
        f"replay {'PASSED' if result.ok else 'FAILED'}: fired {', '.join(sorted(result.fired)) or 'nothing'}"
    )
    for failure in result.failures:
        say(f"  {failure}")
    return result
