"""`sandbox incidents list|show` (the catalog) and `sandbox incident run ID` (the drill)."""

from __future__ import annotations

import signal
from pathlib import Path

import click

from sandbox.cli.options import mode_option, path_option

__all__ = ["COMMANDS", "incident_group", "incidents_group"]


@click.group("incidents")
def incidents_group() -> None:
    """The incident catalog (incidents/<id>/incident.yaml)."""


@incidents_group.command("list")
def list_command() -> None:
    """Every incident: id, difficulty, title, concepts (a bad manifest is reported, not hidden)."""
    from sandbox.drill.manifest import ManifestError, list_incidents, load_incident

    bad = 0
    for incident_id in list_incidents():
        try:
            m = load_incident(incident_id).manifest
        except ManifestError as exc:
            bad += 1
            click.secho(f"{incident_id:<24} INVALID: {exc}", fg="red")
            continue
        click.echo(f"{m.id:<24} {m.difficulty:<13} {m.title}")
        click.echo(f"{'':<24} concepts: {', '.join(m.concepts)}")
    if bad:
        raise SystemExit(1)


@incidents_group.command("show")
@click.argument("incident_id")
def show_command(incident_id: str) -> None:
    """What the learner is told (the page), and the incident's faults, for authors."""
    from sandbox.drill.manifest import ManifestError, load_incident

    try:
        m = load_incident(incident_id).manifest
    except ManifestError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"{m.id}: {m.title} ({m.difficulty})\n\n{m.page}")
    for spec in m.setup:
        scaled = (
            f" ({', '.join(spec.scale_with_load)} scaled with the load)"
            if spec.scale_with_load
            else ""
        )
        click.echo(f"setup: {spec.change} {spec.params}{scaled}")
    for fault in m.faults:
        click.echo(f"fault {fault.id}: {fault.change} {fault.params} after {fault.after_s:g} s")


@click.group("incident")
def incident_group() -> None:
    """Run an incident drill."""


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


@incident_group.command("run")
@click.argument("incident_id")
@mode_option("auto applies the reference mitigation and exits non-zero on any failure")
@click.option(
    "--seed", type=int, default=None, help="with ID=random: which incident is picked (reproducible)"
)
@click.option("--no-up", is_flag=True, help="do not start the stack; fail if it is not ready")
@path_option("--report-dir", help="where report.html goes")
def run_command(
    incident_id: str, mode: str, seed: int | None, no_up: bool, report_dir: Path | None
) -> None:
    """Run incident ID (or `random`): baseline, fault, page, diagnosis, mitigation, recovery, report."""
    from sandbox.drill.manifest import ManifestError, pick_incident
    from sandbox.drill.prompts import NoTerminal, Prompter
    from sandbox.drill.result import Mode as DrillMode
    from sandbox.drill.runner import Drill, DrillOptions
    from sandbox.settings import load_settings

    try:
        incident = pick_incident(incident_id, seed)
    except ManifestError as exc:
        raise click.ClickException(str(exc)) from exc
    if mode == "interactive":
        try:
            Prompter()  # fail now, before the stack starts, when there is no terminal
        except NoTerminal as exc:
            raise click.ClickException(str(exc)) from exc
    if incident_id == "random":
        click.echo(f"picked an incident blind (seed {seed}); its name is in the report")
    elif mode == "auto":
        click.echo(f"incident {incident.id}: {incident.manifest.title}")
    else:  # the title tells the story; the learner finds it out
        click.echo(f"incident {incident.id}")
    drill_mode: DrillMode = "interactive" if mode == "interactive" else "auto"  # click's Choice
    options = DrillOptions(mode=drill_mode, seed=seed, start_stack=not no_up, report_dir=report_dir)
    # `kill` (or a CI timeout) must not leave the drill's faults behind: SIGTERM unwinds like
    # Ctrl-C, through the drill's cleanup. (Background jobs of a script ignore SIGINT.)
    signal.signal(signal.SIGTERM, _interrupt)
    result = Drill(incident, load_settings(), options, say=click.echo).run()
    if not result.ok:
        raise SystemExit(1)


COMMANDS = [incidents_group, incident_group]
