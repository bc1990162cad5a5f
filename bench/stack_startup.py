"""Time to ready and resident memory of the local stack.

Starts the stack in a temporary run directory on free ports, records how long each component
takes to become usable, sums the resident memory of each component's process group, and stops
everything. Run: `.venv/bin/python bench/stack_startup.py [--runs N]`.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sandbox import stack
from sandbox.runtime.local import LocalRuntime
from sandbox.runtime.procfs import group_members
from tests.support import isolated_settings


def group_rss_mib(pgid: int) -> float:
    total_kib = 0
    for pid in group_members(pgid):
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total_kib += int(line.split()[1])
        except OSError:
            continue
    return total_kib / 1024


def one_run() -> tuple[dict[str, float], dict[str, float]]:
    with tempfile.TemporaryDirectory() as run_dir:
        settings = isolated_settings(Path(run_dir))
        runtime = LocalRuntime(settings.run_dir)
        ready_at: dict[str, float] = {}
        start = time.monotonic()

        def progress(message: str) -> None:
            if " ready after " in message:
                ready_at[message.split()[0]] = time.monotonic() - start

        try:
            rows = stack.up(settings, runtime, progress=progress)
            ready_at["stack"] = time.monotonic() - start
            time.sleep(3)  # let memory settle after the first requests
            rss = {row.name: group_rss_mib(row.pid) for row in rows if row.pid}
        finally:
            stack.down(settings, runtime, progress=lambda m: None)
        return ready_at, rss


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1)
    args = parser.parse_args()
    results = [one_run() for _ in range(args.runs)]
    names = list(results[0][0])
    print(f"{'component':<14}{'ready after (s, median)':>26}{'resident MiB':>16}")
    for name in names:
        ready = statistics.median(r[0][name] for r in results)
        rss = statistics.median(r[1].get(name, 0.0) for r in results)
        print(f"{name:<14}{ready:>26.1f}{(f'{rss:.0f}' if name != 'stack' else ''):>16}")
    total = statistics.median(sum(r[1].values()) for r in results)
    print(f"{'total':<14}{'':>26}{total:>16.0f}")


if __name__ == "__main__":
    main()
