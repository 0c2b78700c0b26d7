"""Benchmark: the course's fast CIFAR-10 recipe against two reference texts' recipes, in one run.

Every recipe trains on the same images (the training split less a seeded validation part) and is
evaluated on that validation part several times per epoch, with the training clock paused:
"time to X%" is read there, so no choice reads the evaluation split. The evaluation split
(CIFAR-10's official test set, or without it the held-out ``data_batch_5``) is scored once, at
the end of each run.

- **Ours**: each preset of :mod:`cnncourse.fast_cifar` (by default 90% and 93%), with the
  preset's test-time augmentation at the final scoring (stated beside the score).
- **Text 004 and text 001 as written** (:mod:`cnncourse.cifar_baselines`): PIL transforms in a
  DataLoader, each trained for the same time budget as our longest run. Their time per epoch
  gives the implied time of their full schedules (30 and 50 epochs).
- On a CUDA GPU, ``--airbench`` also runs airbench94 itself (the PyPI package ``airbench``).

It prints the device, the thread count, the load average around every run and the ratios.

    python3 -m uv run --frozen python benchmarks/fast_cifar.py [--presets 90% 93%] [--seeds 0]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from dataclasses import dataclass, field, replace
from typing import Any

import torch

from cnncourse import cifar_baselines, fast_cifar
from cnncourse.precision import keep_freed_memory
from cnncourse.tensor_data import TensorLoader, load_tensors, split_indices
from cnncourse.training import evaluate

TARGETS = (0.85, 0.90, 0.93)


@dataclass
class Row:
    """One trained recipe: its validation curve and its one final score."""

    name: str
    seed: int
    train_seconds: float
    epochs_done: float
    seconds_per_epoch: float
    best_val: float
    time_to: dict[float, float | None]
    final: float
    final_note: str
    load: tuple[float, float]
    curve: list[tuple[float, float, float]] = field(default_factory=list)
    """(epoch, training seconds, validation accuracy) at every evaluation."""

    def time_to_accuracy(self, accuracy: float) -> float | None:
        for _, seconds, reached in self.curve:
            if reached >= accuracy:
                return seconds
        return None


def _seconds(value: float | None) -> str:
    return "never" if value is None else f"{value:7.1f} s"


def run_ours(
    name: str, seed: int, train: Any, val: Any, evaluation: Any, evals: int, epochs: int | None
) -> Row:
    preset = fast_cifar.PRESETS[name]
    if epochs is not None:
        preset = replace(preset, epochs=epochs)
    load_before = os.getloadavg()[0]
    run = fast_cifar.train_fast_cifar(
        preset, train, val, seed=seed, evals_per_epoch=evals, progress=False
    )
    held_out = TensorLoader(
        evaluation, 1000, shuffle=False, mean=run.mean, std=run.std, channels_last=True
    )
    final = fast_cifar.tta_accuracy(run.model, held_out, preset.tta, run.precision)
    plain = fast_cifar.tta_accuracy(run.model, held_out, "none", run.precision)
    history = run.history
    curve = [
        (e, run.setup_seconds + s, a)
        for e, s, a in zip(
            history.eval_epoch, history.eval_train_seconds, history.eval_acc, strict=True
        )
    ]
    return Row(
        name=f"ours, preset {name} ({'x'.join(map(str, preset.widths))}, {preset.epochs} epochs)",
        seed=seed,
        train_seconds=run.train_seconds,
        epochs_done=float(len(history)),
        seconds_per_epoch=history.train_seconds / len(history),
        best_val=max(history.eval_acc),
        time_to={t: run.time_to(t) for t in TARGETS},
        final=final,
        final_note=f"{preset.tta} TTA; {plain:.4f} without; {run.precision}",
        load=(load_before, os.getloadavg()[0]),
        curve=curve,
    )


def run_baseline(
    key: str, seed: int, train_indices: torch.Tensor, val: Any, evaluation: Any, budget: float
) -> Row:
    baseline = cifar_baselines.BASELINES[key]
    load_before = os.getloadavg()[0]
    model, history = cifar_baselines.train_baseline(
        baseline, train_indices, val, seed=seed, time_budget=budget, evals_per_epoch=2
    )
    held_out = TensorLoader(evaluation, 1000, shuffle=False, mean=baseline.mean, std=baseline.std)
    final = evaluate(model, held_out).accuracy
    done = history.eval_epoch[-1]
    curve = list(zip(history.eval_epoch, history.eval_train_seconds, history.eval_acc, strict=True))
    return Row(
        name=baseline.name,
        seed=seed,
        train_seconds=history.train_seconds,
        epochs_done=done,
        seconds_per_epoch=history.train_seconds / done,
        best_val=max(history.eval_acc),
        time_to={t: history.time_to(t) for t in TARGETS},
        final=final,
        final_note=f"no TTA; stopped by the budget after {done:.2f} of {baseline.epochs} epochs",
        load=(load_before, os.getloadavg()[0]),
        curve=curve,
    )


def run_airbench() -> str:
    """airbench94 itself on a CUDA GPU (its own data loading, from its own cache folder)."""
    import airbench  # type: ignore[import-not-found]

    airbench.warmup94(verbose=False)
    torch.cuda.synchronize()
    started = time.perf_counter()
    accuracy = airbench.train94(verbose=False)
    torch.cuda.synchronize()
    return f"airbench94: {float(accuracy):.4f} in {time.perf_counter() - started:.2f} s (wall, incl. eval)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--presets", nargs="+", default=["90%", "93%"], choices=sorted(fast_cifar.PRESETS)
    )
    parser.add_argument("--seeds", nargs="+", type=int, default=[0])
    parser.add_argument("--val-size", type=int, default=2000)
    parser.add_argument("--evals-per-epoch", type=int, default=2)
    parser.add_argument(
        "--baselines",
        nargs="*",
        default=["text004", "text001"],
        choices=sorted(cifar_baselines.BASELINES),
    )
    parser.add_argument(
        "--budget", type=float, default=None, help="seconds per baseline (default: our longest run)"
    )
    parser.add_argument("--airbench", action="store_true", help="also run airbench94 (CUDA only)")
    parser.add_argument("--json", default=None, help="also write the rows to this file")
    parser.add_argument(
        "--epochs", type=int, default=None, help="override the presets' epochs (a quick check)"
    )
    parser.add_argument(
        "--train-size", type=int, default=None, help="train on this many images (a quick check)"
    )
    args = parser.parse_args()

    keep_freed_memory()
    device = "cuda" if torch.cuda.is_available() else "cpu"
    gpu = torch.cuda.get_device_name(0) if device == "cuda" else "none"
    print(
        f"{time.strftime('%Y-%m-%d')}  torch {torch.__version__}  device {device} (GPU: {gpu}; "
        f"CPU: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"{torch.get_num_threads()} threads, capability {torch.backends.cpu.get_cpu_capability()})"
    )
    everything = load_tensors("cifar10", True)
    evaluation = load_tensors("cifar10", False)
    rest, part = split_indices(len(everything), args.val_size, seed=0)
    if args.train_size is not None:
        rest = rest[: args.train_size]
    train, val = everything.subset(rest), everything.subset(part)
    print(
        f"training on {len(train):,} images of {everything.split}; validation: {len(val):,} of "
        f"them held back; final score on {evaluation.split} ({len(evaluation):,} images)"
    )
    rows = []
    for name in args.presets:
        for seed in args.seeds:
            rows.append(
                run_ours(name, seed, train, val, evaluation, args.evals_per_epoch, args.epochs)
            )
            print(
                f"finished {rows[-1].name}, seed {seed}: {rows[-1].train_seconds:.1f} s", flush=True
            )
    budget = args.budget or max(row.train_seconds for row in rows)
    for key in args.baselines:
        rows.append(run_baseline(key, args.seeds[0], rest, val, evaluation, budget))
        print(f"finished {rows[-1].name}: budget {budget:.1f} s", flush=True)

    print(
        f"\n{'recipe':<44}{'seed':>5}{'train':>10}{'s/epoch':>9}"
        + "".join(f"{'to ' + format(t, '.0%'):>11}" for t in TARGETS)
        + f"{'best val':>10}{'final':>8}  load"
    )
    for row in rows:
        print(
            f"{row.name:<44}{row.seed:>5}{row.train_seconds:>9.1f}s{row.seconds_per_epoch:>8.1f}s"
            + "".join(f"{_seconds(row.time_to[t]):>11}" for t in TARGETS)
            + f"{row.best_val:>10.4f}{row.final:>8.4f}  {row.load[0]:.1f}->{row.load[1]:.1f}"
            + f"\n{'':<49}final: {row.final_note}"
        )
    ours = [row for row in rows if row.name.startswith("ours")]
    print("\nratios (validation-selected times):")
    for row in rows[len(ours) :]:
        baseline = next(b for b in cifar_baselines.BASELINES.values() if b.name == row.name)
        fastest_to_its_best = min(
            (t for t in (r.time_to_accuracy(row.best_val) for r in ours) if t is not None),
            default=None,
        )
        implied = row.seconds_per_epoch * baseline.epochs
        print(
            f"- {row.name}: {row.seconds_per_epoch:.1f} s per epoch, so its {baseline.epochs} epochs "
            f"would take {implied / 60:.1f} min; within {row.train_seconds / 60:.1f} min it reached "
            f"{row.best_val:.2%} on validation"
        )
        if fastest_to_its_best is not None:
            reached_at = row.time_to_accuracy(row.best_val) or row.train_seconds
            print(
                f"  ours reached that {row.best_val:.2%} after {fastest_to_its_best:.1f} s: "
                f"{reached_at / fastest_to_its_best:.1f}x sooner"
            )
        to_claim = min(
            (
                t
                for t in (r.time_to_accuracy(baseline.claimed_accuracy) for r in ours)
                if t is not None
            ),
            default=None,
        )
        if to_claim is not None:
            print(
                f"  its claim ({baseline.claim}) against its implied {implied / 60:.1f} min: ours "
                f"reached {baseline.claimed_accuracy:.1%} after {to_claim:.1f} s, "
                f"{implied / to_claim:.1f}x sooner"
            )
    if args.airbench:
        print(run_airbench() if device == "cuda" else "airbench94: skipped, it needs a CUDA GPU")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump([row.__dict__ for row in rows], handle, indent=1, default=str)


if __name__ == "__main__":
    main()
