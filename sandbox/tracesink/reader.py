"""Read spans back from the sink's OTLP JSON lines: one trace by id, the slowest recent requests.

A *request* is a trace whose root span is a server span (the gateway's ``POST /v1/...``, or a
retriever/engine span when those were called directly); vLLM's start-up spans are roots too but
not server spans, and ``startup_spans`` finds them.
"""

from __future__ import annotations

import json
import time
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "SPAN_KIND_SERVER",
    "Span",
    "Trace",
    "find_trace",
    "iter_spans",
    "read_traces",
    "slowest_requests",
    "spans_of_line",
    "startup_spans",
]

SPAN_KIND_SERVER = 2
# Reading stops this far back from the end of the file: `sandbox traces` stays fast on a big one.
DEFAULT_TAIL_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True)
class Span:
    trace_id: str
    span_id: str
    parent_span_id: str
    name: str
    service: str
    kind: int
    start_ns: int
    end_ns: int
    attributes: dict[str, Any] = field(default_factory=dict)
    status_code: int = 0  # 0 unset, 1 ok, 2 error

    @property
    def duration_s(self) -> float:
        return (self.end_ns - self.start_ns) / 1e9


@dataclass(frozen=True)
class Trace:
    trace_id: str
    spans: tuple[Span, ...]  # sorted by start time

    @property
    def root(self) -> Span:
        ids = {s.span_id for s in self.spans}
        roots = [s for s in self.spans if not s.parent_span_id or s.parent_span_id not in ids]
        return min(roots or self.spans, key=lambda s: s.start_ns)

    @property
    def duration_s(self) -> float:
        return self.root.duration_s

    def children(self, span: Span) -> list[Span]:
        return [s for s in self.spans if s.parent_span_id == span.span_id]

    def named(self, name: str) -> list[Span]:
        return [s for s in self.spans if s.name == name]


def _value(value: dict[str, Any]) -> Any:
    for key in ("stringValue", "boolValue", "doubleValue"):
        if key in value:
            return value[key]
    if "intValue" in value:
        return int(value["intValue"])
    if "arrayValue" in value:
        return [_value(v) for v in value["arrayValue"].get("values", [])]
    if "kvlistValue" in value:
        return _attributes(value["kvlistValue"].get("values", []))
    if "bytesValue" in value:
        return value["bytesValue"]
    return None


def _attributes(items: list[dict[str, Any]]) -> dict[str, Any]:
    return {item["key"]: _value(item.get("value", {})) for item in items if "key" in item}


def _lines(path: Path, tail_bytes: int) -> Iterator[str]:
    files = [p for p in (path.with_name(path.name + ".1"), path) if p.exists()]
    budget = tail_bytes
    chunks: list[str] = []
    for file in reversed(files):  # newest first, then the rotated one if budget remains
        size = file.stat().st_size
        with file.open("rb") as handle:
            if size > budget:
                handle.seek(size - budget)
                handle.readline()  # drop the partial line we landed in
            chunks.insert(0, handle.read().decode("utf-8", errors="replace"))
        budget -= min(size, budget)
        if budget <= 0:
            break
    for chunk in chunks:
        yield from chunk.splitlines()


def spans_of_line(line: str) -> list[Span]:
    """The spans of one line of the sink's file (one OTLP JSON export); [] for a damaged line."""
    try:
        export = json.loads(line)
    except ValueError:
        return []  # a line cut by a crash mid-write
    spans = []
    for resource in export.get("resourceSpans", []):
        resource_attrs = _attributes(resource.get("resource", {}).get("attributes", []))
        service = str(resource_attrs.get("service.name", "unknown"))
        for scope in resource.get("scopeSpans", []):
            for raw in scope.get("spans", []):
                spans.append(
                    Span(
                        trace_id=raw.get("traceId", ""),
                        span_id=raw.get("spanId", ""),
                        parent_span_id=raw.get("parentSpanId", ""),
                        name=raw.get("name", ""),
                        service=service,
                        kind=int(raw.get("kind", 0)),
                        start_ns=int(raw.get("startTimeUnixNano", 0)),
                        end_ns=int(raw.get("endTimeUnixNano", 0)),
                        attributes=_attributes(raw.get("attributes", [])),
                        status_code=int(raw.get("status", {}).get("code", 0)),
                    )
                )
    return spans


def iter_spans(path: Path, tail_bytes: int = DEFAULT_TAIL_BYTES) -> Iterator[Span]:
    """Every span in the file (and its rotated predecessor), oldest line first; bad lines skipped."""
    for line in _lines(path, tail_bytes):
        yield from spans_of_line(line)


def read_traces(path: Path, tail_bytes: int = DEFAULT_TAIL_BYTES) -> dict[str, Trace]:
    grouped: dict[str, list[Span]] = defaultdict(list)
    for span in iter_spans(path, tail_bytes):
        grouped[span.trace_id].append(span)
    return {
        tid: Trace(tid, tuple(sorted(spans, key=lambda s: s.start_ns)))
        for tid, spans in grouped.items()
    }


def find_trace(path: Path, trace_id: str, tail_bytes: int = DEFAULT_TAIL_BYTES) -> Trace | None:
    trace_id = trace_id.strip().lower()
    spans = sorted(
        (s for s in iter_spans(path, tail_bytes) if s.trace_id == trace_id),
        key=lambda s: s.start_ns,
    )
    return Trace(trace_id, tuple(spans)) if spans else None


def slowest_requests(
    path: Path, limit: int = 5, within_s: float | None = 900.0, tail_bytes: int = DEFAULT_TAIL_BYTES
) -> list[Trace]:
    """The ``limit`` slowest request traces that ended within the last ``within_s`` seconds."""
    cutoff = (time.time() - within_s) * 1e9 if within_s else 0
    requests = [
        trace
        for trace in read_traces(path, tail_bytes).values()
        if trace.root.kind == SPAN_KIND_SERVER and trace.root.end_ns >= cutoff
    ]
    return sorted(requests, key=lambda t: t.duration_s, reverse=True)[:limit]


def startup_spans(path: Path, tail_bytes: int = DEFAULT_TAIL_BYTES) -> list[Trace]:
    """Traces whose root is not a server span (vLLM's loading steps, for example), newest first."""
    traces = [t for t in read_traces(path, tail_bytes).values() if t.root.kind != SPAN_KIND_SERVER]
    return sorted(traces, key=lambda t: t.root.start_ns, reverse=True)
