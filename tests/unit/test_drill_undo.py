"""Undoing a wrong mitigation leaves the scenario as the learner found it, also when the
mitigation replaced one of the drill's own setup changes (cold-start's autoscaler policy)."""

from __future__ import annotations

from pathlib import Path

import faults
from sandbox.autoscaler.options import load_options, options_path
from sandbox.drill.recovery import undo
from sandbox.drill.steady import scaled_setup
from tests.support import drill_context


def test_a_wrong_mitigation_keeps_the_scenario_signal_and_its_undo_restores_the_setup(
    tmp_path: Path,
) -> None:
    d = drill_context(tmp_path, "interactive", [], incident="cold-start-autoscaling")
    setup = next(s for s in d.m.setup if s.change == "autoscaler-policy")
    wrong = next(m for m in d.m.mitigations if m.id == "lower-rate-target")
    path = options_path(d.settings.run_dir)

    def policy() -> tuple[str, float, int]:
        options = load_options(path)
        return options.signal, options.target, options.min_replicas

    try:
        d.change(setup.change, setup.params, 600, f"{d.source}:setup")
        assert policy() == ("request_rate", 5.0, 1)

        d.change(wrong.action.change, wrong.action.params, 600, f"{d.source}:mitigation:{wrong.id}")
        # The wrong fix lowers the target of the same signal; it must not fall back to the
        # default policy (queue depth), which is the right fix.
        assert policy() == ("request_rate", 2.0, 1)

        undo(d, wrong)
        assert policy() == ("request_rate", 5.0, 1)
        [held] = faults.active_handles(d.ctx)
        assert held.source == f"{d.source}:setup"
    finally:
        for handle in faults.active_handles(d.ctx):
            faults.revert(d.ctx, handle.id, reason="test over")


def test_the_autoscaler_target_scales_with_the_load_and_its_undo_restores_the_file(
    tmp_path: Path,
) -> None:
    """cold-start's target is a rate sized where the drill was tuned: on an engine 1.3 times as
    fast the traffic is 1.3 times as heavy, and so is the target, so the signal stays under it
    by the same margin."""
    d = drill_context(tmp_path, "auto", [], incident="cold-start-autoscaling")
    path = options_path(d.settings.run_dir)
    d.rate_scale = 1.3
    try:
        scaled_setup(d)
        options = load_options(path)
        assert (options.signal, options.target, options.min_replicas) == ("request_rate", 6.5, 1)
        [held] = faults.active_handles(d.ctx)
        assert held.source == f"{d.source}:setup"
    finally:
        for handle in faults.active_handles(d.ctx):
            faults.revert(d.ctx, handle.id, reason="test over")
    assert not path.exists() or load_options(path).target != 6.5
