"""Which area of serving a query or one of its series points at: one of the seven phases of
docs/phases.md, or ``rollout`` (a difference between model versions). Symptoms that say users
suffer but not where (TTFT, end-to-end latency, request rate) point at no area."""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping

from sandbox.promql import metric_names

__all__ = ["PHASES", "ROLLOUT", "area_of"]

PHASES = (
    "admission",
    "retrieval",
    "engine.queue",
    "engine.prefill",
    "engine.decode",
    "postprocess",
    "network",
)
ROLLOUT = "rollout"

# A `phase` label's values, from the gateway, the retriever and the spans, to the vocabulary.
_PHASE_LABEL = {
    "admission": "admission",
    "retrieval": "retrieval",
    "embed": "retrieval",
    "search": "retrieval",
    "rerank": "retrieval",
    "queue": "engine.queue",
    "engine.queue": "engine.queue",
    "prefill": "engine.prefill",
    "engine.prefill": "engine.prefill",
    "decode": "engine.decode",
    "engine.decode": "engine.decode",
    "postprocess": "postprocess",
    "network": "network",
    # The gateway's own timings around the engine call (sandbox.phases): the closest area.
    # Recordings made before they were named so carry "network" and "decode" (above).
    "upstream.send": "network",
    "upstream.stream": "engine.decode",
}
# Metric name patterns, first match wins.
_BY_METRIC: tuple[tuple[str, str], ...] = (
    (r"retriev|embed|rerank|vector_search|qdrant", "retrieval"),
    (
        r"queue_time|num_requests_waiting|kv_cache|cache_usage|preemption|queue_depth_engine",
        "engine.queue",
    ),
    (r"gateway_queue|admission|rejection", "admission"),
    (r"prefill", "engine.prefill"),
    (r"decode_time|inter_token|time_per_output_token|tpot", "engine.decode"),
    (r"postprocess|detoken", "postprocess"),
    (r"network|upstream_connect", "network"),
)


def area_of(
    expr: str, labels: Mapping[str, str] | None = None, new_versions: Collection[str] = ()
) -> str | None:
    """The area a series of ``expr`` (with ``labels``) points at, or None for a symptom.

    ``new_versions`` are the model versions that appeared after the injection: a series of
    one of them points at a rollout (a panel split by version shows the new version apart);
    a series of the version that served all along is the whole service, not a rollout."""
    labels = labels or {}
    phase = labels.get("phase") or labels.get("step")  # the retriever's steps: label `step`
    if phase in _PHASE_LABEL:
        return _PHASE_LABEL[phase]
    if labels.get("version") in new_versions:
        return ROLLOUT
    matched = re.findall(r'phase\s*=\s*"([^"]+)"', expr)
    mapped = {_PHASE_LABEL[m] for m in matched if m in _PHASE_LABEL}
    if len(mapped) == 1:
        return mapped.pop()
    names = " ".join(sorted(metric_names(expr)))
    for pattern, area in _BY_METRIC:
        if re.search(pattern, names):
            return area
    return None
