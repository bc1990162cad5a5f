"""A trace as a phase waterfall (rich): one row per span, indented under its parent, with a bar
placed on the request's time line. vLLM's ``llm_request`` span is followed by its engine phases
(``engine.queue``, ``engine.prefill``, ``engine.decode``) taken from its latency attributes, as
the phase table (``sandbox.phases``) says where each phase comes from."""

from __future__ import annotations

from dataclasses import dataclass

from rich.table import Table
from rich.text import Text

from sandbox.phases import ENGINE_PHASES, PHASES
from sandbox.tracesink.reader import Span, Trace

__all__ = ["COLOURS", "Row", "rows_of", "waterfall_table"]

BAR_WIDTH = 32

# vLLM's attributes for its request phases, in the order they happen (from the vocabulary table).
_ENGINE_PHASES: tuple[tuple[str, str], ...] = tuple(
    (p.name, p.span_attribute) for p in ENGINE_PHASES if p.span_attribute
)
# One colour per phase of the vocabulary; a span outside it (the server span, ``upstream``,
# ``llm_request``, the retriever's steps) is drawn white.
COLOURS: dict[str, str] = {
    "admission": "yellow",
    "retrieval": "magenta",
    "network": "blue",
    "engine.queue": "yellow",
    "engine.prefill": "red",
    "engine.decode": "green",
    "postprocess": "cyan",
    "upstream.send": "blue",
    "upstream.first_token": "red",
    "upstream.stream": "green",
}
assert set(COLOURS) == {p.name for p in PHASES}, "every phase of sandbox.phases has a colour"


@dataclass(frozen=True)
class Row:
    name: str
    service: str
    depth: int
    start_s: float  # from the root span's start
    duration_s: float
    error: bool = False


def rows_of(trace: Trace) -> list[Row]:
    root = trace.root
    rows: list[Row] = []

    def visit(span: Span, depth: int) -> None:
        start = (span.start_ns - root.start_ns) / 1e9
        rows.append(
            Row(span.name, span.service, depth, start, span.duration_s, span.status_code == 2)
        )
        if span.name == "llm_request":
            offset = start
            for phase, attribute in _ENGINE_PHASES:
                value = span.attributes.get(attribute)
                if isinstance(value, (int, float)):
                    rows.append(Row(phase, span.service, depth + 1, offset, float(value)))
                    offset += float(value)
        for child in sorted(trace.children(span), key=lambda s: s.start_ns):
            visit(child, depth + 1)

    visit(root, 0)
    return rows


def _bar(row: Row, total_s: float) -> Text:
    total_s = max(total_s, 1e-9)
    start = min(BAR_WIDTH - 1, int(row.start_s / total_s * BAR_WIDTH))
    length = max(1, round(row.duration_s / total_s * BAR_WIDTH))
    colour = "bright_red" if row.error else COLOURS.get(row.name, "white")
    return Text(" " * start) + Text("█" * min(length, BAR_WIDTH - start), style=colour)


def waterfall_table(trace: Trace) -> Table:
    root = trace.root
    status = root.attributes.get("http.response.status_code", "")
    title = f"{root.name}  {root.duration_s * 1000:.1f} ms  status {status}  trace {trace.trace_id}"
    table = Table(title=title, title_justify="left", show_edge=False, pad_edge=False)
    table.add_column("span", no_wrap=True, min_width=24)
    table.add_column("service", style="dim", no_wrap=True)
    table.add_column("start ms", justify="right")
    table.add_column("ms", justify="right")
    table.add_column("", no_wrap=True)
    for row in rows_of(trace):
        service = row.service.removeprefix("sandbox-")
        table.add_row(
            "  " * row.depth + row.name,
            service,
            f"{row.start_s * 1000:.1f}",
            f"{row.duration_s * 1000:.1f}",
            _bar(row, root.duration_s),
        )
    return table
