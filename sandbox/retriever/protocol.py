"""The retriever's HTTP protocol: request and response bodies, and the one error shape."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr

__all__ = ["Passage", "SearchRequest", "SearchResponse", "Timings", "error_body"]


class SearchRequest(BaseModel):
    # Unknown fields are refused so that a typo (``top_k``) is an error, not a silent default.
    model_config = ConfigDict(extra="forbid")

    query: StrictStr = Field(min_length=1, description="the text to find passages for")
    k: StrictInt = Field(
        5, ge=1, description="how many passages to return (at most the service's max_k)"
    )


class Passage(BaseModel):
    text: str
    score: float = Field(description="reranked relevance: higher is better, roughly 0..1")
    source: str = Field(description="path#section of the note the passage comes from")


class Timings(BaseModel):
    """Seconds spent in each retrieval part, injected fault delays included."""

    embed: float
    search: float
    rerank: float


class SearchResponse(BaseModel):
    passages: list[Passage]
    timings: Timings


def error_body(
    message: str, type_: str, param: str | None = None, code: str | None = None
) -> dict[str, Any]:
    """The OpenAI error shape every non-2xx answer uses."""
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}
