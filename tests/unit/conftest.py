"""Fixtures shared by the unit tests of deployments and of the autoscaler."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.unit.gateway_helpers import Server, gateway_with_standin_stable


@pytest.fixture(scope="module")
def gateway() -> Iterator[Server]:
    """The real gateway app with one stand-in stable engine, shared by a module's tests."""
    with gateway_with_standin_stable() as server:
        yield server
