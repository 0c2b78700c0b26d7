"""evaluate, fit, schedulers, seeding and checkpoints (including resuming a killed run)."""

from __future__ import annotations

import itertools
import math
import os
import random
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import resume_job
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from cnncourse import CheckpointError, History, Metrics, evaluate, fit
from cnncourse import training as course_training

pytestmark = pytest.mark.usefixtures("clean_env", "in_tmp")


def assert_one_sentence(message: str) -> None:
    assert "\n" not in message, message
    assert message.endswith("."), message
    assert sum(message.count(end) for end in (". ", "! ", "? ")) == 0, message


def separable_problem(n: int = 64, seed: int = 0) -> TensorDataset:
    generator = torch.Generator().manual_seed(seed)
    inputs = torch.randn(n, 2, generator=generator)
    targets = (inputs[:, 0] > 0).long()
    inputs[:, 0] += torch.where(targets == 1, 1.0, -1.0)  # a margin around x = 0
    return TensorDataset(inputs, targets)


def small_model(seed: int = 0, dropout: float = 0.0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(2, 8), nn.ReLU(), nn.Dropout(dropout), nn.Linear(8, 2))


def fixed_linear() -> nn.Linear:
    """logits = inputs: the identity on two features."""
    layer = nn.Linear(2, 2)
    with torch.no_grad():
        layer.weight.copy_(torch.eye(2))
        layer.bias.zero_()
    return layer


class ModeRecorder(nn.Module):
    """Identity on logits that records the mode and grad state it ran in."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = fixed_linear()
        self.seen: list[tuple[bool, bool]] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.seen.append((self.training, torch.is_grad_enabled()))
        return self.linear(x)


# --- evaluate --------------------------------------------------------------------------------


def test_evaluate_computes_loss_and_accuracy_by_hand() -> None:
    inputs = torch.tensor([[2.0, 0.0], [0.0, 1.0], [1.0, 3.0]])
    targets = torch.tensor([0, 1, 0])  # predictions 0, 1, 1: two of three right
    loader = DataLoader(TensorDataset(inputs, targets), batch_size=2)  # batches of 2 and 1
    metrics = evaluate(fixed_linear(), loader)
    # cross-entropy for two logits: log(1 + exp(other - own))
    expected = (math.log1p(math.exp(-2)) + math.log1p(math.exp(-1)) + math.log1p(math.exp(2))) / 3
    assert isinstance(metrics, Metrics)
    assert metrics.loss == pytest.approx(expected, rel=1e-6)
    assert metrics.accuracy == pytest.approx(2 / 3)


def test_evaluate_uses_the_given_loss_function() -> None:
    inputs = torch.tensor([[2.0, 0.0], [0.0, 1.0]])
    loader = DataLoader(TensorDataset(inputs, torch.tensor([0, 0])), batch_size=1)
    metrics = evaluate(fixed_linear(), loader, loss_fn=nn.MultiMarginLoss(), device="cpu")
    # multi-margin: sum over wrong classes of max(0, 1 - own + other), over 2 classes:
    # (0 / 2 + 2 / 2) / 2 items
    assert metrics == Metrics(pytest.approx(0.5), 0.5)


@pytest.mark.parametrize("training", [True, False])
def test_evaluate_runs_in_eval_mode_without_gradients_and_restores_the_mode(
    training: bool,
) -> None:
    model = ModeRecorder()
    model.train(training)
    loader = DataLoader(TensorDataset(torch.zeros(4, 2), torch.zeros(4).long()), batch_size=2)
    evaluate(model, loader)
    assert model.seen == [(False, False), (False, False)]
    assert model.training is training
    assert model.linear.training is training


def test_evaluate_restores_train_mode_after_an_error() -> None:
    model = ModeRecorder().train()
    loader = DataLoader(TensorDataset(torch.zeros(2, 3), torch.zeros(2).long()), batch_size=2)
    with pytest.raises(RuntimeError):
        evaluate(model, loader)  # 3 features into a 2-feature layer
    assert model.training


def test_evaluate_rejects_bad_loaders() -> None:
    batches = ((torch.zeros(1, 2), torch.zeros(1).long()) for _ in range(2))  # no length
    with pytest.raises(TypeError, match=r"loader is a generator, but it must be an iterable of"):
        evaluate(fixed_linear(), batches)  # type: ignore[arg-type]
    as_list = [(torch.zeros(1, 2), torch.zeros(1).long())]  # any sized iterable of batches works
    assert evaluate(fixed_linear(), as_list).accuracy in (0.0, 1.0)
    empty = DataLoader(TensorDataset(torch.zeros(0, 2), torch.zeros(0).long()), batch_size=2)
    with pytest.raises(ValueError, match="no batches"):
        evaluate(fixed_linear(), empty)


# --- fit -------------------------------------------------------------------------------------


def test_fit_learns_a_separable_problem_and_records_history() -> None:
    data = separable_problem()
    train_loader = DataLoader(data, batch_size=16, shuffle=True)
    val_loader = DataLoader(data, batch_size=32)
    model = small_model()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.3)
    history = fit(
        model,
        train_loader,
        optimizer,
        6,
        val_loader=val_loader,
        device="cpu",
        seed=0,
        progress=False,
    )
    assert isinstance(history, History) and len(history) == 6
    assert history.epoch == [1, 2, 3, 4, 5, 6]
    for values in (history.train_loss, history.train_acc, history.val_loss, history.val_acc):
        assert len(values) == 6 and all(math.isfinite(v) for v in values)
    assert all(
        later < earlier for earlier, later in zip(history.train_loss, history.train_loss[1:])
    )
    assert history.val_acc[-1] == 1.0
    assert evaluate(model, val_loader).accuracy == history.val_acc[-1]
    assert all(s > 0 for s in history.seconds)
    assert history.total_seconds == pytest.approx(sum(history.seconds))
    assert set(history.as_dict()) == {
        "epoch",
        "train_loss",
        "train_acc",
        "val_loss",
        "val_acc",
        "seconds",
        "train_time",
        "eval_epoch",
        "eval_train_seconds",
        "eval_acc",
        "eval_loss",
    }
    assert history.eval_epoch == [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]  # one evaluation per epoch
    assert history.eval_acc == history.val_acc
    assert 0 < history.train_seconds <= history.total_seconds


def test_fit_without_validation_records_nan(capsys: pytest.CaptureFixture[str]) -> None:
    loader = DataLoader(separable_problem(16), batch_size=8)
    model = small_model()
    history = fit(
        model, loader, torch.optim.SGD(model.parameters(), lr=0.1), 2, device="cpu", progress=False
    )
    assert len(history) == 2
    assert all(math.isnan(v) for v in history.val_loss + history.val_acc)
    assert capsys.readouterr().err == ""  # progress=False draws no bars


@pytest.mark.parametrize(("step", "expected_lr"), [("epoch", 0.5**3), ("batch", 0.5**12)])
def test_scheduler_is_stepped_per_epoch_or_per_batch(step: str, expected_lr: float) -> None:
    loader = DataLoader(separable_problem(32), batch_size=8)  # 4 batches per epoch
    model = small_model()
    optimizer = torch.optim.SGD(model.parameters(), lr=1.0)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.5)
    fit(
        model,
        loader,
        optimizer,
        3,
        scheduler=scheduler,
        scheduler_step=step,  # type: ignore[arg-type]
        device="cpu",
        progress=False,
    )
    assert optimizer.param_groups[0]["lr"] == pytest.approx(expected_lr)
    assert scheduler.last_epoch == (3 if step == "epoch" else 12)


def _seeded_weights(seed: int) -> dict[str, torch.Tensor]:
    model = small_model(seed=0, dropout=0.5)
    loader = DataLoader(separable_problem(), batch_size=8, shuffle=True)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    fit(model, loader, optimizer, 2, device="cpu", seed=seed, progress=False)
    return model.state_dict()


def test_seeded_fit_is_reproducible() -> None:
    first = _seeded_weights(3)
    torch.manual_seed(999)  # disturb the global generators between runs
    random.seed(999)
    np.random.seed(999)
    second = _seeded_weights(3)
    other = _seeded_weights(4)
    for name in first:
        assert torch.equal(first[name], second[name]), name
    assert any(not torch.equal(first[name], other[name]) for name in first)


def test_rng_state_round_trip_restores_every_generator() -> None:
    state = course_training._rng_state()
    before = random.random(), np.random.rand(), torch.rand(2)
    course_training._set_rng_state(state)
    after = random.random(), np.random.rand(), torch.rand(2)
    assert before[0] == after[0] and before[1] == after[1]
    assert torch.equal(before[2], after[2])


@pytest.mark.parametrize("bad", [0, -1, 2.0, True, "3", None])
def test_fit_rejects_bad_epochs(bad: object) -> None:
    model = small_model()
    loader = DataLoader(separable_problem(8), batch_size=4)
    with pytest.raises(ValueError) as info:
        fit(model, loader, torch.optim.SGD(model.parameters(), lr=0.1), bad, progress=False)  # type: ignore[arg-type]
    assert str(info.value) == f"epochs is {bad!r}, but it must be a positive integer."


def test_fit_rejects_batches_without_a_length_or_a_bare_data_set() -> None:
    model = small_model()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    batches = ((torch.zeros(2, 2), torch.zeros(2).long()) for _ in range(3))
    with pytest.raises(TypeError) as info:
        fit(model, batches, optimizer, 1, progress=False)  # type: ignore[arg-type]
    message = str(info.value)
    assert message.startswith(
        "train_loader is a generator, but it must be an iterable of (inputs, labels) batches "
        "with a length"
    )
    assert "torch.utils.data.DataLoader" in message and "TensorLoader" in message
    loader = DataLoader(separable_problem(8), batch_size=4)
    with pytest.raises(TypeError, match="^val_loader is a TensorDataset"):
        fit(model, loader, optimizer, 1, val_loader=separable_problem(4), progress=False)  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", ["step", "EPOCH", None, 1])
def test_fit_rejects_a_bad_scheduler_step(bad: object) -> None:
    model = small_model()
    loader = DataLoader(separable_problem(8), batch_size=4)
    with pytest.raises(ValueError) as info:
        fit(
            model,
            loader,
            torch.optim.SGD(model.parameters(), lr=0.1),
            1,
            scheduler_step=bad,  # type: ignore[arg-type]
            progress=False,
        )
    assert str(info.value) == f"scheduler_step is {bad!r}, but it must be 'epoch' or 'batch'."


def test_fit_rejects_an_empty_loader() -> None:
    model = small_model()
    empty = DataLoader(TensorDataset(torch.zeros(0, 2), torch.zeros(0).long()), batch_size=2)
    with pytest.raises(ValueError, match="train_loader yielded no batches"):
        fit(model, empty, torch.optim.SGD(model.parameters(), lr=0.1), 1, progress=False)


# --- checkpoints -----------------------------------------------------------------------------


def _short_run(checkpoint: Path, epochs: int, model: nn.Module | None = None) -> History:
    model = model or small_model()
    loader = DataLoader(separable_problem(16), batch_size=8, shuffle=True)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    return fit(
        model, loader, optimizer, epochs, device="cpu", checkpoint=checkpoint, progress=False
    )


def test_checkpoint_is_written_atomically_after_every_epoch(tmp_path: Path) -> None:
    path = tmp_path / "runs" / "ckpt.pt"  # the folder is created
    history = _short_run(path, 2)
    payload = torch.load(path, weights_only=True)
    assert payload["format"] == "cnncourse-checkpoint-2"
    assert payload["epoch"] == 2
    np.testing.assert_equal(payload["history"], history.as_dict())  # NaN == NaN here
    assert set(payload) >= {"model", "optimizer", "scheduler", "rng"}
    assert sorted(p.name for p in path.parent.iterdir()) == ["ckpt.pt"]  # no .partial left


def test_finished_checkpoint_resumes_without_training_and_extends(tmp_path: Path) -> None:
    path = tmp_path / "ckpt.pt"
    first = _short_run(path, 2)
    model = small_model(seed=5)
    again = _short_run(path, 2, model)
    np.testing.assert_equal(again.as_dict(), first.as_dict())
    saved = torch.load(path, weights_only=True)["model"]
    assert all(torch.equal(model.state_dict()[k], saved[k]) for k in saved)
    longer = _short_run(path, 3)
    assert longer.epoch == [1, 2, 3]
    assert longer.train_loss[:2] == first.train_loss


def _fit_with(path: Path, model: nn.Module) -> None:
    loader = DataLoader(separable_problem(8), batch_size=4)
    fit(
        model,
        loader,
        torch.optim.SGD(model.parameters(), lr=0.1),
        1,
        device="cpu",
        checkpoint=path,
        progress=False,
    )


def test_corrupt_checkpoint_is_one_clear_sentence_and_is_kept(tmp_path: Path) -> None:
    path = tmp_path / "damaged.pt"
    garbage = np.random.default_rng(0).bytes(512)
    path.write_bytes(garbage)
    with pytest.raises(CheckpointError) as info:
        _fit_with(path, small_model())
    message = str(info.value)
    assert_one_sentence(message)
    assert message.startswith(f"checkpoint {path} could not be read")
    assert info.value._render_traceback_() == [f"CheckpointError: {message}"]
    assert path.read_bytes() == garbage  # nothing lost
    assert sorted(p.name for p in tmp_path.iterdir()) == ["damaged.pt"]


def test_a_torch_file_that_is_no_checkpoint_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "weights.pt"
    torch.save(small_model().state_dict(), path)
    before = path.read_bytes()
    with pytest.raises(CheckpointError) as info:
        _fit_with(path, small_model())
    assert_one_sentence(str(info.value))
    assert f"checkpoint {path} is not a cnncourse-checkpoint-2 file" in str(info.value)
    assert path.read_bytes() == before


def test_checkpoint_of_a_different_model_is_refused_and_kept(tmp_path: Path) -> None:
    path = tmp_path / "other.pt"
    _short_run(path, 1)  # a 2 -> 8 -> 2 network
    before = path.read_bytes()
    torch.manual_seed(0)
    other = nn.Sequential(nn.Linear(2, 4), nn.ReLU(), nn.Linear(4, 3))
    with pytest.raises(CheckpointError) as info:
        _fit_with(path, other)
    message = str(info.value)
    head = f"checkpoint {path} does not fit this model, optimizer, scheduler or loader ("
    tail = "); pass another checkpoint path to start afresh."
    assert message.startswith(head) and message.endswith(tail)
    quoted = message[len(head) : -len(tail)]  # PyTorch's own (multi-line) reason, on one line
    assert "size mismatch" in quoted and "\n" not in quoted
    assert_one_sentence(head + tail)
    assert info.value._render_traceback_() == [f"CheckpointError: {message}"]
    assert path.read_bytes() == before


def test_checkpoint_saved_without_a_scheduler_resumes_with_one(tmp_path: Path) -> None:
    path = tmp_path / "no-sched.pt"
    _short_run(path, 1)
    model = small_model()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, 1)
    loader = DataLoader(separable_problem(16), batch_size=8)
    # a checkpoint saved without a scheduler still resumes (the scheduler starts afresh)
    history = fit(
        model,
        loader,
        optimizer,
        2,
        scheduler=scheduler,
        device="cpu",
        checkpoint=path,
        progress=False,
    )
    assert history.epoch == [1, 2]


# --- resuming a run killed mid-epoch ----------------------------------------------------------

RESUME_TEST = "test_resume_after_a_kill_matches_an_uninterrupted_run"


@dataclass
class KilledJob:
    child: subprocess.Popen
    checkpoint: Path
    marker: Path


@pytest.fixture(scope="module", autouse=True)
def killed_job(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    """Start the training job that the resume test kills, in a fresh Python process.

    It starts with this module's first test, when the resume test is selected, so that its
    interpreter start-up (importing torch takes seconds) overlaps the other tests. (A forked
    child would start at once, but forking a process that has run torch deadlocks in OpenMP.)
    """
    if not any(item.name == RESUME_TEST for item in request.session.items):
        yield None
        return
    folder = tmp_path_factory.mktemp("killed-job")
    checkpoint, marker = folder / "job.pt", folder / "blocked"
    env = {k: v for k, v in os.environ.items() if not k.startswith("CNNCOURSE_")}
    child = subprocess.Popen(
        [sys.executable, str(Path(resume_job.__file__)), str(checkpoint), str(marker)],
        cwd=folder,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        yield KilledJob(child, checkpoint, marker)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        child.stderr.close()


def _wait_for(condition, child: subprocess.Popen, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if child.poll() is not None:
            raise AssertionError(f"the training job exited early:\n{child.stderr.read()}")
        if time.monotonic() > deadline:
            raise AssertionError("the training job did not reach the kill point in time")
        time.sleep(0.05)


def test_resume_after_a_kill_matches_an_uninterrupted_run(killed_job: KilledJob) -> None:
    """(a) 4 epochs uninterrupted; (b) a process killed mid-epoch 3; (c) resume: all equal."""
    child, checkpoint = killed_job.child, killed_job.checkpoint

    # (a) in this process
    parts = resume_job.build()
    uninterrupted = resume_job.run(None, parts)
    reference_model, reference_optimizer, reference_scheduler = parts[:3]

    # (b) the job blocks after 2 batches of epoch 3, its epoch-2 checkpoint written: kill it
    _wait_for(killed_job.marker.exists, child)
    assert torch.load(checkpoint, weights_only=True)["epoch"] == resume_job.BLOCK_EPOCH - 1
    child.send_signal(signal.SIGKILL)
    child.wait(timeout=30)
    assert child.returncode == -signal.SIGKILL
    assert torch.load(checkpoint, weights_only=True)["epoch"] == 2  # epoch 3 never saved

    # (c) resume in this process from fresh objects
    torch.manual_seed(12345)  # whatever state this process is in must not matter
    parts = resume_job.build()
    resumed = resume_job.run(checkpoint, parts)
    model, optimizer, scheduler = parts[:3]

    # bit-for-bit: the same operations on the same values, in the same order
    assert resumed.epoch == uninterrupted.epoch == [1, 2, 3, 4]
    for key in ("train_loss", "train_acc", "val_loss", "val_acc"):
        assert getattr(resumed, key) == getattr(uninterrupted, key), key
    expected = reference_model.state_dict()
    for name, tensor in model.state_dict().items():
        assert torch.equal(tensor, expected[name]), name
    ours, theirs = optimizer.state_dict(), reference_optimizer.state_dict()
    assert ours["param_groups"] == theirs["param_groups"]
    assert ours["state"].keys() == theirs["state"].keys()
    for index, state in theirs["state"].items():
        for key, value in state.items():
            assert torch.equal(ours["state"][index][key], value), (index, key)
    assert scheduler.state_dict() == reference_scheduler.state_dict()
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.02 * 0.8**4)
    assert torch.load(checkpoint, weights_only=True)["epoch"] == 4


# --- fit on the tensor loader, evaluations within epochs, budgets, precision -----------------


def tensor_problem(n: int = 96, seed: int = 0):
    from cnncourse.tensor_data import ImageTensors

    generator = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (n, 1, 4, 4), generator=generator, dtype=torch.uint8)
    labels = (images.float().mean(dim=(1, 2, 3)) > 127.5).long()
    return ImageTensors(images, labels, ("dark", "light"), "toy")


def conv_model(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(), nn.Linear(64, 2)
    )


def tensor_run(path: Path | None, epochs: int, **kwargs: object) -> tuple[nn.Module, History]:
    from cnncourse.augment import RandomCrop
    from cnncourse.tensor_data import TensorLoader

    data = tensor_problem()
    loader = TensorLoader(data, 16, seed=4, mean=(0.5,), std=(0.3,), augment=[RandomCrop(1)])
    val = TensorLoader(data, 48, shuffle=False, mean=(0.5,), std=(0.3,))
    model = conv_model()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=5, gamma=0.5)
    history = fit(
        model,
        loader,
        optimizer,
        epochs,
        val_loader=val,
        scheduler=scheduler,
        scheduler_step="batch",
        device="cpu",
        checkpoint=path,
        progress=False,
        **kwargs,
    )
    return model, history


def test_fit_on_the_tensor_loader_resumes_exactly_from_a_checkpoint(tmp_path: Path) -> None:
    model, history = tensor_run(None, 4, evals_per_epoch=3)
    path = tmp_path / "tensor.pt"
    tensor_run(path, 2, evals_per_epoch=3)  # two epochs, then the "session" ends
    assert torch.load(path, weights_only=True)["loader"] == {"epoch": 2, "batch": 0, "seed": 4}
    resumed, resumed_history = tensor_run(path, 4, evals_per_epoch=3)
    for key, value in model.state_dict().items():
        assert torch.equal(value, resumed.state_dict()[key]), key
    assert resumed_history.train_loss == history.train_loss
    assert resumed_history.eval_acc == history.eval_acc


def test_evaluations_within_epochs_feed_time_to_a_target() -> None:
    _, history = tensor_run(None, 3, evals_per_epoch=3)
    assert history.eval_epoch == pytest.approx([1 / 3, 2 / 3, 1, 4 / 3, 5 / 3, 2, 7 / 3, 8 / 3, 3])
    seconds = history.eval_train_seconds
    assert all(later > earlier for earlier, later in itertools.pairwise(seconds))
    assert history.val_acc == [history.eval_acc[i] for i in (2, 5, 8)]
    best = max(history.eval_acc)
    first = history.eval_acc.index(best)
    assert history.time_to(best) == seconds[first]
    assert history.time_to(1.01) is None


def test_a_time_budget_stops_training_at_the_first_batch_past_it(tmp_path: Path) -> None:
    path = tmp_path / "budget.pt"
    _model, history = tensor_run(path, 50, time_budget=0.05)
    assert 1 <= len(history) < 50
    assert history.train_seconds >= 0.05
    assert history.eval_train_seconds[-1] >= 0.05  # a last evaluation where it stopped
    _again_model, again = tensor_run(path, 50, time_budget=0.05)  # a finished run stays finished
    assert again.as_dict() == history.as_dict()


def test_a_time_budget_without_a_validation_split_still_stops_and_times() -> None:
    from cnncourse.tensor_data import TensorLoader

    model = conv_model()
    loader = TensorLoader(tensor_problem(), 16, seed=1)
    history = fit(
        model,
        loader,
        torch.optim.SGD(model.parameters(), lr=0.05),
        50,
        device="cpu",
        time_budget=0.05,
        progress=False,
    )
    assert 1 <= len(history) < 50 and history.train_seconds >= 0.05
    assert history.eval_acc == [] and math.isnan(history.val_acc[-1])


def test_bf16_autocast_and_channels_last_train_on_the_cpu() -> None:
    model, history = tensor_run(None, 2, precision="bf16", channels_last=True)
    assert all(math.isfinite(v) for v in history.train_loss)
    assert model[0].weight.is_contiguous(memory_format=torch.channels_last)
    assert model[0].weight.dtype == torch.float32  # autocast leaves the parameters in float32


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"evals_per_epoch": 0}, "evals_per_epoch is 0, but it must be a positive integer"),
        ({"time_budget": -1.0}, "time_budget is -1.0, but it must be a positive number"),
        ({"clip_grad_norm": 0}, "clip_grad_norm is 0, but it must be a positive number"),
        ({"precision": "fp8"}, "prefer is 'fp8', but it must be 'auto', 'bf16', 'fp16' or 'fp32'"),
    ],
)
def test_fit_names_a_bad_new_argument(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        tensor_run(None, 1, **kwargs)
