"""Prometheus file-based discovery for one job, leaving the other jobs' files alone.

(``sandbox.stack.write_targets`` rewrites every job's file from the stack's components; the
deployer changes only ``engine.json`` while the stack runs.)
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence

from sandbox.components.base import ScrapeTarget
from sandbox.settings import Settings

__all__ = ["read_job_targets", "write_job_targets"]


def write_job_targets(settings: Settings, job: str, targets: Sequence[ScrapeTarget]) -> None:
    """Rewrite ``<targets_dir>/<job>.json`` atomically (Prometheus may read it at any moment)."""
    settings.targets_dir.mkdir(parents=True, exist_ok=True)
    groups = [{"targets": [t.address], "labels": t.labels} for t in targets if t.job == job]
    path = settings.targets_dir / f"{job}.json"
    text = json.dumps(groups, indent=2) + "\n"
    try:
        if path.read_text() == text:
            return  # unchanged: do not make Prometheus re-read
    except FileNotFoundError:
        pass
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(text)
    tmp.replace(path)


def read_job_targets(settings: Settings, job: str) -> list[ScrapeTarget]:
    try:
        groups = json.loads((settings.targets_dir / f"{job}.json").read_text() or "[]")
    except FileNotFoundError:
        return []
    return [
        ScrapeTarget(job, address, dict(g.get("labels", {})))
        for g in groups
        for address in g["targets"]
    ]
