"""Recent requests from the trace sink's file, kept in memory and read incrementally.

The sink appends one OTLP export per line; each refresh reads only the bytes added since the
last one (starting from the file's last ``initial_tail_bytes``), so a browser polling the traces
view costs little however large the file grows. A request is a trace whose root is a server span
(the gateway's ``POST /v1/...``); vLLM's ``llm_request`` and the retriever's spans share its trace
id, so they join in by themselves.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sandbox.tracesink.reader import SPAN_KIND_SERVER, Span, Trace, spans_of_line
from sandbox.tracesink.waterfall import rows_of

__all__ = ["RequestFilter", "SpanIndex", "request_summary", "waterfall"]


@dataclass(frozen=True)
class RequestFilter:
    tenant: str = ""
    status: str = ""  # "200", "5xx", "error" (any status >= 400)
    version: str = ""
    min_ms: float = 0.0

    def accepts(self, summary: dict[str, Any]) -> bool:
        if self.tenant and summary["tenant"] != self.tenant:
            return False
        if self.version and summary["version"] != self.version:
            return False
        if self.min_ms and summary["duration_ms"] < self.min_ms:
            return False
        status = str(summary["status"])
        if self.status == "error":
            return bool((status.isdigit() and int(status) >= 400) or summary["error"])
        if self.status.endswith("xx"):
            return status[:1] == self.status[:1]
        return not self.status or status == self.status


@dataclass(eq=False)  # its state changes as it reads: compared and hashed by identity
class SpanIndex:
    """Spans grouped by trace, refreshed from the file at most every ``min_interval_s``."""

    path: Path
    keep_s: float = 3600.0
    max_traces: int = 20000
    initial_tail_bytes: int = 32 * 1024 * 1024
    min_interval_s: float = 1.0

    def __post_init__(self) -> None:
        self._spans: dict[str, list[Span]] = {}
        self._last_end: dict[str, int] = {}
        self._offset = 0
        self._inode: int | None = None
        self._mid_line = False
        self._checked = 0.0
        self._lock = threading.Lock()

    def _reset(self, inode: int, size: int) -> None:
        self._spans.clear()
        self._last_end.clear()
        self._inode = inode
        self._offset = max(0, size - self.initial_tail_bytes)
        self._mid_line = self._offset > 0

    def _add(self, spans: Iterable[Span]) -> None:
        for span in spans:
            self._spans.setdefault(span.trace_id, []).append(span)
            self._last_end[span.trace_id] = max(self._last_end.get(span.trace_id, 0), span.end_ns)

    def _evict(self) -> None:
        cutoff = (time.time() - self.keep_s) * 1e9
        old = [tid for tid, end in self._last_end.items() if end < cutoff]
        if len(self._last_end) - len(old) > self.max_traces:
            newest = sorted(self._last_end.items(), key=lambda item: item[1], reverse=True)
            old = [tid for tid, _ in newest[self.max_traces :]]
        for tid in old:
            self._spans.pop(tid, None)
            self._last_end.pop(tid, None)

    def refresh(self, force: bool = False) -> None:
        with self._lock:
            now = time.monotonic()
            if not force and now - self._checked < self.min_interval_s:
                return
            self._checked = now
            try:
                stat = os.stat(self.path)
            except FileNotFoundError:
                return
            if stat.st_ino != self._inode or stat.st_size < self._offset:
                self._reset(stat.st_ino, stat.st_size)  # first read, or the sink rotated the file
            if stat.st_size == self._offset:
                return
            with self.path.open("rb") as handle:
                handle.seek(self._offset)
                if self._mid_line:
                    handle.readline()  # a tail read starts inside a line
                    self._mid_line = False
                chunk = handle.read(stat.st_size - handle.tell())
                complete = chunk.rfind(b"\n") + 1  # a line still being written waits its turn
                self._offset = handle.tell() - len(chunk) + complete
            for line in chunk[:complete].decode("utf-8", errors="replace").splitlines():
                self._add(spans_of_line(line))
            self._evict()

    def trace(self, trace_id: str) -> Trace | None:
        self.refresh()
        with self._lock:
            spans = self._spans.get(trace_id.strip().lower())
            if not spans:
                return None
            return Trace(trace_id, tuple(sorted(spans, key=lambda s: s.start_ns)))

    def requests(self) -> list[Trace]:
        """Every request trace held, in no particular order."""
        self.refresh()
        with self._lock:
            traces = [
                Trace(tid, tuple(sorted(spans, key=lambda s: s.start_ns)))
                for tid, spans in self._spans.items()
            ]
        return [t for t in traces if t.root.kind == SPAN_KIND_SERVER]


def request_summary(trace: Trace) -> dict[str, Any]:
    """One row of the traces view."""
    root = trace.root
    attrs = root.attributes
    phases: dict[str, float] = {}
    for span in trace.spans:
        if span is not root and span.parent_span_id == root.span_id:
            phases[span.name] = phases.get(span.name, 0.0) + span.duration_s * 1000
    return {
        "trace_id": trace.trace_id,
        "name": root.name,
        "service": root.service,
        "start": root.start_ns / 1e9,
        "duration_ms": round(root.duration_s * 1000, 1),
        "status": attrs.get("http.response.status_code", ""),
        "error": any(s.status_code == 2 for s in trace.spans),
        "tenant": str(attrs.get("sandbox.tenant", "")),
        "version": str(attrs.get("sandbox.version", "")),
        "spans": len(trace.spans),
        "phases_ms": {k: round(v, 1) for k, v in phases.items()},
    }


def waterfall(trace: Trace) -> dict[str, Any]:
    """The trace as rows for a waterfall: vLLM's engine phases from its ``llm_request`` included."""
    return {
        **request_summary(trace),
        "rows": [
            {
                "name": row.name,
                "service": row.service.removeprefix("sandbox-"),
                "depth": row.depth,
                "start_ms": round(row.start_s * 1000, 2),
                "duration_ms": round(row.duration_s * 1000, 2),
                "error": row.error,
            }
            for row in rows_of(trace)
        ],
        "attributes": {
            s.span_id: {"name": s.name, **{k: str(v) for k, v in s.attributes.items()}}
            for s in trace.spans
        },
    }
