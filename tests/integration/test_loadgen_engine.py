"""The load generator against the real vLLM engine: its summary agrees with vLLM's own counters.

A short run straight to the engine (no gateway in between); vLLM's ``/metrics`` are read before
and after. The requests, prompt tokens and generated tokens the summary reports must equal the
deltas of ``vllm:request_success_total``, ``vllm:prompt_tokens_total`` and
``vllm:generation_tokens_total`` exactly, and the client's time to first token can only be longer
than the engine's own (``vllm:time_to_first_token_seconds``): it adds HTTP and the API server.
"""

from __future__ import annotations

import asyncio
import re

import httpx
import pytest

from sandbox.loadgen.profile import parse_profile
from sandbox.loadgen.runner import Runner, RunOptions
from tests.support import StackHandle, poll_until

pytestmark = pytest.mark.integration

COUNTERS = (
    "vllm:request_success_total",
    "vllm:prompt_tokens_total",
    "vllm:generation_tokens_total",
    "vllm:time_to_first_token_seconds_sum",
    "vllm:time_to_first_token_seconds_count",
)
_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)")


def engine_counters(url: str) -> dict[str, float]:
    """Each counter summed over its series (engines, models, finish reasons), plus aborts."""
    totals = dict.fromkeys(COUNTERS, 0.0)
    totals["aborted"] = 0.0
    for line in httpx.get(f"{url}/metrics", timeout=10).text.splitlines():
        match = _SAMPLE.match(line)
        if not match or match.group(1) not in totals:
            continue
        name, labels, value = match.groups()
        totals[name] += float(value)
        if name == "vllm:request_success_total" and labels and 'finished_reason="abort"' in labels:
            totals["aborted"] += float(value)
    return totals


def test_summary_matches_vllm_counters(local_stack: StackHandle) -> None:
    url = local_stack.engine_url
    profile = parse_profile(
        {
            "name": "engine-check",
            "model": local_stack.settings.served_model_name,
            "request_timeout_s": 120,
            "tenants": {
                "chat": {
                    "rate_per_s": 3,
                    "prompt_tokens": {"dist": "uniform", "min": 20, "max": 400},
                    "output_tokens": {"dist": "uniform", "min": 5, "max": 40},
                },
                "long_context": {"rate_per_s": 0.5, "prompt_tokens": 1500, "output_tokens": 60},
            },
        },
        "test",
    )
    before = engine_counters(url)
    runner = Runner(profile, RunOptions(target=url, max_requests=16, seed=42))
    summary = asyncio.run(runner.run())
    overall = summary["overall"]
    assert overall["requests"] == 16 and overall["outcomes"]["ok"] == 16, overall["outcomes"]
    # Every prompt was as long as planned, by vLLM's own count (usage).
    assert overall["prompt_tokens"] == overall["prompt_tokens_sent"]
    assert all(
        r.output_tokens == r.max_tokens for r in runner.results
    )  # ignore_eos: exactly max_tokens

    expected = {
        "vllm:request_success_total": 16,
        "vllm:prompt_tokens_total": overall["prompt_tokens"],
        "vllm:generation_tokens_total": overall["output_tokens"],
        "vllm:time_to_first_token_seconds_count": 16,
    }

    def deltas() -> dict[str, float] | None:
        after = engine_counters(url)
        d = {name: after[name] - before[name] for name in after}
        # vLLM updates its counters when a request's output is processed: wait until they settle.
        return d if all(d[name] >= want for name, want in expected.items()) else None

    delta = poll_until(deltas, "vLLM's counters to include the run", timeout_s=30, interval_s=0.5)
    assert {name: delta[name] for name in expected} == expected, (
        "another client used the engine during the run?"
    )
    assert delta["aborted"] == 0

    client_ttft = [r.ttft_s for r in runner.results if r.ttft_s is not None]
    assert len(client_ttft) == 16
    engine_ttft_sum = delta["vllm:time_to_first_token_seconds_sum"]
    assert sum(client_ttft) >= engine_ttft_sum, (sum(client_ttft), engine_ttft_sum)
    print(
        f"client TTFT mean {sum(client_ttft) / 16 * 1000:.1f} ms, vLLM's {engine_ttft_sum / 16 * 1000:.1f} ms; "
        f"prompt tokens {overall['prompt_tokens']}, generated {overall['output_tokens']}"
    )
