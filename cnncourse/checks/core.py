"""The check machinery shared by every chapter: exercise specs, comparisons, instant feedback.

An :class:`Exercise` describes one graded function:

- ``make_cases(generator)`` draws random test cases. A case holds plain data only (ints, floats,
  bools, strings, tuples, lists, dicts, ``None`` and tensors), so it can cross a process boundary
  with ``torch.save`` / ``torch.load(weights_only=True)``.
- ``build(case)`` turns a case into the function's arguments (it may build an ``nn.Conv2d`` from a
  config dict or from given weights). It runs afresh for the student's call and for the reference,
  so a function that modifies its arguments cannot change the expected answer.
- ``reference(*args)`` computes the expected output, with PyTorch itself wherever possible.
- ``compare(expected, got, case)`` returns ``None`` or ONE plain sentence saying what is wrong.
- ``forbidden`` lists the routes (:class:`~cnncourse.checks.guard.Route`) the student's function
  must not take, and ``asks`` what the exercise asks instead; the check's own ``reference`` is
  always forbidden too.

The student's function is always called through :meth:`Exercise.call_student`, which builds the
arguments and runs the function under the shared guard (:mod:`cnncourse.checks.guard`).
:func:`check` does so in-process for instant feedback in a notebook; the autograder's worker
calls the same method in its sandboxed process, and the grader compares in its own.
"""

from __future__ import annotations

import math
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from cnncourse.checks.guard import ForbiddenRoute, Guard, Route, dotted_name
from cnncourse.errors import one_line

__all__ = [
    "Case",
    "CheckResult",
    "Exercise",
    "ForbiddenRoute",
    "Guard",
    "Opaque",
    "Route",
    "check",
    "compare_float",
    "compare_int",
    "compare_tensor",
    "draw_int",
    "error_sentence",
    "fresh_generator",
    "not_implemented_sentence",
    "type_name",
]

Case = dict[str, Any]
"""One test case: plain data only, turned into call arguments by :attr:`Exercise.build`."""

MAX_QUOTE = 160  # characters of a student's error message quoted in a sentence


@dataclass(frozen=True)
class Exercise:
    """A graded exercise: the function a student writes and how to test it."""

    name: str
    """The function's name, as the student defines it."""
    points: int
    grade_id: str
    """The nbgrader ``grade_id`` of its solution cell, e.g. ``"ex1-layer_params"``."""
    make_cases: Callable[[torch.Generator], list[Case]]
    build: Callable[[Case], tuple[Any, ...]]
    reference: Callable[..., Any]
    compare: Callable[[Any, Any, Case], str | None]
    describe: Callable[[Case], str]
    """A short description of a case's input, for messages: ``"a 3x2 kernel on a 5x7 image"``."""
    forbidden: tuple[Route, ...] = ()
    """The routes the student's function must not take, besides the check's own reference."""
    asks: str = "write it yourself"
    """What the exercise asks instead, ending the sentence that reports a forbidden route:
    ``"write the loops yourself"``."""

    def expected(self, case: Case) -> Any:
        """The reference output for one case, from freshly built arguments."""
        with torch.no_grad():
            return self.reference(*self.build(case))

    @property
    def guard(self) -> Guard:
        """The shared guard for this exercise: its forbidden routes and the check's own
        reference (plain data, for a worker that builds arguments but has no references)."""
        own_reference = Route("the check's own reference", python=(dotted_name(self.reference),))
        return Guard(self.name, self.asks, (*self.forbidden, own_reference))

    def call_student(self, fn: Callable[..., Any], case: Case) -> Any:
        """``fn``'s output for one case: freshly built arguments, under :attr:`guard`.

        Every caller of a student's function (the notebook check and the grader's worker) goes
        through here, or through ``guard.call(fn, args)`` where the arguments were built
        elsewhere, so both reject the same forbidden routes.

        Raises:
            ForbiddenRoute: one sentence naming the forbidden route ``fn`` took.
            BaseException: whatever else ``fn`` raised.
        """
        return self.guard.call(fn, self.build(case))


@dataclass(frozen=True)
class CheckResult:
    """What :func:`check` found: whether every case passed, and the sentence it printed."""

    passed: bool
    message: str

    def _ipython_display_(self) -> None:
        """Show nothing as a cell's value: :func:`check` has already printed the message."""

    def __str__(self) -> str:
        return self.message


@dataclass(frozen=True)
class Opaque:
    """Stands in for a value that cannot be (or must not be) shipped between processes.

    The grader's worker sends an ``Opaque`` description instead of an object of an unexpected
    type, a tensor subclass or a value too large to send; comparisons report its type name.
    """

    type_name: str
    detail: str = ""


def fresh_generator(seed: int | None = None) -> tuple[torch.Generator, int]:
    """A CPU generator with ``seed``, or with a fresh random seed (returned too) when None."""
    if seed is None:
        seed = secrets.randbits(62)
    return torch.Generator().manual_seed(seed), seed


def draw_int(generator: torch.Generator, low: int, high: int) -> int:
    """A random int in ``[low, high]`` (both included), drawn from ``generator``."""
    return int(torch.randint(low, high + 1, (1,), generator=generator))


def type_name(value: Any) -> str:
    """A readable type name: ``int``, ``torch.Tensor``, ``numpy.ndarray``, ``list``."""
    if isinstance(value, Opaque):
        return f"{value.type_name} ({value.detail})" if value.detail else value.type_name
    kind = type(value)
    if kind.__module__ == "builtins":
        return kind.__qualname__
    if issubclass(kind, torch.Tensor):
        return "torch.Tensor" if kind is torch.Tensor else f"{kind.__module__}.{kind.__qualname__}"
    return f"{kind.__module__.split('.')[0]}.{kind.__qualname__}"


def _short(value: Any) -> str:
    """A value quoted in a sentence, cut to a readable length."""
    text = repr(value) if isinstance(value, (int, float, str)) else type_name(value)
    return text if len(text) <= MAX_QUOTE else text[: MAX_QUOTE - 3] + "..."


def not_implemented_sentence(name: str) -> str:
    return (
        f"{name} is not implemented yet: replace the `raise NotImplementedError` line with "
        "your code."
    )


def error_sentence(name: str, error_type: str, message: str, where: str) -> str:
    """One sentence for an exception raised by a student's function.

    The guard's :class:`~cnncourse.checks.guard.ForbiddenRoute` is already that sentence.
    """
    message = " ".join(message.split())
    if error_type == ForbiddenRoute.__name__ and message.startswith(f"{name} called "):
        return message
    if len(message) > MAX_QUOTE:
        message = message[: MAX_QUOTE - 3] + "..."
    detail = f" ({message})" if message else ""
    if error_type == "SystemExit":
        return f"{name} called sys.exit{detail} for {where}; return a value instead."
    if error_type == "MemoryError" or "can't allocate memory" in message:
        return f"{name} ran out of memory{detail} for {where}."
    return f"{name} raised {error_type}{detail} for {where}."


def compare_int(name: str, expected: int, got: Any, where: str) -> str | None:
    """Compare a returned int (a bool or a tensor is the wrong type) with the expected one."""
    if type(got) is not int:
        hint = " (use int(...) or .item())" if isinstance(got, torch.Tensor) else ""
        return f"{name} should return an int, got {type_name(got)}{hint}, for {where}."
    if got != expected:
        return f"{name} returned {got} for {where}; expected {expected}."
    return None


def compare_float(
    name: str, expected: float, got: Any, where: str, *, rel: float = 1e-6, abs_: float = 1e-9
) -> str | None:
    """Compare a returned Python float with the expected one, within the given tolerances."""
    if not isinstance(got, float) or isinstance(got, Opaque):
        hint = " (use .item())" if isinstance(got, torch.Tensor) else ""
        return f"{name} should return a Python float, got {type_name(got)}{hint}, for {where}."
    if math.isnan(got):
        return f"{name} returned nan (not a number) for {where}; expected {expected:.6g}."
    if not math.isclose(got, expected, rel_tol=rel, abs_tol=abs_):
        return f"{name} returned {got:.6g} for {where}; expected {expected:.6g}."
    return None


def compare_tensor(
    name: str,
    expected: torch.Tensor,
    got: Any,
    where: str,
    *,
    rtol: float = 1e-9,
    atol: float = 1e-12,
) -> str | None:
    """Compare a returned tensor's type, dtype, shape and values (float64) with the expected."""
    if isinstance(got, Opaque) and got.type_name == "torch.Tensor":
        return f"{name} returned a tensor that cannot be checked ({got.detail}) for {where}."
    if type(got) is not torch.Tensor:
        return f"{name} should return a torch.Tensor, got {type_name(got)}, for {where}."
    if got.dtype != expected.dtype:
        return (
            f"{name} returned a tensor of dtype {got.dtype} for {where}; expected {expected.dtype}."
        )
    if tuple(got.shape) != tuple(expected.shape):
        return (
            f"{name} returned shape {tuple(got.shape)} for {where}; "
            f"expected {tuple(expected.shape)}."
        )
    if got.is_floating_point() and bool(torch.isnan(got).any()):
        return f"{name} returned a tensor containing nan (not a number) for {where}."
    got64, expected64 = got.to(torch.float64), expected.to(torch.float64)
    close = torch.isclose(got64, expected64, rtol=rtol, atol=atol)
    if not bool(close.all()):
        wrong = (~close).nonzero()[0].tolist()
        index = tuple(int(i) for i in wrong)
        return (
            f"{name} returned wrong values for {where}: entry {index} is "
            f"{got64[index].item():.6g}, expected {expected64[index].item():.6g} "
            f"({int((~close).sum())} of {close.numel()} entries differ)."
        )
    return None


def check(exercise: Exercise, fn: Any, *, seed: int | None = None) -> CheckResult:
    """Test ``fn`` against the reference on fresh random cases; print and return one sentence.

    Each call draws new cases (from ``seed`` when given, for reproducing a report). It never
    raises, except for ``KeyboardInterrupt``, so a notebook with unfinished exercises still runs
    from top to bottom.
    """
    name = exercise.name
    count = 0
    try:
        message, count = _run_check(exercise, fn, seed)
    except KeyboardInterrupt:
        raise
    except BaseException as error:  # noqa: BLE001 - a bug in the check: one sentence all the same
        message = f"the check for {name} itself failed ({type(error).__name__}: {one_line(error)})."
    if message is None:
        result = CheckResult(True, f"✓ {name}: all {count} random cases match the reference.")
    else:
        result = CheckResult(False, f"✗ {message}")
    print(result.message)
    return result


def _run_check(exercise: Exercise, fn: Any, seed: int | None) -> tuple[str | None, int]:
    """The first problem found (or None) and the number of cases drawn."""
    name = exercise.name
    if not callable(fn):
        return f"{name} should be a function, got {type_name(fn)}.", 0
    generator, _ = fresh_generator(seed)
    cases = exercise.make_cases(generator)
    for case in cases:
        where = exercise.describe(case)
        try:
            got = exercise.call_student(fn, case)
        except NotImplementedError:
            return not_implemented_sentence(name), len(cases)
        except KeyboardInterrupt:
            raise
        except BaseException as error:  # noqa: BLE001 - the student's error, reported
            return error_sentence(name, type(error).__name__, str(error), where), len(cases)
        problem = exercise.compare(exercise.expected(case), got, case)
        if problem is not None:
            return problem, len(cases)
    return None, len(cases)
