"""Benchmark: one pass over MNIST's training images, torchvision's PIL pipeline vs in-memory tensors.

The baseline is the usual ``DataLoader(datasets.MNIST(..., transform=ToTensor()))``, which decodes
every image through PIL on every epoch. ``cnncourse.data.to_tensors`` decodes once into a float
tensor and batches from memory. Both are measured in the same run; the script prints the ratio.

    python3 -m uv run --frozen python benchmarks/data_loading.py [--images 60000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import time

import torch
from torch.utils.data import DataLoader, TensorDataset
from torchvision.transforms import ToTensor

from cnncourse import data


def one_pass(loader: DataLoader) -> float:
    """Seconds to draw every batch from ``loader`` once (touching each batch)."""
    started = time.perf_counter()
    total = 0.0
    for images, _ in loader:
        total += float(images[0, 0, 0, 0])
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=60_000, help="training images per pass")
    parser.add_argument("--repeats", type=int, default=3, help="passes per method (best is kept)")
    parser.add_argument("--batch-size", type=int, default=128)
    args = parser.parse_args()

    pil_set = data.subset(data.mnist(train=True, transform=ToTensor()), args.images)
    pil_loader = DataLoader(pil_set, batch_size=args.batch_size, shuffle=True)

    started = time.perf_counter()
    images, labels = data.to_tensors(pil_set)
    decode_once = time.perf_counter() - started
    tensor_loader = DataLoader(
        TensorDataset(images, labels), batch_size=args.batch_size, shuffle=True
    )

    # The two pipelines must yield the same pixels.
    assert torch.equal(images[0], pil_set[0][0]), "to_tensors and ToTensor disagree"

    baseline = min(one_pass(pil_loader) for _ in range(args.repeats))
    in_memory = min(one_pass(tensor_loader) for _ in range(args.repeats))
    print(f"images per pass             {len(pil_set):,}")
    print(f"PIL + ToTensor (baseline)   {baseline:.2f} s per pass")
    print(
        f"in-memory tensors           {in_memory:.2f} s per pass (+{decode_once:.2f} s decoded once)"
    )
    print(f"speed-up per epoch          {baseline / in_memory:.1f}x")


if __name__ == "__main__":
    main()
