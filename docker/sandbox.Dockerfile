# The sandbox's own services (gateway, retriever, load generator, autoscaler) for compose.
FROM python:3.11-slim-bookworm
# torch (for the retriever's embedding model) comes from PyTorch's CPU wheel index.
ARG TORCH_INDEX=""
WORKDIR /app
COPY . .
# Editable, so the services find the repository's docs and incidents (the retriever's corpus).
RUN pip install --no-cache-dir ${TORCH_INDEX:+--extra-index-url "$TORCH_INDEX"} -e .
ENV HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 PYTHONUNBUFFERED=1
