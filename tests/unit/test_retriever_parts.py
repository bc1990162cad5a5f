"""The retriever's parts without the service: chunking, rerank, fault parsing and sampling, exposition."""

from __future__ import annotations

import random
import statistics
import time
from pathlib import Path

import pytest
from prometheus_client.openmetrics.parser import text_string_to_metric_families

from sandbox.buckets import LATENCY_BUCKETS_S
from sandbox.retriever.corpus import chunk_markdown, load_corpus
from sandbox.retriever.faults import (
    FaultState,
    HeavyTailParams,
    JitterParams,
    RetrieverFaultError,
    _Sampler,
    parse_fault,
)
from sandbox.retriever.metrics import RetrieverMetrics
from sandbox.retriever.rerank import Candidate, rerank, terms
from sandbox.telemetry import render_metrics

DOC = """# Title

Intro paragraph.

## KV cache

First paragraph about blocks.

```python
# not a heading
x = 1

y = 2
```

### Preemption

Evicted sequences are recomputed.
"""


def test_chunks_follow_sections_and_keep_code_fences_whole() -> None:
    passages = chunk_markdown(DOC, "docs/x.md", chunk_chars=800)
    assert [p.source for p in passages] == [
        "docs/x.md#title",
        "docs/x.md#kv-cache",
        "docs/x.md#preemption",
    ]
    assert passages[1].text.startswith("Title > KV cache\n\n")
    assert "# not a heading\nx = 1\n\ny = 2\n```" in passages[1].text  # the fence was not cut
    assert passages[2].text.startswith("Title > KV cache > Preemption")


def test_long_sections_are_cut_at_paragraphs() -> None:
    paragraphs = [f"paragraph {i} " + "word " * 40 for i in range(10)]
    passages = chunk_markdown("# Long\n\n" + "\n\n".join(paragraphs), "a.md", chunk_chars=500)
    assert len(passages) > 2
    assert all(len(p.text) <= 500 + len("Long\n\n") + 10 for p in passages)
    joined = " ".join(p.text for p in passages)
    assert all(f"paragraph {i} " in joined for i in range(10))


def test_load_corpus_reads_the_globs_relative_to_the_root(tmp_path: Path) -> None:
    (tmp_path / "docs" / "sub").mkdir(parents=True)
    (tmp_path / "docs" / "sub" / "a.md").write_text("# A\n\ntext a")
    (tmp_path / "incidents" / "kv").mkdir(parents=True)
    (tmp_path / "incidents" / "kv" / "notes.md").write_text("# Notes\n\ntext b")
    (tmp_path / "other.md").write_text("# Not indexed\n\nno")
    passages = load_corpus(tmp_path, ("docs/**/*.md", "README.md", "incidents/**/*.md"), 800)
    assert sorted(p.source for p in passages) == ["docs/sub/a.md#a", "incidents/kv/notes.md#notes"]


def test_terms_split_identifiers_and_drop_stop_words() -> None:
    assert terms("What is vllm:kv_cache_usage_perc?") >= {"vllm", "kv", "cache", "usage", "perc"}
    assert "what" not in terms("What is it") and "is" not in terms("What is it")


def test_rerank_lifts_the_passage_with_the_query_terms() -> None:
    candidates = [
        Candidate("memory pressure in general", "a", 0.60),
        Candidate("preemption happens when the KV cache is full", "b", 0.55),
    ]
    ranked = rerank("KV cache preemption", candidates, k=2, lexical_weight=0.3)
    assert [c.source for c in ranked] == ["b", "a"]
    assert ranked[0].score == pytest.approx(0.7 * 0.55 + 0.3 * 1.0)
    # Without the lexical part, the vector order stands.
    assert [
        c.source for c in rerank("KV cache preemption", candidates, k=1, lexical_weight=0.0)
    ] == ["a"]


def test_fault_errors_name_the_field() -> None:
    with pytest.raises(RetrieverFaultError) as caught:
        parse_fault(
            {"phase": "search", "kind": "jitter", "params": {"mean_s": "slow", "jitter_s": 0.1}}
        )
    assert caught.value.param == "params.mean_s"
    with pytest.raises(RetrieverFaultError) as caught:
        parse_fault("not an object")
    assert caught.value.param == "body"


def test_distributions_have_the_advertised_shape() -> None:
    rng = random.Random(7)
    lognormal = _Sampler(HeavyTailParams(median_s=0.05, sigma=1.0, cap_s=60), rng)
    draws = [lognormal.draw() for _ in range(4000)]
    assert statistics.median(draws) == pytest.approx(0.05, rel=0.1)
    assert max(draws) > 10 * 0.05  # a heavy tail: some draws far above the median

    pareto = _Sampler(
        HeavyTailParams(distribution="pareto", median_s=0.05, alpha=1.2, cap_s=2.0), rng
    )
    draws = [pareto.draw() for _ in range(4000)]
    assert statistics.median(draws) == pytest.approx(0.05, rel=0.1)
    assert max(draws) == 2.0  # capped

    jitter = _Sampler(JitterParams(mean_s=0.1, jitter_s=0.05), rng)
    draws = [jitter.draw() for _ in range(2000)]
    assert 0.05 <= min(draws) < 0.06 and 0.14 < max(draws) <= 0.15


def test_state_tracks_faults_and_reports_changes() -> None:
    changes: list[tuple[str, float]] = []
    state = FaultState(on_change=lambda phase, mean: changes.append((phase, mean)), seed=1)
    state.set(
        parse_fault({"phase": "embed", "kind": "fixed", "params": {"delay_s": 0.2}, "ttl_s": 0.2})
    )
    state.set(parse_fault({"phase": "search", "kind": "fixed", "params": {"delay_s": 0.1}}))
    assert state.draw("embed")[0] == 0.2 and state.draw("rerank") == (0.0, None)
    time.sleep(0.25)
    assert set(state.active()) == {"search"}  # embed's TTL passed
    assert state.clear() == ["search"] and state.clear() == []
    assert changes == [("embed", 0.2), ("search", 0.1), ("embed", 0.0), ("search", 0.0)]


def test_exposition_follows_the_accept_header() -> None:
    metrics = RetrieverMetrics()
    metrics.step["search"].observe(0.003, {"trace_id": "ab" * 16})
    openmetrics, content_type = render_metrics(
        metrics.registry, "application/openmetrics-text; version=1.0.0"
    )
    assert content_type.startswith("application/openmetrics-text")
    families = {f.name: f for f in text_string_to_metric_families(openmetrics.decode())}
    bucket = next(
        s
        for s in families["sandbox_retriever_step_seconds"].samples
        if s.labels.get("step") == "search" and s.labels.get("le") == "0.005"
    )
    assert (
        bucket.value == 1
        and bucket.exemplar is not None
        and bucket.exemplar.labels["trace_id"] == "ab" * 16
    )
    text, content_type = render_metrics(metrics.registry, None)
    assert content_type.startswith("text/plain") and b"trace_id" not in text


def test_buckets_are_fine_below_100ms_and_reach_minutes() -> None:
    assert sum(1 for b in LATENCY_BUCKETS_S if b <= 0.1) >= 8
    assert LATENCY_BUCKETS_S[-1] >= 120 and list(LATENCY_BUCKETS_S) == sorted(LATENCY_BUCKETS_S)


@pytest.mark.parametrize("on_disk", [False, True])
def test_vector_store_returns_nearest_passages(tmp_path: Path, on_disk: bool) -> None:
    import numpy as np

    from sandbox.retriever.corpus import Passage
    from sandbox.retriever.store import VectorStore

    rng = np.random.default_rng(3)
    vectors = rng.normal(size=(50, 16)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    passages = [Passage(f"text {i}", f"doc.md#p{i}") for i in range(50)]
    store = VectorStore("test", path=tmp_path / "qdrant" if on_disk else None)
    try:
        store.rebuild(passages, vectors)
        store.rebuild(passages, vectors)  # a rebuild replaces the collection, it does not add to it
        assert store.size == 50
        found = store.search(vectors[17], limit=3)
        assert found[0].source == "doc.md#p17" and found[0].score == pytest.approx(1.0, abs=1e-4)
        assert len(found) == 3 and found[0].score >= found[1].score >= found[2].score
    finally:
        store.close()
    if on_disk:
        assert any((tmp_path / "qdrant").iterdir())
