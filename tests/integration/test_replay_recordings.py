"""Each shipped recording replays in MODE=auto: page, expected alerts and signature as recorded,
with no engine, gateway or load generator (real Prometheus and Alertmanager only)."""

from __future__ import annotations

import os
import shutil

import pytest

from sandbox.drill.manifest import incidents_dir, list_incidents
from sandbox.recording.archive import read_meta
from sandbox.recording.drill_hook import RECORDING_NAME
from sandbox.recording.replay_drill import run_live_replay

SHIPPED = [i for i in list_incidents() if (incidents_dir() / i / RECORDING_NAME).exists()]
# A live replay runs in real time (minutes each), so `make test` replays one recording, the one
# that pages first; SANDBOX_TEST_REPLAYS=all replays every shipped one. tests/unit checks every
# recording's verdicts offline in seconds either way.


def _page_after_fault_s(incident_id: str) -> float:
    meta = read_meta(incidents_dir() / incident_id / RECORDING_NAME)
    if meta.paged_at is None or meta.injected_at is None:
        return float("inf")
    return meta.paged_at - meta.injected_at


REPLAYED = (
    SHIPPED
    if os.environ.get("SANDBOX_TEST_REPLAYS") == "all"
    else sorted(SHIPPED, key=_page_after_fault_s)[:1]
)

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        shutil.which("prometheus") is None or shutil.which("prometheus-alertmanager") is None,
        reason="prometheus and prometheus-alertmanager are not installed (run `make setup`)",
    ),
]


def test_some_recordings_ship() -> None:
    assert SHIPPED, "no incident ships a recording (make recordings)"


@pytest.mark.parametrize("incident_id", REPLAYED)
def test_shipped_recording_replays_in_auto_mode(incident_id: str) -> None:
    lines: list[str] = []
    # 15 s of the baseline in real time instead of a minute: the rules still start before the
    # fault, and every `for:` counts from there as it does at the default.
    result = run_live_replay(
        incidents_dir() / incident_id / RECORDING_NAME, "auto", say=lines.append, baseline_s=15
    )
    assert result.ready_s < 15, f"ready after {result.ready_s:.1f} s"
    assert result.ok, "\n".join(lines)
