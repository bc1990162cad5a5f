"""The autoscaler's decisions on recorded signal series: pure logic, no servers."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from sandbox.autoscaler.options import (
    AutoscalerOptions,
    OptionsError,
    load_options,
    options_path,
    update_options,
)
from sandbox.autoscaler.policy import Direction, Observation, Policy

Series = list[tuple[float, float | None, int, int]]  # (t, signal, ready, starting)


def _options(**changes: object) -> AutoscalerOptions:
    base = dict(
        target=4.0,
        tolerance=0.1,
        min_replicas=1,
        max_replicas=3,
        scale_up_stabilization_s=0,
        scale_down_stabilization_s=0,
        scale_up_cooldown_s=0,
        scale_down_cooldown_s=0,
        max_starting=1,
    )
    return AutoscalerOptions.model_validate({**base, **changes})


def _replay(policy: Policy, series: Series) -> list[tuple[float, Direction, int]]:
    out = []
    for t, signal, ready, starting in series:
        decision = policy.decide(Observation(t, signal, ready, starting))
        out.append((t, decision.direction, decision.desired))
    return out


def test_scales_up_when_the_signal_exceeds_the_target() -> None:
    policy = Policy(_options())
    steps = _replay(policy, [(0, 2.0, 1, 0), (5, 4.0, 1, 0), (10, 10.0, 1, 0)])
    assert steps == [(0, Direction.NONE, 1), (5, Direction.NONE, 1), (10, Direction.UP, 2)]
    decision = policy.decide(Observation(11, 10.0, 1, 0))
    assert decision.recommendation == 3  # ceil(1 * 10 / 4)
    assert "signal/target 2.50 over 1 ready" in decision.reason


def test_adds_one_replica_a_step_and_waits_for_the_starting_one() -> None:
    policy = Policy(_options())
    first = policy.decide(Observation(0, 12.0, 1, 0))
    assert (first.recommendation, first.desired, first.direction) == (3, 2, Direction.UP)
    # The new replica is loading: the load still needs a third, but one starts at a time.
    held = policy.decide(Observation(5, 12.0, 1, 1))
    assert held.direction is Direction.NONE and "1 replica(s) still starting" in held.reason
    # A replica that is loading counts: 1 ready at 2x target needs 2 = ready + starting.
    enough = policy.decide(Observation(6, 8.0, 1, 1))
    assert enough.recommendation == 2 and enough.direction is Direction.NONE


def test_tolerance_band_holds() -> None:
    policy = Policy(_options(tolerance=0.1))
    assert policy.decide(Observation(0, 4.39, 1, 0)).direction is Direction.NONE  # ratio 1.0975
    assert "within tolerance" in policy.decide(Observation(1, 3.61, 2, 0)).reason
    assert policy.decide(Observation(2, 4.41, 1, 0)).direction is Direction.UP


def test_bounds_clamp_the_recommendation_and_correct_the_count() -> None:
    policy = Policy(_options(max_replicas=2))
    at_max = policy.decide(Observation(0, 100.0, 2, 0))
    assert (at_max.recommendation, at_max.direction) == (2, Direction.NONE)
    at_min = policy.decide(Observation(1, 0.0, 1, 0))
    assert (at_min.recommendation, at_min.direction) == (1, Direction.NONE)
    assert policy.decide(Observation(2, 0.0, 3, 0)).direction is Direction.DOWN  # above max
    warm = Policy(_options(min_replicas=2, scale_up_cooldown_s=60))
    below = warm.decide(Observation(3, None, 1, 0))  # below the warm minimum: no signal needed
    assert (below.direction, below.desired) == (
        Direction.UP,
        2,
    ) and "below min_replicas 2" in below.reason


def test_no_signal_or_no_ready_replica_holds() -> None:
    policy = Policy(_options())
    assert policy.decide(Observation(0, None, 2, 0)).direction is Direction.NONE
    assert policy.decide(Observation(1, math.nan, 2, 0)).reason == "no signal value: holding"
    assert policy.decide(Observation(2, 0.0, 0, 1)).reason == "no replica ready yet: holding"


def test_scale_down_waits_for_the_stabilisation_window() -> None:
    policy = Policy(_options(scale_down_stabilization_s=60))
    busy: Series = [(float(t), 4.0, 2, 0) for t in range(0, 60, 5)]  # 2 replicas just right
    quiet: Series = [(float(t), 0.5, 2, 0) for t in range(60, 140, 5)]
    steps = _replay(policy, busy + quiet)
    downs = [t for t, direction, _ in steps if direction is Direction.DOWN]
    # The last "2 needed" was at t=55: the window forgets it after t=115.
    assert downs[0] == 120
    assert all(d is Direction.NONE for t, d, _ in steps if t < 120)


def test_scale_down_waits_for_the_cooldown_after_a_scale_up() -> None:
    policy = Policy(_options(scale_down_cooldown_s=60, scale_up_cooldown_s=15))
    assert policy.decide(Observation(0, 9.0, 1, 0)).direction is Direction.UP
    steps = _replay(policy, [(float(t), 0.0, 2, 0) for t in range(5, 70, 5)])
    downs = [t for t, direction, _ in steps if direction is Direction.DOWN]
    assert downs == [60]
    cooling = Policy(_options(scale_down_cooldown_s=60))
    cooling.decide(Observation(0, 9.0, 1, 0))
    assert "down held by the 60 s cooldown" in cooling.decide(Observation(30, 0.0, 2, 0)).reason


def test_scale_up_cooldown_spaces_out_additions() -> None:
    policy = Policy(_options(scale_up_cooldown_s=15))
    steps = _replay(
        policy, [(0.0, 20.0, 1, 0), (5.0, 20.0, 2, 0), (10.0, 20.0, 2, 0), (15.0, 20.0, 2, 0)]
    )
    assert [d for _, d, _ in steps] == [Direction.UP, Direction.NONE, Direction.NONE, Direction.UP]
    assert "up held by the 15 s cooldown" in policy.decide(Observation(20, 20.0, 2, 0)).reason


def test_scale_up_window_ignores_a_single_spike() -> None:
    policy = Policy(_options(scale_up_stabilization_s=10))
    spike = _replay(
        policy,
        [
            (-10.0, 4.0, 1, 0),
            (-5.0, 4.0, 1, 0),
            (0.0, 20.0, 1, 0),
            (5.0, 2.0, 1, 0),
            (10.0, 4.0, 1, 0),
        ],
    )
    assert all(d is Direction.NONE for _, d, _ in spike)
    sustained = _replay(policy, [(float(t), 20.0, 1, 0) for t in range(20, 40, 5)])
    # The last low recommendation (t=10) leaves the 10 s window after t=20.
    assert next(t for t, d, _ in sustained if d is Direction.UP) == 25


def test_a_lagging_request_rate_scales_late_and_queue_depth_early() -> None:
    """The cold-start incident's point, on recorded series: a spike at t=30. Queue depth jumps
    at once; a one-minute request rate climbs slowly, and crosses its target plus tolerance
    (6 x 1.1 = 6.6 per replica) only 40 s later."""
    queue: Series = [(float(t), 0.0 if t < 30 else 12.0, 1, 0) for t in range(0, 90, 5)]
    rate: Series = [
        (float(t), 2.0 if t < 30 else 2.0 + (t - 30) * 0.12, 1, 0) for t in range(0, 90, 5)
    ]
    first_up = {}
    for name, series in (("queue", queue), ("rate", rate)):
        steps = _replay(Policy(_options(target=4.0 if name == "queue" else 6.0)), series)
        first_up[name] = next(t for t, d, _ in steps if d is Direction.UP)
    assert first_up == {"queue": 30.0, "rate": 70.0}


def test_decisions_carry_their_inputs() -> None:
    decision = Policy(_options()).decide(Observation(7.0, 10.0, 1, 0))
    data = decision.to_dict()
    assert data == {
        "now": 7.0,
        "signal": 10.0,
        "target": 4.0,
        "ready": 1,
        "starting": 0,
        "current": 1,
        "recommendation": 3,
        "desired": 2,
        "direction": "up",
        "reason": "signal/target 2.50 over 1 ready",
    }


# -- Options ----------------------------------------------------------------------------------------


def test_signal_presets_select_the_scaled_track() -> None:
    for signal in ("queue_depth", "running", "kv_usage", "request_rate"):
        query = AutoscalerOptions(signal=signal).promql()
        assert 'job="engine",version="stable"' in query, query
    assert (
        AutoscalerOptions(signal="queue_depth").promql()
        == 'avg(vllm:num_requests_waiting{job="engine",version="stable"})'
    )
    assert AutoscalerOptions(signal="custom", query="sum(up)").promql() == "sum(up)"


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"signal": "latency"}, "use one of queue_depth"),
        ({"signal": "custom"}, "needs `query`"),
        ({"min_replicas": 3, "max_replicas": 2}, "min_replicas 3 > max_replicas 2"),
        ({"target": 0}, "target: Input should be greater than 0"),
        ({"readiness_gate": False}, "readiness_gate: Extra inputs are not permitted"),
    ],
)
def test_bad_options_name_the_field(
    tmp_path: Path, changes: dict[str, object], message: str
) -> None:
    with pytest.raises(OptionsError, match=message):
        update_options(options_path(tmp_path), **changes)
    assert not options_path(tmp_path).exists()


def test_update_options_writes_what_the_service_reads(tmp_path: Path) -> None:
    path = options_path(tmp_path)
    assert load_options(path) == AutoscalerOptions()
    before, after = update_options(
        path, signal="request_rate", min_replicas=2, readiness_gating=False
    )
    assert before.signal == "queue_depth" and after.signal == "request_rate"
    assert load_options(path) == after and not load_options(path).readiness_gating
    path.write_text("{not json")
    with pytest.raises(OptionsError, match="not JSON"):
        load_options(path)
