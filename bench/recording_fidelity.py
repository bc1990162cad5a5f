"""Fidelity of a recording: the same queries, at the same instants, at the source and on the
offline replay (``sandbox.recording.fidelity``).

    .venv/bin/python bench/recording_fidelity.py RECORDING --live http://127.0.0.1:9090

``--live`` is the Prometheus the recording was made from, while it still holds the window. The
expressions are every dashboard panel's (variables at All), every rule's and every incident
signature's; the instants every ``--every`` seconds. Raw selectors must match exactly, the
others within 1%. Prints the figures; exits non-zero on any mismatch.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import yaml

from sandbox.promapi import PrometheusClient
from sandbox.recording import serve_recording
from sandbox.recording.fidelity import compare
from sandbox.settings import REPO_ROOT

sys.path.insert(0, str(REPO_ROOT))
from tests.dashboards_support import dashboard_exprs, rule_exprs, with_variables


def signature_exprs() -> list[tuple[str, str]]:
    out = []
    for path in sorted((REPO_ROOT / "incidents").glob("*/incident.yaml")):
        m = yaml.safe_load(path.read_text())
        for kind in ("anomalous", "normal"):
            for check in m.get("signature", {}).get(kind, []):
                out.append((f"{path.parent.name} {kind} {check['name']}", check["expr"]))
        for check in m.get("recovery", {}).get("slis", []):
            out.append((f"{path.parent.name} recovery {check['name']}", check["expr"]))
    return out


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("recording", type=Path)
    parser.add_argument("--live", required=True)
    parser.add_argument("--every", type=float, default=10.0)
    args = parser.parse_args()
    exprs = [(e.where, with_variables(e.expr)) for e in dashboard_exprs() + rule_exprs()]
    exprs += signature_exprs()
    with serve_recording(args.recording) as served, PrometheusClient(args.live) as live:
        with served.client() as replay:
            result = compare(live, replay, exprs, served.start, served.end, args.every)
    print(result.summary())
    for problem in result.problems[:30]:
        print("  " + problem)
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
