"""What the benches share to turn samples into the figures they print."""

from __future__ import annotations

__all__ = ["quantile"]


def quantile(values: list[float], q: float) -> float:
    """The nearest-rank quantile (``q`` in 0..1) of a non-empty list: a value that was measured,
    never one interpolated between two."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]
