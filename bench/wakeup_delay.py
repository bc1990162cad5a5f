"""How late does a process that sleeps 10 ms wake up on this machine, right now?

The load generator's start-time error (``start_error_s`` in every run summary) cannot be smaller
than the machine's own wake-up delay. This bench measures that floor with plain sleepers, one
per (core, priority) pair, all at once, so a run during a drill says whether the delays come
from the generator or from the machine, and from which priority class up they vanish:

- ``nice -5``: the load generator's and the retriever's priority;
- ``nice 0``: the gateway's, Prometheus' and vLLM's API server's;
- ``rt``: SCHED_FIFO 10, above every normal task in this kernel (needs root; left out without).

A stall seen at the same moment by sleepers on both cores (``both cores``) stopped the whole
machine, not one core's queue. Run it beside a drill (``make incident INCIDENT=kv-exhaustion``)
as `.venv/bin/python bench/wakeup_delay.py [--seconds 30]`.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.figures import quantile

SLEEP_S = 0.010
STALL_S = 0.050  # a wake-up later than this counts as a stall


@dataclass(frozen=True)
class Probe:
    core: int
    priority: str  # "nice -5", "nice 0" or "rt"


def _set_priority(priority: str) -> bool:
    try:
        if priority == "rt":
            os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(10))
        else:
            os.setpriority(os.PRIO_PROCESS, 0, int(priority.split()[1]))
    except PermissionError:
        return False
    return True


def _sleeper(probe: Probe, seconds: float, out: mp.Queue) -> None:  # type: ignore[type-arg]
    os.sched_setaffinity(0, {probe.core})
    if not _set_priority(probe.priority):
        out.put((probe, None))
        return
    late: list[tuple[float, float]] = []  # (when, how late)
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        before = time.monotonic()
        time.sleep(SLEEP_S)
        after = time.monotonic()
        late.append((after, after - before - SLEEP_S))
    out.put((probe, late))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30.0)
    args = parser.parse_args()
    cores = sorted(os.sched_getaffinity(0))
    probes = [Probe(core, p) for core in cores for p in ("nice -5", "nice 0", "rt")]
    out: mp.Queue = mp.Queue()  # type: ignore[type-arg]
    workers = [mp.Process(target=_sleeper, args=(p, args.seconds, out)) for p in probes]
    for worker in workers:
        worker.start()
    results = dict(out.get() for _ in workers)
    for worker in workers:
        worker.join()
    print(f"wake-up delay of a {SLEEP_S * 1000:.0f} ms sleep, {args.seconds:.0f} s, cores {cores}")
    stalls: dict[int, list[float]] = {}
    for probe in probes:
        late = results[probe]
        if late is None:
            print(f"  core {probe.core} {probe.priority:<8} not allowed (needs root)")
            continue
        delays = [d for _, d in late]
        stalls[probe.core] = stalls.get(probe.core, []) + [t for t, d in late if d > STALL_S]
        print(
            f"  core {probe.core} {probe.priority:<8} p50 {quantile(delays, 0.5) * 1000:6.2f} ms"
            f"  p99 {quantile(delays, 0.99) * 1000:7.1f} ms  max {max(delays) * 1000:7.1f} ms"
            f"  over {STALL_S * 1000:.0f} ms: {sum(d > STALL_S for d in delays)}"
        )
    if len(stalls) > 1:
        # Stalls ending within 20 ms of each other on two cores: the machine stopped, not a queue.
        first, *others = stalls.values()
        both = sum(any(abs(t - u) < 0.02 for other in others for u in other) for t in first)
        print(f"  stalls seen on both cores at once: {both} of {len(first)} on core {cores[0]}")


if __name__ == "__main__":
    main()
