"""Validation of completion requests: what the gateway must know before it routes one.

The gateway checks the fields it acts on (model, prompt/messages, max_tokens, n, stream) and,
as the OpenAI API does, the types, ranges and enumerations of the standard sampling and format
fields (``temperature`` 0-2, ``top_p`` 0-1, penalties -2..2, ``messages[].role``,
``response_format.type``, ``tool_choice``, ``stream_options``...), so a request OpenAI would
refuse is refused before it reaches an engine. Every other field is forwarded untouched, so
vLLM's own extensions (``ignore_eos``, ``top_k``, ``min_tokens``...) keep working and vLLM's
validation answers them. Each problem becomes a 400 naming the field in ``param``; an unknown
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
    "json_object",
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


def json_object(raw: bytes) -> dict[str, Any]:
    """A request body that must be one JSON object: the client routes and the admin routes
    refuse anything else with the same 400."""
    try:
        body = json.loads(raw)
    except ValueError as exc:
        raise _bad(f"request body is not valid JSON: {exc}", None, "invalid_json") from None
    if not isinstance(body, dict):
        raise _bad("request body must be a JSON object", None, "invalid_type")
    return body


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
        _enum(message["role"], ROLES, f"messages[{i}].role")
        content = message.get("content")
        if content is not None and not isinstance(content, (str, list)):
            raise _bad(
                f"messages[{i}].content: must be a string or a list of parts",
                f"messages[{i}].content",
                "invalid_type",
            )


# OpenAI's enumerations, plus what vLLM accepts beyond them (noted), so nothing vLLM serves is refused.
ROLES = ("system", "user", "assistant", "tool", "function", "developer")
RESPONSE_FORMATS = ("text", "json_object", "json_schema", "structural_tag")  # the last: vLLM's
TOOL_CHOICES = ("none", "auto", "required")
# name: (low, high) for the numbers OpenAI bounds; None = no bound on that side.
_NUMBER_RANGES: dict[str, tuple[float | None, float | None]] = {
    "temperature": (0.0, 2.0),
    "top_p": (0.0, 1.0),
    "presence_penalty": (-2.0, 2.0),
    "frequency_penalty": (-2.0, 2.0),
}


def _quoted(values: tuple[str, ...]) -> str:
    return ", ".join(f"'{v}'" for v in values)


def _enum(value: Any, allowed: tuple[str, ...], param: str) -> None:
    if not isinstance(value, str):
        raise _bad(f"{param}: must be a string, one of {_quoted(allowed)}", param, "invalid_type")
    if value not in allowed:
        raise _bad(
            f"Invalid value for {param}: '{value}'. Supported values are: {_quoted(allowed)}.",
            param,
        )


def _number_field(body: dict[str, Any], name: str, low: float | None, high: float | None) -> None:
    value = body.get(name)
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _bad(f"{name}: must be a number, got {type(value).__name__}", name, "invalid_type")
    if (low is not None and value < low) or (high is not None and value > high):
        raise _bad(f"{name}: must be between {low:g} and {high:g}, got {value}", name)


def _bool_field(body: dict[str, Any], name: str, param: str | None = None) -> None:
    value = body.get(name)
    if value is not None and not isinstance(value, bool):
        raise _bad(f"{param or name}: must be a boolean", param or name, "invalid_type")


def _check_common(body: dict[str, Any]) -> None:
    """The fields both routes share: sampling numbers, stop, seed, logit_bias, user."""
    for name, (low, high) in _NUMBER_RANGES.items():
        _number_field(body, name, low, high)
    _int_field(body, "seed", -(2**63), 2**64 - 1)
    stop = body.get("stop")
    if stop is not None and not (
        isinstance(stop, str) or (isinstance(stop, list) and all(isinstance(x, str) for x in stop))
    ):
        raise _bad("stop: must be a string or a list of strings", "stop", "invalid_type")
    bias = body.get("logit_bias")
    if bias is not None:
        if not isinstance(bias, dict):
            raise _bad(
                "logit_bias: must be an object of token id -> bias", "logit_bias", "invalid_type"
            )
        for token, value in bias.items():
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise _bad(f"logit_bias.{token}: must be a number", "logit_bias", "invalid_type")
            if not -100 <= value <= 100:
                raise _bad(f"logit_bias.{token}: must be between -100 and 100", "logit_bias")
    user = body.get("user")
    if user is not None and not isinstance(user, str):
        raise _bad("user: must be a string", "user", "invalid_type")
    options = body.get("stream_options")
    if options is not None:
        if not isinstance(options, dict):
            raise _bad("stream_options: must be an object", "stream_options", "invalid_type")
        if not body.get("stream"):
            raise _bad("stream_options: only allowed when stream is true", "stream_options")
        for flag in ("include_usage", "continuous_usage_stats"):  # the second: vLLM's
            _bool_field(options, flag, f"stream_options.{flag}")


def _check_chat_fields(body: dict[str, Any]) -> None:
    response_format = body.get("response_format")
    if response_format is not None:
        if not isinstance(response_format, dict):
            raise _bad("response_format: must be an object", "response_format", "invalid_type")
        if "type" not in response_format:
            raise _bad(
                "response_format.type: required",
                "response_format.type",
                "missing_required_parameter",
            )
        _enum(response_format["type"], RESPONSE_FORMATS, "response_format.type")
        if response_format["type"] == "json_schema" and not isinstance(
            response_format.get("json_schema"), dict
        ):
            raise _bad(
                "response_format.json_schema: required (an object) when type is json_schema",
                "response_format.json_schema",
                "missing_required_parameter",
            )
    tools = body.get("tools")
    if tools is not None:
        if not isinstance(tools, list):
            raise _bad("tools: must be a list", "tools", "invalid_type")
        for i, tool in enumerate(tools):
            if not isinstance(tool, dict):
                raise _bad(f"tools[{i}]: must be an object", f"tools[{i}]", "invalid_type")
            _enum(tool.get("type"), ("function",), f"tools[{i}].type")
            function = tool.get("function")
            if not isinstance(function, dict) or not isinstance(function.get("name"), str):
                raise _bad(
                    f"tools[{i}].function.name: required (a string)",
                    f"tools[{i}].function.name",
                    "missing_required_parameter",
                )
    tool_choice = body.get("tool_choice")
    if tool_choice is not None:
        if isinstance(tool_choice, str):
            _enum(tool_choice, TOOL_CHOICES, "tool_choice")
        elif isinstance(tool_choice, dict):
            _enum(tool_choice.get("type"), ("function",), "tool_choice.type")
            function = tool_choice.get("function")
            if not isinstance(function, dict) or not isinstance(function.get("name"), str):
                raise _bad(
                    "tool_choice.function.name: required (a string)",
                    "tool_choice.function.name",
                    "missing_required_parameter",
                )
        else:
            raise _bad(
                f"tool_choice: must be one of {_quoted(TOOL_CHOICES)} or a function object",
                "tool_choice",
                "invalid_type",
            )
        if tool_choice not in ("none", "auto") and not tools:
            raise _bad("tool_choice: needs tools", "tool_choice")
    _bool_field(body, "parallel_tool_calls")
    _bool_field(body, "logprobs")
    _int_field(body, "top_logprobs", 0, 20)


def _check_completion_fields(body: dict[str, Any]) -> None:
    _bool_field(body, "echo")
    _int_field(body, "logprobs", 0, 20)
    _int_field(body, "best_of", 1, MAX_N)
    suffix = body.get("suffix")
    if suffix is not None and not isinstance(suffix, str):
        raise _bad("suffix: must be a string", "suffix", "invalid_type")


def parse_request(
    raw: bytes, route: str, models: list[str], max_tokens_limit: int, rag_header: str | None
) -> ParsedRequest:
    body = json_object(raw)
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
    _check_common(body)
    if route == CHAT_ROUTE:
        _check_chat_fields(body)
    else:
        _check_completion_fields(body)
    stream_options = body.get("stream_options")
    wants_usage = bool(stream_options and stream_options.get("include_usage"))

    rag = body.pop(RAG_FIELD, False)
    if not isinstance(rag, bool):
        raise _bad(f"{RAG_FIELD}: must be a boolean", RAG_FIELD, "invalid_type")
    rag = rag or (rag_header or "").strip().lower() in ("1", "true", "yes")

    return ParsedRequest(route, body, model, stream, max_tokens, n, rag, wants_usage)
