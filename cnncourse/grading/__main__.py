"""``python -m cnncourse.grading``: see :mod:`cnncourse.grading.cli`."""

import sys

from cnncourse.grading.cli import main

sys.exit(main())
