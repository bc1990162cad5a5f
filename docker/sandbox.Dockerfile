# The sandbox's own services (gateway, retriever, load generator, autoscaler) for compose.
FROM python:3.11-slim-bookworm
# torch (for the retriever's embedding model, which runs on the CPU) comes from PyTorch's CPU
# wheel index, installed first and from that index alone: `pip install .` would otherwise take
# the multi-GB CUDA build from PyPI.
ARG TORCH_INDEX=https://download.pytorch.org/whl/cpu
RUN pip install --no-cache-dir --index-url "$TORCH_INDEX" "torch==2.13.0"
WORKDIR /app
COPY . .
# Editable, so the services find the repository's docs and incidents (the retriever's corpus).
RUN pip install --no-cache-dir --extra-index-url "$TORCH_INDEX" -e .
ENV HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 PYTHONUNBUFFERED=1
