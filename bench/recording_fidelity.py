"""Fidelity of a recording: the same queries, at the same instants, live and on the replay.

    .venv/bin/python bench/recording_fidelity.py RECORDING --live http://127.0.0.1:9090

``--live`` is the Prometheus the recording was made from (the live stack's, while it still holds
the window). The expressions are every dashboard panel's (variables at All), every rule's and
every incident signature's; the instants every 10 s of the window, from each expression's
longest range window after the start (before that, a range function sees fewer samples in the
replay than it did live). Raw selectors must match exactly; the others within 1%. Prints the
figures and exits non-zero on any mismatch.
"""

from __future__ import annotations

import argparse
import math
import re
import sys
from pathlib import Path

import yaml

from sandbox.promapi import PrometheusClient, PrometheusError
from sandbox.recording import serve_recording
from sandbox.settings import REPO_ROOT

sys.path.insert(0, str(REPO_ROOT))
from tests.dashboards_support import dashboard_exprs, rule_exprs, with_variables

_RANGE = re.compile(r"\[(\d+)([smh])\]")
_SECONDS = {"s": 1, "m": 60, "h": 3600}


def signature_exprs() -> list[tuple[str, str]]:
    out = []
    for path in sorted((REPO_ROOT / "incidents").glob("*/incident.yaml")):
        m = yaml.safe_load(path.read_text())
        sig = m.get("signature", {})
        for kind in ("anomalous", "normal"):
            for check in sig.get(kind, []):
                out.append((f"{path.parent.name} {kind} {check['name']}", check["expr"]))
        for check in m.get("recovery", {}).get("slis", []):
            out.append((f"{path.parent.name} recovery {check['name']}", check["expr"]))
    return out


def longest_window_s(expr: str) -> int:
    return max((int(n) * _SECONDS[u] for n, u in _RANGE.findall(expr)), default=0)


def answers(prom: PrometheusClient, expr: str, at: float) -> dict[str, float] | str:
    try:
        return {str(sorted(s.labels.items())): s.value for s in prom.instant(expr, at)}
    except PrometheusError as exc:
        return f"error: {exc}"


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("recording", type=Path)
    parser.add_argument("--live", required=True)
    parser.add_argument("--every", type=float, default=10.0)
    args = parser.parse_args()
    exprs = [(e.where, with_variables(e.expr)) for e in dashboard_exprs() + rule_exprs()]
    exprs += signature_exprs()
    compared = exact = close = 0
    worst = 0.0
    problems: list[str] = []
    with serve_recording(args.recording) as served, PrometheusClient(args.live) as live:
        replay = served.client()
        for where, expr in exprs:
            raw = not _RANGE.search(expr) and "(" not in expr
            first = served.start + longest_window_s(expr) + served.step_s
            at = first
            while at <= served.end:
                want, got = answers(live, expr, at), answers(replay, expr, at)
                at += args.every
                if isinstance(want, str) or isinstance(got, str):
                    if want != got:
                        problems.append(f"{where} @{at:.0f}: live {want!r} replay {got!r}")
                    continue
                if want.keys() != got.keys():
                    problems.append(
                        f"{where} @{at:.0f}: series differ: live-only {sorted(want.keys() - got.keys())[:2]} "
                        f"replay-only {sorted(got.keys() - want.keys())[:2]}"
                    )
                    continue
                for key, a in want.items():
                    b = got[key]
                    compared += 1
                    if a == b or (math.isnan(a) and math.isnan(b)):
                        exact += 1
                        continue
                    rel = abs(a - b) / max(abs(a), abs(b))
                    worst = max(worst, rel)
                    if raw or rel > 0.01:
                        problems.append(f"{where} @{at:.0f} {key}: live {a} replay {b} ({rel:.2%})")
                    else:
                        close += 1
        replay.close()
    print(
        f"expressions: {len(exprs)}; values compared: {compared}; exact: {exact}; within 1%: {close}"
    )
    print(f"largest relative difference: {worst:.3g}; problems: {len(problems)}")
    for problem in problems[:30]:
        print("  " + problem)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
