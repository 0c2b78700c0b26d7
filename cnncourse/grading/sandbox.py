"""The operating-system sandbox a submission's worker runs in: bubblewrap (``bwrap``).

Each worker runs under ``bwrap`` with

- its own PID namespace (``--unshare-pid``) and ``--die-with-parent``: when the grader kills
  ``bwrap``, the kernel kills every process the submission started, however it detached;
- its own network, IPC, UTS and cgroup namespaces (no network at all, not even the host's
  loopback), a new session (no controlling terminal to type into);
- a read-only view of only what the worker needs: ``/usr`` (and the ``/bin``, ``/lib`` links),
  the Python installation, the environment's site-packages, and a copy of the ``cnncourse``
  package (at :data:`VIEW`) from which the chapters' check modules (``checks/chNN.py``: the
  references) are left out; the package itself is hidden where it lies inside those folders.
  The course's ``solutions/`` (with the hidden tests), the submissions folder, the score sheet
  and the instructor's home are not in it;
- one writable place, ``/tmp``, a fresh tmpfs capped at :data:`TMPFS_BYTES`;
- no privileges: as root, ``bwrap`` keeps only ``CAP_SETUID``/``CAP_SETGID`` and the worker
  drops to the user ``nobody`` (no capabilities left) before any submitted code runs; as another
  user, the sandbox gets a user namespace in which it cannot create further ones;
- resource limits (set here for start-up, tightened by the worker): address space, CPU time,
  processes, file size, no core dumps.

Where bubblewrap is missing or cannot start (macOS, Windows, a locked-down Linux),
:func:`bubblewrap` raises :class:`SandboxUnavailable` with one sentence naming the fix.
"""

from __future__ import annotations

import os
import pwd
import resource
import shutil
import site
import subprocess
import sys
import sysconfig
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "CHECKS_IN_VIEW",
    "TMPFS_BYTES",
    "VIEW",
    "WORKDIR",
    "Sandbox",
    "SandboxUnavailable",
    "bubblewrap",
    "stage_package",
    "startup_limits",
    "unsafe",
]

WORKDIR = "/tmp"
"""The worker's working folder inside the sandbox: the only writable place."""
VIEW = "/cnncourse-view"
"""Where the sandbox sees its copy of the package (``VIEW/cnncourse``)."""
TMPFS_BYTES = 64 * 1024 * 1024
"""Size of that folder (a tmpfs): the sandbox's whole disk quota."""
STARTUP_ADDRESS_SPACE_MB = 8192  # address space for importing torch (about 3.3 GB measured)
STARTUP_CPU_SECONDS = 120  # CPU seconds for the worker's imports, before the submission runs
MAX_FILE_BYTES = 64 * 1024 * 1024
CHECKS_IN_VIEW = ("core", "guard", "fixtures", "tiny_nets")
"""The modules of ``cnncourse.checks`` in the sandbox's view: the guard and the classes that
exercises hand to a learner's function. The chapters' modules, with the references, stay out."""
_INSTALL_FIX = (
    "install bubblewrap (Debian or Ubuntu: `sudo apt-get install bubblewrap`; Fedora: "
    "`sudo dnf install bubblewrap`) and grade on Linux (on macOS or Windows, in a Linux virtual "
    "machine or WSL2), or pass --unsafe-no-sandbox to grade only files you trust"
)


class SandboxUnavailable(RuntimeError):
    """No sandbox can be started here; the message says why and what to do, in one sentence."""


@dataclass(frozen=True)
class Sandbox:
    """How to start a worker: the command prefix, the user it drops to, and a description."""

    description: str
    """For the score sheet: ``"bubblewrap"`` or ``"none (--unsafe-no-sandbox)"``."""
    prefix: tuple[str, ...] = ()
    """``bwrap`` and its options, ending in ``--``; empty when there is no sandbox."""
    drop_to: tuple[int, int] | None = None
    """The (uid, gid) the worker switches to before running submitted code, if any."""
    package_root: str = ""
    """The folder the worker imports ``cnncourse`` from; the real one when empty."""

    @property
    def isolated(self) -> bool:
        return bool(self.prefix)

    def python(self, code: str, *args: str) -> list[str]:
        """The command line running Python ``code`` in this sandbox, with ``cnncourse``
        importable and ``sys.argv[1:]`` set to ``args``."""
        boot = f"import sys; sys.path.insert(0, sys.argv.pop(1)); {code}"
        root = self.package_root or str(_package_dir().parent)
        return [*self.prefix, sys.executable, "-I", "-c", boot, root, *args]


def startup_limits() -> None:
    """Resource limits for the worker's start-up (``Popen(preexec_fn=...)``). Only the soft
    limits of memory and CPU time are set: the worker sets both soft and hard ones, to what the
    submission gets, before it runs submitted code."""
    for kind, soft in (
        (resource.RLIMIT_AS, STARTUP_ADDRESS_SPACE_MB * 1024 * 1024),
        (resource.RLIMIT_CPU, STARTUP_CPU_SECONDS),
    ):
        hard = resource.getrlimit(kind)[1]
        resource.setrlimit(
            kind, (soft if hard == resource.RLIM_INFINITY else min(soft, hard), hard)
        )
    resource.setrlimit(resource.RLIMIT_FSIZE, (MAX_FILE_BYTES, MAX_FILE_BYTES))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def unsafe() -> Sandbox:
    """No isolation at all, for an instructor's own trusted files (``--unsafe-no-sandbox``)."""
    return Sandbox("none (--unsafe-no-sandbox)")


def _package_dir() -> Path:
    import cnncourse

    return Path(cnncourse.__file__).resolve().parent


def stage_package(dest: Path) -> Path:
    """Copy the ``cnncourse`` package into ``dest`` as the sandbox sees it; return the copy.

    Everything but ``checks/``, of which only :data:`CHECKS_IN_VIEW` are copied, with no
    ``__init__.py`` (so importing them does not import the chapters' modules). Files are
    readable by everyone: the worker may run as ``nobody``.
    """
    source, copy = _package_dir(), dest / "cnncourse"
    for folder, subfolders, files in os.walk(source):
        subfolders[:] = sorted(d for d in subfolders if d != "__pycache__")
        relative = Path(folder).relative_to(source)
        if relative == Path("checks"):
            files = [f"{name}.py" for name in CHECKS_IN_VIEW if f"{name}.py" in files]
        (copy / relative).mkdir(parents=True, exist_ok=True)
        for name in files:
            shutil.copyfile(Path(folder) / name, copy / relative / name)
            (copy / relative / name).chmod(0o644)
    for path in (dest, *(p for p in copy.rglob("*") if p.is_dir()), copy):
        path.chmod(0o755)
    return copy


def _under(path: Path, root: Path) -> bool:
    return path == root or root in path.parents


def _python_roots() -> list[Path]:
    """The folders the interpreter and its packages live in."""
    paths = sysconfig.get_paths()
    found = {sys.prefix, sys.base_prefix, sys.exec_prefix, *site.getsitepackages()}
    found.update(paths[key] for key in ("stdlib", "platstdlib", "purelib", "platlib"))
    found.add(str(Path(os.path.realpath(sys.executable)).parent.parent))
    return [Path(os.path.realpath(p)) for p in found if os.path.isdir(p)]


def _outermost(paths: Iterable[Path]) -> list[Path]:
    unique = sorted(set(paths))
    return [p for p in unique if not any(q != p and _under(p, q) for q in unique)]


def _mounts(staged: Path, hidden: Sequence[Path]) -> list[str]:
    """The bwrap options that build the writable tmpfs and the read-only view around it."""
    args = ["--size", str(TMPFS_BYTES), "--perms", "01777", "--tmpfs", WORKDIR]
    args += ["--ro-bind", "/usr", "/usr"]
    for name in ("/bin", "/sbin", "/lib", "/lib32", "/lib64"):
        if os.path.islink(name):
            args += ["--symlink", os.readlink(name), name]
        elif os.path.isdir(name):
            args += ["--ro-bind", name, name]
    roots = _outermost(p for p in _python_roots() if not _under(p, Path("/usr")))
    binds = [Path("/usr"), *roots]
    # the folders above what is bound (/root above /root/.pyenv/...) must be traversable by the
    # unprivileged user the worker becomes; bwrap would make them private
    targets = [*roots, Path(VIEW) / "cnncourse", Path("/etc/ld.so.cache")]
    above = {a for t in targets for a in t.parents if not any(_under(a, b) for b in binds)}
    for folder in sorted(above - {Path("/")}):
        args += ["--perms", "0755", "--dir", str(folder)]
    args += ["--ro-bind-try", "/etc/ld.so.cache", "/etc/ld.so.cache"]
    for root in roots:
        args += ["--ro-bind", str(root), str(root)]
    # What must stay hidden but lies inside a bound folder (the package itself when installed
    # in site-packages, a course checked out under /usr, a submissions folder inside the
    # environment) is covered by an empty tmpfs; what the worker needs from inside it is bound
    # again on top.
    secret = [_package_dir(), *hidden]
    masks = _outermost(h for h in secret if any(_under(h, b) and h != b for b in binds))
    for mask in masks:
        args += ["--tmpfs", str(mask)]
    for root in roots:
        if any(_under(root, mask) and root != mask for mask in masks):
            args += ["--ro-bind", str(root), str(root)]
    args += ["--ro-bind", str(staged), f"{VIEW}/cnncourse", "--proc", "/proc", "--dev", "/dev"]
    return [*args, "--chdir", WORKDIR]


def _nobody() -> tuple[int, int]:
    try:
        entry = pwd.getpwnam("nobody")
        return entry.pw_uid, entry.pw_gid
    except KeyError:
        return 65534, 65534


def bubblewrap(staged: Path, hidden: Sequence[Path]) -> Sandbox:
    """The bubblewrap sandbox over the package copy ``staged`` (see :func:`stage_package`),
    with the folders in ``hidden`` kept out of its view; tested by starting Python in it once.

    Raises:
        SandboxUnavailable: when bubblewrap is missing or cannot start a sandbox here.
    """
    if not sys.platform.startswith("linux"):
        raise SandboxUnavailable(
            f"the grader isolates submissions with bubblewrap, which needs Linux, and this is "
            f"{sys.platform}; {_INSTALL_FIX}."
        )
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        raise SandboxUnavailable(
            f"bubblewrap (the `bwrap` command) is not installed, so the grader cannot isolate "
            f"untrusted submissions; {_INSTALL_FIX}."
        )
    namespaces = ["--unshare-pid", "--unshare-net", "--unshare-ipc", "--unshare-uts"]
    namespaces += ["--unshare-cgroup-try", "--die-with-parent", "--new-session"]
    drop_to = None
    if os.geteuid() == 0:  # no user namespace: the worker drops to nobody itself
        namespaces += ["--cap-drop", "ALL", "--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID"]
        drop_to = _nobody()
    else:
        namespaces += ["--unshare-user", "--disable-userns"]
    prefix = (bwrap, *namespaces, *_mounts(staged, hidden), "--")
    sandbox = Sandbox("bubblewrap", prefix, drop_to, package_root=VIEW)
    probe = subprocess.run(
        sandbox.python("import cnncourse.grading.protocol"),
        capture_output=True,
        text=True,
        errors="replace",
        timeout=120,
        env={"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"},
        check=False,
    )
    if probe.returncode != 0:
        detail = " ".join(probe.stderr.split())[-300:] or f"exit status {probe.returncode}"
        raise SandboxUnavailable(
            f"bubblewrap is installed but could not start a sandbox here ({detail}); allow "
            "unprivileged user namespaces (sysctl kernel.unprivileged_userns_clone=1, or "
            "AppArmor's bwrap profile on Ubuntu), or in a container run the grader with "
            "--privileged, or pass --unsafe-no-sandbox to grade only files you trust."
        )
    return sandbox
