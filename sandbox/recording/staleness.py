"""Where the source wrote staleness markers, as far as the recorded samples tell.

Prometheus ends a series with a staleness marker when a scrape of its target succeeds or fails
without it (a failed scrape writes ``up`` = 0), when its target goes away, or when a rule's
result loses it; queries then stop returning it at once instead of for the 5-minute lookback.
The query API hides the markers, so a recording cannot hold them; a replay puts them back:

- a series' *siblings* are the series written at the same moments: the series of the same
  target (``job`` and ``instance``), or for a rule's output (and any series without an
  ``instance``) the series with the same interval and phase, which a rule group's evaluations
  share;
- a gap of more than twice a series' usual interval, during which a sibling has a sample, gets
  a marker at that sibling's first sample in the gap: the scrape or evaluation that went without
  it, where the source wrote it;
- a series that stops before the window ends gets one the same way; a target whose every
  series stops (the target went away), or a rule group whose every output stops (its inputs
  went away; the group is still evaluated), gets one a usual interval after each series' last
  sample;
- an alert's series (``ALERTS``) that stops while its rule group goes on being evaluated ends
  one evaluation after its last sample (the alert resolved).

A gap without any sibling sample is a scrape or an evaluation the source skipped (an overloaded
Prometheus skips rather than queues), and the source wrote no marker there either.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

import numpy as np

from sandbox.recording.format import RecordedSeries

__all__ = ["STALE_NAN", "staleness_markers", "with_markers"]

_ALERTS = frozenset({"ALERTS", "ALERTS_FOR_STATE"})
# Prometheus' staleness marker: a NaN with this exact bit pattern.
STALE_NAN = float(np.array([0x7FF0000000000002], dtype=np.uint64).view(np.float64)[0])


def _usual(times: np.ndarray) -> int:
    return max(1, int(np.median(np.diff(times)))) if len(times) > 1 else 0


def _key(series: RecordedSeries, times: np.ndarray, rules: Collection[str]) -> tuple[object, ...]:
    if series.name in rules or "instance" not in series.labels:
        # A rule group writes all its results at the same aligned instants: same phase.
        usual = _usual(times)
        return ("rule", usual, int(times[0]) % usual if usual else int(times[0]))
    return ("target", series.labels.get("job", ""), series.labels["instance"])


def staleness_markers(
    series: Sequence[RecordedSeries], rules: Collection[str], end_ms: int
) -> list[np.ndarray]:
    """For each series, the times (Unix ms) where the source wrote a staleness marker."""
    times = [np.asarray(s.times_ms, dtype=np.int64) for s in series]
    keys = [_key(s, t, rules) if len(t) else ("empty",) for s, t in zip(series, times, strict=True)]
    members: dict[tuple[object, ...], list[int]] = {}
    for i, key in enumerate(keys):
        members.setdefault(key, []).append(i)
    group_times = {
        key: np.unique(np.concatenate([times[i] for i in idx])) for key, idx in members.items()
    }
    out: list[np.ndarray] = []
    for i in range(len(series)):
        t = times[i]
        key = keys[i]
        siblings = group_times[key]
        if len(t) == 0:
            out.append(np.empty(0, dtype=np.int64))
            continue
        gaps = np.diff(t)
        usual = _usual(t) or _usual(siblings) or 1
        markers: list[int] = []
        alert = series[i].name in _ALERTS  # an alert that resolves ends at once
        for j in np.nonzero(gaps > 2 * usual)[0]:
            a, b = int(t[j]), int(t[j + 1])
            k = int(np.searchsorted(siblings, a + usual // 2, side="right"))
            if k < len(siblings) and int(siblings[k]) < b:  # evaluated or scraped without it
                markers.append(a + usual if alert else int(siblings[k]))
        last = int(t[-1])
        if end_ms - last > 2 * usual:
            k = int(np.searchsorted(siblings, last + usual // 2, side="right"))
            if k < len(siblings):
                markers.append(last + usual if alert else int(siblings[k]))
            elif key[0] == "target" and end_ms - int(siblings[-1]) > 2 * usual:
                markers.append(last + usual)  # the whole target went away
            elif key[0] == "rule":
                # Every output of its group ended together (all fed by one target that went
                # away), but the group goes on being evaluated while Prometheus runs: the next
                # evaluation wrote the markers.
                markers.append(last + usual)
        out.append(np.array(markers, dtype=np.int64))
    return out


def with_markers(series: RecordedSeries, markers: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The series' samples and its staleness markers, merged in time order."""
    times = np.asarray(series.times_ms, dtype=np.int64)
    values = np.asarray(series.values, dtype=np.float64)
    if len(markers) == 0:
        return times, values
    at = np.searchsorted(times, markers, side="left")
    return np.insert(times, at, markers), np.insert(values, at, STALE_NAN)
