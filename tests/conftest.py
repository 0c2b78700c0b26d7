"""Shared fixtures for the cnncourse unit tests.

Nothing here is autouse: the notebook and book tests in this folder run with the environment CI
gives them. Unit-test modules opt in with ``pytestmark = pytest.mark.usefixtures(...)``.

torchvision checks md5 sums against hard-coded lists (``MNIST.resources``, ``CIFAR10.train_list``,
``test_list`` and ``meta``). The data fixtures write small data sets in the real formats (see
fake_data.py) and monkeypatch those lists with the md5s of the generated files, so the loading
code under test runs unchanged (verify, extract, parse) without a network.
"""

from __future__ import annotations

from pathlib import Path
from urllib.error import URLError

import pytest
import torchvision.datasets.utils as tv_utils
from book_build import book_root, html_dir  # noqa: F401  (one book build per session)
from browser import browser_fixture  # noqa: F401  (one Chromium per session)
from fake_data import ENV_VARS, MNIST_FILES, FakeCIFAR, FakeMNIST, write_cifar, write_mnist_like
from torchvision import datasets

from cnncourse import data as course_data

# --- environment -----------------------------------------------------------------------------


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """Unset the course's environment variables for one test (restored afterwards)."""
    for name in ENV_VARS:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


@pytest.fixture
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run the test in ``tmp_path``, so the default ``./data`` is a temporary folder."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Make every torchvision network access fail at once; returns the URLs that were tried."""
    tried: list[str] = []

    def refuse(url: str, *args: object, **kwargs: object) -> str:
        tried.append(url)
        raise URLError("network access is switched off in the unit tests")

    monkeypatch.setattr(tv_utils, "_get_redirect_url", refuse)
    monkeypatch.setattr(tv_utils, "_urlretrieve", refuse)
    monkeypatch.setattr(tv_utils, "_is_remote_location_available", lambda: False)
    return tried


@pytest.fixture
def fake_mnist(monkeypatch: pytest.MonkeyPatch):
    """Factory: ``fake_mnist(root, name="MNIST")`` writes the archives and registers their md5s.

    torchvision verifies each archive against ``<class>.resources`` before extracting it; the
    registered md5s are those of the generated archives, exactly as the real ones match theirs.
    """

    def make(root: Path, name: str = "MNIST", **kwargs: object) -> FakeMNIST:
        fake = write_mnist_like(root, name, **kwargs)  # type: ignore[arg-type]
        cls = getattr(datasets, name)
        monkeypatch.setattr(cls, "resources", [(f, fake.md5s[f]) for f in MNIST_FILES])
        return fake

    return make


@pytest.fixture
def fake_cifar(monkeypatch: pytest.MonkeyPatch):
    """Factory: ``fake_cifar(root, n_test=6 or None)`` writes the batches and registers md5s.

    The md5 lists patched are CIFAR10's and HeldOutCIFAR10's (whose lists were copied from
    CIFAR10's when cnncourse.data was imported); ``meta`` is inherited, so one patch serves both.
    """

    def make(root: Path, **kwargs: object) -> FakeCIFAR:
        fake = write_cifar(root, **kwargs)  # type: ignore[arg-type]
        train = [[f"data_batch_{i}", fake.md5s[f"data_batch_{i}"]] for i in range(1, 6)]
        # test_batch's md5 is only known when it was written; otherwise keep a wrong one.
        test = [["test_batch", fake.md5s.get("test_batch", "0" * 32)]]
        meta = {"filename": "batches.meta", "key": "label_names", "md5": fake.md5s["batches.meta"]}
        held_out = course_data.HeldOutCIFAR10
        monkeypatch.setattr(datasets.CIFAR10, "train_list", train)
        monkeypatch.setattr(datasets.CIFAR10, "test_list", test)
        monkeypatch.setattr(datasets.CIFAR10, "meta", meta)
        monkeypatch.setattr(held_out, "train_list", train[:4])
        monkeypatch.setattr(held_out, "test_list", train[4:])
        return fake

    return make
