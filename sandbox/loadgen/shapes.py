"""Shapes: how a tenant's rate changes over the run, as a factor applied to its base rate.

``factor(t)`` is the multiplier at ``t`` seconds after the start; the arrival process integrates
``base_rate * factor(t)``. Kinds (the profile's ``shape.kind``):

- ``constant``: 1 all the time;
- ``step``: ``factor`` from ``at_s`` on (a tenant doubles its traffic at 60 s);
- ``ramp``: linear from ``start`` to ``end`` between ``at_s`` and ``at_s + duration_s``, held after;
- ``spike``: ``factor`` between ``at_s`` and ``at_s + duration_s``, 1 elsewhere;
- ``schedule``: phases one after another, each a hold (``factor``) or a ramp (``start``/``end``)
  for ``duration_s``; with ``repeat`` the list starts over, otherwise the last value is held.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = ["Constant", "Phase", "Ramp", "Schedule", "Shape", "Spike", "Step"]

_FACTOR = Field(ge=0, le=1000, description="multiplier of the tenant's rate")


class _Shape(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    def factor(self, t: float) -> float:
        raise NotImplementedError

    def change_points(self) -> list[float]:
        """Times where the factor changes slope or jumps (the arrival process steps over them exactly)."""
        return []


class Constant(_Shape):
    kind: Literal["constant"] = "constant"

    def factor(self, t: float) -> float:
        return 1.0


class Step(_Shape):
    kind: Literal["step"] = "step"
    at_s: float = Field(ge=0)
    factor_: float = Field(alias="factor", ge=0, le=1000)

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    def factor(self, t: float) -> float:
        return self.factor_ if t >= self.at_s else 1.0

    def change_points(self) -> list[float]:
        return [self.at_s]


class Ramp(_Shape):
    kind: Literal["ramp"] = "ramp"
    at_s: float = Field(0.0, ge=0)
    duration_s: float = Field(gt=0)
    start: float = _FACTOR
    end: float = _FACTOR

    def factor(self, t: float) -> float:
        if t <= self.at_s:
            return self.start
        if t >= self.at_s + self.duration_s:
            return self.end
        return self.start + (self.end - self.start) * (t - self.at_s) / self.duration_s

    def change_points(self) -> list[float]:
        return [self.at_s, self.at_s + self.duration_s]


class Spike(_Shape):
    kind: Literal["spike"] = "spike"
    at_s: float = Field(ge=0)
    duration_s: float = Field(gt=0)
    factor_: float = Field(alias="factor", ge=0, le=1000)

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    def factor(self, t: float) -> float:
        return self.factor_ if self.at_s <= t < self.at_s + self.duration_s else 1.0

    def change_points(self) -> list[float]:
        return [self.at_s, self.at_s + self.duration_s]


class Phase(BaseModel):
    """One phase of a schedule: hold ``factor``, or ramp from ``start`` to ``end``."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    duration_s: float = Field(gt=0)
    factor_: float | None = Field(None, alias="factor", ge=0, le=1000)
    start: float | None = Field(None, ge=0, le=1000)
    end: float | None = Field(None, ge=0, le=1000)

    @model_validator(mode="after")
    def _one_kind(self) -> Phase:
        hold = self.factor_ is not None
        ramp = self.start is not None or self.end is not None
        if hold == ramp:
            raise ValueError("give either factor (a hold) or start and end (a ramp)")
        if ramp and (self.start is None or self.end is None):
            raise ValueError("a ramp phase needs both start and end")
        return self

    def at(self, dt: float) -> float:
        if self.factor_ is not None:
            return self.factor_
        assert self.start is not None and self.end is not None
        return self.start + (self.end - self.start) * min(1.0, dt / self.duration_s)

    def last(self) -> float:
        if self.factor_ is not None:
            return self.factor_
        assert self.end is not None  # a ramp has both ends (checked at validation)
        return self.end


class Schedule(_Shape):
    kind: Literal["schedule"] = "schedule"
    phases: list[Phase] = Field(min_length=1)
    repeat: bool = False

    def _period(self) -> float:
        return sum(p.duration_s for p in self.phases)

    def factor(self, t: float) -> float:
        period = self._period()
        if t >= period:
            if not self.repeat:
                return self.phases[-1].last()
            t = t % period
        for phase in self.phases:
            if t < phase.duration_s:
                return phase.at(t)
            t -= phase.duration_s
        return self.phases[-1].last()

    def change_points(self) -> list[float]:
        points, t = [], 0.0
        for phase in self.phases:
            points.append(t)
            t += phase.duration_s
        points.append(t)
        return points  # one period; the arrival process handles repeats by stepping


Shape = Annotated[Constant | Step | Ramp | Spike | Schedule, Field(discriminator="kind")]
