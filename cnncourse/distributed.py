"""Data-parallel training with DistributedDataParallel, launched by ``torchrun``: chapter 8's script.

Run it on one machine with two processes (CPU: the gloo backend; GPUs: NCCL, with the same code)::

    torchrun --standalone --nproc_per_node=2 -m cnncourse.distributed --steps 20 --out run.json

or, where ``torchrun`` is not on the path, ``python -m torch.distributed.run`` with the same
arguments. What each process (a *rank*) does:

1. joins the process group that ``torchrun`` describes in its environment (``RANK``,
   ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR``, ``MASTER_PORT``) and picks its device:
   ``cuda:LOCAL_RANK`` where there is a GPU for every rank, else the CPU with
   ``OMP_NUM_THREADS`` threads;
2. builds the same model from the same seed, and wraps it in ``DistributedDataParallel``, which
   broadcasts rank 0's weights and, during every backward pass, all-reduces (averages) the
   gradients across ranks, so every rank takes the same optimiser step;
3. reads its own shard of each epoch through a ``DistributedSampler`` (the same shuffled order on
   every rank, each rank taking every ``WORLD_SIZE``-th example);
4. every ``--checkpoint-every`` steps, rank 0 alone writes a checkpoint (the others wait at a
   barrier), from which ``--resume`` continues exactly;
5. at the end, gathers a checksum of every rank's weights and checks they are identical.

Rank 0 writes a JSON summary (``--out``): the world size, backend, device, effective batch size,
learning rate, the losses, each rank's checksum and whether they agree.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, DistributedSampler, TensorDataset

__all__ = ["RunSummary", "SmallNet", "main", "parse_args", "weights_checksum"]

_FORMAT = "cnncourse-ddp-checkpoint-1"


class SmallNet(nn.Module):
    """Two conv-ReLU-pool stages and a linear classifier: small enough for many CPU processes."""

    def __init__(self, width: int = 16, classes: int = 10) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, width, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(width, 2 * width, 3, padding=1),
            nn.ReLU(),
            nn.AdaptiveAvgPool2d(4),
            nn.Flatten(),
        )
        self.head = nn.Linear(2 * width * 16, classes)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(images))


@dataclass
class RunSummary:
    """What rank 0 reports about a run (written as JSON by ``--out``)."""

    world_size: int
    backend: str
    device: str
    per_rank_batch: int
    effective_batch: int
    lr: float
    steps: int
    start_step: int
    examples: int
    seconds: float
    losses: list[float] = field(default_factory=list)
    """Rank 0's loss at each step it ran (the mean over its own shard of the batch)."""
    checksums: list[float] = field(default_factory=list)
    """Each rank's :func:`weights_checksum` at the end, by rank."""
    max_weight_difference: float = float("nan")
    """The largest absolute difference between any rank's weights and rank 0's."""
    identical: bool = False


def weights_checksum(model: nn.Module) -> float:
    """A position-weighted sum of every parameter, in float64: equal weights give equal sums, and
    swapping two values changes it (so it is a fingerprint, not just a total)."""
    flat = torch.cat([p.detach().double().flatten().cpu() for p in model.parameters()])
    positions = torch.arange(1, len(flat) + 1, dtype=torch.float64)
    return float((flat * torch.cos(positions)).sum())


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The script's options (``--help`` lists them)."""
    parser = argparse.ArgumentParser(
        prog="torchrun --nproc_per_node=N -m cnncourse.distributed",
        description=__doc__.split("\n")[0],
    )
    parser.add_argument("--steps", type=int, default=20, help="optimiser steps in all")
    parser.add_argument("--batch-size", type=int, default=64, help="examples per rank per step")
    parser.add_argument("--base-lr", type=float, default=0.05, help="learning rate at --base-batch")
    parser.add_argument("--base-batch", type=int, default=64, help="the batch --base-lr is for")
    parser.add_argument(
        "--data",
        default="synthetic:2048",
        help="'synthetic:N' (random images, for tests) or 'cifar10:N' (the first N training images)",
    )
    parser.add_argument("--data-root", default=None, help="CIFAR-10's folder (cnncourse.data)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--checkpoint", type=Path, default=None, help="rank 0 writes it here")
    parser.add_argument("--checkpoint-every", type=int, default=0, help="0: only at the end")
    parser.add_argument("--resume", action="store_true", help="continue from --checkpoint")
    parser.add_argument("--stop-after", type=int, default=None, help="end early, as if preempted")
    parser.add_argument("--out", type=Path, default=None, help="rank 0's JSON summary")
    args = parser.parse_args(argv)
    for name in ("steps", "batch_size", "base_batch"):
        if getattr(args, name) < 1:
            parser.error(
                f"--{name.replace('_', '-')} is {getattr(args, name)}, but it must be >= 1."
            )
    if args.resume and args.checkpoint is None:
        parser.error("--resume needs --checkpoint, the file to continue from.")
    return args


def _dataset(spec: str, root: str | None, seed: int) -> TensorDataset:
    kind, _, count = spec.partition(":")
    if kind not in ("synthetic", "cifar10") or not count.isdigit() or int(count) < 1:
        raise ValueError(f"--data is {spec!r}, but it must be 'synthetic:N' or 'cifar10:N'.")
    n = int(count)
    if kind == "synthetic":
        generator = torch.Generator().manual_seed(seed)
        labels = torch.randint(0, 10, (n,), generator=generator)
        images = torch.randn(n, 3, 32, 32, generator=generator) + labels.view(-1, 1, 1, 1) / 5
        return TensorDataset(images, labels)
    from cnncourse.tensor_data import load_tensors

    cifar = load_tensors("cifar10", train=True, root=root)
    images = cifar.images[:n].float() / 255
    mean = images.mean((0, 2, 3), keepdim=True)
    std = images.std((0, 2, 3), keepdim=True)
    return TensorDataset((images - mean) / std, cifar.labels[:n])


def _save(path: Path, payload: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    torch.save(payload, partial)
    os.replace(partial, path)  # atomic: a preempted save never leaves half a file


def main(argv: Sequence[str] | None = None) -> RunSummary | None:
    """Train as one rank of a ``torchrun`` job; rank 0 returns (and writes) the summary."""
    args = parse_args(argv)
    if "RANK" not in os.environ:
        raise SystemExit(
            "cnncourse.distributed runs under torchrun, which sets RANK and WORLD_SIZE: "
            "torchrun --standalone --nproc_per_node=2 -m cnncourse.distributed"
        )
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    local_world = int(os.environ.get("LOCAL_WORLD_SIZE", "1"))
    # NCCL needs one GPU per rank; with fewer GPUs than local ranks, the ranks run on the CPU.
    use_cuda = torch.cuda.is_available() and torch.cuda.device_count() >= local_world
    backend = "nccl" if use_cuda else "gloo"
    if torch.cuda.is_available() and not use_cuda and local_rank == 0:
        print(f"{torch.cuda.device_count()} GPU(s) for {local_world} ranks: using gloo on the CPU")
    if use_cuda:
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    else:
        device = torch.device("cpu")
        torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    dist.init_process_group(backend)
    try:
        return _train(args, backend, device)
    finally:
        dist.destroy_process_group()


def _train(args: argparse.Namespace, backend: str, device: torch.device) -> RunSummary | None:
    rank, world = dist.get_rank(), dist.get_world_size()
    dataset = _dataset(args.data, args.data_root, args.seed)
    sampler: DistributedSampler[tuple[torch.Tensor, ...]] = DistributedSampler(
        dataset, num_replicas=world, rank=rank, seed=args.seed, drop_last=True
    )
    loader = DataLoader(dataset, batch_size=args.batch_size, sampler=sampler, drop_last=True)
    if len(loader) == 0:
        raise ValueError(
            f"{len(dataset)} examples make no batch of {args.batch_size} on each of {world} ranks."
        )
    effective = args.batch_size * world
    lr = args.base_lr * effective / args.base_batch  # the linear scaling rule
    torch.manual_seed(args.seed)  # the same initial weights on every rank (DDP also broadcasts)
    model = DistributedDataParallel(
        SmallNet().to(device), device_ids=[device.index] if device.type == "cuda" else None
    )
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    loss_fn = nn.CrossEntropyLoss()
    step = 0
    if args.resume:
        state = torch.load(args.checkpoint, map_location=device, weights_only=True)
        if state.get("format") != _FORMAT:
            raise ValueError(f"{args.checkpoint} is not a {_FORMAT} file.")
        model.module.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        step = int(state["step"])
    start_step, losses = step, []
    last = min(args.steps, args.stop_after) if args.stop_after is not None else args.steps
    started = time.perf_counter()
    while step < last:
        epoch, skip = divmod(step, len(loader))
        sampler.set_epoch(epoch)  # the epoch's shuffle, the same on every rank
        for index, (images, labels) in enumerate(loader):
            if index < skip:  # resuming mid-epoch: these batches were already trained
                continue
            images, labels = images.to(device), labels.to(device)
            optimizer.zero_grad(set_to_none=True)
            loss = loss_fn(model(images), labels)
            loss.backward()  # DDP all-reduces the gradients here, bucket by bucket
            optimizer.step()
            step += 1
            losses.append(loss.item())
            every = args.checkpoint_every
            if args.checkpoint is not None and (step == last or (every and step % every == 0)):
                if rank == 0:
                    payload = {
                        "format": _FORMAT,
                        "step": step,
                        "model": model.module.state_dict(),
                        "optimizer": optimizer.state_dict(),
                    }
                    _save(args.checkpoint, payload)
                dist.barrier()  # nobody runs ahead of a checkpoint that may be resumed
            if step == last:
                break
    seconds = time.perf_counter() - started
    flat = torch.cat([p.detach().flatten() for p in model.module.parameters()])
    gathered = [torch.empty_like(flat) for _ in range(world)]
    dist.all_gather(gathered, flat)  # every rank's weights, to compare them exactly
    checksum = torch.tensor([weights_checksum(model.module)], dtype=torch.float64, device=device)
    checksums = [torch.empty_like(checksum) for _ in range(world)]
    dist.all_gather(checksums, checksum)
    if rank != 0:
        return None
    difference = max(float((g - gathered[0]).abs().max()) for g in gathered)
    summary = RunSummary(
        world_size=world,
        backend=backend,
        device=str(device) if device.type == "cuda" else f"cpu ({torch.get_num_threads()} threads)",
        per_rank_batch=args.batch_size,
        effective_batch=effective,
        lr=lr,
        steps=step,
        start_step=start_step,
        examples=len(dataset),
        seconds=seconds,
        losses=losses,
        checksums=[float(c) for c in checksums],
        max_weight_difference=difference,
        identical=difference == 0.0,
    )
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(asdict(summary), indent=1))
    print(
        f"rank 0 of {world} ({backend}, {summary.device}): steps {start_step}-{step}, effective "
        f"batch {effective}, lr {lr:g}, last loss {losses[-1] if losses else float('nan'):.4f}, "
        f"ranks' weights {'identical' if summary.identical else f'differ by {difference:.3g}'}"
    )
    return summary


if __name__ == "__main__":
    main()
