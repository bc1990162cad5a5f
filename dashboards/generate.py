"""Write every dashboard's JSON into ``dashboards/`` (``python -m dashboards.generate``).

``--check`` writes nothing and exits 1 when a checked-in file differs from what the code makes.
JSON is encoded with sorted keys and a final newline, so diffs stay small.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path

from grafana_foundation_sdk.builders.dashboard import Dashboard
from grafana_foundation_sdk.cog.encoder import JSONEncoder

from dashboards.capacity import capacity_dashboard
from dashboards.engine import engine_dashboard
from dashboards.overview import overview_dashboard
from dashboards.rag import rag_dashboard
from dashboards.rollout import rollout_dashboard

__all__ = ["DASHBOARDS", "OUT_DIR", "generate", "render_json"]

OUT_DIR = Path(__file__).resolve().parent

# File name (and the renderer's --dashboard NAME) -> builder.
DASHBOARDS: dict[str, Callable[[], Dashboard]] = {
    "overview": overview_dashboard,
    "engine": engine_dashboard,
    "rag": rag_dashboard,
    "rollout": rollout_dashboard,
    "capacity": capacity_dashboard,
}


def render_json(name: str) -> str:
    built = DASHBOARDS[name]().build()
    return json.dumps(json.loads(JSONEncoder().encode(built)), sort_keys=True, indent=2) + "\n"


def generate(out_dir: Path = OUT_DIR, check: bool = False) -> list[str]:
    """Write (or with ``check`` compare) every dashboard; return the names that were stale."""
    stale = []
    for name in DASHBOARDS:
        path = out_dir / f"{name}.json"
        text = render_json(name)
        if not path.exists() or path.read_text() != text:
            stale.append(name)
            if not check:
                path.write_text(text)
    return stale


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--check", action="store_true", help="compare only; exit 1 when a file is stale"
    )
    parser.add_argument("--out", type=Path, default=OUT_DIR)
    args = parser.parse_args(argv)
    stale = generate(args.out, check=args.check)
    if args.check and stale:
        print(f"stale dashboards: {', '.join(stale)} (run `make dashboards`)", file=sys.stderr)
        return 1
    print(
        f"{'checked' if args.check else 'wrote'} {len(DASHBOARDS)} dashboards in {args.out}"
        + (f" ({', '.join(stale)} changed)" if stale and not args.check else "")
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
