"""The phase vocabulary (sandbox/phases.py) against everything that speaks it."""

from __future__ import annotations

import re
from pathlib import Path

from dashboards.overview import budget_queries
from sandbox.gateway import call
from sandbox.gateway.metrics import GatewayMetrics
from sandbox.phases import (
    BUDGET_PHASES,
    ENGINE_PHASES,
    GATEWAY_PHASES,
    PHASES,
    RETRIEVER_STEPS,
    markdown_table,
    phase,
)
from sandbox.retriever.metrics import RetrieverMetrics
from sandbox.tracesink.waterfall import _ENGINE_PHASES, COLOURS

ROOT = Path(__file__).resolve().parents[2]
SEVEN = (
    "admission",
    "retrieval",
    "network",
    "engine.queue",
    "engine.prefill",
    "engine.decode",
    "postprocess",
)


def test_the_budget_is_the_seven_phases_the_docs_teach() -> None:
    assert tuple(p.name for p in BUDGET_PHASES) == SEVEN
    docs = (ROOT / "docs" / "phases.md").read_text()
    first_table = docs.split("\n\n")[2]
    assert sorted(re.findall(r"^\| `([a-z.]+)` \|", first_table, re.M)) == sorted(SEVEN)


def test_the_docs_show_the_table_as_it_is() -> None:
    docs = (ROOT / "docs" / "phases.md").read_text()
    block = re.search(r"<!-- phases:begin[^>]*-->\n(.*?)\n<!-- phases:end -->", docs, re.S)
    assert block is not None, "docs/phases.md lost its generated phase table"
    assert block.group(1) == markdown_table(), "regenerate with sandbox.phases.markdown_table()"


def test_every_phase_has_a_source_and_no_gateway_timing_borrows_an_engine_name() -> None:
    for p in PHASES:
        assert p.source and p.measures, p
    for name in GATEWAY_PHASES:
        assert phase(name).owner in ("gateway", "retriever"), name
    assert not set(GATEWAY_PHASES) & {p.name for p in ENGINE_PHASES} - {"retrieval"}
    assert "network" not in GATEWAY_PHASES  # derived: the gateway cannot time it alone


def test_the_gateway_emits_the_table_names() -> None:
    assert (
        call.ADMISSION,
        call.RETRIEVAL,
        call.SEND,
        call.FIRST_TOKEN,
        call.STREAM,
        call.POSTPROCESS,
    ) == GATEWAY_PHASES
    metrics = GatewayMetrics()
    assert metrics.phase_seconds._labelnames == ("phase", "version", "tenant")


def test_the_waterfall_takes_engine_phases_and_colours_from_the_table() -> None:
    assert [name for name, _ in _ENGINE_PHASES] == [
        "engine.queue",
        "engine.prefill",
        "engine.decode",
    ]
    assert all(phase(name).span_attribute == attribute for name, attribute in _ENGINE_PHASES)
    assert set(COLOURS) == {p.name for p in PHASES}


def test_the_budget_panel_stacks_the_seven_phases_in_order() -> None:
    queries = budget_queries()
    assert tuple(q.legend for q in queries) == SEVEN
    engine = {q.legend: q.expr for q in queries if q.legend.startswith("engine.")}
    for p in ENGINE_PHASES:
        # Each version's mean, weighted by the requests the gateway answered from it.
        assert p.metric is not None and p.metric.replace(":", "_") in engine[p.name]
        assert "* on (version)" in engine[p.name]
    assert "decode" not in " ".join(q.expr for q in queries if q.legend == "postprocess")


def test_the_retriever_labels_its_steps_apart_from_phases() -> None:
    metrics = RetrieverMetrics()
    assert metrics.step_seconds._labelnames == ("step",)
    assert set(metrics.step) == set(RETRIEVER_STEPS)
    assert not set(RETRIEVER_STEPS) & {p.name for p in PHASES}


def test_signatures_rules_and_dashboards_name_only_table_phases() -> None:
    """A ``phase="..."`` anywhere the stack reads metrics names a gateway phase of the table."""
    files = [
        *ROOT.glob("incidents/*/incident.yaml"),
        *ROOT.glob("stack/prometheus/rules/*.yml"),
        *ROOT.glob("stack/prometheus/tests/*.yml"),
        *ROOT.glob("dashboards/*.json"),
    ]
    seen = set()
    for path in files:
        for name in re.findall(r'phase\\?"?\s*=~?\s*\\?"([^"\\]+)', path.read_text()):
            for alternative in name.split("|"):
                assert alternative in GATEWAY_PHASES, f"{path.name}: phase {alternative!r}"
                seen.add(alternative)
    assert {"admission", "retrieval"} <= seen
