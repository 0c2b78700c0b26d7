"""The instructor's autograder, apart from the learners' instant-feedback checks.

- :mod:`cnncourse.grading.cli`: ``python -m cnncourse.grading SUBMISSIONS --chapter NN --out DIR``,
  a folder of submissions into a score sheet.
- :mod:`cnncourse.grading.submission`: one submission: its cells, its cases and its scores.
- :mod:`cnncourse.grading.runner`: one worker run: pipes, deadlines, size caps, the kill.
- :mod:`cnncourse.grading.sandbox`: the operating-system sandbox (bubblewrap) a worker runs in.
- :mod:`cnncourse.grading.worker`: the process inside the sandbox that runs a submission's code.
- :mod:`cnncourse.grading.protocol`: the framed messages on the pipes between the two.
- :mod:`cnncourse.grading.audit`: an audit hook inside the worker, a second layer only.

This package imports nothing itself: the worker imports its modules inside the sandbox, whose
view of ``cnncourse`` leaves the chapters' check modules out.
"""
