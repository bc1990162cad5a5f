"""The tenants the sandbox knows: every tenant of the shipped load profiles, plus ``default``.

The gateway labels its metrics with the tenant a request names (``X-Sandbox-Tenant``), and
counts any name it does not know as ``other`` so that a client cannot blow up the label set.
The set it knows is read from the profiles themselves (``sandbox/loadgen/profiles/*.yaml``), so
a tenant added to a profile shows under its own name without a second list to keep in step.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import yaml

__all__ = ["DEFAULT_TENANT", "PROFILES_DIR", "known_tenants"]

PROFILES_DIR = Path(__file__).resolve().parent / "loadgen" / "profiles"
DEFAULT_TENANT = "default"  # a request without the header


@cache
def known_tenants(profiles_dir: Path = PROFILES_DIR) -> tuple[str, ...]:
    """``default`` and every tenant named in a profile, sorted (a broken profile is skipped:
    loading it reports the error where it belongs)."""
    names = {DEFAULT_TENANT}
    for path in sorted(profiles_dir.glob("*.yaml")):
        try:
            data = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError:
            continue
        tenants = data.get("tenants") if isinstance(data, dict) else None
        if isinstance(tenants, dict):
            names.update(str(name) for name in tenants)
    return tuple(sorted(names))
