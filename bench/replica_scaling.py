"""Does a second engine replica add capacity on this machine? Confined to cores, and not.

Starts real vLLM engines (tiny model, ``--max-num-seqs 2``) on free ports in a temporary run
directory, keeps every batch slot busy with whole answers of 120 tokens, and reads generated
tokens per second from vLLM's own counter (``vllm:generation_tokens_total``), first with one
engine, then with two. It does so twice: engines left to the scheduler (each with the compute
threads an unconfined engine gets, ``engine_threads``), then each confined to a core of its own
(``engine_cpus``), which is how the cold-start-autoscaling drill runs them.

Two cores, 2026-12-07: unconfined 437 -> 862 tokens/s (x1.97), confined 447 -> 852 (x1.91).
Before engines ran fewer compute threads than cores, two unconfined engines made x0.17. Run:
`.venv/bin/python bench/replica_scaling.py [--seconds 30]`.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sandbox.components.base import free_port
from sandbox.components.engine import STACK_ENGINE
from sandbox.deploy.engines import VllmLauncher
from sandbox.deploy.state import Replica
from sandbox.deploy.versions import EngineVersion
from sandbox.runtime.local import LocalRuntime
from sandbox.settings import Mode, Settings
from tests.support import isolated_settings, poll_until

SEQS = 2  # as the drill's replicas (version stable-bounded)
GENERATED = re.compile(r"^vllm:generation_tokens_total\{[^}]*\} ([0-9.e+]+)$", re.MULTILINE)


async def generated_tokens(client: httpx.AsyncClient, urls: list[str]) -> float:
    texts = [(await client.get(f"{url}/metrics")).text for url in urls]
    return sum(float(v) for text in texts for v in GENERATED.findall(text))


async def keep_busy(client: httpx.AsyncClient, url: str, model: str) -> None:
    while True:
        await client.post(
            f"{url}/v1/completions",
            json={
                "model": model,
                "prompt": "The incident began at noon. " * 20,
                "max_tokens": 120,
                "ignore_eos": True,
            },
        )


async def throughput(settings_list: list[Settings], seconds: float) -> float:
    """Generated tokens per second of these engines together, over ``seconds`` after a warm-up."""
    urls = [s.engine_url for s in settings_list]
    model = settings_list[0].served_model_name
    async with httpx.AsyncClient(timeout=120) as client:
        # Two requests per batch slot, so no engine ever waits for work.
        workers = [
            asyncio.create_task(keep_busy(client, url, model))
            for url in urls
            for _ in range(2 * SEQS)
        ]
        try:
            await asyncio.sleep(5)  # warm-up: every slot filled
            before, start = await generated_tokens(client, urls), time.monotonic()
            await asyncio.sleep(seconds)
            after, elapsed = await generated_tokens(client, urls), time.monotonic() - start
        finally:
            for worker in workers:
                worker.cancel()
            await asyncio.gather(*workers, return_exceptions=True)
    return (after - before) / elapsed


def measure(
    base: Settings, runtime: LocalRuntime, confined: bool, seconds: float
) -> tuple[float, float]:
    """Two replicas as the deployer launches them: the first named as the stack's engine (on any
    core, or confined to core 0), the second a replica beside it (on any core, or confined to the
    last)."""
    last = str((os.cpu_count() or 1) - 1)
    launcher = VllmLauncher(base, Mode.LOCAL)
    replicas = []
    for name, cpus in ((STACK_ENGINE, "0"), ("engine-stable-1", last)):
        version = EngineVersion(name="bench", max_num_seqs=SEQS, cpus=cpus if confined else None)
        port = free_port(base.host)
        replica = Replica(name=name, version="bench", track="stable", port=port, url="")
        replicas.append((version, replica, base.model_copy(update={"engine_port": port})))
    started: list[str] = []
    try:
        for version, replica, _ in replicas:
            runtime.start(launcher.spec(version, replica))
            started.append(replica.name)
            with httpx.Client(timeout=30) as client:
                poll_until(
                    lambda v=version, r=replica: launcher.check(v, r, client).ready,
                    f"{replica.name} ready",
                    300,
                    interval_s=2,
                )
        # Both are loaded; the first runs alone, then both together.
        first, second = (settings for _, _, settings in replicas)
        one = asyncio.run(throughput([first], seconds))
        two = asyncio.run(throughput([first, second], seconds))
    finally:
        for name in started:
            runtime.stop(name, base.stop_timeout_s)
    return one, two


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30.0)
    args = parser.parse_args()
    print(
        f"replica scaling: tiny model, --max-num-seqs {SEQS}, {os.cpu_count()} cores, {args.seconds:.0f} s windows"
    )
    with tempfile.TemporaryDirectory() as run_dir:
        base = isolated_settings(Path(run_dir))
        runtime = LocalRuntime(base.run_dir)
        for confined in (False, True):
            one, two = measure(base, runtime, confined, args.seconds)
            label = "one core per engine" if confined else "unconfined         "
            print(
                f"  {label}  one engine {one:6.0f} tok/s   two engines {two:6.0f} tok/s   gain x{two / one:.2f}"
            )


if __name__ == "__main__":
    main()
