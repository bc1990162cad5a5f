"""What ``/proc`` says about a process: the few fields of ``/proc/<pid>/stat`` the runtime reads."""

from __future__ import annotations

from pathlib import Path

__all__ = ["group_members", "stat_fields"]


def stat_fields(pid: int) -> list[str] | None:
    """The fields of ``/proc/<pid>/stat`` after the command name, from the state (field 3) on;
    None when there is no such process (or it is not ours to read)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may contain spaces and parentheses; fields after it are plain.
    return stat[stat.rindex(")") + 2 :].split()


def group_members(pgid: int) -> list[int]:
    """Every live process in process group ``pgid``, zombies included."""
    members = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (fields := stat_fields(int(entry.name))) is not None:
            if int(fields[2]) == pgid:
                members.append(int(entry.name))
    return members
