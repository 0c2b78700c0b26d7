"""``python -m cnncourse.grading``: see :mod:`cnncourse.grading.cli`.

The grader sandboxes submissions with Linux namespaces (bubblewrap), and its modules import
POSIX-only ones (``resource``, ``pwd``), so on Windows it stops here with one sentence instead
of an ImportError.
"""

import sys

WINDOWS_REFUSAL = (
    "cnncourse.grading needs Linux with bubblewrap (bwrap) to sandbox submissions, and this is "
    "Windows: run it inside WSL 2 or a Linux virtual machine (see the instructor guide)."
)

if sys.platform == "win32":
    print(WINDOWS_REFUSAL, file=sys.stderr)
    sys.exit(2)

from cnncourse.grading.cli import main  # after the platform check, on purpose

sys.exit(main())
