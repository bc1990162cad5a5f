"""The vector store: a Qdrant collection of passage embeddings.

Locally Qdrant runs inside this process (the client's embedded mode, in memory or in a folder);
in compose the same code talks to the Qdrant server. The collection is rebuilt at every start:
the corpus is small and the notes change with the repository.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from qdrant_client import QdrantClient, models

from sandbox.retriever.corpus import Passage
from sandbox.retriever.rerank import Candidate

__all__ = ["VectorStore"]

_BATCH = 256


class VectorStore:
    def __init__(self, collection: str, path: Path | None = None, url: str | None = None) -> None:
        if url is not None:
            self._client = QdrantClient(url=url)
        elif path is not None:
            path.mkdir(parents=True, exist_ok=True)
            self._client = QdrantClient(path=str(path))
        else:
            self._client = QdrantClient(location=":memory:")
        self.collection = collection
        self.size = 0
        # The embedded store is plain Python over numpy; one search at a time keeps it simple
        # and costs nothing measurable on two cores (a search takes about a millisecond).
        self._lock = threading.Lock()

    def rebuild(self, passages: Sequence[Passage], vectors: np.ndarray) -> None:
        dimension = int(vectors.shape[1])
        with self._lock:
            if self._client.collection_exists(self.collection):
                self._client.delete_collection(self.collection)
            self._client.create_collection(
                self.collection,
                vectors_config=models.VectorParams(size=dimension, distance=models.Distance.COSINE),
            )
            for start in range(0, len(passages), _BATCH):
                chunk = passages[start : start + _BATCH]
                self._client.upsert(
                    self.collection,
                    points=[
                        models.PointStruct(
                            # Stable ids: the same passage gets the same id at every build.
                            id=str(uuid.uuid5(uuid.NAMESPACE_URL, f"{p.source}\n{p.text}")),
                            vector=vectors[start + i].tolist(),
                            payload={"text": p.text, "source": p.source},
                        )
                        for i, p in enumerate(chunk)
                    ],
                    wait=True,
                )
            self.size = len(passages)

    def search(self, vector: np.ndarray, limit: int) -> list[Candidate]:
        with self._lock:
            response = self._client.query_points(
                self.collection, query=vector.tolist(), limit=limit, with_payload=True
            )
        return [
            Candidate(str(point.payload["text"]), str(point.payload["source"]), float(point.score))
            for point in response.points
            if point.payload is not None
        ]

    def close(self) -> None:
        self._client.close()
