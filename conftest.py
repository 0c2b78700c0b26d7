"""Repository-wide pytest setup: the environment every test and every nbval kernel inherits.

nbval starts one kernel per notebook, and kernels inherit this process's environment, so the
variables set here make ``pytest`` (which also collects ``notebooks/`` with ``--nbval-lax``) run
the chapters in the smoke profile, on the offline data mirror, without a display. Values already
set by the caller win, except the matplotlib backend, which is always the non-interactive Agg.
"""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parent
MIRROR = ROOT.parent / "shared" / "data"

os.environ.setdefault("CNNCOURSE_PROFILE", "smoke")
os.environ.setdefault("CNNCOURSE_DATA", str(ROOT / "data"))
if "CNNCOURSE_DATA_MIRROR" not in os.environ and MIRROR.is_dir():
    os.environ["CNNCOURSE_DATA_MIRROR"] = str(MIRROR)
os.environ["MPLBACKEND"] = "Agg"

pytest_plugins = ["tools.nbval_plugin"]
