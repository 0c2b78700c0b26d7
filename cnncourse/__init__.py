"""cnncourse: the helper package of an open course on convolutional neural networks.

Modules, one per concern:

- :mod:`cnncourse.data`: MNIST, FashionMNIST and CIFAR-10, offline mirrors, splits, statistics.
- :mod:`cnncourse.tensor_data`: data sets decoded once into cached uint8 tensors, and the seeded,
  resumable ``TensorLoader`` that serves them on any device.
- :mod:`cnncourse.augment`: batched augmentations on tensors (crop/translate, flips, cutout).
- :mod:`cnncourse.training`: ``fit`` / ``evaluate`` with progress bars, history and checkpoints.
- :mod:`cnncourse.precision`: autocast choice per device, and glibc's allocator setting.
- :mod:`cnncourse.recipes`: timed MNIST recipes; :mod:`cnncourse.fast_cifar` (with
  :mod:`cnncourse.muon`): the fast CIFAR-10 recipe; :mod:`cnncourse.cifar_baselines`: the
  reference texts' CIFAR-10 recipes.
- :mod:`cnncourse.device`: device choice, synchronised timing (``time_it``, ``Stopwatch``),
  seeding, DataLoader workers, ``doctor()``.
- :mod:`cnncourse.viz`: image grids, learning curves, confusion matrices, filters, feature maps.
- :mod:`cnncourse.profiles`: the ``full`` and ``smoke`` run profiles.
"""

from __future__ import annotations

__version__ = "0.1.0"

from cnncourse.device import Stopwatch, doctor, num_workers, pick_device, seed_everything, time_it
from cnncourse.errors import CheckpointError, CourseError, DataNotFoundError
from cnncourse.profiles import Profile, get_profile
from cnncourse.training import History, Metrics, evaluate, fit

__all__ = [
    "CheckpointError",
    "CourseError",
    "DataNotFoundError",
    "History",
    "Metrics",
    "Profile",
    "Stopwatch",
    "__version__",
    "doctor",
    "evaluate",
    "fit",
    "get_profile",
    "num_workers",
    "pick_device",
    "seed_everything",
    "time_it",
]
