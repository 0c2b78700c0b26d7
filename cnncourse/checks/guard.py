"""The shared guard that rejects an exercise's forbidden route while a student's function runs.

An exercise declares the routes it forbids as :class:`Route` values (the catalogue below holds
torch's); its :class:`Guard` (plain data, so the grader can send it to a sandboxed worker that
cannot see the chapters' check modules) calls the student's function with three sensors on:

- **operators**: a ``TorchDispatchMode`` sees every aten operator, whatever Python route reached it
  (``F.conv2d``, ``nn.Conv2d``, ``torch.conv2d`` or a tensor method all arrive as
  ``aten.convolution``), and every operator that autograd's engine runs during a backward pass;
- **functions**: a profile hook (``sys.setprofile``) sees each call of a listed Python or builtin
  function, such as ``F.adaptive_avg_pool2d`` (whose 1x1 case reaches aten as a plain mean), the
  course's own training loop, or the check's own reference;
- **attributes**: every ``nn.Module`` argument (and its submodules) is handed over with the listed
  attributes (``parameters``, ``forward``, ...) replaced by tripwires that raise when used.

Every sighting is recorded, so a function that catches the guard's exception and carries on still
fails; :class:`ForbiddenRoute` carries one sentence, e.g. "conv2d_loops called torch's convolution
(aten.convolution); this exercise asks you to write the loops yourself."
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import inspect
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from types import BuiltinFunctionType, CodeType, FrameType
from typing import Any

import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode

__all__ = [
    "AUTOGRAD",
    "AVERAGE_POOLING",
    "CONVOLUTION",
    "IM2COL",
    "LOG_SOFTMAX",
    "MAX_POOLING",
    "MODEL_FORWARD",
    "NORMALISATION",
    "PARAMETER_TENSORS",
    "ForbiddenRoute",
    "Guard",
    "Route",
    "dotted_name",
]


class ForbiddenRoute(Exception):
    """A student's function took a route its exercise forbids; the message is one sentence."""


@dataclass(frozen=True)
class Route:
    """One way to the answer that an exercise forbids, and how the guard recognises it."""

    label: str
    """What the student called, as a sentence names it: ``"torch's convolution"``."""
    aten: tuple[str, ...] = ()
    """aten operator names, without the ``aten.`` prefix: ``("convolution", ...)``."""
    python: tuple[str, ...] = ()
    """Python or builtin functions by dotted name (decorated ones are unwrapped), e.g.
    ``"torch.nn.functional.adaptive_avg_pool2d"``."""
    attributes: tuple[str, ...] = ()
    """Attributes of the ``nn.Module`` arguments that must not be used, e.g. ``"parameters"``."""
    backward: bool = False
    """Whether autograd's backward pass (``.backward()``, ``torch.autograd.grad``) is forbidden."""

    def __post_init__(self) -> None:
        for name in self.aten:
            if not hasattr(torch.ops.aten, name):
                raise ValueError(f"Route {self.label!r} names aten.{name}, which torch lacks.")
        for dotted in self.python:
            if _watch_key(dotted) is None:
                raise ValueError(
                    f"Route {self.label!r} names {dotted!r}, which is not an importable function."
                )


def dotted_name(fn: Callable[..., Any]) -> str:
    """A function's importable dotted name: ``"cnncourse.training.evaluate"``."""
    inner = inspect.unwrap(fn)
    return f"{inner.__module__}.{inner.__qualname__}"


@functools.cache
def _watch_key(dotted: str) -> CodeType | BuiltinFunctionType | None:
    """What the profile hook sees of the function named ``dotted``: a Python function's code
    object or the builtin itself; None where it cannot be imported (a sandbox without the
    chapters' check modules: there nobody can call it)."""
    parts = dotted.split(".")
    try:
        value: Any = importlib.import_module(parts[0])
        for index, part in enumerate(parts[1:], start=1):
            if inspect.ismodule(value) and not hasattr(value, part):
                importlib.import_module(".".join(parts[: index + 1]))  # a submodule
            value = getattr(value, part)
    except Exception:  # noqa: BLE001 - not importable here (a sandbox may refuse the lookup)
        return None
    if isinstance(value, BuiltinFunctionType):
        return value
    code = getattr(inspect.unwrap(value), "__code__", None)
    return code if isinstance(code, CodeType) else None


CONVOLUTION = Route(
    "torch's convolution",
    aten=(
        "convolution",
        "_convolution",
        "convolution_backward",
        "convolution_backward_overrideable",
        "conv1d",
        "conv2d",
        "conv3d",
        "conv_transpose1d",
        "conv_transpose2d",
        "conv_transpose3d",
        "convolution_overrideable",
        "mkldnn_convolution",
        "_slow_conv2d_forward",
        "slow_conv3d_forward",
        "slow_conv_dilated2d",
        "slow_conv_dilated3d",
        "slow_conv_transpose2d",
        "slow_conv_transpose3d",
        "thnn_conv2d",
        "cudnn_convolution",
        "cudnn_convolution_transpose",
        "miopen_convolution",
        "_conv_depthwise2d",
        "conv_tbc",
        "_nnpack_spatial_convolution",
    ),
)
"""``F.conv2d``, ``nn.Conv2d`` and every other way to torch's convolution kernels."""

IM2COL = Route("torch's unfold (im2col)", aten=("im2col",))
"""``F.unfold`` / ``nn.Unfold`` (not the tensor method ``Tensor.unfold``, a plain view)."""

MAX_POOLING = Route(
    "torch's max pooling",
    aten=(
        "max_pool1d",
        "max_pool1d_with_indices",
        "max_pool2d",
        "max_pool2d_with_indices",
        "max_pool3d",
        "max_pool3d_with_indices",
        "adaptive_max_pool1d",
        "adaptive_max_pool2d",
        "adaptive_max_pool3d",
        "fractional_max_pool2d",
        "fractional_max_pool3d",
        "mkldnn_max_pool2d",
        "quantized_max_pool2d",
        "max_pool2d_with_indices_backward",
        "max_pool3d_with_indices_backward",
        "adaptive_max_pool2d_backward",
    ),
)
"""``F.max_pool2d``, ``nn.MaxPool2d``, the adaptive and fractional variants, and their backward."""

AVERAGE_POOLING = Route(
    "torch's average pooling",
    aten=(
        "avg_pool1d",
        "avg_pool2d",
        "avg_pool3d",
        "adaptive_avg_pool1d",
        "adaptive_avg_pool2d",
        "_adaptive_avg_pool2d",
        "adaptive_avg_pool3d",
        "_adaptive_avg_pool3d",
        "mkldnn_adaptive_avg_pool2d",
    ),
    # an adaptive pool to 1x1 reaches aten as a plain mean, so the functions are watched too
    python=tuple(f"torch.nn.functional.adaptive_avg_pool{d}d" for d in (1, 2, 3)),
)
"""``F.avg_pool2d``, ``F.adaptive_avg_pool2d``, ``nn.AdaptiveAvgPool2d`` and their relatives."""

LOG_SOFTMAX = Route(
    "torch's cross-entropy or log-softmax",
    aten=(
        "cross_entropy_loss",
        "log_softmax",
        "_log_softmax",
        "special_log_softmax",
        "logsumexp",
        "special_logsumexp",
    ),
    python=("torch.nn.functional.cross_entropy", "torch.nn.functional.log_softmax"),
)
"""``F.cross_entropy``, ``nn.CrossEntropyLoss``, ``F.log_softmax`` and ``torch.logsumexp``."""

NORMALISATION = Route(
    "torch's normalisation",
    aten=(
        "batch_norm",
        "_batch_norm_impl_index",
        "native_batch_norm",
        "_native_batch_norm_legit",
        "_native_batch_norm_legit_no_training",
        "_native_batch_norm_legit_functional",
        "cudnn_batch_norm",
        "miopen_batch_norm",
        "instance_norm",
        "group_norm",
        "native_group_norm",
        "layer_norm",
        "native_layer_norm",
    ),
)
"""``F.batch_norm``, ``nn.BatchNorm2d`` and the instance, group and layer norms that can stand in."""

AUTOGRAD = Route("autograd's backward pass", backward=True)
"""``.backward()``, ``torch.autograd.grad`` and ``torch.func``'s reverse mode."""

PARAMETER_TENSORS = Route(
    "the layer's parameters",
    attributes=("parameters", "named_parameters", "state_dict", "weight"),
)
"""``.parameters()``, ``.named_parameters()``, ``.state_dict()`` and ``.weight``."""

MODEL_FORWARD = Route("the model's forward pass", attributes=("forward",))
"""Running a model (or any of its layers) on an input."""


class _Sightings:
    """The first forbidden route a call took, as the sentence that reports it."""

    def __init__(self, name: str, asks: str) -> None:
        self.name, self.asks = name, asks
        self.first: str | None = None

    def see(self, route: Route, detail: str) -> ForbiddenRoute:
        """Record a sighting; return the exception to raise where raising is possible."""
        sentence = (
            f"{self.name} called {route.label} ({detail}); this exercise asks you to {self.asks}."
        )
        if self.first is None:
            self.first = sentence
        return ForbiddenRoute(sentence)


class _OperatorWatch(TorchDispatchMode):
    """Raises on a forbidden aten operator, and on any operator autograd's engine runs when
    the backward pass is forbidden."""

    def __init__(self, sightings: _Sightings, routes: Sequence[Route]) -> None:
        super().__init__()
        self._sightings = sightings
        self._by_name = {f"aten.{op}": route for route in routes for op in route.aten}
        self._backward = next((route for route in routes if route.backward), None)

    def __torch_dispatch__(
        self,
        func: Any,
        types: Any,
        args: tuple[Any, ...] = (),
        kwargs: dict[str, Any] | None = None,
    ) -> Any:
        name = str(func.overloadpacket)
        route = self._by_name.get(name)
        if route is not None:
            raise self._sightings.see(route, name)
        if self._backward is not None and torch._C._current_graph_task_id() != -1:
            raise self._sightings.see(self._backward, "torch.autograd")
        return func(*args, **(kwargs or {}))


class _Tripwire:
    """Stands in for a forbidden attribute: calling it, or using any of its attributes, raises."""

    __slots__ = ("_trip",)

    def __init__(self, trip: Callable[[], ForbiddenRoute]) -> None:
        self._trip = trip

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        raise self._trip()

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        raise self._trip()

    def __iter__(self) -> Any:
        raise self._trip()

    def __len__(self) -> int:
        raise self._trip()

    def __getitem__(self, key: Any) -> Any:
        raise self._trip()

    def __deepcopy__(self, memo: dict[int, Any]) -> _Tripwire:
        return self


def _arm(args: Iterable[Any], routes: Sequence[Route], sightings: _Sightings) -> None:
    """Replace each forbidden attribute of every module argument (and submodule) by a tripwire."""
    for arg in args:
        if not isinstance(arg, nn.Module):
            continue
        for module in list(arg.modules()):
            for route in routes:
                for attribute in route.attributes:
                    if hasattr(module, attribute):
                        detail = f"{type(module).__name__}.{attribute}"
                        module.__dict__[attribute] = _Tripwire(
                            functools.partial(sightings.see, route, detail)
                        )


def _watched(routes: Sequence[Route]) -> dict[object, tuple[Route, str]]:
    """What the profile hook looks for (see :func:`_watch_key`), with its route and name."""
    watched: dict[object, tuple[Route, str]] = {}
    for route in routes:
        for dotted in route.python:
            key = _watch_key(dotted)
            if key is not None:
                watched[key] = (route, dotted)
    return watched


@dataclass(frozen=True)
class Guard:
    """The routes one exercise forbids, and the words that report one: plain data, so the
    grader can send it to a worker that runs the student's function."""

    name: str
    """The student's function, as a sentence names it: ``"conv2d_loops"``."""
    asks: str
    """What the exercise asks instead: ``"write the loops yourself"``."""
    routes: tuple[Route, ...]

    def call(self, fn: Callable[..., Any], args: Sequence[Any]) -> Any:
        """``fn(*args)`` with every route watched; its result if it took none.

        Raises:
            ForbiddenRoute: one sentence naming the first forbidden route ``fn`` took, even
                when ``fn`` caught the guard's own exception or failed afterwards.
            Exception: whatever ``fn`` raised, when it took no forbidden route.
        """
        return _call_guarded(fn, args, self.name, self.asks, self.routes)


def _call_guarded(
    fn: Callable[..., Any], args: Sequence[Any], name: str, asks: str, routes: Sequence[Route]
) -> Any:
    sightings = _Sightings(name, asks)
    _arm(args, routes, sightings)
    watched = _watched(routes)

    def profile(frame: FrameType, event: str, arg: Any) -> None:
        # record only: an exception raised in a profile hook would switch the hook off
        key = frame.f_code if event == "call" else arg if event == "c_call" else None
        if key in watched:
            sightings.see(*watched[key])

    watch: contextlib.AbstractContextManager[Any] = (
        _OperatorWatch(sightings, routes)
        if any(route.aten or route.backward for route in routes)
        else contextlib.nullcontext()
    )
    previous = sys.getprofile()
    try:
        with watch:
            if watched:
                sys.setprofile(profile)
            try:
                result = fn(*args)
            finally:
                sys.setprofile(previous)
    except Exception:
        if sightings.first is None:
            raise
        raise ForbiddenRoute(sightings.first) from None
    if sightings.first is not None:
        raise ForbiddenRoute(sightings.first)
    return result
