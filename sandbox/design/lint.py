"""Design pitfalls of a dashboard, read from its panels and queries alone (plus the metric names
the recordings hold). Each finding names the panels behind it."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from sandbox.design.load import Panel
from sandbox.promql import metric_names, quantiles

__all__ = ["PITFALLS", "Finding", "lint"]

# id -> (what is wrong, points it costs out of the pitfalls criterion)
PITFALLS: dict[str, tuple[str, float]] = {
    "average-only-latency": ("latency shown only as an average, no p95 or p99", 6.0),
    "latency-without-queue": ("latency with no queue depth beside it", 6.0),
    "memory-without-length": ("KV cache or memory use without request or prompt length", 3.0),
    "errors-without-version": ("errors without the model version", 3.0),
    "no-unit-or-description": ("panels without a unit or a description", 4.0),
    "unknown-metrics": ("queries naming metrics that exist in no recording", 3.0),
}


@dataclass(frozen=True)
class Finding:
    pitfall: str
    share: float  # 0..1 of the pitfall's points lost
    evidence: str


_LATENCY = re.compile(r"second|latency|duration|time_to_first|ttft|tpot|_time_", re.I)
_QUEUE = re.compile(r"num_requests_waiting|queue_depth|queue_time|waiting|queue_size", re.I)
_MEMORY = re.compile(r"kv_cache|cache_usage|memory|_bytes|gpu_cache", re.I)
_LENGTH = re.compile(
    r"prompt_tokens|prompt_len|request_prompt|input_tokens|generation_tokens|"
    r"request_params_max_tokens|output_tokens|tokens_total",
    re.I,
)
_ERRORS = re.compile(
    r'error|fail|abort|[45]xx|status(_class)?\s*=~?\s*"[45]|code\s*=~?\s*"[45]', re.I
)
_VERSION = re.compile(r"\b(version|model_name|model)\b")


def _names(panel: Panel) -> str:
    return " ".join(sorted({n for q in panel.queries for n in metric_names(q.expr)}))


def _titles(panels: Sequence[Panel]) -> str:
    shown = ", ".join(repr(p.title or p.key) for p in panels[:5])
    return shown + (f" and {len(panels) - 5} more" if len(panels) > 5 else "")


def _is_latency(panel: Panel) -> bool:
    return bool(_LATENCY.search(_names(panel)))


def lint(panels: Sequence[Panel], known_metrics: set[str] | None) -> list[Finding]:
    """Every pitfall found; ``known_metrics`` None skips the unknown-metric check."""
    findings: list[Finding] = []
    latency = [p for p in panels if _is_latency(p)]
    tail = [p for p in latency if any(q >= 0.9 for x in p.queries for q in quantiles(x.expr))]
    if latency and not tail:
        averages = [
            p
            for p in latency
            if any(re.search(r"_sum\b.*/.*_count\b|avg", q.expr) for q in p.queries)
        ]
        findings.append(
            Finding(
                "average-only-latency",
                1.0,
                f"latency panels {_titles(latency)} show no p95/p99"
                + (f" (averages: {_titles(averages)})" if averages else ""),
            )
        )
    if latency and not any(_QUEUE.search(_names(p)) for p in panels):
        findings.append(
            Finding(
                "latency-without-queue",
                1.0,
                f"latency panels {_titles(latency)}, but no panel shows requests waiting "
                "(e.g. vllm:num_requests_waiting or a queue time)",
            )
        )
    memory = [p for p in panels if _MEMORY.search(_names(p))]
    if memory and not any(_LENGTH.search(_names(p)) for p in panels):
        findings.append(
            Finding(
                "memory-without-length",
                1.0,
                f"memory or KV use on {_titles(memory)}, but no panel shows prompt or request "
                "length (e.g. vllm:request_prompt_tokens, vllm:prompt_tokens_total)",
            )
        )
    errors = [p for p in panels if any(_ERRORS.search(q.expr) for q in p.queries)]
    by_version = [
        p
        for p in errors
        if any(
            re.search(r"\b(by|without)\s*\([^)]*\b(version|model_name|model)\b", q.expr)
            or _VERSION.search(q.legend)
            for q in p.queries
        )
    ]
    if errors and not by_version:
        findings.append(
            Finding(
                "errors-without-version",
                1.0,
                f"error panels {_titles(errors)} do not split by model version "
                "(sum by (version) or a {{version}} legend)",
            )
        )
    bare = [p for p in panels if not p.unit or not p.description.strip()]
    if bare:
        findings.append(
            Finding(
                "no-unit-or-description",
                len(bare) / len(panels),
                f"{len(bare)} of {len(panels)} panels lack a unit or a description: {_titles(bare)}",
            )
        )
    if known_metrics is not None:
        unknown: list[str] = []
        queries = 0
        for panel in panels:
            for query in panel.queries:
                queries += 1
                missing = sorted(metric_names(query.expr) - known_metrics)
                if missing:
                    unknown.append(f"{panel.label!r} query {query.ref_id}: {', '.join(missing)}")
        if unknown:
            findings.append(
                Finding(
                    "unknown-metrics",
                    min(1.0, 2 * len(unknown) / max(queries, 1)),
                    f"{len(unknown)} of {queries} queries name metrics no recording holds: "
                    + "; ".join(unknown[:4])
                    + (f"; and {len(unknown) - 4} more" if len(unknown) > 4 else ""),
                )
            )
    return findings
