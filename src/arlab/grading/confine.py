"""Operating-system confinement of one grading process (Linux), applied in the process
itself right after the fork server forked it and before anything of the student's runs.

What is applied depends on what the system allows; :func:`describe` says it in words:

- **cgroups** (v1 ``pids`` and ``memory`` at ``/sys/fs/cgroup``): the job's processes and
  threads are capped by ``pids.max`` (which, unlike ``RLIMIT_NPROC``, binds root too), their
  total memory by ``memory.limit_in_bytes``; the supervisor kills everything left in the
  cgroup when the job ends, however it detached.
- **namespaces** (root: ``unshare(CLONE_NEWNS | CLONE_NEWNET)``; otherwise an unprivileged
  user namespace when the kernel allows one): a network with only a loopback device (the
  kernel's ZeroMQ sockets need it; nothing outside is reachable) and a private mount table
  in which the real course, the repository's ``solutions/``, ``/tmp``, ``/dev/shm`` and the
  folder of every other submission lie under empty tmpfs mounts; only the job's own box is
  bound back.
- **an unprivileged uid** (root only): a uid of its own per job, which owns the box and
  nothing else, with ``no_new_privs`` so set-uid programs cannot give root back.
- **rlimits**: file size, process count (per uid, so it binds once the uid is dropped), no
  core dumps; a subreaper so orphans stay below the job while it runs.
"""
from __future__ import annotations

import ctypes
import fcntl
import os
import resource
import socket
import struct
from pathlib import Path

_CLONE_NEWNS, _CLONE_NEWUSER, _CLONE_NEWNET = 0x00020000, 0x10000000, 0x40000000
_MS_RDONLY, _MS_BIND, _MS_REC, _MS_PRIVATE = 1, 4096, 16384, 1 << 18
_PR_SET_NO_NEW_PRIVS, _PR_SET_CHILD_SUBREAPER = 38, 36
CGROUP_ROOT = Path("/sys/fs/cgroup")
UID_BASE = 610_000  # sandbox uids: UID_BASE + n, owned by no account

_libc = ctypes.CDLL(None, use_errno=True)


def is_root() -> bool:
    return os.geteuid() == 0


def sandbox_uid(number: int) -> int:
    """A uid for job ``number`` of this supervisor: distinct for concurrent jobs, so one
    submission's code cannot signal or read another's."""
    return UID_BASE + (os.getpid() % 4096) * 64 + number % 64


def _call(name: str, *args) -> None:
    if getattr(_libc, name)(*args) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{name}: {os.strerror(err)}")


def _mount(source: str, target: str, fstype: str | None, flags: int, data: str | None) -> None:
    _call("mount", source.encode() if source else None, target.encode(),
          fstype.encode() if fstype else None, ctypes.c_ulong(flags),
          data.encode() if data else None)


# --- cgroups (used by the supervisor) -----------------------------------------------------
def make_cgroups(job_id: str, nproc: int, memory_mb: int) -> list[str]:
    """Create ``arlab-<job_id>`` under the pids (and, with ``memory_mb``, memory) controllers;
    returns the folders made (none when cgroups are not writable)."""
    made = []
    settings = [("pids", "pids.max", str(nproc))]
    if memory_mb:
        settings.append(("memory", "memory.limit_in_bytes", str(2 * memory_mb * 2**20)))
    for controller, knob, value in settings:
        folder = CGROUP_ROOT / controller / f"arlab-{job_id}"
        try:
            folder.mkdir()
            (folder / knob).write_text(value)
            made.append(str(folder))
        except OSError:
            try:
                folder.rmdir()
            except OSError:
                pass
    return made


def cgroup_pids(folder: str) -> list[int]:
    try:
        return [int(p) for p in Path(folder, "cgroup.procs").read_text().split()]
    except (OSError, ValueError):
        return []


def remove_cgroups(folders: list[str], attempts: int = 400) -> None:
    """Kill every process in the cgroups until none is left, then remove them. The pids cap
    bounds how many a fork loop can make, so repeated killing wins."""
    import signal
    import time

    for folder in folders:
        for _ in range(attempts):
            pids = cgroup_pids(folder)
            if not pids:
                break
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
            time.sleep(0.02)
        for _ in range(100):  # a killed process leaves the cgroup a moment later
            try:
                os.rmdir(folder)
                break
            except OSError:
                time.sleep(0.02)


# --- inside the grading process -------------------------------------------------------------
def _loopback_up() -> None:
    """``ip link set lo up`` by ioctl (a new network namespace starts with lo down)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        request = struct.pack("16sH", b"lo", 0) + bytes(22)
        flags = struct.unpack("16sH", fcntl.ioctl(sock, 0x8913, request)[:18])[1]
        fcntl.ioctl(sock, 0x8914, struct.pack("16sH", b"lo", flags | 1) + bytes(22))


def _namespaces(root: bool) -> None:
    if root:
        _call("unshare", _CLONE_NEWNS | _CLONE_NEWNET)
        return
    uid, gid = os.getuid(), os.getgid()
    _call("unshare", _CLONE_NEWUSER | _CLONE_NEWNS | _CLONE_NEWNET)
    Path("/proc/self/setgroups").write_text("deny")
    Path("/proc/self/uid_map").write_text(f"{uid} {uid} 1")
    Path("/proc/self/gid_map").write_text(f"{gid} {gid} 1")


def _under(path: str, folder: str) -> bool:
    return path.startswith(folder.rstrip("/") + "/")


def _hide(paths: list[str], keep: list[str]) -> list[str]:
    """Cover ``paths`` with empty tmpfs mounts, then bind the folders of ``keep`` that fell
    under a cover back in place (the box; the interpreter and the packages, e.g. a Python
    under root's home), then cover again what such a bind brought back. Returns what was
    hidden."""
    fds = {k: os.open(k, os.O_PATH | os.O_DIRECTORY) for k in keep if os.path.isdir(k)}
    _mount("none", "/", None, _MS_REC | _MS_PRIVATE, None)
    hidden = []

    def cover(path: str) -> None:
        if os.path.isdir(path):  # else gone, or already under an earlier cover
            _mount("arlab-hidden", path, "tmpfs", 0, "size=64m,mode=1777")
            hidden.append(path)

    for path in sorted(set(paths), key=len):
        cover(path)
    bound = []
    for path, fd in sorted(fds.items(), key=lambda item: len(item[0])):
        if any(_under(path, p) for p in hidden) and not any(_under(path, b) for b in bound):
            os.makedirs(path, mode=0o755, exist_ok=True)
            _mount(f"/proc/self/fd/{fd}", path, None, _MS_BIND | _MS_REC, None)
            bound.append(path)
        os.close(fd)
    for path in sorted(set(paths), key=len):
        if any(_under(path, b) for b in bound):
            cover(path)
    return hidden


def _chown_tree(folder: str, uid: int) -> None:
    for dirpath, dirnames, filenames in os.walk(folder):
        os.chown(dirpath, uid, uid)
        for name in dirnames + filenames:
            os.lchown(os.path.join(dirpath, name), uid, uid)


def confine(job) -> list[str]:
    """Confine this process (see the module doc) for :class:`arlab.grading.sandbox.Job`
    ``job``; returns one note per defence, saying what was applied or why not."""
    notes = []
    for folder in job.cgroups:
        Path(folder, "cgroup.procs").write_text(str(os.getpid()))
        notes.append(f"joined cgroup {folder}")
    try:
        _call("prctl", _PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    except OSError as err:
        notes.append(f"no subreaper ({err})")
    root = is_root()
    box = job.box or job.course
    try:
        _namespaces(root)
        _loopback_up()
        notes.append("own network namespace (loopback only)")
        hidden = _hide(list(job.hide), [box, *job.expose])
        notes.append(f"hidden: {', '.join(hidden) or 'nothing'}")
    except OSError as err:
        notes.append(f"NOT isolated: no network or mount namespace ({err})")
    resource.setrlimit(resource.RLIMIT_FSIZE, (job.fsize_mb * 2**20,) * 2)
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    if job.uid is not None and root:
        _chown_tree(box, job.uid)
        resource.setrlimit(resource.RLIMIT_NPROC, (job.nproc, job.nproc))
        os.setgroups([])
        os.setgid(job.uid)
        os.setuid(job.uid)
        notes.append(f"running as uid {job.uid}")
    elif not root:
        notes.append("same uid as the grader (not root: cannot drop to another)")
    try:
        _call("prctl", _PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)
    except OSError:
        pass
    if job.memory_mb and job.kind == "probe":  # the kernel of an autograde job sets its own
        limit = job.memory_mb * 2**20
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    env = os.environ
    env.update(HOME=box, USER="arlab-sandbox", LOGNAME="arlab-sandbox", TMPDIR="/tmp",
               JUPYTER_RUNTIME_DIR=os.path.join(box, ".runtime"), MPLBACKEND="Agg",
               MPLCONFIGDIR=os.path.join(box, ".matplotlib"), MALLOC_ARENA_MAX="2")
    return notes


def describe() -> str:
    """What confinement this machine and account give, in one line (for the summary)."""
    root = is_root()
    parts = ["root: own uid per submission" if root else "not root: same uid as the grader"]
    cgroups = all(os.access(CGROUP_ROOT / c, os.W_OK) for c in ("pids",))
    parts.append("pids cgroup" if cgroups else "no writable pids cgroup (fork loops are "
                 "bounded by RLIMIT_NPROC only when not root)")
    return "; ".join(parts)
