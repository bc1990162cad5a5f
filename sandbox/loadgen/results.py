"""One request's measurements, and the end-of-run summary computed from all of them.

Times are seconds. ``scheduled_s`` and ``started_s`` are relative to the run's start, so
``start_error_s`` (started minus scheduled) says how faithfully the generator kept its
schedule: open-loop traffic is only as good as that number.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from sandbox.loadgen.metrics import OUTCOMES
from sandbox.loadgen.profile import SLO

__all__ = ["QUANTILES", "RequestResult", "format_summary", "summarize"]

QUANTILES = (50, 95, 99)


@dataclass
class RequestResult:
    tenant: str
    index: int  # the run's request number, from 0
    scheduled_s: float
    started_s: float
    prompt_tokens_sent: int
    max_tokens: int
    rag: bool
    stream: bool
    outcome: str = "cancelled"
    status: int | None = None
    prompt_tokens: int | None = None  # as the server counted them (usage)
    output_tokens: int = 0
    ttft_s: float | None = None
    tpot_s: float | None = None
    e2e_s: float | None = None
    slo_met: bool = False
    error: str | None = None

    @property
    def start_error_s(self) -> float:
        return self.started_s - self.scheduled_s

    def to_json(self) -> str:
        data = asdict(self)
        data["start_error_s"] = self.start_error_s
        return json.dumps(
            {k: (round(v, 6) if isinstance(v, float) else v) for k, v in data.items()}
        )


def _stats(values: list[float]) -> dict[str, float] | None:
    if not values:
        return None
    arr = np.asarray(values, dtype=float)
    out = {f"p{q}": float(np.percentile(arr, q)) for q in QUANTILES}
    out["mean"] = float(arr.mean())
    out["max"] = float(arr.max())
    return out


def _group(results: list[RequestResult], elapsed_s: float, dropped: int) -> dict[str, Any]:
    ok = [r for r in results if r.outcome == "ok"]
    good = [r for r in ok if r.slo_met]
    elapsed = max(elapsed_s, 1e-9)
    return {
        "requests": len(results),
        "outcomes": {o: sum(1 for r in results if r.outcome == o) for o in OUTCOMES},
        "dropped": dropped,
        "sent_per_s": len(results) / elapsed,
        "ok_per_s": len(ok) / elapsed,
        "goodput_per_s": len(good) / elapsed,
        "goodput_ratio": (len(good) / len(results)) if results else None,
        "prompt_tokens": sum(r.prompt_tokens or 0 for r in results),
        "prompt_tokens_sent": sum(r.prompt_tokens_sent for r in results),
        "output_tokens": sum(r.output_tokens for r in results),
        "ttft_s": _stats([r.ttft_s for r in ok if r.ttft_s is not None]),
        "tpot_s": _stats([r.tpot_s for r in ok if r.tpot_s is not None]),
        "e2e_s": _stats([r.e2e_s for r in ok if r.e2e_s is not None]),
        "start_error_s": _stats([r.start_error_s for r in results]),
    }


def summarize(
    results: list[RequestResult],
    elapsed_s: float,
    dropped: dict[str, int],
    slo: SLO,
    meta: dict[str, Any],
) -> dict[str, Any]:
    """The run's summary: overall and per tenant (latency stats over ``ok`` requests only)."""
    tenants = sorted({r.tenant for r in results} | set(dropped))
    return {
        **meta,
        "elapsed_s": elapsed_s,
        "slo": slo.model_dump(),
        "overall": _group(results, elapsed_s, sum(dropped.values())),
        "tenants": {
            t: _group([r for r in results if r.tenant == t], elapsed_s, dropped.get(t, 0))
            for t in tenants
        },
    }


def _ms(stats: dict[str, float] | None, key: str) -> str:
    return "-" if not stats else f"{stats[key] * 1000:.0f}"


def format_summary(summary: dict[str, Any]) -> str:
    """A plain-text table for the terminal (the JSON file has everything)."""
    lines = [
        f"profile {summary.get('profile')} -> {summary.get('target')}: {summary['elapsed_s']:.1f} s, "
        f"stopped by {summary.get('stopped_by')}",
        f"{'tenant':<14}{'sent':>6}{'ok':>6}{'err':>5}{'req/s':>7}{'good/s':>7}"
        f"{'TTFT p50/p95/p99 ms':>22}{'TPOT p50/p99 ms':>17}{'E2E p50/p99 ms':>17}{'prompt':>9}{'output':>8}",
    ]
    rows = [*summary["tenants"].items(), ("all", summary["overall"])]
    for name, g in rows:
        errors = g["requests"] - g["outcomes"]["ok"]
        lines.append(
            f"{name:<14}{g['requests']:>6}{g['outcomes']['ok']:>6}{errors:>5}{g['sent_per_s']:>7.2f}{g['goodput_per_s']:>7.2f}"
            f"{_ms(g['ttft_s'], 'p50') + '/' + _ms(g['ttft_s'], 'p95') + '/' + _ms(g['ttft_s'], 'p99'):>22}"
            f"{_ms(g['tpot_s'], 'p50') + '/' + _ms(g['tpot_s'], 'p99'):>17}"
            f"{_ms(g['e2e_s'], 'p50') + '/' + _ms(g['e2e_s'], 'p99'):>17}{g['prompt_tokens']:>9}{g['output_tokens']:>8}"
        )
    overall = summary["overall"]
    outcomes = ", ".join(f"{k} {v}" for k, v in overall["outcomes"].items() if v)
    lines.append(f"outcomes: {outcomes or 'none'}; dropped arrivals: {overall['dropped']}")
    if overall["goodput_ratio"] is not None:
        slo = ", ".join(f"{k} <= {v}" for k, v in summary["slo"].items() if v is not None) or "none"
        lines.append(f"goodput (SLO {slo}): {overall['goodput_ratio'] * 100:.1f}% of requests")
    se = overall["start_error_s"]
    if se:
        lines.append(
            f"start-time error vs schedule: p50 {se['p50'] * 1000:.2f} ms, p99 {se['p99'] * 1000:.2f} ms"
        )
    return "\n".join(lines)
