"""The rerank step: lexical overlap rescoring of the vector search's candidates.

Dense embeddings find passages about the same topic; they are weak on exact terms (a metric
name, ``max_num_seqs``). The reranker mixes in how many of the query's distinct content words
the passage contains:

    score = (1 - w) * cosine + w * |query terms in passage| / |query terms|

with ``w = lexical_weight`` (0.3 by default). Terms are lower-cased word tokens of two or more
characters, minus a short stop-word list; ``kv_cache_usage_perc`` also yields ``kv``, ``cache``,
``usage``, ``perc`` so identifiers match prose. It is cheap (microseconds per candidate), and
it is real work whose cost grows with the candidate list, like a cross-encoder's would.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["STOP_WORDS", "Candidate", "rerank", "terms"]

STOP_WORDS = frozenset(
    "a an and are as at be by can do does for from how i in is it its of on or so that the this "
    "to was what when where which who why with you your my me we our not no than then there".split()
)
_WORD = re.compile(r"[a-z0-9]+(?:[._:-][a-z0-9]+)*")


@dataclass(frozen=True)
class Candidate:
    text: str
    source: str
    score: float  # cosine similarity from the vector search, then the reranked score


def terms(text: str) -> set[str]:
    """Content words of ``text``; compound identifiers add their parts too."""
    out: set[str] = set()
    for word in _WORD.findall(text.lower()):
        parts = [word, *re.split(r"[._:-]", word)] if re.search(r"[._:-]", word) else [word]
        out.update(p for p in parts if len(p) >= 2 and p not in STOP_WORDS)
    return out


def rerank(
    query: str, candidates: Sequence[Candidate], k: int, lexical_weight: float
) -> list[Candidate]:
    """The ``k`` best candidates by the mixed score, best first (ties keep the search's order)."""
    wanted = terms(query)
    rescored = []
    for candidate in candidates:
        overlap = len(wanted & terms(candidate.text)) / len(wanted) if wanted else 0.0
        score = (1.0 - lexical_weight) * candidate.score + lexical_weight * overlap
        rescored.append(Candidate(candidate.text, candidate.source, score))
    rescored.sort(key=lambda c: c.score, reverse=True)  # sort is stable
    return rescored[:k]
