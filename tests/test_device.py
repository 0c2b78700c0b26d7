"""Devices, the one-time CPU notice, DataLoader workers, seeding and the doctor() report."""

from __future__ import annotations

import os
import platform
import random
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision

import cnncourse
from cnncourse import device as course_device

pytestmark = pytest.mark.usefixtures("clean_env", "in_tmp", "offline")

REAL_NETWORK_PROBE = course_device._network_reachable  # before the offline fixture replaces it
needs_no_cuda = pytest.mark.skipif(torch.cuda.is_available(), reason="a CUDA GPU is present")
needs_no_mps = pytest.mark.skipif(torch.backends.mps.is_available(), reason="MPS is present")


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    """The report's network probe answers "no network" at once, whatever this machine has."""
    monkeypatch.setattr(course_device, "_network_reachable", lambda timeout=3.0: False)


@pytest.fixture
def notice_not_shown(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(course_device, "_CPU_NOTICE_SHOWN", False)


# --- pick_device -----------------------------------------------------------------------------


@needs_no_cuda
@needs_no_mps
@pytest.mark.usefixtures("notice_not_shown")
def test_pick_device_is_cpu_and_says_so_exactly_once(capsys: pytest.CaptureFixture[str]) -> None:
    first = course_device.pick_device()
    second = course_device.pick_device()
    third = cnncourse.pick_device(None)
    assert first == second == third == torch.device("cpu")
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.count("Running on the CPU") == 1
    assert captured.err == f"NOTE: {course_device.cpu_notice()}\n"


@needs_no_cuda
@needs_no_mps
@pytest.mark.usefixtures("notice_not_shown")
def test_quiet_suppresses_the_notice_without_using_it_up(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert course_device.pick_device(quiet=True).type == "cpu"
    assert capsys.readouterr().err == ""
    course_device.pick_device()
    assert capsys.readouterr().err.count("Running on the CPU") == 1


@pytest.mark.usefixtures("notice_not_shown")
def test_prefer_cpu_returns_cpu_and_shows_the_notice(capsys: pytest.CaptureFixture[str]) -> None:
    assert course_device.pick_device("cpu") == torch.device("cpu")
    assert "Running on the CPU" in capsys.readouterr().err


def test_cpu_notice_says_what_it_costs_and_how_to_fix_it(monkeypatch: pytest.MonkeyPatch) -> None:
    notice = course_device.cpu_notice()
    threads = torch.get_num_threads()
    assert f"({threads} thread{'' if threads == 1 else 's'})" in notice
    assert "how long its full profile took" in notice
    assert "GPU" in notice and "CNNCOURSE_PROFILE=smoke" in notice
    assert "\n" not in notice
    monkeypatch.setattr(torch, "get_num_threads", lambda: 1)
    assert "(1 thread)" in course_device.cpu_notice()
    monkeypatch.setattr(torch, "get_num_threads", lambda: 4)
    assert "(4 threads)" in course_device.cpu_notice()


@pytest.mark.parametrize("bad", ["gpu", "CPU", "cuda:0", "", 0])
def test_unknown_prefer_is_a_clear_value_error(bad: object) -> None:
    with pytest.raises(ValueError) as info:
        course_device.pick_device(bad)  # type: ignore[arg-type]
    message = str(info.value)
    assert message.startswith(f"prefer is {bad!r}")
    assert "cuda, mps, cpu" in message


@needs_no_cuda
def test_prefer_cuda_without_a_gpu_is_a_clear_value_error() -> None:
    with pytest.raises(ValueError, match="no CUDA GPU is available"):
        course_device.pick_device("cuda")


@needs_no_mps
def test_prefer_mps_without_mps_is_a_clear_value_error() -> None:
    with pytest.raises(ValueError, match="MPS is not available"):
        course_device.pick_device("mps")


# --- num_workers -----------------------------------------------------------------------------


@pytest.mark.parametrize("dev", ["cpu", torch.device("cpu")])
def test_num_workers_is_zero_on_cpu(dev: object, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "cpu_count", lambda: 16)
    assert course_device.num_workers(dev) == 0  # type: ignore[arg-type]


@needs_no_cuda
@needs_no_mps
def test_num_workers_defaults_to_the_picked_device(capsys: pytest.CaptureFixture[str]) -> None:
    assert course_device.num_workers() == 0
    assert capsys.readouterr().err == ""  # it asks quietly


@pytest.mark.parametrize(("cores", "expected"), [(None, 0), (1, 0), (2, 1), (4, 3), (16, 4)])
def test_num_workers_on_a_gpu_leaves_a_core_and_caps_at_four(
    monkeypatch: pytest.MonkeyPatch, cores: int | None, expected: int
) -> None:
    monkeypatch.setattr(os, "cpu_count", lambda: cores)
    assert course_device.num_workers("cuda") == expected


# --- seed_everything -------------------------------------------------------------------------


def _draws() -> tuple[float, np.ndarray, torch.Tensor]:
    return random.random(), np.random.rand(3), torch.rand(3)


def test_seed_everything_makes_all_generators_reproducible() -> None:
    course_device.seed_everything(123)
    first = _draws()
    course_device.seed_everything(123)
    second = _draws()
    assert first[0] == second[0]
    np.testing.assert_array_equal(first[1], second[1])
    assert torch.equal(first[2], second[2])
    course_device.seed_everything(124)
    third = _draws()
    assert third[0] != first[0]
    assert not np.array_equal(third[1], first[1])
    assert not torch.equal(third[2], first[2])


def test_seed_everything_accepts_seeds_beyond_numpys_range() -> None:
    course_device.seed_everything(2**40 + 5)
    a = _draws()
    course_device.seed_everything(2**40 + 5)
    b = _draws()
    assert a[0] == b[0] and torch.equal(a[2], b[2])


@pytest.mark.parametrize("bad", [-1, True, False, 1.5, 3.0, "3", None])
def test_seed_everything_rejects_bad_seeds(bad: object) -> None:
    with pytest.raises(ValueError) as info:
        course_device.seed_everything(bad)  # type: ignore[arg-type]
    assert str(info.value) == f"seed is {bad!r}, but it must be a non-negative integer."


def test_seed_everything_deterministic_switches_pytorch_to_deterministic_kernels(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # setenv then delenv: monkeypatch removes the variable again afterwards if it was absent.
    monkeypatch.setenv("CUBLAS_WORKSPACE_CONFIG", "unset-me")
    monkeypatch.delenv("CUBLAS_WORKSPACE_CONFIG")
    cudnn_flags = torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic
    try:
        course_device.seed_everything(0, deterministic=True)
        assert torch.are_deterministic_algorithms_enabled()
        assert torch.backends.cudnn.deterministic is True
        assert torch.backends.cudnn.benchmark is False
        assert os.environ["CUBLAS_WORKSPACE_CONFIG"] == ":4096:8"
        course_device.seed_everything(0)
        assert not torch.are_deterministic_algorithms_enabled()
    finally:
        torch.use_deterministic_algorithms(False)
        torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic = cudnn_flags


# --- doctor / environment_report -------------------------------------------------------------


def status_lines(report: str) -> dict[str, str]:
    return {line.split()[0]: line for line in report.splitlines() if line.startswith("  ")}


def test_environment_report_has_versions_profile_device_and_data(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CNNCOURSE_PROFILE", "smoke")
    report = course_device.environment_report(tmp_path / "empty-root")
    assert capsys.readouterr().out == ""
    lines = report.splitlines()
    assert f"python       {platform.python_version()}" in lines[0]
    assert f"torch        {torch.__version__}" in lines
    assert f"torchvision  {torchvision.__version__}" in lines
    assert f"cnncourse    {cnncourse.__version__}" in lines
    assert "profile      smoke" in lines
    assert any(line.startswith("device       ") for line in lines)
    assert any(line.startswith("data root    ") and "empty-root" in line for line in lines)
    status = status_lines(report)
    assert set(status) == {"MNIST", "FashionMNIST", "CIFAR-10"}
    for line in status.values():
        assert "missing" in line and "CNNCOURSE_DATA" in line


def test_environment_report_profile_argument_beats_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CNNCOURSE_PROFILE", "smoke")
    assert "profile      full" in course_device.environment_report(tmp_path, "full").splitlines()


@needs_no_cuda
@needs_no_mps
@pytest.mark.usefixtures("notice_not_shown")
def test_environment_report_carries_the_cpu_notice_until_it_was_shown(tmp_path: Path) -> None:
    assert f"note         {course_device.cpu_notice()}" in course_device.environment_report(
        tmp_path
    )
    course_device.pick_device()
    assert "note " not in course_device.environment_report(tmp_path)


def test_doctor_prints_the_report(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert course_device.doctor(tmp_path) is None
    out = capsys.readouterr().out
    assert out == course_device.environment_report(tmp_path) + "\n"
    assert "profile      full" in out


def test_report_marks_present_data_as_found(tmp_path: Path, fake_mnist, fake_cifar) -> None:
    fake_mnist(tmp_path, "MNIST")
    fake_cifar(tmp_path, n_test=None)
    status = status_lines(course_device.environment_report(tmp_path))
    assert "found" in status["MNIST"]
    assert "missing" in status["FashionMNIST"]
    assert "found" in status["CIFAR-10"]
    assert "the course's offline split: training batches 1-4, evaluation on batch 5" in status[
        "CIFAR-10"
    ]


def test_report_shows_an_invalid_profile_instead_of_failing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CNNCOURSE_PROFILE", "warp")
    report = course_device.environment_report(tmp_path)
    profile_line = next(line for line in report.splitlines() if line.startswith("profile"))
    assert "invalid" in profile_line and "'warp'" in profile_line


def test_report_uses_the_data_environment_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CNNCOURSE_DATA", str(tmp_path / "from-env"))
    report = course_device.environment_report()
    assert "from-env" in next(line for line in report.splitlines() if line.startswith("data root"))


def line_of(report: str, label: str) -> str:
    return next(line for line in report.splitlines() if line.startswith(label))


def test_report_says_where_the_data_root_came_from_and_whether_it_is_writable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    report = course_device.environment_report(tmp_path)
    assert line_of(report, "data root") == (
        f"data root    {tmp_path} (writable; set by the root argument, DATA_ROOT in a chapter)"
    )
    assert "(will be created; set by the default ./data)" in line_of(
        course_device.environment_report(), "data root"
    )
    monkeypatch.setenv("CNNCOURSE_DATA", str(tmp_path / "env"))
    assert "set by $CNNCOURSE_DATA" in line_of(course_device.environment_report(), "data root")
    monkeypatch.setattr(course_device.os, "access", lambda path, mode: False)
    assert "NOT writable: set CNNCOURSE_DATA to a folder you can write to" in line_of(
        course_device.environment_report(tmp_path), "data root"
    )


@pytest.mark.parametrize(
    ("reachable", "expected"),
    [
        (True, "network      yes (data sets not on disk are downloaded on first use)"),
        (False, "network      none (data sets not on disk cannot be downloaded)"),
    ],
)
def test_report_says_whether_there_is_a_network(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, reachable: bool, expected: str
) -> None:
    monkeypatch.setattr(course_device, "_network_reachable", lambda timeout=3.0: reachable)
    assert expected in course_device.environment_report(tmp_path).splitlines()


def test_the_network_probe_is_false_when_the_server_cannot_be_reached(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(course_device, "_NETWORK_PROBE", ("127.0.0.1", 9))  # nothing listens
    assert REAL_NETWORK_PROBE(timeout=1.0) is False


def test_report_warns_when_the_cifar_mirror_lacks_the_test_batch(
    tmp_path: Path, fake_cifar, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_cifar(tmp_path / "mirror", n_test=None)
    monkeypatch.setenv("CNNCOURSE_DATA_MIRROR", str(tmp_path / "mirror"))
    status = status_lines(course_device.environment_report(tmp_path / "root"))
    assert "will be copied" in status["CIFAR-10"]
    assert "(the course's offline split: training batches 1-4, evaluation on batch 5)" in status[
        "CIFAR-10"
    ]


def test_cuda_summary_names_a_cpu_only_build(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.version, "cuda", None)
    assert course_device.cuda_summary() == "CPU-only torch build (no CUDA)"


def test_cuda_summary_explains_a_gpu_torch_cannot_use(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.version, "cuda", "12.8")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert course_device.cuda_summary("Tesla T4, 470.57.02") == (
        "torch built for CUDA 12.8 cannot use the Tesla T4 (driver 470.57.02): update the "
        "NVIDIA driver, or install a torch built for an older CUDA"
    )
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    working = course_device.cuda_summary("Tesla T4, 570.1")
    assert working == "torch built for CUDA 12.8; driver 570.1"
    monkeypatch.setattr(course_device, "_nvidia_smi", lambda: None)  # e.g. no nvidia-smi on PATH
    unknown = course_device.cuda_summary()
    assert unknown == "torch built for CUDA 12.8; driver unknown (no nvidia-smi)"


def test_cuda_summary_without_a_driver(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.version, "cuda", "12.8")
    monkeypatch.setattr(course_device, "_nvidia_smi", lambda: None)
    assert course_device.cuda_summary() == "torch built for CUDA 12.8; no NVIDIA driver found"
    report = course_device.environment_report()
    assert "cuda         torch built for CUDA 12.8; no NVIDIA driver found" in report.splitlines()
