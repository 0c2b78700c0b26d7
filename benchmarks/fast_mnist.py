"""Benchmark: time to 99% MNIST test accuracy, chapter 4's fast recipe vs reference text 000's recipe.

Both recipes (``cnncourse.recipes.REFERENCE`` and ``cnncourse.recipes.FAST``) train in the same run
and are evaluated on the official 10,000 test images several times per epoch. Time to 99% is the
training time (the training loop only; the evaluations and the one-off decoding of the data are
excluded) at the first evaluation reaching 99%. The script prints both, the final accuracies and
their ratio; on a shared machine the ratio, measured in one run, is the robust number.

    python3 -m uv run --frozen python benchmarks/fast_mnist.py [--evals-per-epoch 4]
"""

from __future__ import annotations

import argparse
import dataclasses
import os

import torch

from cnncourse import recipes

TARGET = 0.99


def describe(result: recipes.RecipeResult) -> str:
    reached = result.time_to(TARGET)
    to_target = f"{reached:6.1f} s" if reached is not None else "   never"
    return (
        f"{result.recipe.name:<24}{result.recipe.epochs:>3} epochs  train {result.train_seconds:6.1f} s  "
        f"to {TARGET:.0%} {to_target}  final accuracy {result.final_accuracy:.4f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--evals-per-epoch", type=int, default=4, help="test evaluations per epoch")
    parser.add_argument(
        "--train-size", type=int, default=None, help="training images (all: 60,000)"
    )
    parser.add_argument(
        "--reference-pipeline",
        choices=("pil", "tensors"),
        default="pil",
        help="the reference recipe's data: torchvision's PIL pipeline as the text wrote it, or "
        "in-memory tensors (isolates the model, optimiser and schedule)",
    )
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    mnist = recipes.load_mnist_tensors(train_size=args.train_size, seed=args.seed)
    reference = dataclasses.replace(recipes.REFERENCE, pipeline=args.reference_pipeline)
    load_before = os.getloadavg()[0]
    results = [
        recipes.train_recipe(recipe, mnist, seed=args.seed, evals_per_epoch=args.evals_per_epoch)
        for recipe in (reference, recipes.FAST)
    ]
    print(
        f"{len(mnist.train_y):,} training images, official test set of {len(mnist.test_y):,}; "
        f"{torch.get_num_threads()} threads; load average {load_before:.1f} before, "
        f"{os.getloadavg()[0]:.1f} after (on {os.cpu_count()} CPUs)"
    )
    print(f"reference data pipeline: {args.reference_pipeline}")
    for result in results:
        print(describe(result))
    ref, fast = results
    ref_time, fast_time = ref.time_to(TARGET), fast.time_to(TARGET)
    if fast_time is None:
        print(f"the fast recipe did not reach {TARGET:.0%} in this run")
    elif ref_time is None:
        print(
            f"the reference recipe never reached {TARGET:.0%}; the fast recipe reached it "
            f"{ref.train_seconds / fast_time:.1f}x sooner than the reference's whole run took"
        )
    else:
        print(f"time to {TARGET:.0%}: the fast recipe is {ref_time / fast_time:.1f}x faster")


if __name__ == "__main__":
    main()
