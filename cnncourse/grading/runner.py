"""Run one worker in its sandbox: the job down one pipe, readiness and results up another.

:func:`run_worker` starts the worker (:mod:`cnncourse.grading.worker`) under the sandbox's command
line, sends the job from a thread, and reads the worker's messages and output with a size cap and
a deadline: :data:`STARTUP_TIMEOUT` seconds for the worker's own imports, then ``timeout`` seconds
from its ``READY`` message, which it sends before any submitted code runs. It stops at ``DONE``,
at the end of the pipe, at the cap or at the deadline, and then kills the sandbox (bwrap, and with
it the whole PID namespace) or, without one, the worker's process group. Everything after
``READY`` is untrusted: each result is loaded with ``weights_only=True`` and must be plain data.
"""

from __future__ import annotations

import io
import os
import selectors
import signal
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import torch

from cnncourse.grading import protocol
from cnncourse.grading.sandbox import WORKDIR, Sandbox, startup_limits

__all__ = ["STARTUP_TIMEOUT", "Run", "run_worker"]

MAX_RESULT_BYTES = 96 * 1024 * 1024  # everything a worker may send back
MAX_LOG_BYTES = 4000  # the tail of the worker's output kept for a start-up failure
MAX_NODES = 100_000  # items the grader walks in one result
STARTUP_TIMEOUT = 120.0  # seconds for the worker's own imports, before the submission runs
WORKER = "from cnncourse.grading.worker import main; main(sys.argv[1:])"


@dataclass
class Run:
    """What one worker run produced."""

    results: dict[str, dict[str, Any]] = field(default_factory=dict)
    ready: bool = False
    done: bool = False
    timed_out: bool = False
    broken: str | None = None
    status: int | None = None
    """The worker's exit status (a signal as its negative number), None if it was still running."""
    log: bytes = b""


def _environment(workdir: str) -> dict[str, str]:
    return {
        "PATH": "/usr/bin:/bin",
        "HOME": workdir,
        "TMPDIR": workdir,
        "LANG": "C.UTF-8",
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
        "MALLOC_ARENA_MAX": "2",
        "MPLBACKEND": "Agg",
        "CUDA_VISIBLE_DEVICES": "",
    }


def _write_job(fd: int, job: bytes) -> None:
    """Send the job and close the pipe; a worker that died early is reported by the reader."""
    try:
        view = memoryview(job)
        while view:
            view = view[os.write(fd, view) :]
    except OSError:
        pass
    finally:
        os.close(fd)


def run_worker(sandbox: Sandbox, job: bytes, timeout: float) -> Run:
    """Run one worker to its end, its deadline or the size cap; kill the sandbox; report."""
    job_r, job_w = os.pipe()
    result_r, result_w = os.pipe()
    log_r, log_w = os.pipe()
    args = [str(job_r), str(result_w)]
    if sandbox.drop_to is not None:
        args += [str(n) for n in sandbox.drop_to]
    run = Run()
    with tempfile.TemporaryDirectory(prefix="cnncourse-worker-") as tmp:
        workdir = WORKDIR if sandbox.isolated else tmp
        try:
            proc = subprocess.Popen(
                sandbox.python(WORKER, *args),
                cwd=tmp,
                env=_environment(workdir),
                stdin=subprocess.DEVNULL,
                stdout=log_w,
                stderr=log_w,
                pass_fds=(job_r, result_w),
                start_new_session=True,
                preexec_fn=startup_limits,  # noqa: PLW1509 - the grader starts no threads before
            )
        finally:
            for fd in (job_r, result_w, log_w):
                os.close(fd)
        writer = threading.Thread(target=_write_job, args=(job_w, job), daemon=True)
        writer.start()
        try:
            _collect(run, result_r, log_r, timeout)
            if not (run.done or run.timed_out):
                try:  # the worker ended early: wait for its exit status
                    proc.wait(timeout=2)
                except subprocess.TimeoutExpired:
                    pass
            run.status = proc.poll()
        finally:
            _kill(proc, sandbox)
            os.close(result_r)
            os.close(log_r)
            writer.join(timeout=5)
    if sandbox.isolated and run.status is not None and run.status > 128:
        run.status = -(run.status - 128)  # bwrap reports a signal as 128 + its number
    return run


def _collect(run: Run, result_fd: int, log_fd: int, timeout: float) -> None:
    """Read the worker's messages and output until DONE, end of file, the cap or the deadline."""
    reader = protocol.FrameReader(MAX_RESULT_BYTES)
    log = bytearray()
    selector = selectors.DefaultSelector()
    for fd in (result_fd, log_fd):
        os.set_blocking(fd, False)
        selector.register(fd, selectors.EVENT_READ)
    start = ready_at = time.monotonic()
    try:
        while result_fd in selector.get_map():
            deadline = ready_at + timeout if run.ready else start + STARTUP_TIMEOUT
            left = deadline - time.monotonic()
            if left <= 0:
                run.timed_out = run.ready
                return
            for key, _ in selector.select(left):
                data = os.read(key.fd, 1 << 16)
                if not data:
                    selector.unregister(key.fd)
                elif key.fd == log_fd:
                    log += data
                    del log[:-MAX_LOG_BYTES]
                else:
                    for kind, payload in reader.feed(data):
                        if kind == protocol.READY and not run.ready:
                            run.ready, ready_at = True, time.monotonic()
                        elif kind == protocol.RESULT and run.ready:
                            result = _load_result(payload)
                            if result is not None and type(result.get("name")) is str:
                                run.results.setdefault(result["name"], result)
                        elif kind == protocol.DONE and run.ready:
                            run.done = True
                            return
                    if reader.broken is not None:
                        run.broken = reader.broken
                        return
    finally:
        selector.close()
        run.log = bytes(log)


def _kill(proc: subprocess.Popen[bytes], sandbox: Sandbox) -> None:
    """Kill the worker and everything it started: the whole PID namespace in the sandbox (bwrap
    dies, and with it the namespace's init), the process group without one."""
    try:
        if sandbox.isolated:
            proc.kill()
        else:
            os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    proc.wait()


def _valid(value: Any, budget: list[int], depth: int = 0) -> bool:
    """Whether a loaded result holds only plain data, within a bounded walk."""
    budget[0] -= 1
    if budget[0] < 0 or depth > 8:
        return False
    if value is None or type(value) in (bool, int, float, str, torch.Tensor):
        return True
    if type(value) in (list, tuple):
        return all(_valid(item, budget, depth + 1) for item in value)
    if type(value) is dict:
        return all(type(k) is str and _valid(v, budget, depth + 1) for k, v in value.items())
    return False


def _load_result(payload: bytes) -> dict[str, Any] | None:
    """A result message's content, if it is plain data of the expected shape."""
    try:
        result = torch.load(io.BytesIO(payload), weights_only=True, map_location="cpu")
    except Exception:  # noqa: BLE001 - an unreadable result is no result
        return None
    ok = (
        type(result) is dict and _valid(result, [MAX_NODES]) and type(result.get("entries")) is list
    )
    return result if ok else None
