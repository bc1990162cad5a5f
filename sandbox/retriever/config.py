"""The retriever's own options (the shared ports and paths stay in ``sandbox.settings``)."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, model_validator

from sandbox.settings import REPO_ROOT

__all__ = ["DEFAULT_CORPUS_GLOBS", "RetrieverOptions"]

# What the index is built from: the handbook and the incident notes, relative to the corpus root.
DEFAULT_CORPUS_GLOBS: tuple[str, ...] = ("docs/**/*.md", "README.md", "incidents/**/*.md")


class RetrieverOptions(BaseModel):
    """How one retriever process runs. Every field is also a ``python -m sandbox.retriever`` flag."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    host: str = "127.0.0.1"
    port: int = Field(8200, ge=1, le=65535)
    corpus_root: Path = REPO_ROOT
    corpus_globs: tuple[str, ...] = DEFAULT_CORPUS_GLOBS
    # Chunks are built from paragraphs up to about this many characters; a longer paragraph
    # is its own chunk. all-MiniLM-L6-v2 reads 256 word pieces, roughly 1,000 characters.
    chunk_chars: int = Field(800, ge=100, le=4000)
    # Where vectors live: Qdrant's embedded mode in memory (default), on disk under a folder
    # (one process only: Qdrant locks it), or a Qdrant server (compose).
    qdrant_path: Path | None = None
    qdrant_url: str | None = None
    collection: str = "sandbox_notes"
    # The vector search returns this many candidates per requested passage (at least
    # `min_candidates`) for the rerank step to reorder.
    candidates_per_result: int = Field(4, ge=1, le=20)
    min_candidates: int = Field(20, ge=1, le=200)
    # Final score = (1 - lexical_weight) * cosine + lexical_weight * query-term overlap.
    lexical_weight: float = Field(0.3, ge=0.0, le=1.0)
    max_k: int = Field(50, ge=1, le=200)
    max_query_chars: int = Field(4000, ge=1)
    # torch's intra-op threads: one query is a few milliseconds on one thread, and the two
    # cores are shared with vLLM.
    torch_threads: int = Field(1, ge=1, le=64)
    # OTLP/HTTP traces endpoint (…/v1/traces); "none" exports nothing; None lets
    # sandbox.telemetry choose (OTEL_* variables, then the local trace sink). Spans are created
    # either way, so exemplars and logs carry trace ids.
    otlp_endpoint: str | None = None
    service_name: str = "retriever"

    @model_validator(mode="after")
    def _one_store(self) -> RetrieverOptions:
        if self.qdrant_path is not None and self.qdrant_url is not None:
            raise ValueError(
                "give qdrant_path (embedded, on disk) or qdrant_url (server), not both"
            )
        return self
