"""Length distributions in tokens: how many prompt tokens a request sends, how many it asks back.

Each kind is a small pydantic model (the profile format) with ``sample(rng)`` returning an int
clipped to ``[min, max]``. A bare integer in a profile means ``fixed``. Sampling uses the
caller's ``numpy.random.Generator`` so a run with a seed is repeatable.
"""

from __future__ import annotations

import math
from typing import Annotated, Literal

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

__all__ = [
    "Empirical",
    "Fixed",
    "Length",
    "LengthSpec",
    "LogNormal",
    "Normal",
    "Uniform",
    "length_to_data",
]

# No request asks for fewer than one token; the engine's context bounds the other side.
MIN_TOKENS = 1
MAX_TOKENS = 131072


class _Dist(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    def sample(self, rng: np.random.Generator) -> int:
        raise NotImplementedError

    def mean(self) -> float:
        """The distribution's mean before clipping (used for summaries and sanity checks)."""
        raise NotImplementedError


class Fixed(_Dist):
    dist: Literal["fixed"] = "fixed"
    value: int = Field(ge=MIN_TOKENS, le=MAX_TOKENS)

    def sample(self, rng: np.random.Generator) -> int:
        return self.value

    def mean(self) -> float:
        return float(self.value)


class _Clipped(_Dist):
    min: int = Field(
        MIN_TOKENS,
        ge=MIN_TOKENS,
        le=MAX_TOKENS,
        description="smallest value sent (samples below are raised to it)",
    )
    max: int = Field(
        MAX_TOKENS,
        ge=MIN_TOKENS,
        le=MAX_TOKENS,
        description="largest value sent (samples above are lowered to it)",
    )

    @model_validator(mode="after")
    def _ordered(self) -> _Clipped:
        if self.min > self.max:
            raise ValueError(f"min ({self.min}) is larger than max ({self.max})")
        return self

    def _clip(self, value: float) -> int:
        return int(min(self.max, max(self.min, round(value))))


class Uniform(_Clipped):
    """Every integer in [min, max] equally likely."""

    dist: Literal["uniform"] = "uniform"
    min: int = Field(ge=MIN_TOKENS, le=MAX_TOKENS)
    max: int = Field(ge=MIN_TOKENS, le=MAX_TOKENS)

    def sample(self, rng: np.random.Generator) -> int:
        return int(rng.integers(self.min, self.max + 1))

    def mean(self) -> float:
        return (self.min + self.max) / 2


class Normal(_Clipped):
    dist: Literal["normal"] = "normal"
    mean_: float = Field(alias="mean", gt=0)
    std: float = Field(ge=0)

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    def sample(self, rng: np.random.Generator) -> int:
        return self._clip(rng.normal(self.mean_, self.std))

    def mean(self) -> float:
        return self.mean_


class LogNormal(_Clipped):
    """Right-skewed lengths, the usual shape of real prompt and answer lengths.

    Given by its median (``exp(mu)``) and ``sigma`` (the standard deviation of the log), which
    say more to a reader than mu does.
    """

    dist: Literal["lognormal"] = "lognormal"
    median: float = Field(gt=0)
    sigma: float = Field(ge=0, le=5)

    def sample(self, rng: np.random.Generator) -> int:
        return self._clip(rng.lognormal(math.log(self.median), self.sigma))

    def mean(self) -> float:
        return self.median * math.exp(self.sigma**2 / 2)


class Empirical(_Dist):
    """Draw from observed lengths (optionally weighted), e.g. taken from a production log."""

    dist: Literal["empirical"] = "empirical"
    values: list[Annotated[int, Field(ge=MIN_TOKENS, le=MAX_TOKENS)]] = Field(min_length=1)
    weights: list[Annotated[float, Field(ge=0)]] | None = None

    @model_validator(mode="after")
    def _weights_match(self) -> Empirical:
        if self.weights is not None:
            if len(self.weights) != len(self.values):
                raise ValueError(
                    f"weights has {len(self.weights)} entries but values has {len(self.values)}"
                )
            if sum(self.weights) <= 0:
                raise ValueError("weights must not all be zero")
        return self

    def _p(self) -> npt.NDArray[np.float64] | None:
        if self.weights is None:
            return None
        w = np.asarray(self.weights, dtype=np.float64)
        p: npt.NDArray[np.float64] = w / w.sum()
        return p

    def sample(self, rng: np.random.Generator) -> int:
        return int(rng.choice(np.asarray(self.values), p=self._p()))

    def mean(self) -> float:
        p = self._p()
        return float(np.average(self.values, weights=p))


def _number_is_fixed(value: object) -> object:
    # A bare number is the common case; making it a `fixed` object here (rather than a union
    # with int) keeps validation errors pointing at one branch: `prompt_tokens.uniform.min`.
    if isinstance(value, int) and not isinstance(value, bool):
        return {"dist": "fixed", "value": value}
    return value


LengthSpec = Annotated[
    Fixed | Uniform | Normal | LogNormal | Empirical, Field(discriminator="dist")
]
# What a profile (or the control API) may say: a number of tokens or a distribution object.
Length = Annotated[LengthSpec, BeforeValidator(_number_is_fixed)]


def length_to_data(length: _Dist) -> int | dict[str, object]:
    """The profile form of a length: a bare number when fixed, else the distribution object."""
    if isinstance(length, Fixed):
        return length.value
    return length.model_dump(by_alias=True)
