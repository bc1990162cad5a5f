"""Dashboard files to the panels and queries the grader runs.

A file is Grafana JSON (as exported, or wrapped as ``{"dashboard": {...}}`` by the HTTP API) or
a Python module that builds a dashboard with grafana-foundation-sdk. Whatever is wrong with the
input becomes a message naming the file, the panel and the query, never an exception from deep
inside: a file that cannot be read at all raises ``GradeInputError``; a panel or query that
cannot be graded is skipped with a ``problems`` entry.

Template variables resolve to their defaults: a query or custom variable to "All" (``.*``, and
``label="$var"`` becomes ``label=~".*"``), a constant or text box to its value, an interval to its
first option. Grafana's interval macros are left to the renderer's ``substitute``.
"""

from __future__ import annotations

import copy
import importlib.util
import inspect
import json
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sandbox.exceptions import ConfigError
from sandbox.settings import REPO_ROOT

__all__ = [
    "GradeInputError",
    "LoadedDashboard",
    "Panel",
    "Query",
    "load_dashboard_file",
    "load_dashboards",
    "resolve_variables",
]


class GradeInputError(ConfigError):
    """A dashboard or rules file the grader cannot read at all (the message says which and why)."""


@dataclass(frozen=True)
class Query:
    ref_id: str
    expr: str  # variables resolved; Grafana's $__ macros left for substitute()
    legend: str


@dataclass(frozen=True)
class Panel:
    dashboard: str
    id: int
    title: str
    type: str
    unit: str
    description: str
    queries: tuple[Query, ...]

    @property
    def key(self) -> str:
        return f"{self.dashboard}#{self.id}"

    @property
    def label(self) -> str:
        return f"{self.dashboard} / {self.title or f'panel {self.id}'}"


@dataclass
class LoadedDashboard:
    name: str
    source: Path
    panels: list[Panel]
    raw: dict[str, Any]  # normalised JSON the renderer can draw (only gradable panels)
    problems: list[str] = field(default_factory=list)


_MACRO_EXTRAS = {  # Grafana macros the renderer's substitute() does not know
    "__interval_ms": "60000",
    "__range_s": "3600",
    "__range_ms": "3600000",
    "__rate_interval_ms": "60000",
}
_NON_PROMETHEUS = re.compile(
    r"loki|tempo|jaeger|zipkin|elastic|influx|graphite|mysql|postgres|mssql|testdata|"
    r"cloudwatch|azure|stackdriver|opentsdb|expression|__expr__|dashboard",
    re.I,
)


def _variable_default(var: dict[str, Any]) -> str:
    kind = var.get("type", "query")
    current = var.get("current") or {}
    value = current.get("value") if isinstance(current, dict) else None
    if isinstance(value, list):
        value = value[0] if len(value) == 1 else None
    if kind in ("constant", "textbox"):
        return str(var.get("query") or value or "")
    if kind == "interval":
        options = [o.get("value") for o in var.get("options", []) if isinstance(o, dict)]
        first = str(var.get("query", "1m")).split(",")[0].strip()
        chosen = value if isinstance(value, str) and not value.startswith("$") else None
        return str(chosen or (options[0] if options else first) or "1m")
    if kind == "datasource":
        return "prometheus"
    return str(var.get("allValue") or ".*")


def resolve_variables(expr: str, variables: dict[str, str]) -> str:
    """Replace ``$var``, ``${var}``, ``${var:fmt}`` and ``[[var]]`` with defaults; an equality
    matcher on a variable becomes a regex matcher so "All" matches everything."""

    def as_regex(match: re.Match[str]) -> str:
        name = match.group(3) or match.group(4) or match.group(5)
        if name not in variables:
            return match.group(0)
        op = "=~" if match.group(2) == "=" else "!~"
        return f'{match.group(1)}{op}"{variables[name]}"'

    expr = re.sub(
        r'(\b[a-zA-Z_]\w*\s*)(=|!=)\s*"\s*(?:\$\{(\w+)(?::\w+)?\}|\$(\w+)|\[\[(\w+)\]\])\s*"',
        as_regex,
        expr,
    )
    values = {**variables, **_MACRO_EXTRAS}

    def replace(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2) or match.group(3)
        return values.get(name, match.group(0))

    return re.sub(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)\b|\[\[(\w+)\]\]", replace, expr)


def _datasource_problem(datasource: Any) -> str | None:
    """Why a datasource is not Prometheus, or None when it is (or may be: a variable, default)."""
    if datasource is None:
        return None
    if isinstance(datasource, dict):
        kind = str(datasource.get("type") or "")
        if not kind or "prometheus" in kind.lower():
            return None
        return f"datasource type {kind!r} is not Prometheus"
    text = str(datasource)
    if text.startswith("$") or "prom" in text.lower() or text in ("default", "-- Mixed --"):
        return None
    if _NON_PROMETHEUS.search(text):
        return f"datasource {text!r} is not Prometheus"
    return None


def _flatten(items: list[Any]) -> list[dict[str, Any]]:
    panels: list[dict[str, Any]] = []
    for item in items:
        if not isinstance(item, dict):
            continue
        if item.get("type") == "row":
            panels.extend(_flatten(item.get("panels") or []))
        else:
            panels.append(item)
    return panels


def _panel_name(raw: dict[str, Any], index: int) -> str:
    return repr(raw.get("title") or f"panel #{index + 1}")


def _unit(raw: dict[str, Any]) -> str:
    defaults = (raw.get("fieldConfig") or {}).get("defaults") or {}
    unit = defaults.get("unit") or ""
    if not unit:  # the old graph panel kept units per axis
        axes = raw.get("yaxes") or []
        unit = axes[0].get("format", "") if axes and isinstance(axes[0], dict) else ""
        unit = "" if unit == "short" and not axes else unit
    return str(unit)


def parse_dashboard_json(data: Any, name: str, source: Path) -> LoadedDashboard:
    """Parsed JSON -> a LoadedDashboard; problems become messages, never exceptions."""
    if isinstance(data, dict) and isinstance(data.get("dashboard"), dict):
        data = data["dashboard"]
    if not isinstance(data, dict):
        raise GradeInputError(f"{source}: not a Grafana dashboard (a JSON object is expected)")
    if not isinstance(data.get("panels"), list):
        raise GradeInputError(
            f"{source}: not a Grafana dashboard: no 'panels' list "
            "(export it from Grafana with Share > Export, or give the JSON model)"
        )
    problems: list[str] = []
    templating = (data.get("templating") or {}).get("list") or []
    variables = {
        str(v["name"]): _variable_default(v)
        for v in templating
        if isinstance(v, dict) and v.get("name")
    }
    panels: list[Panel] = []
    normalised: list[dict[str, Any]] = []
    used_ids: set[int] = set()
    seen_repeats: set[tuple[str, str]] = set()
    for item in data["panels"]:
        if isinstance(item, dict) and item.get("type") == "row" and item.get("repeat"):
            problems.append(
                f"{name}: row {item.get('title', '')!r} repeats over ${item['repeat']}: "
                "its panels are graded once, with the variable at its default (All)"
            )
    for index, raw in enumerate(_flatten(data["panels"])):
        title = _panel_name(raw, index)
        if raw.get("repeatPanelId") is not None or raw.get("repeatIteration") is not None:
            problems.append(
                f"{name}: panel {title} is a copy made by Grafana's repeat; graded once, "
                "through the panel it repeats"
            )
            continue
        if raw.get("repeat"):
            key = (str(raw.get("title")), str(raw["repeat"]))
            if key in seen_repeats:
                problems.append(
                    f"{name}: panel {title} repeats again over ${raw['repeat']}: skipped"
                )
                continue
            seen_repeats.add(key)
            problems.append(
                f"{name}: panel {title} repeats over ${raw['repeat']}: graded once, "
                "with the variable at its default (All)"
            )
        targets = raw.get("targets") or []
        if not isinstance(targets, list) or not targets:
            continue  # text, news, dashboard lists: nothing to query
        panel_source = raw.get("datasource")
        queries: list[Query] = []
        kept_targets: list[dict[str, Any]] = []
        for t_index, target in enumerate(targets):
            if not isinstance(target, dict) or target.get("hide"):
                continue
            ref = str(target.get("refId") or chr(ord("A") + t_index % 26))
            expr = target.get("expr")
            where = f"{name}: panel {title}, query {ref}"
            problem = _datasource_problem(target.get("datasource") or panel_source)
            if problem:
                problems.append(f"{where}: {problem}; skipped ({str(expr or '')[:80]!r})")
                continue
            if not isinstance(expr, str) or not expr.strip():
                problems.append(f"{where}: no PromQL expression (field 'expr'); skipped")
                continue
            resolved = resolve_variables(expr, variables)
            queries.append(Query(ref, resolved, str(target.get("legendFormat") or "")))
            kept_targets.append({**target, "expr": resolved, "refId": ref})
        if not queries:
            continue
        try:
            panel_id = int(raw.get("id"))  # type: ignore[arg-type]
        except (TypeError, ValueError):
            panel_id = 0
        if panel_id <= 0 or panel_id in used_ids:
            panel_id = max(used_ids | {0}) + 1 + 1000 * (panel_id in used_ids)
        used_ids.add(panel_id)
        description = str(raw.get("description") or "")
        panels.append(
            Panel(
                name,
                panel_id,
                str(raw.get("title") or ""),
                str(raw.get("type") or "timeseries"),
                _unit(raw),
                description,
                tuple(queries),
            )
        )
        panel_copy = copy.deepcopy(raw)
        panel_copy.update(id=panel_id, targets=kept_targets)
        panel_copy.setdefault("gridPos", {"x": 0, "y": index * 8, "w": 12, "h": 8})
        if panel_copy.get("type") not in ("timeseries", "stat"):
            panel_copy["type"] = "timeseries"  # graph, gauge, bargauge, heatmap: drawn as lines
        normalised.append(panel_copy)
    raw_out = {
        "uid": str(data.get("uid") or name),
        "title": str(data.get("title") or name),
        "description": str(data.get("description") or ""),
        "panels": normalised,
        "templating": {"list": []},
        "annotations": {"list": []},
    }
    if not panels:
        problems.append(f"{name}: no panel with a Prometheus query to grade")
    return LoadedDashboard(name, source, panels, raw_out, problems)


def _no_required_arguments(func: Any) -> bool:
    try:
        parameters = inspect.signature(func).parameters.values()
    except (TypeError, ValueError):
        return False
    return all(
        p.default is not inspect.Parameter.empty
        or p.kind in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
        for p in parameters
    )


def _candidates(module: Any, stem: str) -> list[Any]:
    """What may build the dashboard, best first: ``<stem>_dashboard()``, other
    ``*_dashboard()`` and ``dashboard()`` functions defined in the module and callable without
    arguments, then a module-level builder object (anything with ``build()``)."""
    names = [f"{stem}_dashboard", "dashboard", "build_dashboard", "main"]
    names += sorted(n for n in vars(module) if n.endswith("_dashboard"))
    found: list[Any] = []
    for name in dict.fromkeys(names):
        func = getattr(module, name, None)
        if (
            inspect.isfunction(func)
            and func.__module__ == module.__name__
            and _no_required_arguments(func)
        ):
            found.append(func)
    found += [
        value
        for name, value in sorted(vars(module).items())
        if not name.startswith("_")
        and not inspect.ismodule(value)
        and not inspect.isclass(value)
        and callable(getattr(value, "build", None))
    ]
    return found


def _load_module(path: Path) -> Any:
    """Import a Python file and return the dashboard it builds, as parsed JSON."""
    from grafana_foundation_sdk.cog.encoder import JSONEncoder

    for folder in (str(path.parent), str(REPO_ROOT)):
        if folder not in sys.path:
            sys.path.insert(0, folder)
    module_name = "_graded_" + re.sub(r"\W", "_", path.stem)
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise GradeInputError(f"{path}: cannot be imported as a Python module")
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        raise GradeInputError(f"{path}: importing it failed: {type(exc).__name__}: {exc}") from exc
    for candidate in _candidates(module, path.stem):
        try:
            built = candidate() if callable(candidate) else candidate
            if hasattr(built, "build"):
                built = built.build()
            return built if isinstance(built, dict) else json.loads(JSONEncoder().encode(built))
        except Exception as exc:  # a learner's module may fail in any way
            raise GradeInputError(
                f"{path}: building the dashboard failed: {type(exc).__name__}: {exc}"
            ) from exc
    raise GradeInputError(
        f"{path}: no dashboard found: define a function `<name>_dashboard()` (or `dashboard()`) "
        "returning a grafana-foundation-sdk Dashboard builder"
    )


def load_dashboard_file(path: Path | str) -> LoadedDashboard:
    path = Path(path)
    if not path.exists():
        raise GradeInputError(f"{path}: no such file")
    if path.suffix == ".py":
        data = _load_module(path)
    else:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise GradeInputError(
                f"{path}: not valid JSON: line {exc.lineno}, column {exc.colno}: {exc.msg}"
            ) from None
        except UnicodeDecodeError:
            raise GradeInputError(f"{path}: not a text file (JSON is expected)") from None
    return parse_dashboard_json(data, path.stem, path)


def load_dashboards(paths: list[Path] | list[str]) -> list[LoadedDashboard]:
    """Every file, in order; two files with one stem get distinct names."""
    loaded: list[LoadedDashboard] = []
    names: set[str] = set()
    for path in paths:
        dash = load_dashboard_file(path)
        base, n = dash.name, 2
        while dash.name in names:
            dash.name = f"{base}-{n}"
            n += 1
        if dash.name != base:
            dash.panels = [
                Panel(dash.name, p.id, p.title, p.type, p.unit, p.description, p.queries)
                for p in dash.panels
            ]
        names.add(dash.name)
        loaded.append(dash)
    return loaded
