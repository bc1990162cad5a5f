"""Validation of completion requests: what the gateway must know before it routes one.

The gateway checks the fields it acts on (model, prompt/messages, max_tokens, n, stream) and
forwards everything else untouched, so vLLM's own extensions (``ignore_eos``...) keep working
and vLLM's validation answers the rest. Each problem becomes a 400 naming the field; an unknown
model a 404. The sandbox's extension field ``sandbox_rag`` (or header ``X-Sandbox-RAG: 1``)
asks for retrieval and is removed before forwarding.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from sandbox.gateway.errors import GatewayError

__all__ = [
    "CHAT_ROUTE",
    "COMPLETIONS_ROUTE",
    "RAG_FIELD",
    "RAG_HEADER",
    "ParsedRequest",
    "parse_request",
]

COMPLETIONS_ROUTE = "/v1/completions"
CHAT_ROUTE = "/v1/chat/completions"
RAG_FIELD = "sandbox_rag"
RAG_HEADER = "x-sandbox-rag"
MAX_N = 16


@dataclass
class ParsedRequest:
    route: str
    body: dict[str, Any]  # what is forwarded (the RAG field removed)
    model: str
    stream: bool
    max_tokens: int | None  # as given; None = the engine's default
    n: int
    rag: bool
    wants_usage: bool  # the client asked for the usage chunk of a stream

    @property
    def is_chat(self) -> bool:
        return self.route == CHAT_ROUTE


def _bad(message: str, param: str | None, code: str = "invalid_value") -> GatewayError:
    return GatewayError(400, message, param, code)


def _int_field(body: dict[str, Any], name: str, low: int, high: int) -> int | None:
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise _bad(f"{name}: must be an integer, got {type(value).__name__}", name, "invalid_type")
    if not low <= value <= high:
        raise _bad(f"{name}: must be between {low} and {high}, got {value}", name)
    return value


def _check_prompt(prompt: Any) -> None:
    ok = isinstance(prompt, str) or (
        isinstance(prompt, list)
        and prompt
        and (
            all(isinstance(p, str) for p in prompt)
            or all(isinstance(p, int) and not isinstance(p, bool) for p in prompt)
            or all(isinstance(p, list) and p and all(isinstance(t, int) for t in p) for p in prompt)
        )
    )
    if not ok:
        raise _bad(
            "prompt: must be a string, a list of strings, or (lists of) token ids",
            "prompt",
            "invalid_type",
        )
    if isinstance(prompt, str) and not prompt:
        raise _bad("prompt: must not be empty", "prompt")


def _check_messages(messages: Any) -> None:
    if not isinstance(messages, list) or not messages:
        raise _bad(
            "messages: must be a non-empty list of {role, content} objects",
            "messages",
            "invalid_type",
        )
    for i, message in enumerate(messages):
        if not isinstance(message, dict) or not isinstance(message.get("role"), str):
            raise _bad(
                f"messages[{i}]: must be an object with a string role",
                f"messages[{i}]",
                "invalid_type",
            )
        content = message.get("content")
        if content is not None and not isinstance(content, (str, list)):
            raise _bad(
                f"messages[{i}].content: must be a string or a list of parts",
                f"messages[{i}].content",
                "invalid_type",
            )


def parse_request(
    raw: bytes, route: str, models: list[str], max_tokens_limit: int, rag_header: str | None
) -> ParsedRequest:
    try:
        body = json.loads(raw)
    except ValueError as exc:
        raise _bad(f"request body is not valid JSON: {exc}", None, "invalid_json") from None
    if not isinstance(body, dict):
        raise _bad("request body must be a JSON object", None, "invalid_type")

    model = body.get("model")
    if model is None:
        raise _bad("model: required", "model", "missing_required_parameter")
    if not isinstance(model, str):
        raise _bad("model: must be a string", "model", "invalid_type")
    if model not in models:
        raise GatewayError(
            404,
            f"The model `{model}` does not exist; served: {', '.join(models)}",
            "model",
            "model_not_found",
        )

    if route == CHAT_ROUTE:
        if "messages" not in body:
            raise _bad("messages: required", "messages", "missing_required_parameter")
        _check_messages(body["messages"])
    else:
        if "prompt" not in body:
            raise _bad("prompt: required", "prompt", "missing_required_parameter")
        _check_prompt(body["prompt"])

    max_tokens = _int_field(body, "max_tokens", 1, max_tokens_limit)
    if route == CHAT_ROUTE and max_tokens is None:
        max_tokens = _int_field(body, "max_completion_tokens", 1, max_tokens_limit)
    n = _int_field(body, "n", 1, MAX_N) or 1

    stream = body.get("stream", False)
    if stream is None:
        stream = False
    if not isinstance(stream, bool):
        raise _bad("stream: must be a boolean", "stream", "invalid_type")
    stream_options = body.get("stream_options")
    if stream_options is not None and not isinstance(stream_options, dict):
        raise _bad("stream_options: must be an object", "stream_options", "invalid_type")
    wants_usage = bool(stream_options and stream_options.get("include_usage"))

    rag = body.pop(RAG_FIELD, False)
    if not isinstance(rag, bool):
        raise _bad(f"{RAG_FIELD}: must be a boolean", RAG_FIELD, "invalid_type")
    rag = rag or (rag_header or "").strip().lower() in ("1", "true", "yes")

    return ParsedRequest(route, body, model, stream, max_tokens, n, rag, wants_usage)
