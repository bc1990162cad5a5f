"""Fault injectors: reversible changes to the running sandbox, with handles that outlive a crash.

A *change* is something the drill (or a person, with ``sandbox faults inject``) does to the
running system and must be able to undo: a **fault** breaks something where the real incident
happens (a tenant's traffic, a retriever phase, the gateway-engine network, the engine's KV
budget); an **operator** change is what a responder does about it (admission control, a
retrieval timeout, another engine flag). Both share one life cycle (``faults.manager``):

1. ``inject`` validates the parameters (pydantic, errors name the field), captures what it needs
   to undo the change, and writes the handle to ``<run_dir>/faults/<id>.json`` *before* touching
   anything, so a crash in the middle still leaves a handle to revert;
2. ``revert`` restores the captured state and moves the handle to ``faults/done/``;
3. every handle has a TTL: the drill's reaper reverts it on expiry, and every CLI call
   (``sandbox faults ...``, ``sandbox reset``) reverts expired handles first, even after a crash.

Injecting the same change twice returns the existing handle; reverting twice is harmless.
"""

# The package re-exports the whole interface of ``faults.base`` (as asyncio does its
# submodules'), so the names are listed once, where they are defined.
from faults import base
from faults.base import *  # noqa: F403
from faults.engine import one_engine_restart, setting_overrides
from faults.manager import active_handles, inject, reap_expired, reset, revert
from faults.registry import REGISTRY, get_change, list_changes

__all__ = [
    *base.__all__,
    "REGISTRY",
    "active_handles",
    "get_change",
    "inject",
    "list_changes",
    "one_engine_restart",
    "reap_expired",
    "reset",
    "revert",
    "setting_overrides",
]
