"""The same traffic from this load generator and from guidellm (vLLM's benchmark tool), against
the same engine, in alternating rounds; TTFT as each client measured it, and vLLM's own TTFT for
the same requests as the referee.

guidellm is not a dependency of the sandbox (it pulls its own stack). Install it in a throwaway
venv and point this script at its binary:

    python3 -m venv /tmp/guidellm && /tmp/guidellm/bin/pip install guidellm==0.8.1 torch==2.13.0
    .venv/bin/python bench/loadgen_vs_guidellm.py --guidellm /tmp/guidellm/bin/guidellm [--target URL]

Both tools send Poisson arrivals at ``--rate`` with fixed prompt/output lengths; each round's
vLLM TTFT comes from the deltas of ``vllm:time_to_first_token_seconds`` (sum / count) around it,
so nothing else may use the engine meanwhile. Bounded: rounds x 2 x (requests / rate + start-up).
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sandbox.loadgen.profile import parse_profile
from sandbox.loadgen.runner import Runner, RunOptions
from sandbox.settings import load_settings
from tests.integration.test_loadgen_engine import engine_counters

T = TypeVar("T")


def vllm_ttft(url: str, before: dict[str, float]) -> tuple[float, float]:
    """(mean TTFT in ms, request count) of vLLM's histogram since ``before``."""
    after = engine_counters(url)
    count = (
        after["vllm:time_to_first_token_seconds_count"]
        - before["vllm:time_to_first_token_seconds_count"]
    )
    total = (
        after["vllm:time_to_first_token_seconds_sum"]
        - before["vllm:time_to_first_token_seconds_sum"]
    )
    return (total / count * 1000 if count else float("nan")), count


def settle(url: str, want: float, before: dict[str, float], timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if vllm_ttft(url, before)[1] >= want:
            return
        time.sleep(0.5)


@dataclass(frozen=True)
class Workload:
    """What both tools send in a round: Poisson arrivals of fixed-size requests to one engine."""

    url: str
    model: str
    rate: float
    requests: int
    prompt_tokens: int
    output_tokens: int


def refereed(w: Workload, send: Callable[[], T]) -> tuple[T, float, float]:
    """``send``'s result with vLLM's (mean TTFT ms, request count) for the requests it sent."""
    before = engine_counters(w.url)
    result = send()
    settle(w.url, w.requests, before)
    engine_mean, count = vllm_ttft(w.url, before)
    return result, engine_mean, count


def run_loadgen(w: Workload, seed: int) -> dict[str, float]:
    profile = parse_profile(
        {
            "name": "vs-guidellm",
            "model": w.model,
            "request_timeout_s": 300,
            "tenants": {
                "bench": {
                    "rate_per_s": w.rate,
                    "prompt_tokens": w.prompt_tokens,
                    "output_tokens": w.output_tokens,
                }
            },
        },
        "bench",
    )
    runner = Runner(profile, RunOptions(target=w.url, max_requests=w.requests, seed=seed))
    summary, engine_mean, count = refereed(w, lambda: asyncio.run(runner.run()))
    ttft = summary["overall"]["ttft_s"]
    return {
        "client_mean_ms": ttft["mean"] * 1000,
        "client_p50_ms": ttft["p50"] * 1000,
        "engine_mean_ms": engine_mean,
        "ok": summary["overall"]["outcomes"]["ok"],
        "engine_count": count,
    }


def run_guidellm(binary: str, w: Workload, seed: int) -> dict[str, float]:
    tokenizer = load_settings().model_dir
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "guidellm.json"
        argv = [
            binary,
            "run",
            "--backend",
            f"kind=openai_http,target={w.url},model={w.model},request_format=/v1/completions",
            "--profile",
            f"kind=poisson,rate={w.rate}",
            "--constraint",
            f"kind=max_requests,count={w.requests}",
            "--tokenizer",
            f"kind=huggingface_auto,model={tokenizer}",
            "--data",
            f"kind=synthetic_text,prompt_tokens={w.prompt_tokens},output_tokens={w.output_tokens}",
            "--seed",
            f"kind=static,value={seed}",
            "--output",
            f"kind=json,path={out}",
            "--disable-console",
        ]
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}

        def send() -> None:
            timeout_s = w.requests / w.rate + 240
            proc = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=timeout_s)
            if proc.returncode != 0:
                raise SystemExit(f"guidellm failed ({proc.returncode}):\n{proc.stderr[-2000:]}")

        _, engine_mean, count = refereed(w, send)
        bench = json.loads(out.read_text())["benchmarks"][0]
    ttft = bench["metrics"]["time_to_first_token_ms"]["successful"]
    return {
        "client_mean_ms": ttft["mean"],
        "client_p50_ms": ttft["median"],
        "engine_mean_ms": engine_mean,
        "ok": ttft["count"],
        "engine_count": count,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--guidellm", default=os.environ.get("GUIDELLM", "guidellm"), help="the guidellm binary"
    )
    parser.add_argument("--target", default=None, help="engine URL [Settings.engine_url]")
    parser.add_argument(
        "--model", default=None, help="served model name [Settings.served_model_name]"
    )
    parser.add_argument("--rate", type=float, default=1.5)
    parser.add_argument("--requests", type=int, default=30)
    parser.add_argument("--prompt-tokens", type=int, default=200)
    parser.add_argument("--output-tokens", type=int, default=40)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    settings = load_settings()
    url = args.target or settings.engine_url
    model = args.model or settings.served_model_name
    print(
        f"target {url}; Poisson {args.rate:g}/s, {args.requests} requests of {args.prompt_tokens} prompt + "
        f"{args.output_tokens} output tokens; {args.rounds} alternating rounds; load average {os.getloadavg()[0]:.1f}"
    )
    print(
        f"{'round':>5} {'tool':<9}{'ok':>4}{'client TTFT mean ms':>21}{'p50 ms':>8}{'vLLM TTFT mean ms':>19}{'client - vLLM ms':>18}"
    )
    workload = Workload(
        url, model, args.rate, args.requests, args.prompt_tokens, args.output_tokens
    )
    runners: dict[str, Callable[[Workload, int], dict[str, float]]] = {
        "loadgen": run_loadgen,
        "guidellm": functools.partial(run_guidellm, args.guidellm),
    }
    rows: dict[str, list[dict[str, float]]] = {"loadgen": [], "guidellm": []}
    for i in range(args.rounds):
        for tool in ("loadgen", "guidellm") if i % 2 == 0 else ("guidellm", "loadgen"):
            row = runners[tool](workload, i)
            rows[tool].append(row)
            print(
                f"{i:>5} {tool:<9}{row['ok']:>4.0f}{row['client_mean_ms']:>21.1f}{row['client_p50_ms']:>8.1f}"
                f"{row['engine_mean_ms']:>19.1f}{row['client_mean_ms'] - row['engine_mean_ms']:>18.1f}",
                flush=True,
            )
    gap = {
        tool: sum(r["client_mean_ms"] - r["engine_mean_ms"] for r in rs) / len(rs)
        for tool, rs in rows.items()
    }
    client = {tool: sum(r["client_mean_ms"] for r in rs) / len(rs) for tool, rs in rows.items()}
    print(
        f"mean client TTFT: loadgen {client['loadgen']:.1f} ms, guidellm {client['guidellm']:.1f} ms "
        f"(difference {client['loadgen'] - client['guidellm']:+.1f} ms); above vLLM's own TTFT: "
        f"loadgen {gap['loadgen']:+.1f} ms, guidellm {gap['guidellm']:+.1f} ms"
    )


if __name__ == "__main__":
    main()
