"""The messages between the grader and its worker, over pipes the grader holds.

The grader writes the job (pickled, trusted) into one pipe and closes it; the worker reads it to
the end before any submitted code runs. The worker answers on a second pipe with framed
messages: a one-byte kind, a four-byte big-endian length, then the payload.

- ``READY`` (empty): the worker's imports are done and its limits set; the submission's time
  starts now. The worker sends it before running any submitted code, so a submission cannot
  delay or fake it.
- ``RESULT``: one exercise's raw outputs, as ``torch.save`` bytes that the grader reads with
  ``weights_only=True``.
- ``DONE`` (empty): every exercise was run.

Everything after ``READY`` may come from the submission itself (it shares the worker's process),
so :class:`FrameReader` treats it as untrusted: a frame of an unknown kind or over the size cap
ends the reading, and the grader validates every payload before it compares anything.
"""

from __future__ import annotations

import os
import struct

__all__ = ["DONE", "FAILED", "READY", "RESULT", "FrameReader", "read_to_end", "send"]

READY, RESULT, DONE = b"R", b"X", b"D"
FAILED = 3
"""The worker's exit status when it could not send its results (the grader says so)."""
_KINDS = frozenset({READY, RESULT, DONE})
_HEADER = struct.Struct(">cI")


def send(fd: int, kind: bytes, payload: bytes = b"") -> None:
    """Write one frame to ``fd``, all of it (blocking)."""
    data = memoryview(_HEADER.pack(kind, len(payload)) + payload)
    while data:
        data = data[os.write(fd, data) :]


def read_to_end(fd: int) -> bytes:
    """Everything ``fd`` delivers until end of file."""
    chunks = []
    while chunk := os.read(fd, 1 << 20):
        chunks.append(chunk)
    return b"".join(chunks)


class FrameReader:
    """Splits the bytes read from the worker's pipe into frames, within a total size cap."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.received = 0
        self.broken: str | None = None
        """Why reading stopped early (a malformed frame, or too much data), else None."""
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[tuple[bytes, bytes]]:
        """The frames completed by ``data``; nothing more once :attr:`broken` is set."""
        if self.broken is not None:
            return []
        self.received += len(data)
        if self.received > self.limit:
            self.broken = f"the submission sent more than {self.limit // 2**20} MB of output"
            return []
        self._buffer += data
        frames: list[tuple[bytes, bytes]] = []
        while len(self._buffer) >= _HEADER.size:
            kind, length = _HEADER.unpack_from(self._buffer)
            if kind not in _KINDS:
                self.broken = "the grader received a malformed message"
                return frames
            end = _HEADER.size + length
            if len(self._buffer) < end:
                break
            frames.append((kind, bytes(self._buffer[_HEADER.size : end])))
            del self._buffer[:end]
        return frames
