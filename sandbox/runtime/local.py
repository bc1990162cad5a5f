"""Local runtime: each service is a process group under ``sandbox.runtime.supervise``.

State lives in the run directory so any later command (``status``, ``down``, a test) can find
what an earlier one started:

- ``pids/<name>.json``: the supervisor's pid (also the process-group id), its start time from
  ``/proc`` (so a recycled pid is never mistaken for ours), the command and the log path;
- ``pids/<name>.exit``: written by the supervisor when the service ends on its own;
- ``logs/<name>.log``: the service's stdout and stderr.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import deque
from pathlib import Path

from sandbox.runtime.base import ServiceSpec, ServiceState, ServiceStatus, StartError
from sandbox.runtime.procfs import group_members, stat_fields
from sandbox.runtime.supervise import exit_file

__all__ = ["LocalRuntime", "group_alive", "process_start_time"]


def process_start_time(pid: int) -> int | None:
    """The process' start time in clock ticks since boot, or None when there is no such pid."""
    fields = stat_fields(pid)
    return None if fields is None else int(fields[19])  # field 22 of the whole line


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie leader still counts for killpg; look for a member that is not a zombie.
    return any(_state(pid) not in (None, "Z") for pid in group_members(pgid))


def _state(pid: int) -> str | None:
    fields = stat_fields(pid)
    return None if fields is None else fields[0]


class LocalRuntime:
    """Runs services as supervised local process groups; see the module docstring."""

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = run_dir
        self.pid_dir = run_dir / "pids"
        self.log_dir = run_dir / "logs"

    # -- records ---------------------------------------------------------------------------
    def _pid_file(self, name: str) -> Path:
        return self.pid_dir / f"{name}.json"

    def _record(self, name: str) -> dict[str, object] | None:
        try:
            return dict(json.loads(self._pid_file(name).read_text()))
        except FileNotFoundError:
            return None
        except json.JSONDecodeError:
            # A pid file cut short by a crash mid-write: treat as gone, `down` removes it.
            return {}

    def log_path(self, name: str) -> Path:
        return self.log_dir / f"{name}.log"

    # -- Runtime protocol ------------------------------------------------------------------
    def start(self, spec: ServiceSpec) -> ServiceStatus:
        current = self.status(spec.name)
        if current.state is ServiceState.RUNNING:
            return current
        if current.state is ServiceState.EXITED:
            self._forget(spec.name)
        self.pid_dir.mkdir(parents=True, exist_ok=True)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log_path = self.log_path(spec.name)
        argv = [
            sys.executable,
            "-m",
            "sandbox.runtime.supervise",
            "--name",
            spec.name,
            "--state-dir",
            str(self.pid_dir),
        ]
        if spec.cpus:
            allowed = os.sched_getaffinity(0)
            if not set(spec.cpus) <= allowed:
                raise StartError(
                    f"{spec.name}: asked for CPU cores {list(spec.cpus)}, but this machine lets us use "
                    f"{sorted(allowed)}"
                )
            argv += ["--cpus", ",".join(str(cpu) for cpu in spec.cpus)]
        if spec.nice:
            argv += ["--nice", str(spec.nice)]
        if spec.child_nice:
            argv += ["--child-nice", str(spec.child_nice)]
        if spec.realtime:
            argv += ["--realtime"]
        argv += ["--", *spec.argv]
        env = {**os.environ, **spec.env}
        if spec.compute_threads:
            env["OMP_NUM_THREADS"] = str(spec.compute_threads)
        with open(log_path, "ab", buffering=0) as log:
            log.write(
                f"--- {time.strftime('%Y-%m-%dT%H:%M:%S')} starting: {' '.join(spec.argv)}\n".encode()
            )
            try:
                process = subprocess.Popen(
                    argv,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    env=env,
                    cwd=spec.cwd,
                    start_new_session=True,  # own process group: stop() signals the group
                )
            except OSError as exc:
                raise StartError(f"{spec.name}: cannot run {spec.argv[0]}: {exc}") from exc
        record = {
            "name": spec.name,
            "pid": process.pid,
            "start_time": process_start_time(process.pid),
            "argv": list(spec.argv),
            "fingerprint": spec.fingerprint(),
            "port": spec.port,
            "log": str(log_path),
            "started_at": time.time(),
        }
        tmp = self._pid_file(spec.name).with_suffix(".tmp")
        tmp.write_text(json.dumps(record) + "\n")
        tmp.replace(self._pid_file(spec.name))
        return ServiceStatus(
            spec.name,
            ServiceState.RUNNING,
            pid=process.pid,
            log_path=log_path,
            fingerprint=spec.fingerprint(),
        )

    def status(self, name: str) -> ServiceStatus:
        record = self._record(name)
        log_path = self.log_path(name)
        if record is None:
            return ServiceStatus(name, ServiceState.STOPPED, log_path=log_path)
        pid = record.get("pid")
        if isinstance(pid, int) and self._is_ours(pid, record) and _state(pid) not in (None, "Z"):
            fingerprint = record.get("fingerprint")
            return ServiceStatus(
                name,
                ServiceState.RUNNING,
                pid=pid,
                log_path=log_path,
                fingerprint=fingerprint if isinstance(fingerprint, str) else None,
            )
        code: int | None = None
        try:
            code = int(json.loads(exit_file(self.pid_dir, name).read_text())["exit_code"])
            detail = f"exited with code {code}"
        except (FileNotFoundError, json.JSONDecodeError, KeyError):
            detail = "its supervisor is gone (killed, or the machine restarted)"
            if isinstance(pid, int) and group_alive(pid):
                detail += "; some of its processes still run: `make down` stops them"
        return ServiceStatus(
            name,
            ServiceState.EXITED,
            pid=pid if isinstance(pid, int) else None,
            exit_code=code,
            detail=f"{detail}; see {log_path}",
            log_path=log_path,
        )

    def stop(self, name: str, timeout_s: float = 15.0) -> ServiceStatus:
        record = self._record(name)
        if record is None:
            return ServiceStatus(name, ServiceState.STOPPED, log_path=self.log_path(name))
        pid = record.get("pid")
        if isinstance(pid, int) and (self._is_ours(pid, record) or group_alive(pid)):
            self._stop_group(pid, timeout_s)
        self._forget(name)
        return ServiceStatus(name, ServiceState.STOPPED, log_path=self.log_path(name))

    def names(self) -> list[str]:
        if not self.pid_dir.is_dir():
            return []
        return sorted(p.stem for p in self.pid_dir.glob("*.json"))

    def log_tail(self, name: str, lines: int = 20) -> str:
        try:
            with open(self.log_path(name), errors="replace") as log:
                return "".join(deque(log, maxlen=lines))
        except FileNotFoundError:
            return ""

    # -- internals -------------------------------------------------------------------------
    def _is_ours(self, pid: int, record: dict[str, object]) -> bool:
        started = record.get("start_time")
        return started is None or process_start_time(pid) == started

    def _stop_group(self, pgid: int, timeout_s: float) -> None:
        for sig, wait_s in ((signal.SIGTERM, timeout_s), (signal.SIGKILL, 5.0)):
            try:
                os.killpg(pgid, sig)
            except ProcessLookupError:
                return
            deadline = time.monotonic() + wait_s
            while time.monotonic() < deadline:
                if not group_alive(pgid):
                    return
                time.sleep(0.1)
        if group_alive(pgid):
            raise StartError(f"process group {pgid} survived SIGKILL")

    def _forget(self, name: str) -> None:
        for path in (self._pid_file(name), exit_file(self.pid_dir, name)):
            path.unlink(missing_ok=True)
