"""Pydantic's validation errors as (field, message) pairs: the one place that reads them.

Every boundary of the sandbox (settings, manifests, profiles, versions, autoscaler options,
fault parameters, admin and API bodies) reports a bad value by naming its field as a dotted
path. They differ only in how they print the pairs, so each keeps its wording and shares this.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from pydantic import ValidationError

__all__ = ["field_path", "field_problems"]

# Parts of a location that pydantic adds for unions and validators: no meaning to an author.
_INTERNAL_PREFIXES = ("function-", "tagged-union")


def field_path(
    error: Mapping[str, Any], *, prefix: str = "", default: str = "", skip: Iterable[str] = ()
) -> str:
    """The error's location as ``prefix`` + ``a.b.0.c``; ``default`` when it has none."""
    skipped = set(skip)
    parts = [
        str(p)
        for p in error["loc"]
        if str(p) not in skipped and not str(p).startswith(_INTERNAL_PREFIXES)
    ]
    if not parts:
        return default
    return prefix + ".".join(parts)


def field_problems(
    errors: ValidationError | Sequence[Mapping[str, Any]],
    *,
    prefix: str = "",
    default: str = "",
    skip: Iterable[str] = (),
) -> list[tuple[str, str]]:
    """``(field, message)`` for every error, fields as :func:`field_path` prints them."""
    items = errors.errors() if isinstance(errors, ValidationError) else errors
    skipped = tuple(skip)
    return [
        (field_path(e, prefix=prefix, default=default, skip=skipped), str(e["msg"])) for e in items
    ]
