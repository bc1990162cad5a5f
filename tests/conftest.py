"""Session fixtures. The real stack is started once per test session (vLLM takes ~20-30 s)."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.support import StackHandle, start_test_stack, stop_test_stack


@pytest.fixture(scope="session")
def local_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StackHandle]:
    """vLLM + Prometheus + Alertmanager on free ports in a temporary run directory.

    With SANDBOX_TEST_REUSE=1 the tests use the stack `make up` already runs (default settings)
    and leave it running: handy while iterating on one test.
    """
    if os.environ.get("SANDBOX_TEST_REUSE") == "1":
        yield StackHandle.from_running()
        return
    handle = start_test_stack(tmp_path_factory.mktemp("run"))
    try:
        yield handle
    finally:
        stop_test_stack(handle)
