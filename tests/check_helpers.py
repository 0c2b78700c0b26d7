"""Helpers for the instant-feedback check tests (tests/test_checks_chNN.py).

Each chapter's test module defines correct solutions and typical wrong answers, then asserts with
these helpers that a ``check_*`` call prints and returns the right one-sentence verdict: a pass
for a solution (:func:`assert_solution_passes`), "not implemented yet" for a stub
(:func:`assert_not_implemented`), and a one-sentence reason for a wrong answer
(:func:`assert_one_sentence`). :func:`verdict_tests` makes the four tests every chapter has from
its solutions and wrong answers, and :func:`forbidden_route_test` the test that the shared guard
rejects each shortcut an exercise forbids (:class:`Forbidden`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from cnncourse.checks import CHAPTERS, CheckResult, Exercise, check
from cnncourse.checks.core import fresh_generator

Checker = Callable[..., CheckResult]
"""A chapter's ``check_*`` function: ``checker(fn, seed=None)`` prints and returns its verdict."""

Wrong = tuple[Checker, Callable[..., Any], list[str]]
"""A wrong-answer case: the checker, the wrong function, and what its reason must contain."""

MATCHES_REFERENCE = " random cases match the reference.\n"
"""How the printed verdict of a passing check ends."""


def stub(*args: Any) -> Any:
    """An unfinished exercise, as the student copy has it."""
    raise NotImplementedError("replace this line with your solution")


def not_implemented(name: str) -> str:
    """The verdict for an exercise whose function still raises ``NotImplementedError``."""
    return (
        f"✗ {name} is not implemented yet: replace the `raise NotImplementedError` line with "
        "your code."
    )


def assert_registry(
    chapter: str,
    solutions: Mapping[str, object],
    points: list[int],
    grade_ids: list[str] | None = None,
) -> None:
    """``CHAPTERS[chapter]`` lists the exercises of ``solutions`` in order, with these points
    (and, when given, these nbgrader grade ids)."""
    exercises = CHAPTERS[chapter]
    assert [e.name for e in exercises] == list(solutions)
    assert [e.points for e in exercises] == points
    if grade_ids is not None:
        assert [e.grade_id for e in exercises] == grade_ids


def assert_solution_passes(
    name: str,
    checker: Checker,
    solution: Callable[..., Any],
    capsys: pytest.CaptureFixture[str],
    *,
    ending: str | None = MATCHES_REFERENCE,
) -> None:
    """``checker(solution)`` passes and prints one line, ``✓ NAME: all ...`` (ending with
    ``ending`` unless that is None)."""
    result = checker(solution)
    assert result.passed, result.message
    out = capsys.readouterr().out
    assert out.startswith(f"✓ {name}: all ")
    if ending is not None:
        assert out.endswith(ending)
    assert out.count("\n") == 1  # one sentence, one line


def assert_not_implemented(name: str, checker: Checker) -> CheckResult:
    """``checker(stub)`` fails with the "not implemented yet" sentence; returns its result."""
    result = checker(stub)
    assert not result.passed
    assert result.message == not_implemented(name)
    return result


def assert_one_sentence(
    result: CheckResult, expected: Sequence[str], endings: tuple[str, ...] = (".",)
) -> None:
    """``result`` is a failure whose message is one sentence, ``✗ ...`` ending with one of
    ``endings``, that contains every part of ``expected``."""
    assert not result.passed
    assert result.message.startswith("✗ ") and result.message.endswith(endings)
    assert "\n" not in result.message
    for part in expected:
        assert part in result.message, result.message


def seeded_runs(
    checker: Checker,
    solution: Callable[..., Any],
    describe: Callable[..., object],
    seeds: Sequence[int | None] = (None, None, 5, 5),
    *,
    must_pass: bool = True,
) -> list[list[object]]:
    """Check a spy around ``solution`` once per seed; return what each run called it with.

    Every call of the spy records ``describe(*args)`` and returns ``solution(*args)``; each run
    must pass when ``must_pass``. Runs with no seed should differ, runs with the same seed agree.
    """
    runs: list[list[object]] = []

    def spy(*args: Any) -> Any:
        runs[-1].append(describe(*args))
        return solution(*args)

    for seed in seeds:
        runs.append([])
        result = checker(spy, seed=seed)
        if must_pass:
            assert result.passed, result.message
    return runs


class VerdictTests(NamedTuple):
    """The four tests every chapter's check module has; assign them to module-level names."""

    test_chapter_registry: Callable[[], None]
    test_solution_passes: Callable[..., None]
    test_stub_says_not_implemented: Callable[..., None]
    test_wrong_answers_get_one_sentence: Callable[..., None]


def verdict_tests(
    chapter: str,
    solutions: Mapping[str, tuple[Checker, Callable[..., Any]]],
    wrong_answers: Sequence[Wrong],
    points: list[int],
    grade_ids: list[str] | None = None,
    *,
    ending: str | None = MATCHES_REFERENCE,
    stub_prints: bool = False,
    endings: tuple[str, ...] = (".",),
    tries: int = 1,
) -> VerdictTests:
    """A chapter's registry, solution, stub and wrong-answer tests.

    ``solutions`` maps each exercise's name to its checker and a correct solution;
    ``wrong_answers`` lists the wrong ones. The registry test compares ``CHAPTERS[chapter]``
    with ``solutions``, ``points`` and ``grade_ids`` (see :func:`assert_registry`). The solution
    test passes ``ending`` to :func:`assert_solution_passes`; the stub test also asserts that the
    sentence was printed when ``stub_prints``; the wrong-answer test checks each wrong answer
    ``tries`` times (fresh random cases each time), its sentence ending with one of ``endings``.
    """

    def test_chapter_registry() -> None:
        assert_registry(chapter, solutions, points, grade_ids)

    @pytest.mark.parametrize("name", list(solutions))
    def test_solution_passes(name: str, capsys: pytest.CaptureFixture[str]) -> None:
        assert_solution_passes(name, *solutions[name], capsys, ending=ending)

    @pytest.mark.parametrize("name", list(solutions))
    def test_stub_says_not_implemented(name: str, capsys: pytest.CaptureFixture[str]) -> None:
        result = assert_not_implemented(name, solutions[name][0])
        if stub_prints:
            assert capsys.readouterr().out == result.message + "\n"

    @pytest.mark.parametrize("checker, wrong, expected", list(wrong_answers))
    def test_wrong_answers_get_one_sentence(
        checker: Checker, wrong: Any, expected: list[str]
    ) -> None:
        for _ in range(tries):
            assert_one_sentence(checker(wrong), expected, endings)

    return VerdictTests(
        test_chapter_registry,
        test_solution_passes,
        test_stub_says_not_implemented,
        test_wrong_answers_get_one_sentence,
    )


class Forbidden(NamedTuple):
    """A shortcut that an exercise forbids, as a learner would write it."""

    exercise: Exercise
    cheat: Callable[..., Any]
    detail: str
    """What the guard's sentence names in parentheses (or its end): ``"aten.convolution"``,
    ``".parameters"`` for ``(Linear.parameters)``."""
    correct: bool = True
    """Whether the shortcut's answers are right, so that without the guard it would pass."""


FORBIDDEN_SEED = 11
"""The seed of the cases a forbidden-route test draws (fixed, so a failure can be reproduced)."""


def passes_unguarded(exercise: Exercise, fn: Callable[..., Any], seed: int) -> bool:
    """Whether ``fn`` matches the reference on every case when called WITHOUT the guard."""
    generator, _ = fresh_generator(seed)
    for case in exercise.make_cases(generator):
        if exercise.compare(exercise.expected(case), fn(*exercise.build(case)), case) is not None:
            return False
    return True


def forbidden_route_test(forbidden: Sequence[Forbidden]) -> Callable[[Forbidden], None]:
    """One test per forbidden shortcut: the check rejects it in one sentence naming its route,
    and (for a correct shortcut) the same cases pass when the function runs without the guard,
    so the rejection is the guard's doing."""

    @pytest.mark.parametrize(
        "route", forbidden, ids=[f"{item.exercise.name}-{item.detail}" for item in forbidden]
    )
    def test_forbidden_route_is_caught(route: Forbidden) -> None:
        name = route.exercise.name
        result = check(route.exercise, route.cheat, seed=FORBIDDEN_SEED)
        assert_one_sentence(
            result,
            [
                f"✗ {name} called ",
                f"{route.detail}); this exercise asks you to {route.exercise.asks}.",
            ],
        )
        if route.correct:
            assert passes_unguarded(route.exercise, route.cheat, FORBIDDEN_SEED)

    return test_forbidden_route_is_caught


def backprop_measurement(layers: nn.Sequential, *, convolve: bool = True) -> int:
    """A shortcut for the receptive-field exercises: measure the field by backpropagation through
    a 1-D twin of the stack, built with ``F.conv1d`` (or, when not ``convolve``, with sums over
    ``Tensor.unfold`` windows), instead of applying the recurrence."""

    def first(value: Any) -> int:
        return value if isinstance(value, int) else int(value[0])

    geometry = [
        (first(layer.kernel_size), first(layer.stride), first(getattr(layer, "dilation", 1)))
        for layer in layers
        if isinstance(layer, (nn.Conv2d, nn.MaxPool2d, nn.AvgPool2d))
    ]
    length, jump = 1, 1
    for kernel, stride, dilation in geometry:
        length += (kernel - 1) * dilation * jump + stride * jump
        jump *= stride
    signal = torch.ones(1, 1, length, dtype=torch.float64, requires_grad=True)
    out = signal
    for kernel, stride, dilation in geometry:
        if convolve:
            weight = torch.ones(1, 1, kernel, dtype=torch.float64)
            out = F.conv1d(out, weight, stride=stride, dilation=dilation)
        else:
            out = out.unfold(-1, dilation * (kernel - 1) + 1, stride)[..., ::dilation].sum(-1)
    out[0, 0, 0].backward()
    assert signal.grad is not None
    touched = (signal.grad[0, 0] != 0).nonzero().flatten()
    return int(touched.max() - touched.min() + 1)
