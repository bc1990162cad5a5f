"""What the gateway costs: the same streaming load straight at vLLM and through the gateway.

Starts a vLLM engine, the trace sink and the gateway (tracing on, as in the stack) in a
temporary run directory on free ports, unless ``--engine-url``/``--gateway-url`` point at
running ones. Then runs closed-loop rounds of ``--concurrency`` streaming clients, alternating
direct and gateway rounds so drift (a neighbour's load, caches) hits both alike, and prints the
gateway/direct ratios of median and p99 TTFT (time to the first streamed event, as the client
sees it) and of throughput (completion tokens per second). The goal is a median TTFT ratio
under 1.05. Bounded: about 2-3 minutes with the defaults, engine start included.

Run: `.venv/bin/python bench/gateway_overhead.py [--concurrency 4] [--rounds 3] [--round-s 10]`.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sandbox import stack
from sandbox.components.engine import engine_component
from sandbox.gateway.component import gateway_component
from sandbox.runtime.local import LocalRuntime, _group_members
from sandbox.tracesink.component import trace_sink_component
from tests.support import isolated_settings

PROMPT = "The gateway should add almost nothing to the time to first token. " * 4


@dataclass
class Round:
    target: str
    seconds: float = 0.0
    ttft_s: list[float] = field(default_factory=list)
    tokens: int = 0
    errors: int = 0


async def one_request(client: httpx.AsyncClient, url: str, max_tokens: int, result: Round) -> None:
    body = {
        "model": "tiny",
        "prompt": PROMPT,
        "max_tokens": max_tokens,
        "ignore_eos": True,
        "stream": True,
    }
    started = time.perf_counter()
    first: float | None = None
    try:
        async with client.stream("POST", f"{url}/v1/completions", json=body) as response:
            if response.status_code != 200:
                result.errors += 1
                return
            async for chunk in response.aiter_raw():
                if first is None and b"data: " in chunk:
                    first = time.perf_counter() - started
    except httpx.HTTPError:
        result.errors += 1
        return
    if first is not None:
        result.ttft_s.append(first)
        result.tokens += max_tokens


async def run_round(
    url: str, target: str, concurrency: int, seconds: float, max_tokens: int
) -> Round:
    result = Round(target)
    deadline = time.perf_counter() + seconds
    limits = httpx.Limits(
        max_connections=concurrency * 2, max_keepalive_connections=concurrency * 2
    )
    async with httpx.AsyncClient(timeout=120, limits=limits) as client:

        async def worker() -> None:
            while time.perf_counter() < deadline:
                await one_request(client, url, max_tokens, result)

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        result.seconds = time.perf_counter() - started
    return result


def group_cpu_s(pgid: int | None) -> float:
    """CPU time (user + system) used so far by a process group, in seconds."""
    total = 0
    for pid in _group_members(pgid) if pgid else []:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def report(direct: list[Round], gateway: list[Round]) -> None:
    def merged(rounds: list[Round]) -> tuple[list[float], float, int]:
        ttft = [t for r in rounds for t in r.ttft_s]
        rate = sum(r.tokens for r in rounds) / sum(r.seconds for r in rounds)
        return ttft, rate, sum(r.errors for r in rounds)

    d_ttft, d_rate, d_err = merged(direct)
    g_ttft, g_rate, g_err = merged(gateway)
    print(
        f"{'':10} {'requests':>9} {'errors':>7} {'TTFT p50 ms':>12} {'TTFT p99 ms':>12} {'tokens/s':>9}"
    )
    for name, ttft, rate, errors in (
        ("direct", d_ttft, d_rate, d_err),
        ("gateway", g_ttft, g_rate, g_err),
    ):
        print(
            f"{name:10} {len(ttft):9d} {errors:7d} {statistics.median(ttft) * 1000:12.1f} "
            f"{percentile(ttft, 0.99) * 1000:12.1f} {rate:9.1f}"
        )
    print()
    print(
        f"median TTFT ratio (gateway/direct): {statistics.median(g_ttft) / statistics.median(d_ttft):.3f}  (goal < 1.05)"
    )
    print(
        f"p99 TTFT ratio    (gateway/direct): {percentile(g_ttft, 0.99) / percentile(d_ttft, 0.99):.3f}"
    )
    print(f"throughput ratio  (gateway/direct): {g_rate / d_rate:.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engine-url", help="use this running engine (else one is started)")
    parser.add_argument(
        "--gateway-url", help="use this running gateway (needs --engine-url: the engine behind it)"
    )
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=3, help="direct+gateway pairs")
    parser.add_argument("--round-s", type=float, default=10.0)
    parser.add_argument("--max-tokens", type=int, default=32)
    args = parser.parse_args()
    if args.gateway_url and not args.engine_url:
        parser.error("--gateway-url needs --engine-url (the engine the gateway routes to)")

    with tempfile.TemporaryDirectory() as run_dir:
        settings = isolated_settings(Path(run_dir))
        runtime = LocalRuntime(settings.run_dir)
        components = [trace_sink_component()]
        if not args.engine_url:
            components.append(engine_component())
        if not args.gateway_url:
            components.append(gateway_component())
        engine_url = args.engine_url or settings.engine_url
        gateway_url = args.gateway_url or f"{settings.url(settings.gateway_port)}"
        started = time.monotonic()
        try:
            stack.up(
                settings, runtime, components, progress=lambda m: print(f"[setup] {m}", flush=True)
            )
            print(
                f"[setup] ready in {time.monotonic() - started:.0f} s; engine {engine_url}, gateway {gateway_url}"
            )

            gateway_pgid = None if args.gateway_url else runtime.status("gateway").pid
            gateway_cpu = [0.0]

            async def load() -> tuple[list[Round], list[Round]]:
                # A short warm-up of both paths: connections, vLLM's first batches.
                await run_round(engine_url, "direct", args.concurrency, 2, args.max_tokens)
                await run_round(gateway_url, "gateway", args.concurrency, 2, args.max_tokens)
                direct, gateway = [], []
                for i in range(args.rounds):
                    order = [("direct", engine_url), ("gateway", gateway_url)]
                    for target, url in order if i % 2 == 0 else reversed(order):
                        cpu_before = group_cpu_s(gateway_pgid)
                        r = await run_round(
                            url, target, args.concurrency, args.round_s, args.max_tokens
                        )
                        if target == "gateway":
                            gateway_cpu[0] += group_cpu_s(gateway_pgid) - cpu_before
                        (direct if target == "direct" else gateway).append(r)
                        print(
                            f"[load] round {i + 1} {target:8} {len(r.ttft_s)} requests, "
                            f"TTFT p50 {statistics.median(r.ttft_s) * 1000:.1f} ms",
                            flush=True,
                        )
                return direct, gateway

            direct, gateway = asyncio.run(load())
            print()
            # The machine's state matters more than anything here: on 2 shared cores, every extra
            # process hop waits for a CPU behind vLLM's threads. Say how busy it was.
            print(
                f"load average during the run: {' '.join(f'{x:.1f}' for x in os.getloadavg())} on {os.cpu_count()} CPUs"
            )
            print(
                f"concurrency {args.concurrency}, {args.rounds} rounds of {args.round_s:g} s per path, "
                f"prompt ~{len(PROMPT.split())} words, {args.max_tokens} tokens per request (streaming)"
            )
            report(direct, gateway)
            served = sum(len(r.ttft_s) for r in gateway)
            if gateway_pgid and served:
                # Less sensitive to a busy machine than the ratios: what one relayed request costs.
                print(
                    f"gateway CPU per request: {gateway_cpu[0] / served * 1000:.1f} ms "
                    f"({args.max_tokens} streamed tokens each, tracing on)"
                )
        finally:
            stack.down(settings, runtime, progress=lambda m: None)


if __name__ == "__main__":
    main()
