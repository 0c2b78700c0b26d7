"""A second layer inside the grader's sandbox: a ``sys.addaudithook`` that refuses, with a readable
reason, what a graded function has no business doing.

Installed by :mod:`cnncourse.grading.worker` after its trusted imports and before any student code
runs, the hook refuses (with ``PermissionError``, which the student's code sees as an ordinary
exception):

- writing, creating, deleting, renaming or changing files outside the worker's temporary folder;
- reading files outside that folder, the Python installation, the virtual environment, the
  ``cnncourse`` package and system folders (so not the course's solutions, other submissions,
  the grader's output or the instructor's home folder);
- starting processes (``subprocess``, ``os.system``, ``os.exec*``, ``os.fork``, ``os.posix_spawn``),
  sending signals, opening sockets, loading or calling C code through ``ctypes``, and changing
  resource limits.

Audit hooks are NOT a security boundary (the CPython documentation says so): the submission runs
in the same process and can switch the hook off, C extensions do I/O without audit events, and
private modules start processes without them. Nothing depends on it: the boundary is the
operating system's sandbox (:mod:`cnncourse.grading.sandbox`), and scores are computed in the
grader's process. The hook only turns a casual attempt into a clear error message.
"""

from __future__ import annotations

import os
import site
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

__all__ = ["BLOCKED_EVENTS", "install"]

BLOCKED_EVENTS = frozenset(
    {
        "subprocess.Popen",
        "os.system",
        "os.exec",
        "os.posix_spawn",
        "os.spawn",
        "os.fork",
        "os.forkpty",
        "os.kill",
        "os.killpg",
        "pty.spawn",
        "socket.__new__",
        "socket.bind",
        "socket.connect",
        "socket.getaddrinfo",
        "socket.gethostbyname",
        "socket.sendto",
        "ctypes.dlopen",
        "ctypes.dlsym",
        "ctypes.call_function",
        "ctypes.cdata",
        "ctypes.string_at",
        "ctypes.wstring_at",
        "resource.setrlimit",
        "resource.prlimit",
        "webbrowser.open",
    }
)
"""Events refused whatever their arguments."""

# Events that change the file system, with the positions of their path arguments.
_WRITE_EVENTS: dict[str, tuple[int, ...]] = {
    "os.remove": (0,),
    "os.rmdir": (0,),
    "os.rename": (0, 1),
    "os.truncate": (0,),
    "os.chmod": (0,),
    "os.chown": (0,),
    "os.link": (0, 1),
    "os.symlink": (0, 1),
    "os.mkdir": (0,),
    "os.utime": (0,),
    "os.setxattr": (0,),
    "os.removexattr": (0,),
    "shutil.rmtree": (0,),
    "shutil.copyfile": (1,),
    "shutil.copytree": (1,),
    "shutil.copymode": (1,),
    "shutil.copystat": (1,),
    "shutil.chown": (0,),
}
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_TRUNC
_SYSTEM_READ_ROOTS = ("/usr", "/lib", "/lib64", "/etc", "/sys", "/proc/cpuinfo", "/proc/meminfo")


def _as_path(value: Any) -> str | None:
    """The absolute, resolved path named by an audit argument; None for file descriptors."""
    if isinstance(value, int) or value is None:
        return None
    try:
        text = os.fsdecode(os.fspath(value))
    except TypeError:
        return None
    return os.path.realpath(text)


def _under(path: str, roots: Iterable[str]) -> bool:
    return any(path == root or path.startswith(root.rstrip("/") + "/") for root in roots)


def read_roots(extra: Iterable[Path] = ()) -> list[str]:
    """Folders whose files the sandboxed code may read: Python, its packages, system folders."""
    import cnncourse

    roots = {sys.prefix, sys.base_prefix, sys.exec_prefix, *_SYSTEM_READ_ROOTS}
    roots.update(site.getsitepackages())
    roots.add(str(Path(cnncourse.__file__).parent))
    roots.update({"/proc/self", f"/proc/{os.getpid()}", "/dev/null", "/dev/urandom"})
    roots.update(str(p) for p in extra)
    return sorted(os.path.realpath(r) for r in roots)


def install(workdir: str | Path, readable: Iterable[str] | None = None) -> None:
    """Install the audit hook: writes only under ``workdir``, reads under it and ``readable``."""
    write_roots = [os.path.realpath(workdir), "/dev/null"]
    read_ok = [*write_roots, *(readable if readable is not None else read_roots())]

    def refuse(event: str, detail: str = "") -> None:
        where = f" ({detail})" if detail else ""
        raise PermissionError(f"the grader's sandbox does not allow {event}{where}")

    def hook(event: str, args: tuple[Any, ...]) -> None:
        if event in BLOCKED_EVENTS:
            refuse(event)
        elif event == "open":
            path = _as_path(args[0])
            if path is None:
                return
            mode, flags = args[1], args[2] if len(args) > 2 else 0
            writes = (isinstance(mode, str) and any(c in mode for c in "wax+")) or bool(
                isinstance(flags, int) and flags & _WRITE_FLAGS
            )
            if writes and not _under(path, write_roots):
                refuse("writing files outside its temporary folder", path)
            if not writes and not _under(path, read_ok):
                refuse("reading files outside its temporary folder and Python", path)
        elif event in _WRITE_EVENTS:
            for position in _WRITE_EVENTS[event]:
                path = _as_path(args[position]) if len(args) > position else None
                if path is not None and not _under(path, write_roots):
                    refuse(event + " outside its temporary folder", path)

    sys.addaudithook(hook)
