"""The trace sink with the real OTLP/HTTP exporter, the reader, the waterfall and `sandbox traces`."""

from __future__ import annotations

import gzip
import json
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner
from opentelemetry.trace import SpanKind

from sandbox.telemetry import configure_tracing
from sandbox.tracesink.reader import find_trace, iter_spans, slowest_requests, startup_spans
from sandbox.tracesink.server import create_app
from sandbox.tracesink.store import SpanFile
from sandbox.tracesink.waterfall import rows_of
from tests.unit.gateway_helpers import Server, serve


@pytest.fixture
def sink(tmp_path: Path) -> Iterator[tuple[Server, Path]]:
    path = tmp_path / "traces" / "spans.jsonl"
    with serve(create_app(path)) as server:
        yield server, path


def _export_request(
    trace_id: str, spans: list[dict[str, object]], service: str = "svc"
) -> dict[str, object]:
    return {
        "resourceSpans": [
            {
                "resource": {
                    "attributes": [{"key": "service.name", "value": {"stringValue": service}}]
                },
                "scopeSpans": [
                    {"scope": {"name": "t"}, "spans": [{"traceId": trace_id, **s} for s in spans]}
                ],
            }
        ]
    }


def _span(
    span_id: str,
    name: str,
    start_ns: int,
    end_ns: int,
    *,
    kind: int = 2,
    parent: str | None = None,
    attributes: list[dict[str, object]] | None = None,
) -> dict[str, object]:
    """One span in OTLP JSON (``kind`` 2 = server, 3 = client, 1 = internal)."""
    span: dict[str, object] = {
        "spanId": span_id,
        "name": name,
        "kind": kind,
        "startTimeUnixNano": str(start_ns),
        "endTimeUnixNano": str(end_ns),
    }
    if parent is not None:
        span["parentSpanId"] = parent
    if attributes is not None:
        span["attributes"] = attributes
    return span


def test_protobuf_export_from_the_real_exporter_lands_as_otlp_json(
    sink: tuple[Server, Path],
) -> None:
    server, path = sink
    tracing = configure_tracing("unit", None, endpoint=f"{server.url}/v1/traces")
    with tracing.tracer.start_as_current_span("POST /thing", kind=SpanKind.SERVER) as root:
        with tracing.tracer.start_as_current_span("child") as child:
            child.set_attribute("answer", 42)
    tracing.shutdown()
    trace_id = format(root.get_span_context().trace_id, "032x")

    line = json.loads(path.read_text().splitlines()[0])
    raw = line["resourceSpans"][0]["scopeSpans"][0]["spans"]
    assert {s["traceId"] for s in raw} == {trace_id}, "ids are hex in OTLP JSON, not base64"

    trace = find_trace(path, trace_id)
    assert trace is not None
    assert trace.root.name == "POST /thing" and trace.root.service == "sandbox-unit"
    (child_span,) = trace.children(trace.root)
    assert child_span.attributes["answer"] == 42
    assert httpx.get(f"{server.url}/health").json()["spans"] == 2


def test_json_and_gzip_bodies_and_bad_ones(sink: tuple[Server, Path]) -> None:
    server, path = sink
    body = _export_request("ab" * 16, [_span("01" * 8, "json-span", 1, 2)])
    assert httpx.post(f"{server.url}/v1/traces", json=body).status_code == 200
    zipped = gzip.compress(json.dumps(body).encode())
    response = httpx.post(
        f"{server.url}/v1/traces",
        content=zipped,
        headers={"content-type": "application/json", "content-encoding": "gzip"},
    )
    assert response.status_code == 200
    assert [s.name for s in iter_spans(path)] == ["json-span", "json-span"]
    for content, ctype in (
        (b"\xff\x00garbage", "application/x-protobuf"),
        (b"{", "application/json"),
        (b"x", "text/plain"),
    ):
        response = httpx.post(
            f"{server.url}/v1/traces", content=content, headers={"content-type": ctype}
        )
        assert response.status_code == 400 and response.json()["message"]


def test_slowest_requests_skip_startup_spans_and_old_ones(tmp_path: Path) -> None:
    path = tmp_path / "spans.jsonl"
    store = SpanFile(path)
    now = time.time_ns()
    for i, ms in enumerate((30, 10, 50)):
        store.append(
            _export_request(f"{i:032x}", [_span(f"{i:016x}", f"req{i}", now, now + ms * 10**6)])
        )
    store.append(
        _export_request(
            "f" * 32, [_span("1" * 16, "Load model", now, now + 9 * 10**9, kind=1)], "vllm"
        )
    )
    old = now - 3600 * 10**9
    store.append(_export_request("e" * 32, [_span("2" * 16, "old", old, old + 10**10)]))
    with path.open("a") as out:
        out.write('{"resourceSpans": [ cut by a crash\n')
    assert [t.root.name for t in slowest_requests(path, limit=2)] == ["req2", "req0"]
    assert next(t.root.name for t in slowest_requests(path, limit=10, within_s=None)) == "old"
    assert [t.root.name for t in startup_spans(path)] == ["Load model"]


def test_rotation_keeps_one_previous_file(tmp_path: Path) -> None:
    path = tmp_path / "spans.jsonl"
    store = SpanFile(path, max_bytes=400)
    for i in range(6):
        store.append(_export_request(f"{i:032x}", [_span("1" * 16, f"s{i}", 1, 2)]))
    assert path.stat().st_size <= 400
    assert path.with_name("spans.jsonl.1").exists()
    names = [s.name for s in iter_spans(path)]
    assert names[-1] == "s5" and "s0" not in names


def test_waterfall_expands_vllm_phases_and_cli_prints_it(tmp_path: Path) -> None:
    path = tmp_path / "spans.jsonl"
    now = time.time_ns()
    ms = 10**6
    spans = [
        _span(
            "a" * 16,
            "POST /v1/completions",
            now,
            now + 100 * ms,
            attributes=[{"key": "http.response.status_code", "value": {"intValue": "200"}}],
        ),
        _span("b" * 16, "upstream", now + 5 * ms, now + 95 * ms, kind=3, parent="a" * 16),
    ]
    vllm = [
        _span(
            "c" * 16,
            "llm_request",
            now + 6 * ms,
            now + 90 * ms,
            parent="b" * 16,
            attributes=[
                {"key": "gen_ai.latency.time_in_queue", "value": {"doubleValue": 0.01}},
                {"key": "gen_ai.latency.time_in_model_prefill", "value": {"doubleValue": 0.02}},
                {"key": "gen_ai.latency.time_in_model_decode", "value": {"doubleValue": 0.05}},
            ],
        )
    ]
    store = SpanFile(path)
    store.append(_export_request("d" * 32, spans, "sandbox-gateway"))
    store.append(_export_request("d" * 32, vllm, "vllm"))
    trace = find_trace(path, "D" * 32)
    assert trace is not None and trace.root.name == "POST /v1/completions"
    rows = [(r.name, r.depth, round(r.start_s * 1000)) for r in rows_of(trace)]
    assert rows == [
        ("POST /v1/completions", 0, 0),
        ("upstream", 1, 5),
        ("llm_request", 2, 6),
        ("engine.queue", 3, 6),
        ("engine.prefill", 3, 16),
        ("engine.decode", 3, 36),
    ]

    from sandbox.cli import cli

    runner = CliRunner()
    result = runner.invoke(cli, ["traces", "--file", str(path)], env={"COLUMNS": "120"})
    assert result.exit_code == 0, result.output
    assert "engine.prefill" in result.output and "d" * 32 in result.output
    result = runner.invoke(cli, ["traces", "--file", str(path), "--trace-id", "0" * 32])
    assert result.exit_code != 0 and "not in" in result.output
    result = runner.invoke(cli, ["traces", "--file", str(tmp_path / "none.jsonl")])
    assert result.exit_code != 0 and "no spans" in result.output


def test_exporter_survives_a_sink_that_is_down(tmp_path: Path) -> None:
    from tests.support import free_port

    tracing = configure_tracing("unit", None, endpoint=f"http://127.0.0.1:{free_port()}/v1/traces")
    started = time.monotonic()
    with tracing.tracer.start_as_current_span("lost"):
        pass
    tracing.shutdown()
    assert time.monotonic() - started < 10


def test_trace_endpoint_order(monkeypatch: pytest.MonkeyPatch) -> None:
    from sandbox.settings import load_settings
    from sandbox.telemetry import trace_endpoint

    settings = load_settings(trace_sink_port=4999)
    for name in (
        "OTEL_SDK_DISABLED",
        "OTEL_TRACES_EXPORTER",
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
        "OTEL_EXPORTER_OTLP_ENDPOINT",
    ):
        monkeypatch.delenv(name, raising=False)
    assert trace_endpoint(settings) == "http://127.0.0.1:4999/v1/traces"
    assert trace_endpoint(None) is None
    assert trace_endpoint(settings, "none") is None
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318/")
    assert trace_endpoint(settings) == "http://collector:4318/v1/traces"
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "none")
    assert trace_endpoint(settings) is None
