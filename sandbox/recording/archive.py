"""Write and read a recording file (``format`` describes its members).

Reading checks everything a damaged or foreign file can get wrong and says so with the file's
name: not gzip/tar (corrupt), cut short (truncated), another format or an unknown version, a
member that does not parse (with its line), counts that disagree with ``meta.json``.
"""

from __future__ import annotations

import io
import json
import tarfile
import time
import zlib
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from sandbox.recording.format import (
    FORMAT_NAME,
    FORMAT_VERSION,
    Counts,
    Meta,
    RecordedSeries,
    Recording,
    RecordingError,
)
from sandbox.validation import field_problems

__all__ = ["read_meta", "read_recording", "write_recording"]

_DAMAGED = (tarfile.TarError, EOFError, zlib.error, OSError, UnicodeDecodeError)


def _jsonl(rows: list[Any]) -> bytes:
    return "".join(
        json.dumps(r, sort_keys=True, separators=(",", ":")) + "\n" for r in rows
    ).encode()


def _add(tar: tarfile.TarFile, name: str, data: bytes, mtime: float) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mtime = int(mtime)
    info.mode = 0o644
    tar.addfile(info, io.BytesIO(data))


def write_recording(path: Path, recording: Recording) -> Path:
    """Write ``recording`` to ``path`` (a ``.tar.gz``), atomically; counts in meta are refreshed."""
    series = sorted(recording.series, key=lambda s: sorted(s.labels.items()))
    counts = Counts(
        series=len(series),
        samples=sum(len(s.values) for s in series),
        span_lines=len(recording.spans),
        events=len(recording.events),
        notifications=len(recording.notifications),
    )
    meta = recording.meta.model_copy(update={"counts": counts})
    now = time.time()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part")
    with tarfile.open(tmp, "w:gz", compresslevel=9, format=tarfile.PAX_FORMAT) as tar:
        _add(tar, "meta.json", meta.model_dump_json(indent=1).encode(), now)
        _add(tar, "samples.jsonl", _jsonl([s.to_json() for s in series]), now)
        if recording.spans:
            body = "".join(line.rstrip("\n") + "\n" for line in recording.spans).encode()
            _add(tar, "spans.jsonl", body, now)
        if recording.events:
            _add(tar, "timeline.jsonl", _jsonl(recording.events), now)
        if recording.notifications:
            _add(tar, "alerts.jsonl", _jsonl(recording.notifications), now)
        if recording.report is not None:
            report = json.dumps(recording.report, indent=1, sort_keys=True, default=str)
            _add(tar, "report.json", report.encode(), now)
        if recording.manifest_yaml is not None:
            _add(tar, "incident.yaml", recording.manifest_yaml.encode(), now)
    tmp.replace(path)
    recording.meta = meta
    return path


def _members(path: Path, only: set[str] | None = None) -> dict[str, bytes]:
    if not path.exists():
        raise RecordingError(f"{path}: no such recording")
    out: dict[str, bytes] = {}
    try:
        with tarfile.open(path, "r:gz") as tar:
            for info in tar:
                if only is not None and info.name not in only:
                    if info.name == "samples.jsonl" and "meta.json" in out:
                        break  # meta is first; nothing more wanted
                    continue
                handle = tar.extractfile(info)
                if handle is None:
                    raise RecordingError(f"{path}: member {info.name} is not a file")
                out[info.name] = handle.read()
                if only is not None and only <= out.keys():
                    break
    except RecordingError:
        raise
    except _DAMAGED as exc:
        kind = (
            "truncated" if isinstance(exc, EOFError) or "unexpected end" in str(exc) else "corrupt"
        )
        raise RecordingError(
            f"{path}: {kind}: not a complete gzip-compressed tar ({type(exc).__name__}: {exc})"
        ) from exc
    return out


def _meta(path: Path, raw: bytes | None) -> Meta:
    if raw is None:
        raise RecordingError(f"{path}: not a recording (no meta.json member)")
    try:
        data = json.loads(raw)
    except ValueError as exc:
        raise RecordingError(f"{path}: meta.json is not JSON ({exc})") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT_NAME:
        found = data.get("format") if isinstance(data, dict) else None
        raise RecordingError(f"{path}: meta.json: format is {found!r}, not {FORMAT_NAME!r}")
    version = data.get("version")
    if version != FORMAT_VERSION:
        raise RecordingError(
            f"{path}: format version {version!r} is unknown: this sandbox reads version "
            f"{FORMAT_VERSION} (a newer sandbox wrote it? update the sandbox)"
        )
    try:
        return Meta.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(f"{f}: {m}" for f, m in field_problems(exc, default="(top level)"))
        raise RecordingError(f"{path}: meta.json: {problems}") from None


def _lines(path: Path, member: str, raw: bytes | None) -> list[Any]:
    rows = []
    for number, line in enumerate((raw or b"").decode().splitlines(), 1):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except ValueError as exc:
            raise RecordingError(f"{path}: {member} line {number}: not JSON ({exc})") from None
    return rows


def read_meta(path: Path) -> Meta:
    """Only ``meta.json`` (fast: stops before the samples)."""
    return _meta(path, _members(path, {"meta.json"}).get("meta.json"))


def read_recording(path: Path) -> Recording:
    """The whole recording; RecordingError naming the file for anything damaged or unknown."""
    members = _members(path)
    meta = _meta(path, members.get("meta.json"))
    if "samples.jsonl" not in members:
        raise RecordingError(f"{path}: truncated: no samples.jsonl member")
    series = []
    for number, row in enumerate(_lines(path, "samples.jsonl", members["samples.jsonl"]), 1):
        try:
            series.append(RecordedSeries.from_json(row))
        except (KeyError, TypeError, ValueError) as exc:
            raise RecordingError(f"{path}: samples.jsonl line {number}: {exc}") from None
    spans = (members.get("spans.jsonl") or b"").decode().splitlines()
    events = _lines(path, "timeline.jsonl", members.get("timeline.jsonl"))
    notifications = _lines(path, "alerts.jsonl", members.get("alerts.jsonl"))
    found = Counts(
        series=len(series),
        samples=sum(len(s.values) for s in series),
        span_lines=len(spans),
        events=len(events),
        notifications=len(notifications),
    )
    if found != meta.counts:
        raise RecordingError(
            f"{path}: truncated or altered: meta.json counts {meta.counts.model_dump()} "
            f"but the file holds {found.model_dump()}"
        )
    report = None
    if "report.json" in members:
        try:
            report = json.loads(members["report.json"])
        except ValueError as exc:
            raise RecordingError(f"{path}: report.json is not JSON ({exc})") from None
    manifest = members["incident.yaml"].decode() if "incident.yaml" in members else None
    return Recording(meta, series, spans, events, notifications, report, manifest)
