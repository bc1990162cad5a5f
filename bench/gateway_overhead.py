"""What the gateway costs: the same streaming load straight at vLLM and through the gateway.

Starts a vLLM engine, the trace sink and the gateway (tracing and metrics on, as in the stack) in
a temporary run directory on free ports, unless ``--engine-url``/``--gateway-url`` point at
running ones. Then runs closed-loop rounds of ``--concurrency`` streaming clients, alternating
direct and gateway rounds so drift (a neighbour's load, caches) hits both alike, and reports:

- the gateway's CPU time (user + system, read from ``/proc/<pid>/stat``) per streamed request
  and per relayed token, its idle CPU (prober, span export) measured during the direct rounds
  subtracted;
- the gateway/direct ratios of median and p99 TTFT (time to the first streamed event, as the
  client sees it) and of throughput (completion tokens per second).

Two placements (``--placement``):

- ``confined`` (default): the engine on one core (``engine_cpus``, as ``SANDBOX_ENGINE_CPUS``
  sets it), the gateway, the trace sink and this client on the others
  (``os.sched_setaffinity``). The ratios then measure what the gateway costs, not how long it
  waits for a core behind vLLM's threads. Goals: at most 1 ms of gateway CPU per 32-token
  request, median TTFT ratio <= 1.05, p99 <= 1.10, throughput ratio >= 0.97.
- ``unconfined``: every process may use every core, as the stack runs by default.

``--standin`` replaces vLLM with the load generator's stand-in stream server (no model, a token
every ``--standin-itl-ms``): the gateway's CPU figures and profile then need no engine and no
lock, and the ratios show the gateway against a server that costs almost nothing.

``--bare`` runs ``bench/bare_relay.py`` in the gateway's place: the same server and engine
client relaying the stream, with none of the gateway's own work. Its CPU per request is the floor
of a relay built this way; the gateway's minus it is what validation, admission, routing, spans,
metrics and the log line cost.

``--profile FILE`` samples the gateway with py-spy during the gateway rounds (collapsed stacks,
``--format raw``; the threads that are running, the span exporter's included) and prints the
functions with the most samples; profile runs perturb the ratios, so measure without it. uvloop's
event loop is C: time in it (socket reads and writes, callbacks' scheduling) shows as its caller,
``Runner.run``. (``--gil`` would keep only the thread holding the GIL, but py-spy finds no GIL
holder under uvloop and records nothing.)

Run (a live engine: take the machine-wide lock):
`flock /work/coord/live.lock .venv/bin/python bench/gateway_overhead.py [--placement unconfined]`.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.figures import quantile
from sandbox import stack
from sandbox.deploy.engines import stack_engine_component
from sandbox.gateway.component import gateway_component
from sandbox.runtime.local import LocalRuntime
from sandbox.runtime.procfs import group_members
from sandbox.tracesink.component import trace_sink_component
from sandbox.waiting import NotYet, wait_until
from tests.support import isolated_settings

PROMPT = "The gateway should add almost nothing to the time to first token. " * 4
GOALS = {"cpu_ms_per_request": 1.0, "ttft_p50_ratio": 1.05, "ttft_p99_ratio": 1.10, "rate": 0.97}


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


def group_pids(pgid: int | None) -> list[int]:
    return group_members(pgid) if pgid else []


def group_cpu_s(pgid: int | None, system_only: bool = False) -> float:
    """CPU time (user + system, or system only) used so far by a process group, in seconds."""
    total = 0
    for pid in group_pids(pgid):
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        total += int(fields[12]) + (0 if system_only else int(fields[11]))
    return total / os.sysconf("SC_CLK_TCK")


def main_pid(pgid: int | None, module: str) -> int | None:
    """The process of the group running ``module`` (the runtime's pid is its supervisor)."""
    for pid in group_pids(pgid):
        try:
            args = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if module.encode() in args and b"sandbox.runtime.supervise" not in args:
            return pid
    return pgid


def wait_until_serving(url: str, timeout_s: float = 30.0) -> None:
    """Wait until something answers HTTP at ``url`` (any status)."""

    def answers() -> bool | NotYet:
        try:
            httpx.get(url, timeout=1.0)
        except httpx.HTTPError as exc:
            return NotYet(type(exc).__name__)
        return True

    wait_until(answers, f"the bare relay at {url}", timeout_s, interval_s=0.2)


def confine(pids: list[int], cpus: set[int]) -> None:
    """Pin every thread of these processes (threads started later inherit the mask)."""
    for pid in pids:
        for task in Path(f"/proc/{pid}/task").iterdir():
            try:
                os.sched_setaffinity(int(task.name), cpus)
            except OSError:
                pass


def summary(direct: list[Round], gateway: list[Round]) -> dict[str, float]:
    def merged(rounds: list[Round]) -> tuple[list[float], float, int]:
        ttft = [t for r in rounds for t in r.ttft_s]
        rate = sum(r.tokens for r in rounds) / sum(r.seconds for r in rounds)
        return ttft, rate, sum(r.errors for r in rounds)

    d_ttft, d_rate, d_err = merged(direct)
    g_ttft, g_rate, g_err = merged(gateway)
    return {
        "direct_requests": len(d_ttft),
        "direct_errors": d_err,
        "direct_ttft_p50_ms": statistics.median(d_ttft) * 1000,
        "direct_ttft_p99_ms": quantile(d_ttft, 0.99) * 1000,
        "direct_tokens_per_s": d_rate,
        "gateway_requests": len(g_ttft),
        "gateway_errors": g_err,
        "gateway_ttft_p50_ms": statistics.median(g_ttft) * 1000,
        "gateway_ttft_p99_ms": quantile(g_ttft, 0.99) * 1000,
        "gateway_tokens_per_s": g_rate,
        "ttft_p50_ratio": statistics.median(g_ttft) / statistics.median(d_ttft),
        "ttft_p99_ratio": quantile(g_ttft, 0.99) / quantile(d_ttft, 0.99),
        "rate": g_rate / d_rate,
    }


def report(figures: dict[str, float], confined: bool) -> None:
    print(
        f"{'':10} {'requests':>9} {'errors':>7} {'TTFT p50 ms':>12} {'TTFT p99 ms':>12} {'tokens/s':>9}"
    )
    for name in ("direct", "gateway"):
        print(
            f"{name:10} {figures[f'{name}_requests']:9.0f} {figures[f'{name}_errors']:7.0f} "
            f"{figures[f'{name}_ttft_p50_ms']:12.1f} {figures[f'{name}_ttft_p99_ms']:12.1f} "
            f"{figures[f'{name}_tokens_per_s']:9.1f}"
        )
    print()

    def line(label: str, key: str, fmt: str, goal: str) -> None:
        if key not in figures:
            return
        value = figures[key]
        if confined:
            bound = GOALS[key]
            ok = value <= bound if key != "rate" else value >= bound
            verdict = f"(goal {goal} {bound:g}: {'met' if ok else 'NOT met'})"
        else:
            verdict = "(no goal unconfined)"
        print(f"{label:38} {value:{fmt}}  {verdict}")

    line("gateway CPU per request, ms", "cpu_ms_per_request", ".3f", "<=")
    if "cpu_us_per_token" in figures:
        print(f"{'gateway CPU per relayed token, us':38} {figures['cpu_us_per_token']:.1f}")
        print(f"{'gateway CPU idle, ms/s (subtracted)':38} {figures['idle_cpu_ms_per_s']:.2f}")
        print(
            f"{'  of which in the kernel, ms/request':38} {figures['cpu_ms_per_request_kernel']:.3f}"
        )
    line("median TTFT ratio (gateway/direct)", "ttft_p50_ratio", ".3f", "<=")
    line("p99 TTFT ratio    (gateway/direct)", "ttft_p99_ratio", ".3f", "<=")
    line("throughput ratio  (gateway/direct)", "rate", ".3f", ">=")


def top_of_profile(path: Path, count: int = 15) -> None:
    """The functions with the most samples in a py-spy raw (collapsed) profile: self and total."""
    own: collections.Counter[str] = collections.Counter()
    total: collections.Counter[str] = collections.Counter()
    samples = 0
    for line in path.read_text().splitlines():
        stack_text, _, n = line.rpartition(" ")
        if not n.isdigit():
            continue
        frames = stack_text.split(";")
        samples += int(n)
        own[frames[-1]] += int(n)
        for frame in set(frames):
            total[frame] += int(n)
    if not samples:
        print("profile: no samples")
        return
    print(f"\nprofile: {samples} samples; top by own samples (own %, total %)")
    for frame, n in own.most_common(count):
        print(f"  {n / samples * 100:5.1f}%  {total[frame] / samples * 100:5.1f}%  {frame}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engine-url", help="use this running engine (else one is started)")
    parser.add_argument(
        "--gateway-url", help="use this running gateway (needs --engine-url: the engine behind it)"
    )
    parser.add_argument("--placement", choices=("confined", "unconfined"), default="confined")
    parser.add_argument("--engine-cpu", type=int, default=0, help="the engine's core, confined")
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=3, help="direct+gateway pairs")
    parser.add_argument("--round-s", type=float, default=10.0)
    parser.add_argument("--max-tokens", type=int, default=32)
    parser.add_argument("--profile", type=Path, help="py-spy the gateway into this file")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--standin", action="store_true", help="a stand-in server, not vLLM")
    parser.add_argument("--standin-itl-ms", type=float, default=2.0)
    parser.add_argument(
        "--bare",
        action="store_true",
        help="run bench/bare_relay.py in the gateway's place: the floor of any relay built this way",
    )
    args = parser.parse_args()
    if args.gateway_url and not args.engine_url:
        parser.error("--gateway-url needs --engine-url (the engine the gateway routes to)")
    confined = args.placement == "confined"
    all_cpus = set(os.sched_getaffinity(0))
    engine_cpus = {args.engine_cpu}
    other_cpus = (all_cpus - engine_cpus) or all_cpus
    if confined and args.engine_url:
        print("[setup] note: a running engine is not confined by this bench", flush=True)

    with tempfile.TemporaryDirectory() as run_dir:
        overrides: dict[str, object] = {}
        if confined:
            overrides["engine_cpus"] = str(args.engine_cpu)
        settings = isolated_settings(Path(run_dir), **overrides)
        runtime = LocalRuntime(settings.run_dir)
        components = [trace_sink_component()]
        standin: subprocess.Popen[bytes] | None = None
        if args.standin:
            standin = subprocess.Popen(
                [
                    *(sys.executable, "-m", "sandbox.loadgen.streamserver"),
                    *("--port", str(settings.engine_port), "--ttft-ms", "20"),
                    *("--itl-ms", str(args.standin_itl_ms)),
                    *(("--cpu", str(args.engine_cpu)) if confined else ()),
                ],
                stdout=subprocess.DEVNULL,
            )
        elif not args.engine_url:
            components.append(stack_engine_component())
        engine_url = args.engine_url or settings.engine_url
        gateway_url = args.gateway_url or f"{settings.url(settings.gateway_port)}"
        bare: subprocess.Popen[bytes] | None = None
        if args.bare and not args.gateway_url:
            bare = subprocess.Popen(
                [
                    *(sys.executable, str(Path(__file__).with_name("bare_relay.py"))),
                    *("--port", str(settings.gateway_port), "--upstream", engine_url),
                ],
                stdout=subprocess.DEVNULL,
                start_new_session=True,  # its own process group, read like the gateway's
            )
        elif not args.gateway_url:
            components.append(gateway_component())
        started = time.monotonic()
        try:
            stack.up(
                settings, runtime, components, progress=lambda m: print(f"[setup] {m}", flush=True)
            )
            print(
                f"[setup] ready in {time.monotonic() - started:.0f} s; engine {engine_url}, gateway {gateway_url}"
            )
            if bare is not None:
                wait_until_serving(gateway_url)
                gateway_pgid: int | None = bare.pid
            else:
                gateway_pgid = None if args.gateway_url else runtime.status("gateway").pid
            if confined:
                os.sched_setaffinity(0, other_cpus)
                if bare is not None:
                    confine([bare.pid], other_cpus)
                for name in ("gateway", "tracesink"):
                    status = runtime.status(name) if name in runtime.names() else None
                    if status and status.pid:
                        confine(group_pids(status.pid), other_cpus)
                print(
                    f"[setup] engine on CPU {sorted(engine_cpus)}; gateway, trace sink and client "
                    f"on {sorted(other_cpus)}"
                )
            cpu = dict.fromkeys(("gateway", "gateway_s", "gateway_sys", "direct", "direct_s"), 0.0)
            cpu["direct_sys"] = 0.0
            profiler: list[subprocess.Popen[bytes]] = []

            async def load() -> tuple[list[Round], list[Round]]:
                # A short warm-up of both paths: connections, vLLM's first batches.
                await run_round(engine_url, "direct", args.concurrency, 2, args.max_tokens)
                await run_round(gateway_url, "gateway", args.concurrency, 2, args.max_tokens)
                if args.profile and gateway_pgid:
                    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
                    profiler.append(
                        subprocess.Popen(
                            [
                                *(spy, "record", "--format", "raw", "--pid"),
                                str(
                                    gateway_pgid
                                    if bare is not None
                                    else main_pid(gateway_pgid, "sandbox.gateway")
                                ),
                                *(
                                    "--rate",
                                    "250",
                                    "--output",
                                    str(args.profile),
                                    "--nonblocking",
                                ),
                            ],
                            stdout=subprocess.DEVNULL,
                            # Not on the client's core: the real-time gateway there would starve it.
                            preexec_fn=lambda: os.sched_setaffinity(0, all_cpus),
                        )
                    )
                direct, gateway = [], []
                for i in range(args.rounds):
                    order = [("direct", engine_url), ("gateway", gateway_url)]
                    for target, url in order if i % 2 == 0 else reversed(order):
                        cpu_before = group_cpu_s(gateway_pgid)
                        sys_before = group_cpu_s(gateway_pgid, system_only=True)
                        r = await run_round(
                            url, target, args.concurrency, args.round_s, args.max_tokens
                        )
                        cpu[target] += group_cpu_s(gateway_pgid) - cpu_before
                        sys_after = group_cpu_s(gateway_pgid, system_only=True)
                        cpu[f"{target}_sys"] += sys_after - sys_before
                        cpu[f"{target}_s"] += r.seconds
                        (direct if target == "direct" else gateway).append(r)
                        print(
                            f"[load] round {i + 1} {target:8} {len(r.ttft_s)} requests, "
                            f"TTFT p50 {statistics.median(r.ttft_s) * 1000:.1f} ms",
                            flush=True,
                        )
                return direct, gateway

            direct, gateway = asyncio.run(load())
            for spy_process in profiler:
                spy_process.send_signal(signal.SIGINT)
                spy_process.wait(timeout=30)
            print()
            print(
                f"placement {args.placement}; load average {' '.join(f'{x:.1f}' for x in os.getloadavg())} "
                f"on {os.cpu_count()} CPUs"
            )
            print(
                f"concurrency {args.concurrency}, {args.rounds} rounds of {args.round_s:g} s per path, "
                f"prompt ~{len(PROMPT.split())} words, {args.max_tokens} tokens per request "
                f"(streaming; {'the bare relay' if args.bare else 'tracing and metrics on'})"
            )
            figures = summary(direct, gateway)
            served = int(figures["gateway_requests"])
            if gateway_pgid and served:
                # Less sensitive to a busy machine than the ratios: what one relayed request costs.
                idle_per_s = cpu["direct"] / cpu["direct_s"] if cpu["direct_s"] else 0.0
                busy = max(0.0, cpu["gateway"] - idle_per_s * cpu["gateway_s"])
                figures["idle_cpu_ms_per_s"] = idle_per_s * 1000
                figures["cpu_ms_per_request"] = busy / served * 1000
                figures["cpu_us_per_token"] = busy / (served * args.max_tokens) * 1e6
                figures["cpu_ms_per_request_kernel"] = cpu["gateway_sys"] / served * 1000
            report(figures, confined)
            if args.profile and args.profile.exists():
                top_of_profile(args.profile)
            if args.json:
                args.json.write_text(json.dumps({"placement": args.placement, **figures}, indent=1))
        finally:
            stack.down(settings, runtime, progress=lambda m: None)
            for process in (standin, bare):
                if process is not None:
                    process.terminate()
                    process.wait(timeout=10)


if __name__ == "__main__":
    main()
