"""Append-only OTLP JSON lines: one ``ExportTraceServiceRequest`` (as OTLP JSON) per line.

That is the layout of the OpenTelemetry Collector's file exporter, so other tools read it too.
The file is rotated once it passes ``max_bytes`` (one previous file, ``spans.jsonl.1``, is kept):
a drill that runs for hours must not fill the disk.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

__all__ = ["DEFAULT_MAX_BYTES", "SpanFile", "spans_path"]

DEFAULT_MAX_BYTES = 256 * 1024 * 1024


def spans_path(run_dir: Path) -> Path:
    """Where the local sink keeps spans for a run directory."""
    return run_dir / "traces" / "spans.jsonl"


class SpanFile:
    """Thread-safe appender of export requests, one JSON object per line."""

    def __init__(self, path: Path, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self.requests = 0
        self.spans = 0

    def append(self, export_request: dict[str, Any]) -> int:
        """Write one export request; returns how many spans it held."""
        count = sum(
            len(scope.get("spans", []))
            for resource in export_request.get("resourceSpans", [])
            for scope in resource.get("scopeSpans", [])
        )
        line = json.dumps(export_request, separators=(",", ":")) + "\n"
        with self._lock:
            if self.path.exists() and self.path.stat().st_size + len(line) > self.max_bytes:
                self.path.replace(self.path.with_name(self.path.name + ".1"))
            with self.path.open("a", encoding="utf-8") as out:
                out.write(line)
            self.requests += 1
            self.spans += count
        return count
