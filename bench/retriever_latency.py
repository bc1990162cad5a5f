"""Retriever start-up and search latency, per phase.

Starts the retriever as the stack would (its component spec, free ports, a temporary run
directory), reads the model load and index build times it reports on /ready, sends sequential
searches, and prints the p50/p90/p99 of each phase (from the response's timings) and of the
round trip as the client saw it. Run: `.venv/bin/python bench/retriever_latency.py [--requests N]`.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.figures import quantile
from sandbox.retriever.component import retriever_component
from sandbox.runtime.base import ServiceState
from sandbox.runtime.local import LocalRuntime
from tests.support import isolated_settings

QUERIES = (
    "KV cache preemption",
    "why is time to first token high while the engine is fine",
    "what does the admission phase do",
    "how do I bring the stack up",
    "vllm:num_requests_waiting_by_reason",
    "slow vector search in the retriever",
    "canary errors on one model version",
    "what is TPOT",
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("-k", type=int, default=5)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as run_dir:
        settings = isolated_settings(Path(run_dir))
        runtime = LocalRuntime(settings.run_dir)
        component = retriever_component()
        url = component.url(settings)
        started = time.monotonic()
        runtime.start(component.spec(settings))
        try:
            with httpx.Client(timeout=30) as client:
                deadline = started + 300
                while not component.check(settings, client).ready:
                    if runtime.status("retriever").state is not ServiceState.RUNNING:
                        sys.exit("retriever exited:\n" + runtime.log_tail("retriever", 30))
                    if time.monotonic() > deadline:
                        sys.exit("retriever not ready after 300 s")
                    time.sleep(0.2)
                to_ready = time.monotonic() - started
                ready = client.get(f"{url}/ready").json()

                client.post(
                    f"{url}/search", json={"query": "warm-up", "k": args.k}
                ).raise_for_status()
                phases: dict[str, list[float]] = {"embed": [], "search": [], "rerank": []}
                round_trip: list[float] = []
                for i in range(args.requests):
                    t0 = time.perf_counter()
                    response = client.post(
                        f"{url}/search", json={"query": QUERIES[i % len(QUERIES)], "k": args.k}
                    )
                    round_trip.append(time.perf_counter() - t0)
                    response.raise_for_status()
                    for phase, seconds in response.json()["timings"].items():
                        phases[phase].append(seconds)
        finally:
            runtime.stop("retriever", timeout_s=10)

    print(f"passages indexed      {ready['passages']}")
    print(f"process start->ready  {to_ready:7.2f} s  (imports + model + index)")
    print(f"model load            {ready['model_load_s']:7.2f} s  (incl. first encode)")
    print(f"index build           {ready['index_build_s']:7.2f} s  (read, chunk, embed, upsert)")
    print(f"\n{args.requests} sequential searches, k={args.k}:")
    print(f"{'':12} {'p50 ms':>8} {'p90 ms':>8} {'p99 ms':>8} {'mean ms':>8}")
    for name, values in [*phases.items(), ("round trip", round_trip)]:
        print(
            f"{name:12} {quantile(values, 0.5) * 1e3:8.2f} {quantile(values, 0.9) * 1e3:8.2f} "
            f"{quantile(values, 0.99) * 1e3:8.2f} {statistics.fmean(values) * 1e3:8.2f}"
        )


if __name__ == "__main__":
    main()
