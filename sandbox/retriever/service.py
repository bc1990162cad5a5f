"""The retriever's logic: start-up (model, index) and one search through embed -> search -> rerank."""

from __future__ import annotations

import asyncio
import enum
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from opentelemetry.trace import Tracer
from starlette.concurrency import run_in_threadpool

from sandbox.exceptions import SandboxError
from sandbox.retriever.config import RetrieverOptions
from sandbox.retriever.corpus import load_corpus
from sandbox.retriever.embedder import Embedder
from sandbox.retriever.faults import FaultState
from sandbox.retriever.metrics import RetrieverMetrics
from sandbox.retriever.rerank import Candidate, rerank
from sandbox.retriever.store import VectorStore
from sandbox.telemetry import exemplar_of

__all__ = ["NotReadyError", "Retriever", "SearchResult", "State"]

log = logging.getLogger("sandbox.retriever")
T = TypeVar("T")


class State(enum.StrEnum):
    STARTING = "starting"
    LOADING_MODEL = "loading_model"
    BUILDING_INDEX = "building_index"
    READY = "ready"
    FAILED = "failed"


class NotReadyError(SandboxError):
    """A search arrived before the index was built (or after start-up failed)."""


@dataclass(frozen=True)
class SearchResult:
    passages: list[Candidate]
    timings: dict[str, float]


class Retriever:
    def __init__(
        self,
        options: RetrieverOptions,
        metrics: RetrieverMetrics,
        tracer: Tracer,
        faults: FaultState,
    ) -> None:
        self.options = options
        self.metrics = metrics
        self.tracer = tracer
        self.faults = faults
        self.state = State.STARTING
        self.error = ""
        self.model_load_s: float | None = None
        self.index_build_s: float | None = None
        self._embedder: Embedder | None = None
        self._store: VectorStore | None = None

    # -- Start-up -------------------------------------------------------------------------

    def start(self) -> None:
        """Read the corpus, load the model, build the index (blocking; run it off the event loop).

        The corpus is read first: a missing corpus fails in milliseconds, not after the model load.
        """
        options = self.options
        try:
            with self.tracer.start_as_current_span("retriever.startup"):
                read_started = time.perf_counter()
                passages = load_corpus(
                    options.corpus_root, options.corpus_globs, options.chunk_chars
                )
                if not passages:
                    raise RuntimeError(
                        f"no passages: nothing matches {list(options.corpus_globs)} under {options.corpus_root}"
                    )
                read_s = time.perf_counter() - read_started

                self.state = State.LOADING_MODEL
                with self.tracer.start_as_current_span("retriever.load_model"):
                    self._embedder = Embedder(options.torch_threads)
                self.model_load_s = self._embedder.load_seconds
                self.metrics.startup_seconds.labels(step="model_load").set(self.model_load_s)
                log.info("model loaded", extra={"seconds": round(self.model_load_s, 3)})

                self.state = State.BUILDING_INDEX
                with self.tracer.start_as_current_span("retriever.build_index") as span:
                    started = time.perf_counter()
                    vectors = self._embedder.encode([p.text for p in passages])
                    store = VectorStore(
                        options.collection, path=options.qdrant_path, url=options.qdrant_url
                    )
                    store.rebuild(passages, vectors)
                    self._store = store
                    self.index_build_s = read_s + time.perf_counter() - started
                    span.set_attribute("sandbox.retriever.passages", len(passages))
                self.metrics.startup_seconds.labels(step="index_build").set(self.index_build_s)
                self.metrics.index_passages.set(len(passages))
                log.info(
                    "index built",
                    extra={"seconds": round(self.index_build_s, 3), "passages": len(passages)},
                )
            self.state = State.READY
        except Exception as exc:
            self.error = f"{type(exc).__name__}: {exc}"
            self.state = State.FAILED
            log.exception("start-up failed")

    def close(self) -> None:
        if self._store is not None:
            self._store.close()

    @property
    def passages(self) -> int:
        return self._store.size if self._store is not None else 0

    # -- Search ---------------------------------------------------------------------------

    async def search(self, query: str, k: int) -> SearchResult:
        """One search; the caller's span (if any) must be current so the step spans nest in it."""
        if self.state is not State.READY or self._embedder is None or self._store is None:
            raise NotReadyError(self.error or f"index not built yet ({self.state.value})")
        embedder, store, options = self._embedder, self._store, self.options
        timings: dict[str, float] = {}
        vector = await self._step("embed", timings, lambda: embedder.encode([query])[0])
        limit = max(k * options.candidates_per_result, options.min_candidates)
        candidates = await self._step("search", timings, lambda: store.search(vector, limit))
        ranked = await self._step(
            "rerank", timings, lambda: rerank(query, candidates, k, options.lexical_weight)
        )
        return SearchResult(ranked, timings)

    async def _step(self, step: str, timings: dict[str, float], work: Callable[[], T]) -> T:
        """Run one part inside its span and timing, after the active fault's delay (if any).

        The delay is awaited, not slept in a thread: a fault adds latency to requests without
        also taking worker threads away from healthy ones.
        """
        delay, fault = self.faults.draw(step)
        with self.tracer.start_as_current_span(f"retrieval.{step}") as span:
            started = time.perf_counter()
            if fault is not None:
                span.set_attribute("sandbox.fault.active", True)
                span.set_attribute("sandbox.fault.kind", fault.spec.kind)
                span.set_attribute("sandbox.fault.injected_delay_s", delay)
                await asyncio.sleep(delay)
            result = await run_in_threadpool(work)
            elapsed = time.perf_counter() - started
        timings[step] = elapsed
        self.metrics.step[step].observe(elapsed, exemplar_of(span))
        return result
