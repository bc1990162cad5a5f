"""Every engine's arguments: block size, KV budget in tokens, GPU memory share, OTLP settings.

The same settings give the same KV budget on either backend (tokens, in explicit blocks), and a
GPU engine takes a bounded share of the GPU so a canary and an added replica fit beside it.
"""

from __future__ import annotations

import pytest

from sandbox.components.engine import (
    COLLECTOR_TRACES_URL,
    container_engine_argv,
    engine_argv,
    engine_env,
    kv_cache_blocks,
    max_model_len,
)
from sandbox.settings import EngineBackend, Settings, load_settings


def _flag(argv: list[str], name: str) -> str | None:
    return argv[argv.index(name) + 1] if name in argv else None


def _settings(backend: EngineBackend, **overrides: object) -> Settings:
    return load_settings(engine_backend=backend, **overrides)


def test_the_cpu_engine_keeps_its_calibration() -> None:
    # kv-exhaustion's budget: 3,072 tokens are the 24 blocks of 128 tokens it was measured with.
    settings = _settings(EngineBackend.CPU, kv_tokens=3072)
    argv = engine_argv(settings, 8100)
    assert _flag(argv, "--block-size") == "128"
    assert _flag(argv, "--num-gpu-blocks-override") == "24"
    assert _flag(argv, "--max-model-len") == "2944"
    assert "--gpu-memory-utilization" not in argv  # on the CPU it would reserve RAM instead
    assert engine_env(settings)["VLLM_CPU_KVCACHE_SPACE"] == "1"
    # One process fewer to spawn and to poll (the worker runs in the engine core's).
    assert engine_env(settings)["VLLM_ENABLE_V1_MULTIPROCESSING"] == "0"


@pytest.mark.parametrize("backend", [EngineBackend.CPU, EngineBackend.CUDA])
def test_a_budget_in_tokens_means_the_same_on_every_backend(backend: EngineBackend) -> None:
    settings = _settings(backend, kv_tokens=3072)
    for argv in (engine_argv(settings, 8100), container_engine_argv(settings)):
        assert _flag(argv, "--block-size") == "128"
        assert _flag(argv, "--num-gpu-blocks-override") == "24"


def test_tokens_round_up_to_whole_blocks() -> None:
    assert kv_cache_blocks(load_settings(kv_tokens=3073)) == 25
    assert kv_cache_blocks(load_settings(kv_tokens=3072, kv_block_size=16)) == 192
    assert kv_cache_blocks(load_settings()) is None
    assert max_model_len(load_settings(kv_tokens=512, kv_block_size=16)) == 496


def test_every_gpu_engine_takes_a_bounded_share_of_the_gpu() -> None:
    settings = _settings(EngineBackend.CUDA)
    share = float(_flag(container_engine_argv(settings), "--gpu-memory-utilization") or 0)
    # The stable engine, a canary and an added replica on one GPU.
    assert 0 < share and 3 * share <= 0.95
    assert _flag(engine_argv(settings, 8100), "--gpu-memory-utilization") == f"{share:g}"
    assert "VLLM_CPU_KVCACHE_SPACE" not in engine_env(settings)


def test_traces_go_to_the_sink_locally_and_to_the_collector_in_a_container() -> None:
    settings = _settings(EngineBackend.CUDA)
    local = engine_argv(settings, 8100)
    assert (
        _flag(local, "--otlp-traces-endpoint")
        == f"http://127.0.0.1:{settings.trace_sink_port}/v1/traces"
    )
    inside = container_engine_argv(settings)
    assert _flag(inside, "--otlp-traces-endpoint") == COLLECTOR_TRACES_URL
    assert _flag(inside, "--host") == "0.0.0.0"
    assert _flag(inside, "--port") == "8000"
    assert _flag(inside, "--model") == "/models/tiny-llama"
    # vLLM's exporter speaks gRPC unless told; the sink and the collector's :4318 take HTTP.
    assert engine_env(settings)["OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"] == "http/protobuf"


def test_auto_backend_is_the_cpu_without_nvidia_smi(monkeypatch: pytest.MonkeyPatch) -> None:
    from sandbox.settings import nvidia_gpu_present

    monkeypatch.setenv("PATH", "/nonexistent")
    nvidia_gpu_present.cache_clear()
    try:
        assert load_settings().resolve_engine_backend() is EngineBackend.CPU
    finally:
        nvidia_gpu_present.cache_clear()
