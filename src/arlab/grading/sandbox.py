"""One submission's grading in its own process, under a wall-clock limit.

Grading processes are forked from a small fork server (``python -m arlab.grading.sandbox``)
that has already imported nbgrader and arlab, because a fresh interpreter spends seconds on
those imports for every submission. The server reads jobs as JSON lines, forks one process
per job and reports its pid and, later, its exit code. Each grading process starts its own
session, so the supervisor can kill it and everything it started: the kernel (which
jupyter_client puts in a session of its own) and the kernel's children are found by walking
``/proc`` while the job runs, and their process groups are killed at the end. The memory limit
is applied to the kernel at launch (see
:class:`arlab.grading.preprocessors.LimitedKernelManager`). POSIX only (fork).

Each grading process is also confined before it runs anything of the student's (see
:mod:`arlab.grading.confine`): a pids (and memory) cgroup, a private mount namespace that
hides the real course, the solutions and every other submission, a network namespace with
only a loopback device, file-size and process limits, and an unprivileged uid of its own.
Two kinds of job: ``autograde`` (nbgrader in the throwaway course) and ``probe`` (the
submission's code and the graded parts' probes, :mod:`arlab.grading.probe_runner`).
"""
from __future__ import annotations

import itertools
import json
import os
import select
import signal
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

_SERVER_LOCK = threading.Lock()
_SERVER: _Server | None = None
_IDS = itertools.count()


@dataclass(frozen=True)
class Job:
    """Grade ``student``'s ``assignment`` in the throwaway course at ``course``."""

    course: str
    assignment: str
    student: str
    env: dict[str, str]
    log: str
    wall_seconds: float
    id: str = ""
    kind: str = "autograde"        # or "probe"
    box: str = ""                  # the only folder of the job's own that stays visible
    hide: tuple[str, ...] = ()     # folders covered by an empty tmpfs
    expose: tuple[str, ...] = ()   # folders bound back when under a cover (the interpreter)
    uid: int | None = None         # unprivileged uid to run as (root only)
    cgroups: tuple[str, ...] = ()  # cgroup folders the process joins first
    fsize_mb: int = 256
    nproc: int = 256
    memory_mb: int = 0
    probe_spec: str = ""
    isolate: bool = True           # False: only the process-group kill (benchmarks)


@dataclass(frozen=True)
class Ended:
    exitcode: int | None
    timed_out: bool
    seconds: float

    @property
    def ok(self) -> bool:
        return self.exitcode == 0 and not self.timed_out


def _child(job: Job) -> int:
    """Body of a grading process: nbgrader's Autograde on the throwaway course."""
    os.setsid()
    out = os.open(job.log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.dup2(out, 1)
    os.dup2(out, 2)
    os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
    sys.stdout = open(1, "w", closefd=False)
    sys.stderr = open(2, "w", closefd=False)
    os.environ.clear()
    os.environ.update(job.env)
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    from arlab.grading import confine

    for note in confine.confine(job) if job.isolate else ["not isolated"]:
        print(f"sandbox: {note}", flush=True)
    os.chdir(job.course)
    if job.kind == "probe":  # a fresh interpreter: nothing of the fork server is shared
        os.execv(sys.executable, [sys.executable, "-m", "arlab.grading.probe_runner",
                                  job.probe_spec])
    from nbgrader.converters import Autograde

    from arlab.grading.course import Course, CourseError, run_converter

    try:
        print(run_converter(Autograde, Course.at(job.course), job.assignment, job.student,
                            force=True, create_student=True))
        return 0
    except CourseError as err:
        print(err, file=sys.stderr)
        return 3


def _serve() -> None:
    """The fork server's loop (single-threaded, so forking is safe)."""
    import nbgrader.converters  # noqa: F401 - the imports every grading process reuses

    import arlab.grading.preprocessors  # noqa: F401

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the supervisor's to handle
    children: dict[int, str] = {}
    pending = b""

    def send(message: dict) -> None:
        os.write(1, (json.dumps(message) + "\n").encode())

    send({"ready": True})
    while True:
        readable, _, _ = select.select([0], [], [], 0.1)
        if readable:
            chunk = os.read(0, 65536)
            if not chunk:  # the supervisor is gone: end what is still running, then stop
                for pid in children:
                    _kill_groups({pid})
                return
            pending += chunk
            while b"\n" in pending:
                line, pending = pending.split(b"\n", 1)
                job = Job(**json.loads(line))
                pid = os.fork()
                if pid == 0:
                    code = 1
                    try:
                        code = _child(job)
                    finally:
                        sys.stdout.flush()
                        sys.stderr.flush()
                        os._exit(code)
                children[pid] = job.id
                send({"id": job.id, "pid": pid})
        while children:
            pid, status = os.waitpid(-1, os.WNOHANG)
            if pid == 0:
                break
            send({"id": children.pop(pid), "exit": os.waitstatus_to_exitcode(status)})


@dataclass
class _Slot:
    pid: int | None = None
    exitcode: int | None = None
    started: threading.Event = field(default_factory=threading.Event)
    ended: threading.Event = field(default_factory=threading.Event)


class _Server:
    """The supervisor's handle on the fork server."""

    def __init__(self) -> None:
        import arlab  # the server must import the same arlab, even from a source checkout

        env = dict(os.environ)
        here = str(Path(arlab.__file__).resolve().parents[1])
        env["PYTHONPATH"] = os.pathsep.join(p for p in (here, env.get("PYTHONPATH")) if p)
        self.process = subprocess.Popen([sys.executable, "-m", "arlab.grading.sandbox"],
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env)
        self.slots: dict[str, _Slot] = {}
        self.lock = threading.Lock()
        self.ready = threading.Event()
        threading.Thread(target=self._read, daemon=True, name="arlab-fork-server").start()

    def _read(self) -> None:
        for line in self.process.stdout:
            try:
                message = json.loads(line)
            except ValueError:  # stray output of an import: not a message
                continue
            if message.get("ready"):
                self.ready.set()
                continue
            slot = self.slots[message["id"]]
            if "pid" in message:
                slot.pid = message["pid"]
                slot.started.set()
            else:
                slot.exitcode = message["exit"]
                slot.ended.set()
        for slot in list(self.slots.values()):  # the server died: nothing more will come
            slot.started.set()
            slot.ended.set()
        self.ready.set()

    def alive(self) -> bool:
        return self.process.poll() is None

    def submit(self, job: Job) -> _Slot:
        slot = _Slot()
        with self.lock:
            self.slots[job.id] = slot
            self.process.stdin.write((json.dumps(asdict(job)) + "\n").encode())
            self.process.stdin.flush()
        return slot


def _server() -> _Server:
    global _SERVER
    if not hasattr(os, "fork"):
        from arlab.grading.course import CourseError

        raise CourseError("autograde needs a POSIX system (Linux or macOS) to sandbox the "
                           "submissions; run it there.")
    with _SERVER_LOCK:
        if _SERVER is None or not _SERVER.alive():
            _SERVER = _Server()
        return _SERVER


def warm_up() -> None:
    """Start the fork server now (its imports take seconds) without waiting for it."""
    _server()


def _descendant_groups(root: int) -> set[int]:
    """Process groups of ``root`` and of every process below it (Linux ``/proc``)."""
    parents: dict[int, int] = {}
    groups: dict[int, int] = {}
    try:
        entries = os.listdir("/proc")
    except OSError:
        return set()
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2:].split()  # after "pid (name) "
        parents[int(entry)] = int(fields[1])
        groups[int(entry)] = int(fields[2])
    found, frontier = {root}, [root]
    while frontier:
        pid = frontier.pop()
        for child, parent in parents.items():
            if parent == pid and child not in found:
                found.add(child)
                frontier.append(child)
    return {groups[p] for p in found if p in groups}


def _kill_groups(groups: set[int]) -> None:
    own = os.getpgrp()
    for group in groups:
        if group in (0, 1, own):  # before setsid a child still shares its parent's group
            continue
        try:
            os.killpg(group, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


def run(job: Job, start_timeout: float = 300) -> Ended:
    """Run ``job`` in its own process; kill it and its process tree after ``wall_seconds``
    (and, at the end, every process left in its cgroups)."""
    from arlab.grading import confine

    server = _server()
    number = next(_IDS)
    job_id = f"{os.getpid()}-{number}"
    cgroups = confine.make_cgroups(job_id, job.nproc, job.memory_mb) if job.isolate else []
    uid = confine.sandbox_uid(number) if confine.is_root() and job.isolate else None
    job = Job(**{**asdict(job), "id": job_id, "cgroups": tuple(cgroups), "uid": uid})
    try:
        return _supervise(server, job, start_timeout)
    finally:
        confine.remove_cgroups(cgroups)


def _supervise(server: _Server, job: Job, start_timeout: float) -> Ended:
    if not server.ready.wait(start_timeout) or not server.alive():
        return Ended(None, False, 0.0)
    slot = server.submit(job)
    slot.started.wait(start_timeout)
    start = time.monotonic()
    if slot.pid is None:
        return Ended(None, False, 0.0)
    groups: set[int] = {slot.pid}
    timed_out = False
    ticks = 0
    while not slot.ended.wait(0.1):
        ticks += 1
        if ticks % 5 == 1:
            groups |= _descendant_groups(slot.pid)
        if time.monotonic() - start > job.wall_seconds:
            timed_out = True
            groups |= _descendant_groups(slot.pid)
            break
    _kill_groups(groups)  # also ends whatever the kernel left running
    slot.ended.wait(10)
    return Ended(slot.exitcode, timed_out, time.monotonic() - start)


if __name__ == "__main__":
    _serve()
