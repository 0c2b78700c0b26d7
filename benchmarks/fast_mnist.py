"""Benchmark: MNIST to 99% test accuracy on a fixed schedule, the course's recipe against two others.

Three recipes of :mod:`cnncourse.recipes` train in the same run, each with several seeds:

- ``REFERENCE``: reference text 000's SimpleCNN recipe as written (PIL pipeline, SGD, 3 epochs);
- ``TRAIN_MNIST_FAST``: the final recipe of the public project tuomaso/train_mnist_fast;
- the same with bf16 autocast and channels-last, to separate the recipe from the precision;
- the course's fastest MNIST recipe, ``FASTEST``.

Each run follows its fixed schedule and is scored once on the official 10,000 test images at
the end: nothing is selected on the test set. The training time counts the training loop only
(not the one-off decoding of the data, nor the evaluation). The script prints the mean and the
min-max of the accuracies over the seeds, the mean training time, and the ratios of the
baselines' times to ours; on a shared machine the ratio, measured in one run, is the robust
number.

    python3 -m uv run --frozen python benchmarks/fast_mnist.py [--seeds 0 1 2] [--skip-reference]
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import platform
import statistics
import time

import torch

from cnncourse import recipes
from cnncourse.precision import choose_precision, keep_freed_memory

TARGET = 0.99


def short(precision: str) -> str:
    """The precision a recipe runs in here: ``float32`` or ``bfloat16``."""
    chosen = choose_precision("cpu", precision).dtype
    return "float32" if chosen is None else str(chosen).removeprefix("torch.")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument(
        "--skip-reference", action="store_true", help="leave out text 000's slow recipe"
    )
    args = parser.parse_args()

    keep_freed_memory()
    mnist = recipes.load_mnist_tensors()
    candidates = [] if args.skip_reference else [recipes.REFERENCE]
    same_precision = dataclasses.replace(
        recipes.TRAIN_MNIST_FAST,
        name="train_mnist_fast, bf16",
        precision=recipes.FASTEST.precision,
        channels_last=True,
    )
    candidates += [recipes.TRAIN_MNIST_FAST, same_precision, recipes.FASTEST]
    print(
        f"{time.strftime('%Y-%m-%d')}  torch {torch.__version__}  CPU {platform.machine()}, "
        f"{os.cpu_count()} cores, {torch.get_num_threads()} threads; {len(mnist.train_y):,} "
        f"training images, scored once on the official test set of {len(mnist.test_y):,}"
    )
    means: dict[str, float] = {}
    print(
        f"\n{'recipe':<26}{'epochs':>7}{'precision':>10}{'mean train':>12}{'accuracy mean [min, max]':>30}  load"
    )
    for recipe in candidates:
        load_before = os.getloadavg()[0]
        runs = [
            recipes.train_recipe(recipe, mnist, seed=seed, evals_per_epoch=1) for seed in args.seeds
        ]
        accuracies = [run.final_accuracy for run in runs]
        means[recipe.name] = statistics.mean(run.train_seconds for run in runs)
        verdict = "reaches" if statistics.mean(accuracies) >= TARGET else "misses"
        print(
            f"{recipe.name:<26}{recipe.epochs:>7}{short(recipe.precision):>10}{means[recipe.name]:>11.1f}s"
            f"{statistics.mean(accuracies):>14.4f} [{min(accuracies):.4f}, {max(accuracies):.4f}]"
            f"  {verdict} {TARGET:.0%}  {load_before:.1f}->{os.getloadavg()[0]:.1f}"
        )
    ours = candidates[-1].name
    for name, seconds in means.items():
        if name != ours:
            print(f"{name}: {seconds / means[ours]:.1f}x the training time of {ours}")


if __name__ == "__main__":
    main()
