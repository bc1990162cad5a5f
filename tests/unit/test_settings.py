from __future__ import annotations

import os
from pathlib import Path

import pytest
from pydantic import ValidationError

from sandbox.components.engine import engine_component
from sandbox.settings import Mode, SettingsError, load_settings, parse_cpu_list


def test_defaults_work_out_of_the_box(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("SANDBOX_ENGINE_PORT", "SANDBOX_MODE", "SANDBOX_RUN_DIR"):
        monkeypatch.delenv(name, raising=False)
    settings = load_settings()
    assert settings.host == "127.0.0.1"
    assert settings.engine_url == "http://127.0.0.1:8100"
    assert settings.mode is Mode.AUTO
    assert (settings.model_dir / "config.json").exists()
    assert settings.targets_dir == settings.run_dir / "targets"


def test_environment_overrides(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("SANDBOX_ENGINE_PORT", "18100")
    monkeypatch.setenv("SANDBOX_RUN_DIR", str(tmp_path))
    monkeypatch.setenv("SANDBOX_KV_TOKENS", "3072")
    monkeypatch.setenv("SANDBOX_MODE", "local")
    settings = load_settings()
    assert settings.engine_port == 18100
    assert settings.run_dir == tmp_path
    assert settings.kv_tokens == 3072
    assert settings.resolve_mode() is Mode.LOCAL


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("SANDBOX_ENGINE_PORT", "eighty"),
        ("SANDBOX_ENGINE_PORT", "70000"),
        ("SANDBOX_MODE", "kubernetes"),
        ("SANDBOX_KV_TOKENS", "0"),
        ("SANDBOX_KV_BLOCK_SIZE", "100"),
        ("SANDBOX_ENGINE_BACKEND", "tpu"),
        ("SANDBOX_ENGINE_CPUS", "first"),
        ("SANDBOX_ENGINE_CPUS", "3-1"),
    ],
)
def test_bad_value_names_the_variable(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(SettingsError) as excinfo:
        load_settings()
    assert variable in str(excinfo.value)
    assert value in str(excinfo.value)


def test_settings_are_immutable() -> None:
    settings = load_settings()
    with pytest.raises(ValidationError, match="frozen"):
        settings.engine_port = 1  # type: ignore[misc]


def test_a_small_kv_budget_lowers_the_context_limit() -> None:
    from sandbox.components.engine import engine_argv, max_model_len

    assert max_model_len(load_settings()) == 4096
    small = load_settings(kv_tokens=3072)
    # vLLM refuses to start when one max-length request cannot fit in the KV cache (seen: 2,944).
    assert max_model_len(small) == 23 * 128
    argv = engine_argv(small, 8100)
    assert argv[argv.index("--max-model-len") + 1] == "2944"
    assert argv[argv.index("--num-gpu-blocks-override") + 1] == "24"


@pytest.mark.parametrize(
    ("text", "cpus"), [("1", (1,)), ("0-3", (0, 1, 2, 3)), ("2,0", (0, 2)), ("0-1,1", (0, 1))]
)
def test_cpu_lists_read_as_linux_writes_them(text: str, cpus: tuple[int, ...]) -> None:
    assert parse_cpu_list(text) == cpus


def test_engine_cpus_reach_the_engine_spec_and_its_thread_count() -> None:
    settings = load_settings(engine_cpus="1", engine_backend="cpu")
    spec = engine_component().spec(settings)
    assert (spec.cpus, spec.compute_threads) == ((1,), 1)
    # Unset: no confinement, and (cores - 1) // 2 threads, so that two engines fit.
    spec = engine_component().spec(load_settings(engine_backend="cpu"))
    assert spec.cpus == ()
    assert spec.compute_threads == max(1, ((os.cpu_count() or 1) - 1) // 2)
