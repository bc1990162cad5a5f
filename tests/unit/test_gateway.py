"""The gateway against two small real upstream servers: relay, errors, routing, admission, RAG,
cancellation, metrics and traces. (The same behaviours against real vLLM: tests/integration.)"""

from __future__ import annotations

import asyncio
import json
import math
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from sandbox.admin_paths import GATEWAY_PATHS
from sandbox.gateway.app import create_app
from sandbox.gateway.config import EngineOptions, GatewayOptions, RagOptions
from sandbox.gateway.metrics import GATEWAY_PHASES
from sandbox.gateway.routing import PROBE_FAILURES_OUT, Router
from sandbox.settings import REPO_ROOT
from sandbox.telemetry import configure_tracing
from sandbox.tracesink.reader import find_trace
from sandbox.tracesink.server import create_app as create_sink
from tests.support import free_port
from tests.unit.gateway_helpers import (
    Server,
    UpstreamState,
    gateway_with_standin_stable,
    metric_value,
    serve,
    upstream_app,
    wait_for,
)

TOKENIZER = REPO_ROOT / "sandbox" / "model" / "tiny-llama" / "tokenizer.json"


class Stack:
    def __init__(
        self, gateway: Server, stable: UpstreamState, canary: UpstreamState, spans: Path
    ) -> None:
        self.gateway, self.stable, self.canary, self.spans = gateway, stable, canary, spans
        self.client = httpx.Client(base_url=gateway.url, timeout=30)

    def post(
        self, body: dict[str, object], route: str = "/v1/completions", **kwargs: object
    ) -> httpx.Response:
        return self.client.post(route, json=body, **kwargs)  # type: ignore[arg-type]

    def metrics(self) -> str:
        return self.client.get("/metrics").text

    def admin(self, method: str, path: str, body: object = None) -> httpx.Response:
        return self.client.request(method, path, json=body)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    spans = tmp_path_factory.mktemp("traces") / "spans.jsonl"
    stable, canary = UpstreamState("stable"), UpstreamState("canary")
    with (
        serve(create_sink(spans)) as sink,
        serve(upstream_app(stable)) as s,
        serve(upstream_app(canary)) as c,
    ):
        options = GatewayOptions.model_validate(
            {
                "engines": [
                    {"name": "s", "version": "stable", "url": s.url},
                    {"name": "c", "version": "canary", "url": c.url},
                ],
                "weights": {"stable": 1, "canary": 0},
                "tokenizer_path": str(TOKENIZER),
                "rag": {"retriever_url": s.url, "timeout_s": 0.5},
                "max_prompt_tokens": 200,
                "probe_interval_s": 0.2,
            }
        )
        tracing = configure_tracing("gateway", None, endpoint=f"{sink.url}/v1/traces")
        with serve(create_app(options, tracing)) as gateway:
            yield Stack(gateway, stable, canary, spans)


@pytest.fixture(autouse=True)
def fresh(stack: Stack) -> Iterator[None]:
    for state in (stack.stable, stack.canary):
        state.reset()
        (
            state.status,
            state.healthy,
            state.token_delay_s,
            state.first_token_delay_s,
            state.search_delay_s,
        ) = 200, True, 0, 0, 0
    stack.admin("PUT", "/admin/weights", {"stable": 1, "canary": 0})
    stack.admin("DELETE", "/admin/shadow")
    stack.admin(
        "PUT",
        "/admin/admission",
        {
            "enabled": False,
            "max_sequences": 64,
            "max_queue": 64,
            "queue_timeout_s": 5,
            "max_in_flight_tokens": 65536,
        },
    )
    stack.admin("PUT", "/admin/rag", {"timeout_s": 0.5})
    yield


def _events(response: httpx.Response) -> list[str]:
    return [line[6:] for line in response.text.split("\n\n") if line.startswith("data: ")]


# -- Relay ------------------------------------------------------------------------------------


def test_non_streaming_completion_is_relayed_unchanged(stack: Stack) -> None:
    response = stack.post({"model": "tiny", "prompt": "hello world", "max_tokens": 3})
    assert response.status_code == 200
    assert response.json()["choices"][0]["text"] == "stable0 stable1 stable2"
    assert response.json()["served_by"] == "stable"
    assert len(response.headers["x-sandbox-trace-id"]) == 32


def test_streaming_relays_every_event_and_hides_the_usage_chunk_it_asked_for(stack: Stack) -> None:
    response = stack.post({"model": "tiny", "prompt": "hi", "max_tokens": 4, "stream": True})
    assert response.status_code == 200 and response.headers["content-type"].startswith(
        "text/event-stream"
    )
    events = _events(response)
    assert events[-1] == "[DONE]"
    assert [json.loads(e)["choices"][0]["text"] for e in events[:-1]] == [
        f"stable{i} " for i in range(4)
    ]
    assert stack.stable.received[-1]["stream_options"] == {"include_usage": True}

    asked = _events(
        stack.post(
            {
                "model": "tiny",
                "prompt": "hi",
                "max_tokens": 2,
                "stream": True,
                "stream_options": {"include_usage": True},
            }
        )
    )
    assert json.loads(asked[-2])["usage"]["completion_tokens"] == 2


def test_chat_streaming_and_extension_fields_pass_through(stack: Stack) -> None:
    body = {
        "model": "tiny",
        "messages": [{"role": "user", "content": "hi"}],
        "max_tokens": 2,
        "stream": True,
        "ignore_eos": True,
    }
    events = _events(stack.post(body, "/v1/chat/completions"))
    assert json.loads(events[0])["choices"][0]["delta"]["content"] == "stable0 "
    assert stack.stable.received[-1]["ignore_eos"] is True


def test_models_health_ready(stack: Stack) -> None:
    assert [m["id"] for m in stack.client.get("/v1/models").json()["data"]] == ["tiny"]
    assert stack.client.get("/health").status_code == 200
    assert stack.client.get("/ready").json()["engines"] == ["s", "c"]


# -- Bad input --------------------------------------------------------------------------------

BAD_INPUTS = [
    ("malformed JSON", b'{"model": "tiny", "prompt": ', 400, None, "invalid_json"),
    ("not an object", b'["tiny"]', 400, None, "invalid_type"),
    ("missing model", {"prompt": "x"}, 400, "model", "missing_required_parameter"),
    ("model not a string", {"model": 3, "prompt": "x"}, 400, "model", "invalid_type"),
    ("unknown model", {"model": "gpt-5", "prompt": "x"}, 404, "model", "model_not_found"),
    ("missing prompt", {"model": "tiny"}, 400, "prompt", "missing_required_parameter"),
    ("prompt wrong type", {"model": "tiny", "prompt": {"a": 1}}, 400, "prompt", "invalid_type"),
    (
        "max_tokens a string",
        {"model": "tiny", "prompt": "x", "max_tokens": "ten"},
        400,
        "max_tokens",
        "invalid_type",
    ),
    (
        "max_tokens negative",
        {"model": "tiny", "prompt": "x", "max_tokens": -1},
        400,
        "max_tokens",
        "invalid_value",
    ),
    (
        "max_tokens huge",
        {"model": "tiny", "prompt": "x", "max_tokens": 10**9},
        400,
        "max_tokens",
        "invalid_value",
    ),
    (
        "stream not a boolean",
        {"model": "tiny", "prompt": "x", "stream": "yes"},
        400,
        "stream",
        "invalid_type",
    ),
    (
        "prompt over the limit",
        {"model": "tiny", "prompt": "word " * 400},
        400,
        "prompt",
        "context_length_exceeded",
    ),
]


@pytest.mark.parametrize(
    ("what", "body", "status", "param", "code"), BAD_INPUTS, ids=[b[0] for b in BAD_INPUTS]
)
def test_bad_input_gets_its_status_and_an_openai_error(
    stack: Stack, what: str, body: object, status: int, param: str | None, code: str
) -> None:
    if isinstance(body, bytes):
        response = stack.client.post(
            "/v1/completions", content=body, headers={"content-type": "application/json"}
        )
    else:
        response = stack.post(body)  # type: ignore[arg-type]
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert (error["param"], error["code"]) == (param, code)
    assert error["message"]
    assert not stack.stable.received, "a bad request must not reach the engine"


def test_bad_chat_messages_and_unknown_paths(stack: Stack) -> None:
    response = stack.post(
        {"model": "tiny", "messages": [{"content": "no role"}]}, "/v1/chat/completions"
    )
    assert response.status_code == 400 and response.json()["error"]["param"] == "messages[0]"
    assert stack.client.get("/v1/nothing").json()["error"]["code"] == "not_found"
    assert stack.client.get("/v1/completions").status_code == 405


_CHAT = {"model": "tiny", "messages": [{"role": "user", "content": "hi"}]}
# What a new user might send that the OpenAI API refuses: each a 400 naming the field.
BAD_CHAT_INPUTS: list[tuple[str, dict[str, object], str, str]] = [
    (
        "unknown role",
        {"messages": [{"role": "robot", "content": "x"}]},
        "messages[0].role",
        "invalid_value",
    ),
    (
        "role not a string",
        {"messages": [{"role": 1, "content": "x"}]},
        "messages[0]",
        "invalid_type",
    ),
    (
        "response_format type",
        {"response_format": {"type": "yaml"}},
        "response_format.type",
        "invalid_value",
    ),
    (
        "response_format not an object",
        {"response_format": "json"},
        "response_format",
        "invalid_type",
    ),
    (
        "json_schema without schema",
        {"response_format": {"type": "json_schema"}},
        "response_format.json_schema",
        "missing_required_parameter",
    ),
    ("tool_choice value", {"tool_choice": "always"}, "tool_choice", "invalid_value"),
    (
        "tool_choice required without tools",
        {"tool_choice": "required"},
        "tool_choice",
        "invalid_value",
    ),
    (
        "tool without a name",
        {"tools": [{"type": "function", "function": {}}]},
        "tools[0].function.name",
        "missing_required_parameter",
    ),
    ("temperature above 2", {"temperature": 2.5}, "temperature", "invalid_value"),
    ("temperature a string", {"temperature": "hot"}, "temperature", "invalid_type"),
    ("top_p above 1", {"top_p": 1.5}, "top_p", "invalid_value"),
    ("presence_penalty below -2", {"presence_penalty": -3}, "presence_penalty", "invalid_value"),
    ("n zero", {"n": 0}, "n", "invalid_value"),
    ("stop a number", {"stop": 7}, "stop", "invalid_type"),
    ("logit_bias out of range", {"logit_bias": {"5": 200}}, "logit_bias", "invalid_value"),
    ("logprobs not a boolean", {"logprobs": 3}, "logprobs", "invalid_type"),
    ("top_logprobs above 20", {"top_logprobs": 21}, "top_logprobs", "invalid_value"),
    (
        "stream_options without stream",
        {"stream_options": {"include_usage": True}},
        "stream_options",
        "invalid_value",
    ),
    (
        "include_usage not a boolean",
        {"stream": True, "stream_options": {"include_usage": "yes"}},
        "stream_options.include_usage",
        "invalid_type",
    ),
]


@pytest.mark.parametrize(
    ("what", "fields", "param", "code"), BAD_CHAT_INPUTS, ids=[b[0] for b in BAD_CHAT_INPUTS]
)
def test_chat_fields_are_checked_as_openai_does(
    stack: Stack, what: str, fields: dict[str, object], param: str, code: str
) -> None:
    response = stack.post({**_CHAT, **fields}, "/v1/chat/completions")
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert (error["param"], error["code"], error["type"]) == (param, code, "invalid_request_error")
    assert not stack.stable.received, "a bad request must not reach the engine"


def test_valid_openai_fields_and_vllm_extensions_are_forwarded(stack: Stack) -> None:
    chat = {
        **_CHAT,
        "messages": [
            {"role": "developer", "content": "be brief"},
            {"role": "user", "content": "hi"},
        ],
        "temperature": 0,
        "top_p": 1,
        "frequency_penalty": -2,
        "response_format": {"type": "json_object"},
        "tools": [{"type": "function", "function": {"name": "f"}}],
        "tool_choice": {"type": "function", "function": {"name": "f"}},
        "logprobs": True,
        "top_logprobs": 2,
        "stop": ["\n"],
        "seed": 1,
        # vLLM's own: not OpenAI's, forwarded untouched
        "top_k": 5,
        "min_tokens": 1,
        "ignore_eos": True,
        "repetition_penalty": 1.1,
    }
    assert stack.post(chat, "/v1/chat/completions").status_code == 200
    completion = {"model": "tiny", "prompt": "x", "logprobs": 2, "echo": False, "best_of": 1}
    assert stack.post({**completion, "top_k": -1, "min_p": 0.1}).status_code == 200
    sent = stack.stable.received[-1]
    assert sent["top_k"] == -1 and sent["min_p"] == 0.1


def test_prompt_too_long_is_counted_as_a_rejection(stack: Stack) -> None:
    before = metric_value(
        stack.metrics(), "sandbox_gateway_rejections_total", reason="prompt_too_long"
    )
    assert stack.post({"model": "tiny", "prompt": "word " * 400}).status_code == 400
    assert (
        metric_value(stack.metrics(), "sandbox_gateway_rejections_total", reason="prompt_too_long")
        == before + 1
    )


# -- Upstream failures --------------------------------------------------------------------------


def test_engine_errors_map_to_5xx_and_client_errors_pass_through(stack: Stack) -> None:
    stack.stable.status = 500
    response = stack.post({"model": "tiny", "prompt": "x", "max_tokens": 1})
    assert response.status_code == 502 and response.json()["error"]["code"] == "upstream_error"
    assert (
        stack.post({"model": "tiny", "prompt": "x", "max_tokens": 1, "stream": True}).status_code
        == 502
    )
    assert (
        metric_value(
            stack.metrics(),
            "sandbox_gateway_upstream_errors_total",
            version="stable",
            kind="status",
        )
        >= 2
    )
    stack.stable.status = 400  # vLLM's own validation: its answer goes to the client unchanged
    response = stack.post({"model": "tiny", "prompt": "x", "max_tokens": 1})
    assert response.status_code == 400 and response.json()["error"]["message"] == "stable says 400"


def test_engine_gone_is_503_then_back_in_rotation() -> None:
    port = free_port()
    options = GatewayOptions.model_validate(
        {
            "engines": [{"name": "solo", "version": "stable", "url": f"http://127.0.0.1:{port}"}],
            "probe_interval_s": 0.2,
        }
    )
    body = {"model": "tiny", "prompt": "x", "max_tokens": 1}
    with (
        serve(create_app(options)) as gateway,
        httpx.Client(base_url=gateway.url, timeout=10) as client,
    ):
        with serve(upstream_app(UpstreamState("first")), port=port):
            wait_for(lambda: client.get("/ready").status_code == 200, "the engine in rotation")
            assert client.post("/v1/completions", json=body).json()["served_by"] == "first"
        # The engine is gone: its connection fails, it leaves rotation, and the answer is 503.
        response = client.post("/v1/completions", json=body)
        assert response.status_code == 503 and response.json()["error"]["code"] == "no_engine"
        assert client.get("/ready").status_code == 503
        text = client.get("/metrics").text
        assert (
            metric_value(
                text, "sandbox_gateway_upstream_errors_total", version="stable", kind="connect"
            )
            >= 1
        )
        assert metric_value(text, "sandbox_gateway_ready_engines", version="stable") == 0
        with serve(upstream_app(UpstreamState("second")), port=port):
            wait_for(
                lambda: client.get("/ready").status_code == 200, "the prober to restore the engine"
            )
            assert client.post("/v1/completions", json=body).json()["served_by"] == "second"


# -- Routing ------------------------------------------------------------------------------------


def test_the_replica_with_fewer_requests_in_flight_gets_the_next_one() -> None:
    # Replica "slow" holds every answer for a second (a backlog, or a busier core); "quick"
    # answers at once. Round robin would send both half; least outstanding requests sends the
    # slow one only what arrives while it has no more in flight than the quick one.
    slow, quick = UpstreamState("slow", first_token_delay_s=1.0), UpstreamState("quick")
    with serve(upstream_app(slow)) as s, serve(upstream_app(quick)) as q:
        options = GatewayOptions.model_validate(
            {
                "engines": [
                    {"name": "slow", "version": "stable", "url": s.url},
                    {"name": "quick", "version": "stable", "url": q.url},
                ],
                "probe_interval_s": 0.2,
            }
        )
        body = {"model": "tiny", "prompt": "x", "max_tokens": 2, "stream": True}
        with (
            serve(create_app(options)) as gateway,
            httpx.Client(base_url=gateway.url, timeout=10) as client,
        ):
            wait_for(lambda: client.get("/ready").status_code == 200, "both replicas ready")
            sent = []
            for _ in range(20):  # one every 50 ms: the quick replica is free again each time
                thread = threading.Thread(
                    target=lambda: client.post("/v1/completions", json=body), daemon=True
                )
                thread.start()
                sent.append(thread)
                time.sleep(0.05)
            for thread in sent:
                thread.join(15)
            assert len(slow.received) + len(quick.received) == 20
            assert len(slow.received) <= 3, (len(slow.received), len(quick.received))
            # Every call released its replica: a later tie is broken by turns again.
            time.sleep(1.2)
            for _ in range(4):
                client.post("/v1/completions", json={**body, "stream": False})
            assert len(slow.received) >= 1


def test_ties_take_turns_and_in_flight_breaks_them() -> None:
    router = Router(
        [EngineOptions(name=n, version="stable", url=f"http://{n}") for n in ("a", "b")],
        {"stable": 1},
        None,
    )
    for engine in router.engines.values():
        router.mark_ready(engine)
    assert {router.choose_engine("stable").name for _ in range(2)} == {"a", "b"}
    router.engines["a"].in_flight = 2
    assert {router.choose_engine("stable").name for _ in range(4)} == {"b"}


def test_weights_are_honoured_within_binomial_tolerance(stack: Stack) -> None:
    assert stack.admin("PUT", "/admin/weights", {"stable": 70, "canary": 30}).status_code == 200
    total = 400
    for _ in range(total):
        stack.post({"model": "tiny", "prompt": "x", "max_tokens": 1})
    canary = len(stack.canary.received)
    assert canary + len(stack.stable.received) == total
    sigma = math.sqrt(total * 0.3 * 0.7)
    assert abs(canary - 0.3 * total) < 4 * sigma, f"canary got {canary} of {total}"
    text = stack.metrics()
    assert metric_value(text, "sandbox_gateway_route_weight", version="canary") == 30


def test_weights_refuse_unknown_versions(stack: Stack) -> None:
    response = stack.admin("PUT", "/admin/weights", {"nope": 1})
    assert response.status_code == 400 and "nope" in response.json()["error"]["message"]


def test_shadow_mirrors_without_changing_the_answer(stack: Stack) -> None:
    stack.admin("PUT", "/admin/shadow", {"version": "canary", "share": 1.0})
    answers = [
        stack.post({"model": "tiny", "prompt": f"p{i}", "max_tokens": 2, "stream": i % 2 == 0})
        for i in range(6)
    ]
    assert all(a.status_code == 200 for a in answers)
    assert all("canary" not in a.text for a in answers)
    wait_for(lambda: len(stack.canary.received) == 6, "six mirrored requests at the canary")
    assert all(body["stream"] is False for body in stack.canary.received)
    assert len(stack.stable.received) == 6


# -- Admission ----------------------------------------------------------------------------------


def _in_background(
    stack: Stack, body: dict[str, object]
) -> tuple[threading.Thread, list[httpx.Response]]:
    out: list[httpx.Response] = []
    thread = threading.Thread(target=lambda: out.append(stack.post(body)))
    thread.start()
    return thread, out


def test_admission_rejects_with_429_and_recovers(stack: Stack) -> None:
    stack.stable.first_token_delay_s = 0.6
    stack.admin("PUT", "/admin/admission", {"enabled": True, "max_sequences": 1, "max_queue": 0})
    thread, first = _in_background(stack, {"model": "tiny", "prompt": "x", "max_tokens": 1})
    wait_for(lambda: len(stack.stable.received) == 1, "the first request at the engine")
    refused = stack.post({"model": "tiny", "prompt": "y", "max_tokens": 1})
    assert refused.status_code == 429
    assert refused.headers["retry-after"] == "1"
    assert refused.json()["error"]["code"] == "sequences"
    thread.join()
    assert first[0].status_code == 200
    stack.stable.first_token_delay_s = 0
    assert stack.post({"model": "tiny", "prompt": "y", "max_tokens": 1}).status_code == 200
    assert (
        metric_value(stack.metrics(), "sandbox_gateway_rejections_total", reason="sequences") >= 1
    )


def test_admission_queue_waits_then_times_out(stack: Stack) -> None:
    stack.stable.first_token_delay_s = 0.8
    stack.admin(
        "PUT",
        "/admin/admission",
        {"enabled": True, "max_sequences": 1, "max_queue": 1, "queue_timeout_s": 2},
    )
    first = _in_background(stack, {"model": "tiny", "prompt": "x", "max_tokens": 1})
    wait_for(lambda: len(stack.stable.received) == 1, "the first request at the engine")
    second = _in_background(stack, {"model": "tiny", "prompt": "x", "max_tokens": 1})
    wait_for(
        lambda: stack.admin("GET", "/admin/state").json()["admission"]["queued"] == 1,
        "one request queued",
    )
    full = stack.post({"model": "tiny", "prompt": "x", "max_tokens": 1})
    assert full.status_code == 429 and full.json()["error"]["code"] == "queue_full"
    for thread, out in (first, second):
        thread.join()
        assert out[0].status_code == 200, "the queued request runs once the first is done"

    stack.admin("PUT", "/admin/admission", {"queue_timeout_s": 0.2})
    slow = _in_background(stack, {"model": "tiny", "prompt": "x", "max_tokens": 1})
    wait_for(lambda: len(stack.stable.received) == 3, "the third request at the engine")
    timed_out = stack.post({"model": "tiny", "prompt": "x", "max_tokens": 1})
    assert timed_out.status_code == 429 and timed_out.json()["error"]["code"] == "queue_timeout"
    slow[0].join()
    state = stack.admin("GET", "/admin/state").json()["admission"]
    assert (state["in_flight_tokens"], state["in_flight_sequences"], state["queued"]) == (0, 0, 0)


def test_admission_refuses_a_request_larger_than_the_budget(stack: Stack) -> None:
    stack.admin("PUT", "/admin/admission", {"enabled": True, "max_in_flight_tokens": 50})
    response = stack.post({"model": "tiny", "prompt": "x", "max_tokens": 100})
    assert response.status_code == 429 and response.json()["error"]["code"] == "tokens"


# -- Cancellation -----------------------------------------------------------------------------


def test_client_disconnect_aborts_the_upstream_stream(stack: Stack) -> None:
    stack.stable.token_delay_s = 0.05
    with httpx.Client(base_url=stack.gateway.url, timeout=10) as client:
        with client.stream(
            "POST",
            "/v1/completions",
            json={"model": "tiny", "prompt": "x", "max_tokens": 200, "stream": True},
        ) as r:
            for _ in r.iter_raw():
                break  # one chunk, then hang up
    wait_for(lambda: stack.stable.abandoned == 1, "the engine to see its stream abandoned")
    wait_for(
        lambda: stack.admin("GET", "/admin/state").json()["admission"]["in_flight_sequences"] == 0,
        "release",
    )
    text = stack.metrics()
    assert metric_value(text, "sandbox_gateway_client_disconnects_total") >= 1
    assert metric_value(text, "sandbox_gateway_in_flight_requests") == 0


def test_client_disconnect_while_waiting_for_a_non_streaming_answer(stack: Stack) -> None:
    stack.stable.first_token_delay_s = 3.0
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(
            f"{stack.gateway.url}/v1/completions",
            json={"model": "tiny", "prompt": "x", "max_tokens": 1},
            timeout=0.3,
        )
    wait_for(
        lambda: (
            metric_value(stack.metrics(), "sandbox_gateway_requests_total", status_class="4xx") >= 1
            and metric_value(stack.metrics(), "sandbox_gateway_in_flight_requests") == 0
        ),
        "the request ended as 499",
    )


# -- RAG ----------------------------------------------------------------------------------------


def test_rag_inserts_passages_and_falls_back_on_timeout(stack: Stack) -> None:
    assert (
        stack.post(
            {"model": "tiny", "prompt": "why is TTFT high?", "max_tokens": 1, "sandbox_rag": True}
        ).status_code
        == 200
    )
    sent = stack.stable.received[-1]
    assert "sandbox_rag" not in sent
    assert sent["prompt"].startswith("Context:\n[1] passage about why is TTFT high?")
    assert sent["prompt"].endswith("why is TTFT high?")

    chat = {"model": "tiny", "messages": [{"role": "user", "content": "kv cache"}], "max_tokens": 1}
    assert (
        stack.post(chat, "/v1/chat/completions", headers={"X-Sandbox-RAG": "1"}).status_code == 200
    )
    assert stack.stable.received[-1]["messages"][0]["role"] == "system"

    before = metric_value(
        stack.metrics(), "sandbox_gateway_retrieval_fallbacks_total", reason="timeout"
    )
    stack.stable.search_delay_s = 1.0
    started = time.monotonic()
    assert (
        stack.post(
            {"model": "tiny", "prompt": "slow?", "max_tokens": 1, "sandbox_rag": True}
        ).status_code
        == 200
    )
    assert time.monotonic() - started < 1.0
    assert stack.stable.received[-1]["prompt"] == "slow?"
    assert (
        metric_value(stack.metrics(), "sandbox_gateway_retrieval_fallbacks_total", reason="timeout")
        == before + 1
    )


# -- Telemetry ----------------------------------------------------------------------------------


def test_phase_sums_add_up_to_end_to_end(stack: Stack) -> None:
    stack.stable.first_token_delay_s, stack.stable.token_delay_s = 0.02, 0.005
    for i in range(10):
        stack.post(
            {
                "model": "tiny",
                "prompt": "x",
                "max_tokens": 3,
                "stream": i % 2 == 0,
                "sandbox_rag": i % 3 == 0,
            }
        )
    stack.post({"model": "nope", "prompt": "x"})
    text = stack.metrics()
    phases = sum(
        metric_value(text, "sandbox_gateway_phase_seconds_sum", phase=p) for p in GATEWAY_PHASES
    )
    e2e = metric_value(text, "sandbox_gateway_request_duration_seconds_sum")
    assert e2e > 0.2
    assert abs(phases - e2e) <= 1e-6 * max(1.0, e2e), (phases, e2e)
    ttft = metric_value(text, "sandbox_gateway_phase_seconds_sum", phase="upstream.first_token")
    assert ttft > 0.02 * 10 * 0.9


def test_exemplars_traceparent_and_spans(stack: Stack) -> None:
    response = stack.post(
        {"model": "tiny", "prompt": "x", "max_tokens": 2, "stream": True, "sandbox_rag": True},
        headers={"X-Sandbox-Tenant": "batch"},
    )
    trace_id = response.headers["x-sandbox-trace-id"]
    assert any(h.get("traceparent", "").split("-")[1] == trace_id for h in stack.stable.headers), (
        "traceparent forwarded"
    )

    def openmetrics_with_exemplar() -> str | None:
        # A streamed response ends at the client before the gateway records its last phases.
        text = stack.client.get(
            "/metrics", headers={"accept": "application/openmetrics-text; version=1.0.0"}
        ).text
        return text if f'trace_id="{trace_id}"' in text else None

    om = wait_for(openmetrics_with_exemplar, "the request's exemplar on /metrics", timeout_s=10)
    assert 'tenant="batch"' in om

    def spans() -> object:
        trace = find_trace(stack.spans, trace_id)
        return trace if trace and len(trace.spans) >= 8 else None

    trace = wait_for(spans, "the request's spans in the sink", timeout_s=10)
    names = {s.name for s in trace.spans}
    assert set(GATEWAY_PHASES) <= names and {"POST /v1/completions", "upstream"} <= names
    root = trace.root
    assert root.name == "POST /v1/completions" and root.attributes["sandbox.tenant"] == "batch"
    assert all(s.parent_span_id == root.span_id for s in trace.spans if s.name in GATEWAY_PHASES)


def test_unknown_tenants_are_bounded(stack: Stack) -> None:
    stack.post(
        {"model": "tiny", "prompt": "x", "max_tokens": 1},
        headers={"X-Sandbox-Tenant": "mallory-123"},
    )
    text = stack.metrics()
    assert "mallory" not in text
    assert metric_value(text, "sandbox_gateway_requests_total", tenant="other") >= 1


def test_openai_client_works(stack: Stack) -> None:
    import openai

    client = openai.OpenAI(base_url=f"{stack.gateway.url}/v1", api_key="unused")
    completion = client.completions.create(model="tiny", prompt="hi", max_tokens=2)
    assert completion.choices[0].text == "stable0 stable1"
    chunks = list(
        client.chat.completions.create(
            model="tiny", messages=[{"role": "user", "content": "hi"}], max_tokens=3, stream=True
        )
    )
    assert (
        "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        == "stable0 stable1 stable2 "
    )
    with pytest.raises(openai.NotFoundError):
        client.completions.create(model="gpt-9", prompt="hi")
    client.close()


# -- CLI ----------------------------------------------------------------------------------------


def test_cli_weights_and_status(stack: Stack) -> None:
    from sandbox.cli import cli

    runner = CliRunner()
    result = runner.invoke(
        cli, ["gateway", "--url", stack.gateway.url, "weights", "stable=90", "canary=10"]
    )
    assert result.exit_code == 0, result.output
    assert "stable=90 (90%)" in result.output
    assert stack.admin("GET", "/admin/state").json()["weights"] == {"stable": 90.0, "canary": 10.0}
    result = runner.invoke(cli, ["gateway", "--url", stack.gateway.url, "weights", "stable"])
    assert result.exit_code != 0 and "version=weight" in result.output
    result = runner.invoke(
        cli, ["gateway", "--url", stack.gateway.url, "admission", "--on", "--sequences", "4"]
    )
    assert result.exit_code == 0 and "admission: on" in result.output
    result = runner.invoke(cli, ["gateway", "--url", f"http://127.0.0.1:{free_port()}", "status"])
    assert result.exit_code != 0 and "unreachable" in result.output


def test_options_from_flags_and_file(tmp_path: Path) -> None:
    from sandbox.gateway.config import load_options

    config = tmp_path / "gateway.json"
    config.write_text(
        json.dumps(
            {
                "engines": [{"name": "c", "version": "canary", "url": "http://127.0.0.1:1"}],
                "admission": {"enabled": True},
            }
        )
    )
    options = load_options(config, ["engine:stable=http://127.0.0.1:2/"])
    assert [(e.name, e.version, e.url) for e in options.engines] == [
        ("c", "canary", "http://127.0.0.1:1"),
        ("engine", "stable", "http://127.0.0.1:2"),
    ]
    assert options.weights == {"canary": 0.0, "stable": 1.0}
    assert options.admission.enabled and isinstance(options.rag, RagOptions)
    with pytest.raises(ValueError, match="version=url"):
        load_options(None, ["http://x"])


def test_admission_is_fifo() -> None:
    from sandbox.gateway.admission import Admission, Rejected
    from sandbox.gateway.config import AdmissionOptions

    async def scenario() -> list[str]:
        admission = Admission(
            AdmissionOptions(
                enabled=True, max_in_flight_tokens=100, max_sequences=10, queue_timeout_s=1
            )
        )
        order: list[str] = []
        held = await admission.acquire(90)

        async def wait(name: str, tokens: int) -> None:
            ticket = await admission.acquire(tokens)
            order.append(name)
            admission.release(ticket)

        big = asyncio.ensure_future(wait("big", 60))
        await asyncio.sleep(0.01)
        small = asyncio.ensure_future(wait("small", 5))  # fits now, but must not jump the queue
        await asyncio.sleep(0.01)
        assert order == []
        admission.release(held)
        await asyncio.gather(big, small)
        with pytest.raises(Rejected) as refused:
            await admission.acquire(101)
        assert refused.value.reason == "tokens"
        return order

    assert asyncio.run(scenario()) == ["big", "small"]


def test_time_to_first_token_counts_streamed_answers_only(stack: Stack) -> None:
    def count() -> float:
        return metric_value(
            stack.metrics(), "sandbox_gateway_time_to_first_token_seconds_count", version="stable"
        )

    before = count()
    assert stack.post({"model": "tiny", "prompt": "hi", "max_tokens": 4}).status_code == 200
    assert count() == before  # a whole answer has no first token before its last
    assert (
        stack.post({"model": "tiny", "prompt": "hi", "max_tokens": 4, "stream": True}).status_code
        == 200
    )
    wait_for(
        lambda: count() == before + 1, "the streamed answer's TTFT recorded"
    )  # after the last chunk


def test_an_engine_leaves_rotation_after_failed_probes_in_a_row_not_one() -> None:
    state = UpstreamState("solo")
    with serve(upstream_app(state)) as upstream:
        router = Router(
            [EngineOptions(name="solo", version="stable", url=upstream.url)], {"stable": 1}, None
        )

        def probe(times: int) -> None:
            async def run() -> None:
                async with httpx.AsyncClient() as client:
                    for _ in range(times):
                        await router.probe(client)

            asyncio.run(run())

        probe(1)
        assert [e.name for e in router.ready("stable")] == ["solo"]
        state.healthy = False
        probe(PROBE_FAILURES_OUT - 1)  # a busy engine may miss a probe or two
        assert [e.name for e in router.ready("stable")] == ["solo"]
        probe(1)
        assert (
            router.ready("stable") == []
            and router.engines["solo"].last_error == "/health answered 503"
        )
        state.healthy = True
        probe(1)
        assert [e.name for e in router.ready("stable")] == ["solo"]


def test_a_new_version_has_its_error_counts_at_zero_before_its_first_error() -> None:
    # rate() cannot count the first sample of a series: a canary's first refusal would be lost
    # if its 4xx series only appeared with it.
    with (
        gateway_with_standin_stable() as gateway,
        serve(upstream_app(UpstreamState("canary"))) as canary,
        httpx.Client(base_url=gateway.url, timeout=10) as client,
    ):
        added = client.post(
            GATEWAY_PATHS.engines,
            json={"name": "engine-canary-1", "version": "canary", "url": canary.url},
        )
        assert added.status_code == 200, added.text
        text = client.get("/metrics").text
        for cls in ("4xx", "5xx"):
            labels = ('version="canary"', f'status_class="{cls}"', 'tenant="documents"')
            zeros = [
                line
                for line in text.splitlines()
                if line.startswith("sandbox_gateway_requests_total{")
                and all(label in line for label in labels)
            ]
            assert zeros and all(line.endswith(" 0.0") for line in zeros), (cls, zeros)
        # Only error classes: a 2xx series appears with the first answer, as before.
        assert 'version="canary",status_class="2xx"' not in text
