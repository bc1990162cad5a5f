"""The phase vocabulary: one table of where a request spends its time.

Seven phases make the latency budget a learner is taught (``docs/phases.md``): ``admission``,
``retrieval``, ``network``, ``engine.queue``, ``engine.prefill``, ``engine.decode``,
``postprocess``. Each row says which component owns the phase, the metric or span it comes
from, and what it measures. Every phase measures what its name says: the gateway cannot see
inside the engine, so what it times around the engine call gets names of its own
(``upstream.*``, ``budget=False``) instead of borrowing an engine phase's name, and ``network``,
which nobody can time directly, is derived from them and the engine's own phases.

The gateway's phase label values, the trace waterfall, ``docs/phases.md`` and the overview's
latency budget panel come from this table or are tested against it (``tests/unit/test_phases.py``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = [
    "BUDGET_PHASES",
    "ENGINE_PHASES",
    "GATEWAY_PHASES",
    "GATEWAY_PHASE_METRIC",
    "PHASES",
    "RETRIEVER_STEPS",
    "RETRIEVER_STEP_METRIC",
    "UPSTREAM_PHASES",
    "Phase",
    "markdown_table",
    "phase",
]

Owner = Literal["gateway", "retriever", "engine", "network"]

GATEWAY_PHASE_METRIC = "sandbox_gateway_phase_seconds"
# The retriever's own steps inside the retrieval phase: a label of their own (``step``).
RETRIEVER_STEP_METRIC = "sandbox_retriever_step_seconds"
RETRIEVER_STEPS: tuple[str, ...] = ("embed", "search", "rerank")


@dataclass(frozen=True)
class Phase:
    name: str
    owner: Owner  # the component whose work (or whose link) the phase is
    measures: str  # one line: from which moment to which
    metric: str | None = None  # a Prometheus histogram in seconds, labelled phase=<name> if ours
    span: str | None = None  # the span that covers it (``llm_request`` with an attribute: vLLM's)
    span_attribute: str | None = None  # the attribute of ``span`` holding its seconds
    derived: str | None = None  # how it is computed where nobody can time it directly
    budget: bool = True  # one of the seven phases of the latency budget

    @property
    def source(self) -> str:
        """Where the figure comes from, in words (for the docs)."""
        parts = []
        if self.metric == GATEWAY_PHASE_METRIC:
            parts.append(f'`{self.metric}{{phase="{self.name}"}}`')
        elif self.metric:
            parts.append(f"`{self.metric}`")
        if self.span and self.span_attribute:
            parts.append(f"span `{self.span}` attribute `{self.span_attribute}`")
        elif self.span:
            parts.append(f"span `{self.span}`")
        if self.derived:
            parts.append(self.derived)
        return "; ".join(parts)


PHASES: tuple[Phase, ...] = (
    # -- The latency budget, in the order a request meets it -----------------------------------
    Phase(
        "admission",
        "gateway",
        "arrival at the gateway -> admitted: parse, validate, count tokens, wait for room",
        metric=GATEWAY_PHASE_METRIC,
        span="admission",
    ),
    Phase(
        "retrieval",
        "retriever",
        "the gateway's call to the retriever (embed, search, rerank), capped by the RAG timeout",
        metric=GATEWAY_PHASE_METRIC,
        span="retrieval",
    ),
    Phase(
        "network",
        "network",
        "between the gateway and the engine's scheduler: connect, the wire both ways, "
        "vLLM's HTTP server (parsing, tokenising, detokenising)",
        derived="derived: upstream.send + upstream.first_token + upstream.stream "
        "- (engine.queue + engine.prefill + engine.decode)",
    ),
    Phase(
        "engine.queue",
        "engine",
        "inside vLLM: queued -> scheduled (waiting for KV blocks or a batch slot)",
        metric="vllm:request_queue_time_seconds",
        span="llm_request",
        span_attribute="gen_ai.latency.time_in_queue",
    ),
    Phase(
        "engine.prefill",
        "engine",
        "inside vLLM: scheduled -> first token (the forward pass over the prompt)",
        metric="vllm:request_prefill_time_seconds",
        span="llm_request",
        span_attribute="gen_ai.latency.time_in_model_prefill",
    ),
    Phase(
        "engine.decode",
        "engine",
        "inside vLLM: first token -> last token (one step per generated token)",
        metric="vllm:request_decode_time_seconds",
        span="llm_request",
        span_attribute="gen_ai.latency.time_in_model_decode",
    ),
    Phase(
        "postprocess",
        "gateway",
        "last token relayed (or the answer read) -> response ended: usage accounting, closing",
        metric=GATEWAY_PHASE_METRIC,
        span="postprocess",
    ),
    # -- What the gateway times around the engine call: compound, so named for what they span --
    Phase(
        "upstream.send",
        "gateway",
        "admitted (and retrieved) -> request written to an engine: pick one, connect, write; "
        "retries on refused connections included",
        metric=GATEWAY_PHASE_METRIC,
        span="upstream.send",
        budget=False,
    ),
    Phase(
        "upstream.first_token",
        "gateway",
        "request written -> first event read back: network + engine.queue + engine.prefill; "
        "for a non-streamed request, the whole answer",
        metric=GATEWAY_PHASE_METRIC,
        span="upstream.first_token",
        budget=False,
    ),
    Phase(
        "upstream.stream",
        "gateway",
        "first event -> last event relayed to the client: engine.decode plus the relay",
        metric=GATEWAY_PHASE_METRIC,
        span="upstream.stream",
        budget=False,
    ),
)

_BY_NAME = {p.name: p for p in PHASES}


def phase(name: str) -> Phase:
    """The row of one phase (KeyError for a name outside the vocabulary)."""
    return _BY_NAME[name]


BUDGET_PHASES: tuple[Phase, ...] = tuple(p for p in PHASES if p.budget)
ENGINE_PHASES: tuple[Phase, ...] = tuple(p for p in PHASES if p.owner == "engine")
UPSTREAM_PHASES: tuple[Phase, ...] = tuple(p for p in PHASES if p.name.startswith("upstream."))
# The label values of ``sandbox_gateway_phase_seconds``, in the order a request meets them.
GATEWAY_PHASES: tuple[str, ...] = (
    "admission",
    "retrieval",
    *(p.name for p in UPSTREAM_PHASES),
    "postprocess",
)
assert {p.name for p in PHASES if p.metric == GATEWAY_PHASE_METRIC} == set(GATEWAY_PHASES)


def markdown_table() -> str:
    """The table as Markdown, as ``docs/phases.md`` shows it (a test keeps the two equal)."""
    lines = [
        "| phase | owner | comes from | measures |",
        "|---|---|---|---|",
    ]
    for p in PHASES:
        lines.append(f"| `{p.name}` | {p.owner} | {p.source} | {p.measures} |")
    return "\n".join(lines)
