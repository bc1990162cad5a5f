"""`sandbox record` (a window of any Prometheus to a file) and `sandbox replay` (a recording)."""

from __future__ import annotations

import signal
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import click

from sandbox.cli.options import mode_option, path_option
from sandbox.durations import relative_to_now
from sandbox.exceptions import SandboxError

__all__ = ["COMMANDS", "parse_time", "recording_path"]


def parse_time(text: str, now: float | None = None) -> float:
    """Unix seconds, ISO 8601 (UTC unless an offset is given), ``now`` or ``now-15m``."""
    now = time.time() if now is None else now
    text = text.strip()
    if (relative := relative_to_now(text, now)) is not None:
        return relative
    try:
        return float(text)
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise click.BadParameter(
            f"{text!r}: give Unix seconds, ISO 8601 (2026-12-03T12:00:00Z), now or now-15m"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def _iso(ts: float | None) -> str:
    return "-" if ts is None else datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def recording_path(ref: str) -> Path:
    """A path, or an incident id whose shipped recording is ``incidents/<id>/recording.tar.gz``."""
    path = Path(ref)
    if path.exists() or path.suffix in (".gz", ".tgz") or "/" in ref:
        return path
    from sandbox.drill.manifest import incidents_dir
    from sandbox.recording.drill_hook import RECORDING_NAME

    return incidents_dir() / ref / RECORDING_NAME


@click.command("record")
@click.option("--prometheus", "url", required=True, help="base URL, e.g. http://127.0.0.1:9090")
@click.option("--start", "start_text", required=True, help="Unix s, ISO 8601, now-15m")
@click.option("--end", "end_text", default="now", show_default=True)
@click.option(
    "--match",
    "matchers",
    multiple=True,
    help="series selector (repeatable), e.g. --match '{job=\"engine\"}'; default: every series",
)
@path_option("--spans", help="OTLP JSON lines to keep (the window's only)")
@click.option("--bearer-token-file", type=click.Path(path_type=Path, exists=True, dir_okay=False))
@click.option("--injected-at", "injected_text", help="when the incident began (marks the replay)")
@click.option("--incident", "incident_id", help="incident id to tie the recording to")
@click.option("--scrape-interval", type=float, help="seconds; default: read from Prometheus")
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path),
    default=Path("recording.tar.gz"),
    show_default=True,
)
def record_command(
    url: str,
    start_text: str,
    end_text: str,
    matchers: tuple[str, ...],
    spans: Path | None,
    bearer_token_file: Path | None,
    injected_text: str | None,
    incident_id: str | None,
    scrape_interval: float | None,
    output: Path,
) -> None:
    """Record a window of any Prometheus (raw samples, optional spans) to a recording file."""
    from sandbox.promapi import PrometheusClient
    from sandbox.recording.record import record_window

    now = time.time()
    start, end = parse_time(start_text, now), parse_time(end_text, now)
    if end <= start:
        raise click.BadParameter(f"--end ({_iso(end)}) is not after --start ({_iso(start)})")
    prom = PrometheusClient.with_token_file(url, bearer_token_file, timeout_s=60)
    try:
        recording = record_window(
            prom,
            start,
            end,
            list(matchers),
            spans_file=spans,
            injected_at=parse_time(injected_text, now) if injected_text else None,
            incident_id=incident_id,
            scrape_interval_s=scrape_interval,
            progress=lambda msg: click.echo(f"  {msg}", err=True),
        )
        from sandbox.recording.archive import write_recording

        write_recording(output, recording)
    except SandboxError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
    finally:
        prom.close()
    counts = recording.meta.counts
    click.echo(
        f"{output}: {output.stat().st_size / 1024:.0f} KiB, {counts.series} series, "
        f"{counts.samples} samples, {counts.span_lines} span lines, {_iso(start)} .. {_iso(end)}"
    )


def _serve(path: Path) -> None:
    from sandbox.recording.serve import serve_recording

    stop = False

    def _stop(signum: int, frame: object) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, _stop)
    started = time.monotonic()
    with serve_recording(path) as served:
        click.echo(f"serving {path} (ready in {time.monotonic() - started:.1f} s)")
        click.echo(f"  prometheus: {served.url}")
        click.echo(f"  range:      {_iso(served.start)} .. {_iso(served.end)}")
        click.echo(f"              {served.start:.3f} .. {served.end:.3f} (Unix s)")
        if served.injected_at is not None:
            click.echo(f"  injected:   {_iso(served.injected_at)} ({served.injected_at:.3f})")
        click.echo(f"  incident:   {served.incident_id or '(none)'}")
        span = max(60, round(served.end - served.start))
        click.echo(
            f"  graph:      {served.url}/graph?g0.expr=up&g0.tab=0&g0.range_input={span}s"
            f"&g0.end_input={datetime.fromtimestamp(served.end, UTC).strftime('%Y-%m-%d%%20%H:%M:%S')}"
        )
        click.echo("Ctrl-C stops it.")
        sys.stdout.flush()
        try:
            while not stop:
                time.sleep(0.5)
        except KeyboardInterrupt:
            pass
    click.echo("stopped")


@click.command("replay")
@click.argument("ref", metavar="PATH|INCIDENT")
@click.option("--serve", is_flag=True, help="offline: serve the whole window until stopped")
@mode_option(
    "live replay: auto checks the signature and the alerts and exits non-zero if they misbehave"
)
@click.option(
    "--baseline",
    "baseline_s",
    type=click.FloatRange(min=0),
    default=None,
    help="live replay: seconds of the recorded baseline replayed in real time before the fault "
    "(default 60; the history before them is loaded at once)",
)
def replay_command(ref: str, serve: bool, mode: str, baseline_s: float | None) -> None:
    """Replay a recording: live (the drill, without an engine) or, with --serve, offline."""
    path = recording_path(ref)
    try:
        if serve:
            _serve(path)
            return
        from sandbox.recording.replay_drill import run_live_replay

        ok = run_live_replay(
            path,
            mode=mode,  # type: ignore[arg-type]
            say=click.echo,
            baseline_s=baseline_s,
        ).ok
    except SandboxError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
    sys.exit(0 if ok else 1)


COMMANDS = [record_command, replay_command]
