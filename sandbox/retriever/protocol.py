"""The retriever's HTTP protocol: request and response bodies, and the one error shape."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr

__all__ = ["Passage", "SearchRequest", "SearchResponse", "Timings"]


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
