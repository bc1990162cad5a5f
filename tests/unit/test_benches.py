"""Every bench still runs: each script starts and prints its usage. (A refactor once moved a
helper that two benches imported, and nothing noticed until a bench was run by hand.)"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from sandbox.settings import REPO_ROOT

BENCHES = sorted(p for p in (REPO_ROOT / "bench").glob("*.py") if p.name != "figures.py")


@pytest.mark.parametrize("bench", BENCHES, ids=[p.stem for p in BENCHES])
def test_a_bench_starts_and_prints_its_usage(bench: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(bench), "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO_ROOT,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "usage:" in done.stdout
