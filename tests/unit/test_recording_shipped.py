"""The shipped recordings: small, readable, and their signature verdicts come back offline.

Served offline, each recording's signature checks, evaluated as the drill evaluated them (from
the injection to the mitigation), give the verdicts and worst values the live drill recorded."""

from __future__ import annotations

import shutil

import pytest
import yaml

from sandbox.drill.manifest import incidents_dir, list_incidents
from sandbox.drill.signature import evaluate
from sandbox.recording import read_recording, serve_recording
from sandbox.recording.drill_hook import RECORDING_NAME
from sandbox.recording.replay_drill import manifest_of

SHIPPED = [i for i in list_incidents() if (incidents_dir() / i / RECORDING_NAME).exists()]
MAX_BYTES = 5 * 1024 * 1024


@pytest.mark.parametrize("incident_id", SHIPPED)
def test_shipped_recording_is_small_and_complete(incident_id: str) -> None:
    path = incidents_dir() / incident_id / RECORDING_NAME
    assert path.stat().st_size <= MAX_BYTES
    recording = read_recording(path)
    assert recording.incident_id == incident_id and recording.meta.source == "drill"
    assert recording.meta.injected_at is not None and recording.meta.paged_at is not None
    assert recording.report is not None and recording.manifest_yaml is not None
    assert recording.spans and recording.events and recording.notifications


@pytest.mark.skipif(shutil.which("prometheus") is None, reason="prometheus is not installed")
@pytest.mark.parametrize("incident_id", SHIPPED)
def test_shipped_signature_verdicts_replay_offline(incident_id: str) -> None:
    path = incidents_dir() / incident_id / RECORDING_NAME
    recording = read_recording(path)
    manifest = manifest_of(recording, path)
    assert manifest is not None and recording.report is not None
    recorded = {(s["name"], s["kind"]): s for s in recording.report["signature"]}
    # The checks as the recorded run had them (its manifest copy, read as plain YAML: an older
    # copy may not validate against today's changes).
    old = yaml.safe_load(recording.manifest_yaml or "{}").get("signature", {})
    ran = {(c["name"], k): c["expr"] for k in ("anomalous", "normal") for c in old.get(k, [])}
    assert recorded, "the live drill recorded its signature"
    with serve_recording(path, recording=recording) as served, served.client() as prom:
        assert served.injected_at is not None
        # Where the drill's window (and its query grid) ended; older recordings lack it.
        report = recording.report
        until = report.get("judged_until") or report["first_mitigation_at"] or served.end
        for kind, checks in (
            ("anomalous", manifest.signature.anomalous),
            ("normal", manifest.signature.normal),
        ):
            for check in checks:
                if ran.get((check.name, kind)) != check.expr:
                    # A check the catalog added or changed since the recording: re-record to
                    # cover it (`make recordings`).
                    continue
                live = recorded[(check.name, kind)]
                got = evaluate(prom, check, kind, served.injected_at, until, served.step_s)
                assert got.ok == live["ok"], (check.name, got, live)
                if live["worst"] is None:
                    assert got.worst is None
                else:
                    assert got.worst == pytest.approx(live["worst"], rel=0.01), check.name
