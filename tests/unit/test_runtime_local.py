"""The local runtime against real processes (short Python children), no mocks."""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from pathlib import Path

import pytest

from sandbox.runtime.base import ServiceSpec, ServiceState, StartError
from sandbox.runtime.local import LocalRuntime, group_alive
from sandbox.runtime.procfs import group_members
from tests.support import poll_until

SLEEPER = (sys.executable, "-c", "import time; print('up', flush=True); time.sleep(600)")
# A child that forks a grandchild, like vLLM's API server and its engine-core process.
FORKER = (
    sys.executable,
    "-c",
    "import subprocess, sys, time; subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)']); time.sleep(600)",
)


def spec(name: str, argv: tuple[str, ...] = SLEEPER) -> ServiceSpec:
    return ServiceSpec(name=name, argv=argv, port=0)


@pytest.fixture()
def runtime(tmp_path: Path):  # type: ignore[no-untyped-def]
    rt = LocalRuntime(tmp_path)
    yield rt
    for name in rt.names():
        rt.stop(name, timeout_s=2)


def test_start_status_stop(runtime: LocalRuntime) -> None:
    started = runtime.start(spec("sleeper"))
    assert started.state is ServiceState.RUNNING and started.pid
    assert runtime.status("sleeper").state is ServiceState.RUNNING
    poll_until(lambda: "up" in runtime.log_tail("sleeper"), "the child's output in its log", 10)
    assert runtime.names() == ["sleeper"]
    runtime.stop("sleeper", timeout_s=5)
    assert not group_alive(started.pid)
    assert runtime.status("sleeper").state is ServiceState.STOPPED
    assert runtime.names() == []


def test_start_is_idempotent(runtime: LocalRuntime) -> None:
    first = runtime.start(spec("once"))
    second = runtime.start(spec("once"))
    assert first.pid == second.pid


def test_a_child_that_dies_is_reported_with_its_exit_code(runtime: LocalRuntime) -> None:
    runtime.start(spec("crasher", (sys.executable, "-c", "import sys; print('boom'); sys.exit(3)")))
    status = poll_until(
        lambda: (s := runtime.status("crasher")).state is ServiceState.EXITED and s,
        "the crash to be seen",
        10,
    )
    assert status.exit_code == 3
    assert "exited with code 3" in status.detail
    assert "boom" in runtime.log_tail("crasher")


def test_cores_bind_the_service_and_what_it_forks(runtime: LocalRuntime) -> None:
    core = min(os.sched_getaffinity(0))
    started = runtime.start(ServiceSpec(name="pinned", argv=FORKER, port=0, cpus=(core,)))
    pids = poll_until(
        lambda: p if len(p := group_members(started.pid)) >= 3 else None,
        "supervisor, child, grandchild",
        10,
    )
    assert all(os.sched_getaffinity(pid) == {core} for pid in pids)
    assert (
        os.sched_getaffinity(0) != {core} or os.cpu_count() == 1
    )  # the test's own process is not confined


def test_compute_threads_reach_the_service_as_openmp_s_thread_count(runtime: LocalRuntime) -> None:
    show = "import os, time; print('threads', os.environ.get('OMP_NUM_THREADS'), flush=True); time.sleep(600)"
    runtime.start(
        ServiceSpec(name="counted", argv=(sys.executable, "-c", show), port=0, compute_threads=3)
    )
    runtime.start(ServiceSpec(name="default", argv=(sys.executable, "-c", show), port=0))
    poll_until(lambda: "threads 3" in runtime.log_tail("counted"), "OMP_NUM_THREADS=3", 10)
    expected = f"threads {os.environ.get('OMP_NUM_THREADS')}"  # 0 leaves the environment alone
    poll_until(lambda: expected in runtime.log_tail("default"), expected, 10)


def test_a_nice_value_reaches_the_service_and_what_it_forks(runtime: LocalRuntime) -> None:
    # A lower priority (a positive nice) needs no privilege, so the test runs as any user.
    started = runtime.start(ServiceSpec(name="gentle", argv=FORKER, port=0, nice=7))
    pids = poll_until(
        lambda: p if len(p := group_members(started.pid)) >= 3 else None,
        "supervisor, child, grandchild",
        10,
    )
    assert all(os.getpriority(os.PRIO_PROCESS, pid) == 7 for pid in pids)
    assert os.getpriority(os.PRIO_PROCESS, 0) != 7  # the test's own process is untouched


@pytest.mark.skipif(os.geteuid() != 0, reason="the real-time class needs root")
def test_a_realtime_service_and_what_it_forks_run_in_the_real_time_class(
    runtime: LocalRuntime,
) -> None:
    started = runtime.start(ServiceSpec(name="punctual", argv=FORKER, port=0, realtime=True))
    pids = poll_until(
        lambda: p if len(p := group_members(started.pid)) >= 3 else None,
        "supervisor, child, grandchild",
        10,
    )
    assert all(os.sched_getscheduler(pid) == os.SCHED_RR for pid in pids)
    assert all(os.sched_getparam(pid).sched_priority == 1 for pid in pids)
    assert os.sched_getscheduler(0) == os.SCHED_OTHER  # the test's own process is untouched


@pytest.mark.skipif(os.geteuid() != 0, reason="the real-time class needs root")
def test_a_realtime_service_with_a_child_nice_value_keeps_what_it_starts_in_the_normal_class(
    runtime: LocalRuntime,
) -> None:
    # vLLM's API server: real-time, while its engine core (which polls) must not be.
    started = runtime.start(
        ServiceSpec(
            name="api-server-like", argv=THREADED_FORKER, port=0, realtime=True, child_nice=9
        )
    )
    supervisor = started.pid
    assert supervisor is not None
    grandchild = poll_until(
        lambda: next((pid for c in _children(supervisor) for pid in _children(c)), None),
        "the grandchild",
        10,
    )
    (child,) = _children(supervisor)
    assert os.sched_getscheduler(child) == os.SCHED_RR | os.SCHED_RESET_ON_FORK
    assert os.sched_getparam(child).sched_priority == 1
    tids = [int(t.name) for t in Path(f"/proc/{grandchild}/task").iterdir()]
    assert tids and all(os.sched_getscheduler(tid) == os.SCHED_OTHER for tid in tids)
    assert os.sched_getscheduler(supervisor) == os.SCHED_OTHER


# A child whose grandchild starts a thread at once, as vLLM's engine core does before the
# supervisor can have seen it.
THREADED_FORKER = (
    sys.executable,
    "-c",
    "import subprocess, sys, time; subprocess.Popen([sys.executable, '-c', "
    "'import threading, time; threading.Thread(target=time.sleep, args=(600,), daemon=True).start(); "
    "time.sleep(600)']); time.sleep(600)",
)


def test_a_child_nice_value_reaches_what_the_service_starts_but_not_the_service(
    runtime: LocalRuntime,
) -> None:
    started = runtime.start(
        ServiceSpec(name="engine-like", argv=THREADED_FORKER, port=0, child_nice=9)
    )
    supervisor = started.pid
    assert supervisor is not None

    def threads_of_grandchild() -> list[int] | None:
        grandchildren = [pid for child in _children(supervisor) for pid in _children(child)]
        if not grandchildren:
            return None
        tids = [int(t.name) for t in Path(f"/proc/{grandchildren[0]}/task").iterdir()]
        niced = all(os.getpriority(os.PRIO_PROCESS, tid) == 9 for tid in tids)
        return tids if len(tids) >= 2 and niced else None

    tids = poll_until(threads_of_grandchild, "both grandchild threads at nice 9", 10)
    assert len(tids) == 2
    (child,) = _children(supervisor)
    assert os.getpriority(os.PRIO_PROCESS, child) == 0  # the service itself keeps its priority
    assert os.getpriority(os.PRIO_PROCESS, supervisor) == 0


def _children(pid: int) -> list[int]:
    return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def test_cores_the_machine_lacks_are_refused_before_anything_starts(runtime: LocalRuntime) -> None:
    with pytest.raises(StartError, match=r"asked for CPU cores \[4096\]"):
        runtime.start(ServiceSpec(name="nowhere", argv=SLEEPER, port=0, cpus=(4096,)))
    assert runtime.names() == []


def test_stop_reaches_grandchildren(runtime: LocalRuntime) -> None:
    started = runtime.start(spec("forker", FORKER))
    poll_until(lambda: _group_size(started.pid) >= 3, "supervisor, child and grandchild", 10)
    runtime.stop("forker", timeout_s=5)
    assert not group_alive(started.pid)


def test_stop_after_the_supervisor_was_killed(runtime: LocalRuntime) -> None:
    """A crash of the supervisor leaves its children; stop (what `down` does) still ends them."""
    started = runtime.start(spec("orphaned", FORKER))
    poll_until(lambda: _group_size(started.pid) >= 3, "supervisor, child and grandchild", 10)
    os.kill(started.pid, signal.SIGKILL)
    poll_until(
        lambda: runtime.status("orphaned").state is ServiceState.EXITED,
        "the supervisor's death",
        10,
    )
    assert group_alive(started.pid), "the children should still run before stop"
    runtime.stop("orphaned", timeout_s=5)
    assert not group_alive(started.pid)


def test_a_recycled_pid_is_not_mistaken_for_ours(runtime: LocalRuntime) -> None:
    # A pid file left by a crash, whose pid now belongs to another process (this test's).
    runtime.pid_dir.mkdir(parents=True, exist_ok=True)
    record = {"name": "stale", "pid": os.getpid(), "start_time": 1}
    (runtime.pid_dir / "stale.json").write_text(json.dumps(record))
    assert runtime.status("stale").state is ServiceState.EXITED
    assert runtime._is_ours(os.getpid(), record) is False
    (runtime.pid_dir / "stale.json").unlink()


def test_stop_twice_and_unknown_names_are_harmless(runtime: LocalRuntime) -> None:
    runtime.start(spec("twice"))
    runtime.stop("twice", timeout_s=5)
    runtime.stop("twice", timeout_s=5)
    assert runtime.stop("never-started").state is ServiceState.STOPPED


def test_a_service_that_ignores_sigterm_is_killed(runtime: LocalRuntime) -> None:
    stubborn = (
        sys.executable,
        "-c",
        "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('ready', flush=True); time.sleep(600)",
    )
    started = runtime.start(spec("stubborn", stubborn))
    poll_until(lambda: "ready" in runtime.log_tail("stubborn"), "the child to ignore SIGTERM", 10)
    begin = time.monotonic()
    runtime.stop("stubborn", timeout_s=1)
    assert not group_alive(started.pid)
    assert time.monotonic() - begin < 10


def _group_size(pgid: int) -> int:
    return len(group_members(pgid))
