"""Undoing a wrong mitigation leaves the scenario as the learner found it, also when the
mitigation replaced one of the drill's own setup changes (cold-start's autoscaler policy)."""

from __future__ import annotations

from pathlib import Path

import faults
from sandbox.autoscaler.options import load_options, options_path
from sandbox.drill.recovery import undo
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
