"""The grader's worker: runs ONE untrusted submission in the sandbox and sends back its raw outputs.

Started by :mod:`cnncourse.grading.submission` inside the sandbox (:mod:`cnncourse.grading.sandbox`)
as ``main([JOB_FD, RESULT_FD] + [UID, GID])``, with a minimal environment, stdin closed and
stdout/stderr on a pipe the grader reads with a cap. The worker

1. reads the job from ``JOB_FD`` to its end: the submission's solution cells and, for each
   exercise, the arguments of every call, built by the grader from its random cases (pickled:
   the grader is trusted here). No reference, expected output or hidden test is in it, and none
   is in the sandbox's view;
2. drops to ``UID``/``GID`` when given (the grader runs as root), sets its limits (memory, CPU
   time, processes, open files, file size) and sends ``READY`` on ``RESULT_FD``: the
   submission's wall time counts from there, so a slow ``import torch`` (and of torchvision,
   imported first where a solution cell names it) costs it nothing;
3. installs the audit hook (:mod:`cnncourse.grading.audit`), a second layer only;
4. runs the solution cells after a fixed preamble (``math``, ``numpy as np``, ``torch``, ``nn``,
   ``F``), recording any exception per cell;
5. for each exercise, calls the student's function on each call's arguments under the
   exercise's guard (a :class:`~cnncourse.checks.guard.Guard` sent by the grader, as the
   notebook's check uses it; the check's own reference, which it forbids, is not in the sandbox
   at all) and sends the RAW outputs as one ``RESULT`` message, then ``DONE``.

It never computes a score: the grader compares the outputs with references in its own process,
so nothing a submission prints, redefines or sends down the pipe can change a score.
"""

from __future__ import annotations

import contextlib
import io
import math  # noqa: F401  (imported before the sandbox, for the preamble)
import os
import resource
import sys
import traceback
from typing import Any

import numpy as np  # noqa: F401
import torch
import torch.nn.functional as F  # noqa: F401
from torch import nn

from cnncourse.checks.guard import Guard
from cnncourse.grading import audit, protocol
from cnncourse.grading.sandbox import MAX_FILE_BYTES

MAX_ELEMENTS = 4_000_000  # elements of a returned tensor that are sent back (32 MB of float64)
MAX_ITEMS = 1_000  # items of a returned tuple or list
MAX_DEPTH = 3  # nesting of returned tuples and lists
MAX_TEXT = 10_000  # characters of a returned string
MAX_MESSAGE = 500  # characters of an exception message
MAX_PROCESSES = 64  # processes and threads of the sandbox's user
MAX_OPEN_FILES = 256

PREAMBLE = "import math\nimport numpy as np\nimport torch\nimport torch.nn.functional as F\n"
PREAMBLE += "from torch import nn\n"


def encode(value: Any, depth: int = 0) -> Any:
    """A returned value as plain data ``torch.save`` can send and ``weights_only`` can read.

    Exact ``int``/``float``/``bool``/``str``/``None`` and plain tensors pass unchanged (int and
    float subclasses as their base value); anything else, and anything too large, becomes a
    ``{"__opaque__": type name, "detail": ...}`` description. Exact type tests, never
    ``isinstance``, so an object faking its ``__class__`` is still described as what it is.
    """
    kind = type(value)
    if value is None or kind in (bool, int, float):
        return value
    if kind is str:
        return value if len(value) <= MAX_TEXT else _opaque("str", f"{len(value)} characters")
    if issubclass(kind, int) and not issubclass(kind, bool):
        return int.__int__(value)
    if issubclass(kind, float):
        return float.__float__(value)
    if kind in (torch.Tensor, nn.Parameter):
        shape = tuple(torch.Tensor.size(value))
        if torch.Tensor.numel(value) > MAX_ELEMENTS:
            return _opaque("torch.Tensor", f"too large to check: shape {shape}")
        if value.layout != torch.strided or value.device.type == "meta":
            return _opaque("torch.Tensor", f"a {value.layout} tensor on {value.device}")
        return torch.Tensor.detach(value).cpu().clone().contiguous()
    if kind in (tuple, list):
        if len(value) > MAX_ITEMS or depth >= MAX_DEPTH:
            return _opaque(kind.__name__, f"{len(value)} items")
        return kind(encode(item, depth + 1) for item in value)
    return _opaque(f"{kind.__module__.split('.')[0]}.{kind.__qualname__}".removeprefix("builtins."))


def _opaque(type_name: str, detail: str = "") -> dict[str, str]:
    return {"__opaque__": type_name, "detail": detail}


def _message(error: BaseException) -> str:
    try:
        text = " ".join(str(error).split())
    except BaseException:  # noqa: BLE001 - a hostile __str__
        text = ""
    return text[:MAX_MESSAGE]


def _drop_privileges(uid: int, gid: int) -> None:
    """Become ``uid``/``gid`` for good, with no supplementary groups and no capabilities left."""
    os.setgroups([])
    os.setresgid(gid, gid, gid)
    os.setresuid(uid, uid, uid)
    with open("/proc/self/status") as status:
        caps = {k: v.strip() for k, _, v in (line.partition(":") for line in status)}
    if os.getuid() != uid or any(int(caps[k], 16) for k in ("CapPrm", "CapEff", "CapAmb")):
        raise RuntimeError(f"could not drop to uid {uid} without capabilities: {caps}")


def _limit_resources(memory_mb: int, timeout: float) -> None:
    """Memory: the address space in use now (Python and torch) plus ``memory_mb``; CPU seconds:
    those used so far plus twice the wall-time limit (a second line behind the grader's);
    processes, open files and file size. Soft and hard limits alike, so none can be raised."""
    with open("/proc/self/status") as status:
        vm_kb = next(int(line.split()[1]) for line in status if line.startswith("VmSize:"))
    used = resource.getrusage(resource.RUSAGE_SELF)
    for kind, limit in (
        (resource.RLIMIT_AS, vm_kb * 1024 + memory_mb * 1024 * 1024),
        (resource.RLIMIT_CPU, int(used.ru_utime + used.ru_stime + 2 * timeout) + 2),
        (resource.RLIMIT_NPROC, MAX_PROCESSES),
        (resource.RLIMIT_NOFILE, MAX_OPEN_FILES),
        (resource.RLIMIT_FSIZE, MAX_FILE_BYTES),
        (resource.RLIMIT_CORE, 0),
    ):
        resource.setrlimit(kind, (limit, limit))


def _run_cells(cells: list[dict[str, str]], namespace: dict[str, Any]) -> dict[str, str]:
    """Execute the solution cells in order; the error of each cell that raised, by grade id."""
    errors: dict[str, str] = {}
    for index, cell in enumerate(cells):
        label = cell.get("grade_id") or f"cell {index + 1}"
        try:
            code = compile(cell["source"], f"<solution cell {label}>", "exec")
            exec(code, namespace)  # noqa: S102 - the point of the worker
        except BaseException as error:  # noqa: BLE001 - recorded for the reason
            errors[label] = f"{type(error).__name__}: {_message(error)}".rstrip(": ")
    return errors


def _grade_exercise(exercise: dict[str, Any], namespace: dict[str, Any]) -> dict[str, Any]:
    """Call the student's function on every call's arguments, under the exercise's guard (as
    the notebook's check does); stop at the first exception."""
    name = exercise["name"]
    guard: Guard = exercise["guard"]  # sent by the grader, read before any submitted code ran
    fn = namespace.get(name)
    if fn is None:
        return {"status": "missing", "entries": []}
    if not callable(fn):
        return {"status": "not callable", "type": type(fn).__name__, "entries": []}
    entries: list[Any] = []
    for args in exercise["calls"]:
        try:
            entries.append(("ok", encode(guard.call(fn, args))))
        except NotImplementedError:
            entries.append(("not implemented",))
            break
        except BaseException as error:  # noqa: BLE001 - sent to the grader as a reason
            entries.append(("error", type(error).__name__[:100], _message(error)))
            break
    return {"status": "ran", "entries": entries}


def _send_result(fd: int, result: dict[str, Any]) -> None:
    buffer = io.BytesIO()
    torch.save(result, buffer)
    protocol.send(fd, protocol.RESULT, buffer.getvalue())


def _preload_torchvision(cells: list[dict[str, str]]) -> None:
    """Import torchvision now if a solution cell names it, before the audit hook blocks
    ``ctypes.dlopen``: its operators (``torchvision::nms``, which its import registers) come
    from its C library, so an import after the hook fails with "operator torchvision::nms does
    not exist" instead of reaching the guard. Only then: the import takes seconds."""
    if any("torchvision" in cell.get("source", "") for cell in cells):
        with contextlib.suppress(ImportError):  # the course's environment has torchvision
            import torchvision  # noqa: F401


def main(argv: list[str]) -> None:
    """Run the job read from ``argv[0]`` (a file descriptor), answering on ``argv[1]``."""
    job_fd, result_fd = int(argv[0]), int(argv[1])
    job = torch.load(io.BytesIO(protocol.read_to_end(job_fd)), weights_only=False)
    os.close(job_fd)
    _preload_torchvision(job["cells"])
    if len(argv) == 4:
        _drop_privileges(int(argv[2]), int(argv[3]))
    _limit_resources(int(job["memory_mb"]), float(job["timeout"]))
    protocol.send(result_fd, protocol.READY)
    audit.install(os.getcwd())
    try:
        namespace: dict[str, Any] = {"__name__": "__submission__", "__builtins__": __builtins__}
        exec(PREAMBLE, namespace)  # noqa: S102 - fixed, trusted imports
        cell_errors = _run_cells(job["cells"], namespace)
        torch.set_grad_enabled(True)  # in case a cell switched it off
        for exercise in job["exercises"]:
            result = _grade_exercise(exercise, namespace)
            result["name"] = exercise["name"]
            result["cell_error"] = cell_errors.get(exercise["grade_id"]) or next(
                iter(cell_errors.values()), ""
            )
            _send_result(result_fd, result)
        protocol.send(result_fd, protocol.DONE)
    except BaseException:  # noqa: BLE001 - only sending can fail here; the grader says so
        traceback.print_exc()
        sys.stderr.flush()
        os._exit(protocol.FAILED)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)  # no atexit handlers, no waiting for threads a submission started
