"""The real local stack: vLLM serves completions and Prometheus scrapes its metrics."""

from __future__ import annotations

import json

import httpx
import pytest

from sandbox import stack
from tests.integration.traffic import complete
from tests.support import StackHandle, poll_until

pytestmark = pytest.mark.integration


def test_every_component_is_ready(local_stack: StackHandle) -> None:
    rows = stack.status(local_stack.settings, local_stack.runtime)
    expected = {
        "tracesink",
        "engine",
        "retriever",
        "gateway",
        "alertmanager",
        "prometheus",
        "console",
    }
    assert {r.name: (r.ready, r.why) for r in rows} == {name: (True, "") for name in expected}


def test_completion(local_stack: StackHandle) -> None:
    response = complete(local_stack.engine_url, "where does the time go", 12, timeout_s=60)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["usage"]["completion_tokens"] == 12
    assert body["choices"][0]["finish_reason"] == "length"


def test_streaming_completion(local_stack: StackHandle) -> None:
    chunks = []
    request = {
        "model": "tiny",
        "prompt": "stream me",
        "max_tokens": 8,
        "ignore_eos": True,
        "stream": True,
    }
    with httpx.stream(
        "POST", f"{local_stack.engine_url}/v1/completions", json=request, timeout=60
    ) as response:
        assert response.status_code == 200
        for line in response.iter_lines():
            if line.startswith("data: ") and line != "data: [DONE]":
                chunks.append(json.loads(line.removeprefix("data: ")))
    tokens = [c for c in chunks if c["choices"] and c["choices"][0]["text"] != ""]
    assert len(tokens) >= 2, "a streamed completion arrives in several chunks"
    assert chunks[-1]["choices"][0]["finish_reason"] == "length"


def test_chat_completion(local_stack: StackHandle) -> None:
    response = httpx.post(
        f"{local_stack.engine_url}/v1/chat/completions",
        json={"model": "tiny", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 4},
        timeout=60,
    )
    assert response.status_code == 200, response.text
    assert response.json()["choices"][0]["message"]["role"] == "assistant"


@pytest.mark.parametrize("metric", ["vllm:num_requests_running", "vllm:kv_cache_usage_perc"])
def test_prometheus_scrapes_the_engine(local_stack: StackHandle, metric: str) -> None:
    def series() -> list[dict[str, object]]:
        response = httpx.get(
            f"{local_stack.prometheus_url}/api/v1/query",
            params={"query": f'{metric}{{job="engine"}}'},
            timeout=5,
        )
        return list(response.json()["data"]["result"])

    result = poll_until(series, f"{metric} in Prometheus", timeout_s=30)
    labels = result[0]["metric"]
    assert labels["version"] == "stable"  # type: ignore[index]
    assert labels["model_name"] == "tiny"  # type: ignore[index]


def test_prometheus_counts_the_tokens_served(local_stack: StackHandle) -> None:
    def generated() -> float:
        response = httpx.get(
            f"{local_stack.prometheus_url}/api/v1/query",
            params={"query": 'sum(vllm:generation_tokens_total{job="engine"})'},
            timeout=5,
        )
        result = response.json()["data"]["result"]
        return float(result[0]["value"][1]) if result else 0.0

    before = generated()  # ready means the engine target was scraped at least once
    complete(local_stack.engine_url, "count me", 20, timeout_s=60).raise_for_status()
    poll_until(lambda: generated() >= before + 20, "Prometheus to see 20 more generated tokens", 30)
