"""`sandbox faults active` during a drill says a drill runs and keeps its changes to itself
unless asked with --show-drill."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from faults.base import ChangeCategory, FaultHandle, HandleState
from faults.store import HandleStore
from sandbox.cli import cli


def _handle(handle_id: str, source: str, params: dict[str, object]) -> FaultHandle:
    now = time.time()
    return FaultHandle(
        id=handle_id,
        change="engine-kv-budget" if "kv" in handle_id else "retriever-latency",
        category=ChangeCategory.FAULT,
        target=f"target:{handle_id}",
        params=params,
        state=HandleState.ACTIVE,
        source=source,
        created_at=now,
        ttl_s=3600,
        expires_at=now + 3600,
    )


def test_a_drill_s_changes_are_hidden_unless_asked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SANDBOX_RUN_DIR", str(tmp_path))
    from faults import StackContext
    from sandbox.settings import load_settings

    store = HandleStore(StackContext.from_settings(load_settings()).faults_dir)
    store.write(_handle("kv-1", "drill:kv-exhaustion:setup", {"kv_blocks": 24}))
    store.write(_handle("mine-1", "cli", {"median_s": 0.8}))
    runner = CliRunner()
    hidden = runner.invoke(cli, ["faults", "active"])
    assert hidden.exit_code == 0, hidden.output
    assert "a drill is running" in hidden.output and "--show-drill" in hidden.output
    assert "kv_blocks" not in hidden.output and "kv-1" not in hidden.output
    assert "mine-1" in hidden.output  # the user's own change is still listed
    shown = runner.invoke(cli, ["faults", "active", "--show-drill"])
    assert "kv_blocks=24" in shown.output and "mine-1" in shown.output
