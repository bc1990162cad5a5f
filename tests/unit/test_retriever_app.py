"""The retriever's app before it is ready and when start-up fails (in process: no model needed)."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient

from sandbox.retriever.app import create_app
from sandbox.retriever.config import RetrieverOptions
from tests.support import poll_until


def test_search_before_the_index_is_built_is_a_503() -> None:
    with TestClient(create_app(RetrieverOptions(), start=False)) as client:
        assert client.get("/health").status_code == 200
        ready = client.get("/ready")
        assert ready.status_code == 503 and ready.json()["error"]["code"] == "not_ready"
        answer = client.post("/search", json={"query": "kv cache", "k": 2})
        assert answer.status_code == 503
        assert answer.json()["error"]["type"] == "service_unavailable_error"
        # Bad input is still reported as such while starting.
        assert client.post("/search", json={"query": ""}).status_code == 400


def test_an_empty_corpus_fails_start_up_visibly(tmp_path: Path) -> None:
    with TestClient(create_app(RetrieverOptions(corpus_root=tmp_path))) as client:
        health = poll_until(
            lambda: (r := client.get("/health")).status_code == 500 and r,
            "start-up to fail",
            timeout_s=10,
        )
        assert "no passages" in health.json()["error"]["message"]
        ready = client.get("/ready")
        assert ready.status_code == 503 and "no passages" in ready.json()["error"]["message"]


def test_unknown_routes_and_methods_use_the_error_shape() -> None:
    with TestClient(create_app(RetrieverOptions(), start=False)) as client:
        missing = client.get("/nope")
        assert missing.status_code == 404 and missing.json()["error"]["type"] == "not_found_error"
        wrong = client.get("/search")
        assert wrong.status_code == 405 and wrong.json()["error"]["message"]


def test_options_refuse_two_stores() -> None:
    import pytest
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="not both"):
        RetrieverOptions(qdrant_path=Path("/tmp/x"), qdrant_url="http://qdrant:6333")
