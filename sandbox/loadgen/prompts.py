"""Prompts of an exact token length, cut from the project's own text.

A profile that says 1,500 prompt tokens must make the engine count 1,500. The builder tokenizes
the corpus (``README.md`` and ``docs/*.md``) once with the engine's own tokenizer, takes a window
of token ids at a random offset (wrapping around), decodes it and checks the count by encoding
again, as the engine will. The tokenizer adds a BOS token by itself, so a prompt of ``n`` tokens
is a window of ``n - 1`` ids. Decoding a window that starts inside a multi-byte character can
change the count; the builder then moves the window and tries again (bounded).

Exact for ``/v1/completions``; a chat request adds the chat template's tokens around it.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from tokenizers import Tokenizer

from sandbox.exceptions import ConfigError
from sandbox.settings import REPO_ROOT

__all__ = ["DEFAULT_TOKENIZER", "PromptBuilder", "PromptError", "default_corpus"]

DEFAULT_TOKENIZER = REPO_ROOT / "sandbox" / "model" / "tiny-llama" / "tokenizer.json"
ATTEMPTS = 20


class PromptError(ConfigError):
    """No prompt of the requested length could be built."""


def default_corpus() -> list[Path]:
    files = [REPO_ROOT / "README.md", *sorted((REPO_ROOT / "docs").glob("*.md"))]
    return [f for f in files if f.exists()]


class PromptBuilder:
    def __init__(
        self, tokenizer_path: Path = DEFAULT_TOKENIZER, corpus: Sequence[Path] | None = None
    ) -> None:
        self.tokenizer = Tokenizer.from_file(str(tokenizer_path))
        files = list(corpus) if corpus is not None else default_corpus()
        text = "\n\n".join(f.read_text() for f in files)
        if not text.strip():
            raise PromptError(f"the prompt corpus is empty ({', '.join(map(str, files))})")
        self.special = self.count("")  # tokens the tokenizer adds by itself (BOS): 1 here
        ids = self.tokenizer.encode(text, add_special_tokens=False).ids
        self._ids: list[int] = list(ids)

    def count(self, text: str) -> int:
        """Prompt tokens as the engine counts them (special tokens included)."""
        return len(self.tokenizer.encode(text).ids)

    def _window(self, offset: int, n: int) -> list[int]:
        """``n`` ids from ``offset``, wrapping around the corpus (as often as needed)."""
        ids, size = self._ids, len(self._ids)
        if offset + n <= size:
            return ids[offset : offset + n]
        out = ids[offset:]
        while len(out) < n:
            out = out + ids[: n - len(out)]
        return out

    def build(self, tokens: int, rng: np.random.Generator) -> str:
        """A text the engine counts as exactly ``tokens`` prompt tokens."""
        if tokens <= self.special:
            raise PromptError(
                f"a prompt needs more than {self.special} token(s): the tokenizer adds {self.special} by itself"
            )
        want = tokens - self.special
        for _ in range(ATTEMPTS):
            offset = int(rng.integers(len(self._ids)))
            n = want
            # Re-encoding may merge tokens across the window's edges: adjust the window a few times.
            for _ in range(4):
                text = self.tokenizer.decode(self._window(offset, n))
                got = self.count(text) - self.special
                if got == want:
                    return text
                n += want - got
                if n < 1:
                    break
        raise PromptError(f"no prompt of exactly {tokens} tokens after {ATTEMPTS} attempts")
