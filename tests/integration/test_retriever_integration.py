"""The retriever in the real local stack: Prometheus scrapes it and keeps its trace exemplars."""

from __future__ import annotations

import httpx
import pytest

from sandbox import stack
from tests.support import StackHandle, poll_until

pytestmark = pytest.mark.integration

TRACE_ID = "5b8efff798038103d269b633813fc60c"


@pytest.fixture(scope="module")
def retriever_url(local_stack: StackHandle) -> str:
    # The stack must start the retriever: a stack without it is a failure, not a skip.
    assert "retriever" in {component.name for component in stack.default_components()}
    settings = local_stack.settings
    return settings.url(settings.retriever_port)


def _query(local_stack: StackHandle, promql: str) -> list[dict[str, object]]:
    response = httpx.get(
        f"{local_stack.prometheus_url}/api/v1/query", params={"query": promql}, timeout=10
    )
    return list(response.json()["data"]["result"])


def test_prometheus_scrapes_the_retriever(local_stack: StackHandle, retriever_url: str) -> None:
    assert httpx.get(f"{retriever_url}/ready", timeout=10).status_code == 200
    poll_until(
        lambda: _query(local_stack, 'up{job="retriever"} == 1'),
        "the retriever target to be up",
        timeout_s=30,
    )
    for phase in ("embed", "search", "rerank"):
        series = _query(
            local_stack, f'sandbox_retriever_step_seconds_count{{job="retriever",step="{phase}"}}'
        )
        assert series, f"no {phase} series"


def test_prometheus_keeps_the_search_trace_as_an_exemplar(
    local_stack: StackHandle, retriever_url: str
) -> None:
    response = httpx.post(
        f"{retriever_url}/search",
        json={"query": "KV cache preemption", "k": 3},
        headers={"traceparent": f"00-{TRACE_ID}-53995c3f42cd8ad8-01"},
        timeout=30,
    )
    assert response.status_code == 200, response.text

    def exemplar_trace_ids() -> set[str]:
        answer = httpx.get(
            f"{local_stack.prometheus_url}/api/v1/query_exemplars",
            params={
                "query": 'sandbox_retriever_step_seconds_bucket{job="retriever",step="search"}',
                "start": "0",
                "end": "9999999999",
            },
            timeout=10,
        ).json()
        return {e["labels"].get("trace_id", "") for s in answer["data"] for e in s["exemplars"]}

    poll_until(
        lambda: TRACE_ID in exemplar_trace_ids(),
        "Prometheus to store the search's exemplar",
        timeout_s=30,
    )
