"""The incident schema: every shipped incident validates; bad manifests fail naming file and field."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from sandbox.drill.manifest import (
    NOTES_SECTIONS,
    ManifestError,
    list_incidents,
    load_incident,
    pick_incident,
)

SHIPPED = list_incidents()


def test_the_catalog_has_the_first_two_incidents() -> None:
    assert {"kv-exhaustion", "slow-retrieval"} <= set(SHIPPED)


@pytest.mark.parametrize("incident_id", SHIPPED)
def test_every_shipped_incident_validates(incident_id: str) -> None:
    incident = load_incident(incident_id)
    manifest = incident.manifest
    assert manifest.id == incident_id
    assert any(m.correct for m in manifest.mitigations) and any(
        not m.correct for m in manifest.mitigations
    )
    assert manifest.reference_mitigation.correct
    assert manifest.alerts.page_alert in manifest.alerts.expected
    for section in NOTES_SECTIONS:
        assert f"## {section}" in incident.notes


def _copy(tmp_path: Path, incident_id: str = "kv-exhaustion") -> tuple[Path, dict[str, Any]]:
    folder = tmp_path / incident_id
    shutil.copytree(load_incident(incident_id).folder, folder)
    return folder, yaml.safe_load((folder / "incident.yaml").read_text())


def _write(folder: Path, data: dict[str, Any]) -> None:
    (folder / "incident.yaml").write_text(yaml.safe_dump(data, sort_keys=False))


def test_a_copy_loads_from_another_root(tmp_path: Path) -> None:
    _copy(tmp_path)
    assert load_incident("kv-exhaustion", root=tmp_path).id == "kv-exhaustion"


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (lambda d: d.pop("page"), r"page: Field required"),
        (lambda d: d.update(difficulty="easy"), r"difficulty: Input should be 'beginner'"),
        (
            lambda d: d["signature"]["anomalous"][0].update(above=1, below=1),
            r"signature\.anomalous\.0: .*exactly one of above or below",
        ),
        (
            lambda d: d["signature"].update(normal=[]),
            r"signature\.normal: List should have at least 1 item",
        ),
        (
            lambda d: d["faults"][0].update(change="no-such-fault"),
            r"faults\.0: .*unknown change 'no-such-fault'",
        ),
        (
            lambda d: d["faults"][0]["params"].update(rate_per_s=-1),
            r"faults\.0: .*param 'rate_per_s'",
        ),
        (lambda d: d["setup"][0]["params"].update(kv_tokens=0), r"setup\.0: .*param 'kv_tokens'"),
        (
            lambda d: d["setup"][0].update(scale_with_load=["rate"]),
            r"setup\.0: .*scale_with_load: 'rate' is not a numeric param",
        ),
        (
            lambda d: d["setup"][0].update(scale_with_load=["kv_tokens"]),
            r"scale_with_load needs workload\.engine_reference",
        ),
        (
            lambda d: [m.update(correct=True) for m in d["mitigations"]],
            r"at least one must be tempting but wrong",
        ),
        (
            lambda d: [m.update(correct=False) for m in d["mitigations"]],
            r"at least one must be correct",
        ),
        (
            lambda d: d["mitigations"][2].update(reference=True),
            r"exactly one must be the reference",
        ),
        (
            lambda d: d["mitigations"][0].update(action={"revert_fault": "ghost"}),
            r"revert_fault 'ghost' is not a fault id",
        ),
        (
            lambda d: d["diagnosis"][0]["choices"][1].update(points=0.5),
            r"diagnosis\.0: .*at least one choice must be fully right",
        ),
        (lambda d: d["diagnosis"][0]["choices"][1].update(id="a"), r"choice ids must be unique"),
        (
            lambda d: d["alerts"].update(page="NotExpected"),
            r"alerts: .*page 'NotExpected' is not in expected",
        ),
        (lambda d: d.update(colour="red"), r"colour: Extra inputs are not permitted"),
        (
            lambda d: d["timing"].update(page_timeout_s=0),
            r"timing\.page_timeout_s: Input should be greater than 0",
        ),
        (lambda d: d.update(id="other-id"), r"id: 'other-id' must equal its folder name"),
    ],
)
def test_bad_manifests_name_file_and_field(tmp_path: Path, mutate: Any, expected: str) -> None:
    folder, data = _copy(tmp_path)
    mutate(data)
    _write(folder, data)
    with pytest.raises(ManifestError, match=expected) as info:
        load_incident("kv-exhaustion", root=tmp_path)
    assert str(folder / "incident.yaml") in str(info.value)


def test_not_yaml_and_not_a_mapping(tmp_path: Path) -> None:
    folder, _ = _copy(tmp_path)
    (folder / "incident.yaml").write_text("id: [unclosed\n")
    with pytest.raises(ManifestError, match="not valid YAML"):
        load_incident("kv-exhaustion", root=tmp_path)
    (folder / "incident.yaml").write_text("- a list\n")
    with pytest.raises(ManifestError, match="must be a mapping"):
        load_incident("kv-exhaustion", root=tmp_path)


def test_notes_must_exist_with_every_section(tmp_path: Path) -> None:
    folder, _ = _copy(tmp_path)
    notes = folder / "notes.md"
    notes.write_text(notes.read_text().replace("## Tradeoffs", "## Other things"))
    with pytest.raises(ManifestError, match=r"notes\.md: missing section\(s\) ## Tradeoffs"):
        load_incident("kv-exhaustion", root=tmp_path)
    notes.unlink()
    with pytest.raises(ManifestError, match=r"notes\.md: missing"):
        load_incident("kv-exhaustion", root=tmp_path)


def test_unknown_incident_lists_the_catalog(tmp_path: Path) -> None:
    with pytest.raises(
        ManifestError, match="known: bad-rollout, cold-start-autoscaling, kv-exhaustion"
    ):
        load_incident("nope")


def test_random_is_reproducible_with_a_seed() -> None:
    picks = {pick_incident("random", seed=s).id for s in range(20)}
    assert picks == set(SHIPPED)  # twenty seeds reach every incident
    assert pick_incident("random", seed=7).id == pick_incident("random", seed=7).id


def test_checks_breach_on_the_right_side() -> None:
    from sandbox.drill.manifest import Check

    above = Check(name="x", expr="x", above=0.9)
    below = Check(name="y", expr="y", below=0.2, no_data="ok")
    assert above.breached(0.95) and not above.breached(0.9) and above.breached(None)
    assert below.breached(0.1) and not below.breached(0.2) and not below.breached(None)
    assert above.breached(float("nan"))
    # A traffic check read against rates scaled to a slow engine (x0.19 here) scales too.
    slow = below.scaled(0.19)
    assert slow.below == pytest.approx(0.038) and not slow.breached(0.143)
    assert below.breached(0.143) and above.scaled(2).above == pytest.approx(1.8)


def test_a_check_may_cite_an_slo_instead_of_its_number() -> None:
    from pydantic import ValidationError

    from sandbox.drill.manifest import Check
    from sandbox.slos import load_slos

    cited = Check.model_validate({"name": "ttft", "expr": "x", "above": "slo.ttft_s"})
    assert cited.above == load_slos().ttft_s
    with pytest.raises(ValidationError, match=r"no SLO named 'ttft'.*slo\.ttft_s"):
        Check.model_validate({"name": "ttft", "expr": "x", "above": "slo.ttft"})


def test_a_tolerated_page_is_neither_required_nor_a_failure() -> None:
    alerts = load_incident("bad-rollout").manifest.alerts
    assert alerts.verdict("CanaryClientErrorRatioHigh") == "expected"
    assert alerts.verdict("TimeToFirstTokenSLOBreach") == "tolerated"
    assert alerts.verdict("NoReadyEngine") == "NOT expected"
