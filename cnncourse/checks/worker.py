"""The grader's worker: runs ONE untrusted submission and writes back its raw outputs.

Started by :mod:`cnncourse.grade` as ``python -I -m cnncourse.checks.worker WORKDIR`` in a fresh
temporary folder, with a minimal environment, stdin closed and resource limits. The folder holds
``job.pt`` (written by the grader): the submission's solution cells, the chapter, the exercises'
names and their test cases (plain data, read with ``torch.load(weights_only=True)``). No
reference output and no hidden test is ever in it.

The worker then

1. imports its trusted modules, tightens its memory and CPU limits and writes ``ready`` (the
   grader's wall-time limit counts from there, so a slow ``import torch`` costs no student time);
2. installs the sandbox's audit hook (:mod:`cnncourse.checks.sandbox`);
3. runs the solution cells after a fixed preamble (``math``, ``numpy as np``, ``torch``, ``nn``,
   ``F``), recording any exception per cell;
4. for each exercise, builds every case's arguments with the trusted ``build``, calls the
   student's function and saves the RAW outputs to ``results/<exercise>.pt``.

It never computes a score: the grader compares the outputs with references in its own process,
so nothing a submission prints, redefines or monkeypatches here can change a score.
"""

from __future__ import annotations

import math  # noqa: F401  (imported before the sandbox, for the preamble)
import os
import resource
import sys
import traceback
from pathlib import Path
from typing import Any

import numpy as np  # noqa: F401
import torch
import torch.nn.functional as F  # noqa: F401
from torch import nn

from cnncourse.checks import exercises, sandbox

MAX_ELEMENTS = 4_000_000  # elements of a returned tensor that are sent back (32 MB of float64)
MAX_ITEMS = 1_000  # items of a returned tuple or list
MAX_DEPTH = 3  # nesting of returned tuples and lists
MAX_TEXT = 10_000  # characters of a returned string
MAX_MESSAGE = 500  # characters of an exception message

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


def _limit_resources(memory_mb: int, timeout: float) -> None:
    """Memory: the address space in use now (Python and torch) plus ``memory_mb``; CPU seconds:
    those used so far plus twice the wall-time limit (a second line behind the grader's)."""
    with open("/proc/self/status") as status:
        vm_kb = next(int(line.split()[1]) for line in status if line.startswith("VmSize:"))
    limit = vm_kb * 1024 + memory_mb * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    used = resource.getrusage(resource.RUSAGE_SELF)
    cpu = int(used.ru_utime + used.ru_stime + 2 * timeout) + 2
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))


def _save(obj: Any, path: Path) -> None:
    """Write atomically: a half-written file is never read as a result."""
    partial = path.with_suffix(".partial")
    torch.save(obj, partial)
    os.replace(partial, path)


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


def _grade_exercise(exercise: Any, cases: list[Any], namespace: dict[str, Any]) -> dict[str, Any]:
    """Call the student's function on every case; stop at the first exception."""
    fn = namespace.get(exercise.name)
    if fn is None:
        return {"status": "missing", "entries": []}
    if not callable(fn):
        return {"status": "not callable", "type": type(fn).__name__, "entries": []}
    entries: list[Any] = []
    for case in cases:
        try:
            got = fn(*exercise.build(case))
            entries.append(("ok", encode(got)))
        except NotImplementedError:
            entries.append(("not implemented",))
            break
        except BaseException as error:  # noqa: BLE001 - sent to the grader as a reason
            entries.append(("error", type(error).__name__[:100], _message(error)))
            break
    return {"status": "ran", "entries": entries}


def main(workdir: Path) -> None:
    job = torch.load(workdir / "job.pt", weights_only=True)
    specs = {exercise.name: exercise for exercise in exercises(job["chapter"])}
    results = workdir / "results"
    results.mkdir()
    _limit_resources(int(job["memory_mb"]), float(job["timeout"]))
    (workdir / "ready").write_text("ready\n")
    sandbox.install(workdir)

    namespace: dict[str, Any] = {"__name__": "__submission__", "__builtins__": __builtins__}
    exec(PREAMBLE, namespace)  # noqa: S102 - fixed, trusted imports
    cell_errors = _run_cells(job["cells"], namespace)
    torch.set_grad_enabled(True)  # in case a cell switched it off
    for name in job["exercises"]:
        spec = specs[name]
        result = _grade_exercise(spec, job["cases"][name], namespace)
        result["cell_error"] = cell_errors.get(spec.grade_id) or next(
            iter(cell_errors.values()), ""
        )
        _save(result, results / f"{name}.pt")


if __name__ == "__main__":
    try:
        main(Path(sys.argv[1]))
    except BaseException:  # noqa: BLE001 - the worker's own failure: logged, exit 3
        traceback.print_exc()
        sys.stderr.flush()
        os._exit(3)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)  # no atexit handlers, no waiting for threads a submission started
