"""Handles on disk: ``<run_dir>/faults/<id>.json`` while live, ``faults/done/<id>.json`` after.

Writes are atomic (write a temporary file, rename), so a crash never leaves half a handle.
``locked`` serialises the short read-check-write steps of the manager between processes
(the drill's reaper thread, a CLI call) with ``flock``; it is never held while a change runs.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

from faults.base import FaultHandle

__all__ = ["HandleStore"]


class HandleStore:
    def __init__(self, faults_dir: Path) -> None:
        self.dir = faults_dir
        self.done_dir = faults_dir / "done"

    def path(self, handle_id: str) -> Path:
        return self.dir / f"{handle_id}.json"

    def write(self, handle: FaultHandle) -> Path:
        self.dir.mkdir(parents=True, exist_ok=True)
        path = self.path(handle.id)
        tmp = path.with_name(f".{handle.id}.tmp")
        with open(tmp, "w") as out:
            out.write(handle.model_dump_json(indent=2) + "\n")
            out.flush()
            os.fsync(out.fileno())
        tmp.replace(path)
        return path

    def archive(self, handle: FaultHandle) -> Path:
        """Record a reverted handle under done/ and drop the live one."""
        self.done_dir.mkdir(parents=True, exist_ok=True)
        done = self.done_dir / f"{handle.id}.json"
        tmp = done.with_name(f".{handle.id}.tmp")
        tmp.write_text(handle.model_dump_json(indent=2) + "\n")
        tmp.replace(done)
        self.path(handle.id).unlink(missing_ok=True)
        return done

    def read(self, handle_id: str) -> FaultHandle | None:
        for path in (self.path(handle_id), self.done_dir / f"{handle_id}.json"):
            try:
                return FaultHandle.model_validate_json(path.read_text())
            except FileNotFoundError:
                continue
        return None

    def live(self) -> list[FaultHandle]:
        """Every handle not yet reverted, oldest first. An unreadable file is skipped (atomic
        writes mean it was not written by us)."""
        if not self.dir.is_dir():
            return []
        handles = []
        for path in self.dir.glob("*.json"):
            try:
                handles.append(FaultHandle.model_validate_json(path.read_text()))
            except (OSError, ValueError):
                continue
        return sorted(handles, key=lambda h: (h.created_at, h.id))

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        self.dir.mkdir(parents=True, exist_ok=True)
        with open(self.dir / ".lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)
