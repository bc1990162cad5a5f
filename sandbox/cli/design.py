"""`sandbox dashboards grade FILE...` and `sandbox rules grade FILE`: design practice, graded
against the incidents' recordings (docs/dashboard-practice.md)."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import click

from sandbox.cli.dashboards import dashboards
from sandbox.cli.options import path_option
from sandbox.settings import load_settings

if TYPE_CHECKING:
    from sandbox.design.window import Window

__all__ = ["COMMANDS", "grade", "rules"]

_RECORDINGS = click.option(
    "--recording",
    "recordings",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="a recording to grade against (repeat); default: every incidents/<id>/recording.tar.gz",
)


def _recordings(given: tuple[Path, ...]) -> list[Path]:
    from sandbox.design.window import recording_paths

    paths = list(given) or recording_paths()
    if not paths:
        raise click.ClickException(
            "no recording to grade against: none is shipped in incidents/<id>/recording.tar.gz "
            "(`make recordings` makes them) and none was given with --recording"
        )
    return paths


@contextmanager
def _served_windows(given: tuple[Path, ...]) -> Iterator[list[Window]]:
    """Every recording served at once (``serve_windows``), with a note for each one left out;
    an error when none has an injected fault to grade against."""
    from sandbox.design.window import serve_windows

    skipped: list[str] = []
    with serve_windows(_recordings(given), skipped) as windows:
        for line in skipped:
            click.echo(f"note: {line}", err=True)
        if not windows:
            raise click.ClickException("no recording with an injected fault to grade against")
        yield windows


@dashboards.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
@_RECORDINGS
@path_option(
    "--out",
    help="folder for the pictures (<out>/<incident>/<dashboard>.png; default <run_dir>/grade)",
)
@click.option("--no-pictures", is_flag=True, help="skip drawing the dashboard over each incident")
@click.option("--json", "as_json", is_flag=True, help="print the grade as JSON")
def grade(
    files: tuple[Path, ...],
    recordings: tuple[Path, ...],
    out: Path | None,
    no_pictures: bool,
    as_json: bool,
) -> None:
    """Grade dashboards (Grafana JSON or a grafana-foundation-sdk module) against every
    incident's recording: detection, phase, time to signal, told-apart matrix, pitfalls."""
    from sandbox.design import GradeInputError, grade_dashboards, load_dashboards
    from sandbox.design.report import draw_pictures, grade_json, grade_text

    try:
        loaded = load_dashboards(list(files))
    except GradeInputError as exc:
        raise click.ClickException(str(exc)) from None
    with _served_windows(recordings) as windows:
        result = grade_dashboards(loaded, windows)
        out = out or load_settings().run_dir / "grade"
        pictures = [] if no_pictures else draw_pictures(loaded, windows, out)
    if as_json:
        click.echo(
            json.dumps({**grade_json(result), "pictures": [str(p) for p in pictures]}, indent=2)
        )
        return
    click.echo(grade_text(result, [d.name for d in loaded]))
    if pictures:
        click.echo(f"\nPictures: {len(pictures)} under {out}/ (one per incident and dashboard)")


@click.group()
def rules() -> None:
    """Alerting rules: grade a learner's rules file against the incidents' recordings."""


@rules.command(name="grade")
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
@_RECORDINGS
@click.option("--json", "as_json", is_flag=True, help="print the grade as JSON")
def rules_grade(files: tuple[Path, ...], recordings: tuple[Path, ...], as_json: bool) -> None:
    """Which incidents the rules page on and how soon, false pages, alerts that cannot fire.
    Several files are graded as one alert set."""
    from dataclasses import asdict

    from sandbox.design import GradeInputError
    from sandbox.design.rules import grade_rules, load_rule_files, rules_text

    try:
        load_rule_files(list(files))
    except GradeInputError as exc:
        raise click.ClickException(str(exc)) from None
    with _served_windows(recordings) as windows:
        result = grade_rules(list(files), windows)
    if as_json:
        json.dump(asdict(result), sys.stdout, indent=2, default=str)
        click.echo()
        return
    click.echo(rules_text(result, ", ".join(f.name for f in files)))


COMMANDS = [rules]
