"""The retriever as a real process (started through its component spec) on free ports.

One service per module: loading the model and building the index takes seconds. A small
OTLP/HTTP receiver in this module stands where the stack's trace sink would, so the spans
checked here are the ones the process really exported.
"""

from __future__ import annotations

import json
import re
import statistics
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from click.testing import CliRunner
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from prometheus_client.openmetrics.parser import text_string_to_metric_families

from sandbox.cli import cli
from sandbox.retriever.component import retriever_component
from sandbox.runtime.base import ServiceState
from sandbox.runtime.local import LocalRuntime
from sandbox.settings import Settings
from tests.support import isolated_settings, poll_until

STEPS = ("embed", "search", "rerank")
OPENMETRICS = "application/openmetrics-text; version=1.0.0; charset=utf-8"


# -- A minimal OTLP/HTTP (protobuf) trace receiver -------------------------------------------


@dataclass(frozen=True)
class ReceivedSpan:
    name: str
    trace_id: str
    span_id: str
    parent_span_id: str
    attributes: dict[str, Any]
    service: str


class _Receiver(ThreadingHTTPServer):
    spans: list[ReceivedSpan]
    lock: threading.Lock


class _OtlpHandler(BaseHTTPRequestHandler):
    server: _Receiver

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        request = ExportTraceServiceRequest.FromString(body)
        received = []
        for resource_spans in request.resource_spans:
            service = next(
                (
                    a.value.string_value
                    for a in resource_spans.resource.attributes
                    if a.key == "service.name"
                ),
                "",
            )
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    attributes = {}
                    for attribute in span.attributes:
                        value = attribute.value
                        attributes[attribute.key] = getattr(value, value.WhichOneof("value"))
                    received.append(
                        ReceivedSpan(
                            span.name,
                            span.trace_id.hex(),
                            span.span_id.hex(),
                            span.parent_span_id.hex(),
                            attributes,
                            service,
                        )
                    )
        with self.server.lock:
            self.server.spans.extend(received)
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@dataclass
class Service:
    settings: Settings
    url: str
    receiver: _Receiver
    runtime: LocalRuntime

    def spans(self, trace_id: str) -> list[ReceivedSpan]:
        with self.receiver.lock:
            return [s for s in self.receiver.spans if s.trace_id == trace_id]

    def metrics(self) -> dict[str, Any]:
        text = httpx.get(f"{self.url}/metrics", headers={"Accept": OPENMETRICS}, timeout=10).text
        return {family.name: family for family in text_string_to_metric_families(text)}


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    settings = isolated_settings(tmp_path_factory.mktemp("retriever-run"))
    receiver = _Receiver((settings.host, settings.trace_sink_port), _OtlpHandler)
    receiver.spans, receiver.lock = [], threading.Lock()
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    runtime = LocalRuntime(settings.run_dir)
    component = retriever_component()
    try:
        runtime.start(component.spec(settings))

        def ready() -> bool:
            if runtime.status("retriever").state is not ServiceState.RUNNING:
                raise AssertionError("retriever exited:\n" + runtime.log_tail("retriever", 30))
            with httpx.Client(timeout=5) as client:
                return component.check(settings, client).ready

        poll_until(ready, "the retriever to load its model and build the index", timeout_s=180)
        yield Service(settings, component.url(settings), receiver, runtime)
    finally:
        runtime.stop("retriever", timeout_s=10)
        receiver.shutdown()
        receiver.server_close()


def search(service: Service, query: str, k: int = 3, **kwargs: Any) -> httpx.Response:
    return httpx.post(f"{service.url}/search", json={"query": query, "k": k}, timeout=30, **kwargs)


# -- Readiness and the component -------------------------------------------------------------


def test_ready_reports_the_built_index(service: Service) -> None:
    health = httpx.get(f"{service.url}/health", timeout=5)
    ready = httpx.get(f"{service.url}/ready", timeout=5).json()
    assert health.status_code == 200 and health.json()["state"] == "ready"
    assert ready["status"] == "ready" and ready["passages"] > 0
    assert ready["model_load_s"] > 0 and ready["index_build_s"] > 0


def test_component_describes_how_to_run_and_scrape_it(service: Service) -> None:
    component = retriever_component()
    spec = component.spec(service.settings)
    assert (
        spec.argv[1:3] == ("-m", "sandbox.retriever")
        and str(service.settings.retriever_port) in spec.argv
    )
    assert [(t.job, t.address) for t in component.scrape(service.settings)] == [
        ("retriever", f"{service.settings.host}:{service.settings.retriever_port}")
    ]
    # Nothing listens on the engine's port of these isolated settings: the check says so.
    elsewhere = service.settings.model_copy(update={"retriever_port": service.settings.engine_port})
    with httpx.Client(timeout=2) as client:
        readiness = component.check(elsewhere, client)
    assert not readiness.ready and "ConnectError" in readiness.why


# -- Search ------------------------------------------------------------------------------------


def test_search_finds_the_kv_cache_notes(service: Service) -> None:
    response = search(service, "KV cache preemption", k=3)
    assert response.status_code == 200, response.text
    body = response.json()
    sources = [p["source"] for p in body["passages"]]
    # The corpus grows with every note; what must hold is that the answer is about KV preemption.
    assert any("preempt" in p["text"].lower() for p in body["passages"]), sources
    assert all("kv" in p["text"].lower() for p in body["passages"][:1]), sources
    scores = [p["score"] for p in body["passages"]]
    assert scores == sorted(scores, reverse=True) and len(scores) == 3
    assert set(body["timings"]) == set(STEPS) and all(body["timings"][p] > 0 for p in STEPS)


def test_different_questions_find_different_notes(service: Service) -> None:
    ttft = search(service, "what is time to first token and time per output token", k=1).json()
    kv = search(service, "preemptions when KV cache blocks run out", k=1).json()
    assert (
        ttft["passages"][0]["source"]
        == "docs/phases.md#time-to-first-token-and-time-per-output-token"
    )
    # The corpus holds the incidents' notes too, and a new note on KV blocks may rightly outrank
    # phases.md: what matters is a different passage, and one about preempting for KV blocks.
    top = kv["passages"][0]
    assert top["source"] != ttft["passages"][0]["source"]
    assert "preempt" in top["text"].lower() and "block" in top["text"].lower(), top["source"]


def test_k_bounds_the_number_of_passages(service: Service) -> None:
    assert len(search(service, "gateway admission queue", k=1).json()["passages"]) == 1
    assert len(search(service, "gateway admission queue", k=5).json()["passages"]) == 5


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"k": 3}, "query"),
        ({"query": "", "k": 3}, "query"),
        ({"query": "   ", "k": 3}, "query"),
        ({"query": 42, "k": 3}, "query"),
        ({"query": "kv", "k": 0}, "k"),
        ({"query": "kv", "k": 10_000}, "k"),
        ({"query": "kv", "k": "3"}, "k"),
        ({"query": "kv", "k": True}, "k"),
        ({"query": "kv", "top_k": 3}, "top_k"),
        ({"query": "x" * 5000}, "query"),
        (["kv"], "body"),
    ],
)
def test_bad_input_is_a_400_naming_the_field(service: Service, body: Any, param: str) -> None:
    response = httpx.post(f"{service.url}/search", json=body, timeout=10)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error" and error["param"] == param
    assert error["message"]


def test_malformed_json_is_a_400(service: Service) -> None:
    response = httpx.post(
        f"{service.url}/search",
        content=b'{"query": ',
        headers={"Content-Type": "application/json"},
        timeout=10,
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_json"


# -- Metrics and traces ------------------------------------------------------------------------


def test_metrics_are_openmetrics_with_trace_exemplars(service: Service) -> None:
    before = service.metrics()
    ok = search(service, "KV cache preemption")
    bad = httpx.post(f"{service.url}/search", json={"query": ""}, timeout=10)
    assert ok.status_code == 200 and bad.status_code == 400
    families = service.metrics()

    def requests(metrics: dict[str, Any], status: str) -> float:
        return next(
            s.value
            for s in metrics["sandbox_retriever_requests"].samples
            if s.name == "sandbox_retriever_requests_total" and s.labels["status"] == status
        )

    assert requests(families, "2xx") == requests(before, "2xx") + 1
    assert requests(families, "4xx") == requests(before, "4xx") + 1

    step_exemplars = {
        s.labels["step"]: s.exemplar
        for s in families["sandbox_retriever_step_seconds"].samples
        if s.name.endswith("_bucket") and s.exemplar is not None
    }
    assert set(step_exemplars) == set(STEPS)
    for exemplar in step_exemplars.values():
        assert re.fullmatch(r"[0-9a-f]{32}", exemplar.labels["trace_id"])
    duration = families["sandbox_retriever_request_duration_seconds"]
    assert any(s.exemplar is not None for s in duration.samples if s.name.endswith("_bucket"))
    assert families["sandbox_retriever_index_passages"].samples[0].value > 0
    # Every phase series of the gauge exists, at zero, without a fault.
    gauge = {
        s.labels["step"]: s.value
        for s in families["sandbox_retriever_injected_delay_seconds"].samples
    }
    assert gauge == {"embed": 0.0, "search": 0.0, "rerank": 0.0}


def test_plain_scrape_gets_the_text_format(service: Service) -> None:
    response = httpx.get(f"{service.url}/metrics", timeout=10)
    assert response.headers["content-type"].startswith("text/plain")
    assert "sandbox_retriever_step_seconds_bucket" in response.text and " # {" not in response.text


def test_step_spans_are_children_of_the_callers_trace(service: Service) -> None:
    trace_id, parent_id = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
    response = search(
        service, "KV cache preemption", headers={"traceparent": f"00-{trace_id}-{parent_id}-01"}
    )
    assert response.status_code == 200

    names = {"POST /search", "retrieval.embed", "retrieval.search", "retrieval.rerank"}
    spans = poll_until(
        lambda: (found := service.spans(trace_id)) and names <= {s.name for s in found} and found,
        "the retriever's spans of the request at the OTLP receiver",
        timeout_s=15,
    )
    by_name = {s.name: s for s in spans}
    server = by_name["POST /search"]
    assert server.parent_span_id == parent_id and server.service == "sandbox-retriever"
    assert (
        server.attributes["sandbox.retriever.k"] == 3
        and server.attributes["sandbox.retriever.results"] == 3
    )
    for phase in STEPS:
        assert by_name[f"retrieval.{phase}"].parent_span_id == server.span_id
    # The request's duration exemplar points at this trace.
    duration = service.metrics()["sandbox_retriever_request_duration_seconds"]
    assert trace_id in {
        s.exemplar.labels["trace_id"] for s in duration.samples if s.exemplar is not None
    }


# -- The fault hook ----------------------------------------------------------------------------


def _step_times(service: Service, n: int = 3) -> dict[str, float]:
    runs = [search(service, "KV cache preemption").json()["timings"] for _ in range(n)]
    return {phase: statistics.median(run[phase] for run in runs) for phase in STEPS}


def _gauge(service: Service) -> dict[str, float]:
    family = service.metrics()["sandbox_retriever_injected_delay_seconds"]
    return {s.labels["step"]: s.value for s in family.samples}


def test_fault_slows_only_its_phase_and_clears_cleanly(service: Service) -> None:
    baseline = _step_times(service)
    assert all(seconds < 0.25 for seconds in baseline.values()), baseline
    answer = httpx.put(
        f"{service.url}/admin/fault",
        json={"phase": "search", "kind": "fixed", "params": {"delay_s": 0.4}},
        timeout=10,
    )
    assert answer.status_code == 200, answer.text
    try:
        assert _gauge(service) == {"embed": 0.0, "search": 0.4, "rerank": 0.0}
        trace_id = "0af7651916cd43dd8448eb211c80319c"
        traced = search(
            service,
            "KV cache preemption",
            headers={"traceparent": f"00-{trace_id}-b7ad6b7169203331-01"},
        )
        assert traced.json()["timings"]["search"] >= 0.4
        faulty = _step_times(service)
        assert faulty["search"] >= 0.4
        assert faulty["embed"] < 0.25 and faulty["rerank"] < 0.25, faulty

        span = poll_until(
            lambda: next(
                (s for s in service.spans(trace_id) if s.name == "retrieval.search"), None
            ),
            "the faulty search span",
            timeout_s=15,
        )
        assert span.attributes["sandbox.fault.kind"] == "fixed"
        assert span.attributes["sandbox.fault.injected_delay_s"] == pytest.approx(0.4)
    finally:
        cleared = httpx.delete(f"{service.url}/admin/fault", timeout=10).json()
    assert cleared == {"cleared": ["search"]}
    assert _gauge(service) == {"embed": 0.0, "search": 0.0, "rerank": 0.0}
    assert _step_times(service)["search"] < 0.25
    assert httpx.get(f"{service.url}/admin/fault", timeout=10).json() == {"faults": {}}


def test_heavy_tail_fault_varies_and_expires_by_itself(service: Service) -> None:
    answer = httpx.put(
        f"{service.url}/admin/fault",
        json={
            "phase": "rerank",
            "kind": "heavy_tail",
            "params": {"median_s": 0.02, "sigma": 1.0, "cap_s": 0.5},
            "ttl_s": 3,
        },
        timeout=10,
    )
    assert answer.status_code == 200, answer.text
    mean = answer.json()["fault"]["mean_delay_s"]
    assert 0.025 < mean < 0.04  # lognormal mean = median * exp(sigma^2 / 2) = 0.033
    assert _gauge(service)["rerank"] == pytest.approx(mean)
    delays = [search(service, "gateway", k=1).json()["timings"]["rerank"] for _ in range(6)]
    assert len({round(d, 3) for d in delays}) > 1, delays  # drawn, not fixed
    poll_until(
        lambda: _gauge(service)["rerank"] == 0.0, "the fault's TTL to clear it", timeout_s=10
    )
    assert httpx.get(f"{service.url}/admin/fault", timeout=10).json() == {"faults": {}}


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"phase": "network", "kind": "fixed", "params": {"delay_s": 1}}, "phase"),
        ({"phase": "search", "kind": "slow", "params": {}}, "kind"),
        ({"phase": "search", "kind": "fixed", "params": {"delay_s": -1}}, "params.delay_s"),
        ({"phase": "search", "kind": "fixed", "params": {"delay_s": 1000}}, "params.delay_s"),
        ({"phase": "search", "kind": "fixed", "params": {}}, "params.delay_s"),
        (
            {"phase": "search", "kind": "fixed", "params": {"delay_s": 1, "seconds": 2}},
            "params.seconds",
        ),
        ({"phase": "embed", "kind": "jitter", "params": {"mean_s": 0.1}}, "params.jitter_s"),
        ({"phase": "embed", "kind": "heavy_tail", "params": {"median_s": 0}}, "params.median_s"),
        (
            {"phase": "embed", "kind": "heavy_tail", "params": {"median_s": 1, "cap_s": 0.5}},
            "params",
        ),
        ({"phase": "embed", "kind": "fixed", "params": {"delay_s": 1}, "ttl_s": -5}, "ttl_s"),
    ],
)
def test_bad_fault_is_a_400_naming_the_field(service: Service, body: Any, param: str) -> None:
    response = httpx.put(f"{service.url}/admin/fault", json=body, timeout=10)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["param"] == param, error
    assert error["type"] == "invalid_request_error"
    assert httpx.get(f"{service.url}/admin/fault", timeout=10).json() == {"faults": {}}


# -- The CLI -------------------------------------------------------------------------------------


def test_cli_search_and_fault_round_trip(service: Service) -> None:
    runner = CliRunner()
    base = ["retriever", "--url", service.url]
    found = runner.invoke(cli, [*base, "search", "KV cache preemption", "-k", "2"])
    assert found.exit_code == 0, found.output
    assert ".md#" in found.output and "1. " in found.output and "timings: embed" in found.output

    as_json = runner.invoke(cli, [*base, "search", "KV cache", "-k", "1", "--json"])
    assert len(json.loads(as_json.output)["passages"]) == 1

    bad = runner.invoke(cli, [*base, "fault", "set", "embed", "fixed", "-p", "delay_s=-1"])
    assert bad.exit_code != 0 and "params.delay_s" in bad.output

    applied = runner.invoke(
        cli,
        [
            *base,
            "fault",
            "set",
            "embed",
            "jitter",
            "-p",
            "mean_s=0.2",
            "-p",
            "jitter_s=0.05",
            "--ttl",
            "60",
        ],
    )
    try:
        assert applied.exit_code == 0, applied.output
        shown = runner.invoke(cli, [*base, "fault", "show"])
        assert "embed: jitter" in shown.output
        assert _gauge(service)["embed"] == pytest.approx(0.2, abs=0.01)
        assert 0.15 <= search(service, "kv").json()["timings"]["embed"]
    finally:
        cleared = runner.invoke(cli, [*base, "fault", "clear", "embed"])
    assert cleared.exit_code == 0 and "cleared: embed" in cleared.output
    assert runner.invoke(cli, [*base, "fault", "clear"]).output.strip() == "no fault was active"


def test_cli_says_when_the_retriever_is_unreachable(service: Service) -> None:
    result = CliRunner().invoke(
        cli,
        ["retriever", "--url", service.settings.url(service.settings.engine_port), "search", "kv"],
    )
    assert result.exit_code == 1 and "unreachable" in result.output


def test_log_lines_are_json_with_trace_ids(service: Service) -> None:
    # A search of its own: under xdist this module's other tests may run on another worker.
    assert search(service, "log line trace ids").status_code == 200
    lines = [
        line
        for line in service.runtime.log_tail("retriever", 200).splitlines()
        if line.startswith("{")
    ]
    records = [json.loads(line) for line in lines]
    searches = [r for r in records if r.get("message") == "search"]
    assert searches and all(re.fullmatch(r"[0-9a-f]{32}", r["trace_id"]) for r in searches)
