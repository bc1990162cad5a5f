"""Retrieval for RAG requests: ask the retriever, put its passages in front of the prompt.

The whole call has one deadline (``RagOptions.timeout_s``); when it passes or the retriever
fails, the request is answered without context and the fallback is counted, because a slow
retriever must not take the completion down with it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx

from sandbox.exceptions import SandboxError
from sandbox.gateway.config import RagOptions
from sandbox.gateway.protocol import ParsedRequest
from sandbox.gateway.tokens import TokenCounter

__all__ = ["RetrievalFailed", "attach_context", "query_of", "retrieve"]


class RetrievalFailed(SandboxError):
    """The retriever gave no passages; ``reason`` is ``timeout`` or ``error``."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason


def query_of(request: ParsedRequest) -> str | None:
    """The text to search for: the prompt, or the last user message (None if there is no text)."""
    if request.is_chat:
        for message in reversed(request.body["messages"]):
            content = message.get("content")
            if message.get("role") == "user" and isinstance(content, str):
                return content[-1000:]
        return None
    prompt = request.body["prompt"]
    return prompt[-1000:] if isinstance(prompt, str) else None


async def retrieve(
    client: httpx.AsyncClient, options: RagOptions, query: str, headers: Mapping[str, str]
) -> list[dict[str, Any]]:
    if not options.retriever_url:
        raise RetrievalFailed("error", "no retriever configured")
    try:
        response = await client.post(
            f"{options.retriever_url.rstrip('/')}/search",
            json={"query": query, "k": options.k},
            headers=headers,
            timeout=options.timeout_s,
        )
    except httpx.TimeoutException as exc:
        raise RetrievalFailed(
            "timeout", f"retriever did not answer within {options.timeout_s:g} s"
        ) from exc
    except httpx.HTTPError as exc:
        raise RetrievalFailed("error", f"retriever: {type(exc).__name__}: {exc}") from exc
    if response.status_code != 200:
        raise RetrievalFailed(
            "error", f"retriever answered {response.status_code}: {response.text[:200]}"
        )
    try:
        passages = response.json()["passages"]
        return [p for p in passages if isinstance(p, dict) and isinstance(p.get("text"), str)]
    except (ValueError, KeyError, TypeError) as exc:
        raise RetrievalFailed("error", f"retriever answer has no passages: {exc}") from exc


def attach_context(
    request: ParsedRequest, passages: list[dict[str, Any]], counter: TokenCounter, max_tokens: int
) -> int:
    """Put the passages (cut to ``max_tokens`` tokens) before the prompt; returns tokens added."""
    lines = [
        f"[{i}] {p['text']} (source: {p.get('source', '?')})" for i, p in enumerate(passages, 1)
    ]
    context = counter.truncate("Context:\n" + "\n".join(lines), max_tokens)
    if request.is_chat:
        request.body["messages"] = [
            {"role": "system", "content": context},
            *request.body["messages"],
        ]
    else:
        request.body["prompt"] = f"{context}\n\n{request.body['prompt']}"
    return counter.text(context)
