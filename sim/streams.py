"""Named random streams.

Every random process in a replication draws from its own ``numpy.random.Generator``
derived from ``(seed, replication, stream name)`` with ``SeedSequence``. Nothing reads the
global numpy state, so:

* the same (seed, replication) gives the same numbers in any process, on any machine;
* two scenarios run with the same seed see the same calls (common random numbers), as
  long as the stream names agree, even when one scenario uses extra streams.

Stream names are hashed with CRC-32 (stable across Python processes, unlike ``hash``).
"""
from __future__ import annotations

import zlib

import numpy as np

BUFFER = 4096  # uniforms drawn per refill of a buffered stream


def _key(name: str) -> int:
    return zlib.crc32(name.encode("utf-8"))


def generator(seed: int, replication: int, name: str) -> np.random.Generator:
    """A fresh Generator for one named stream of one replication."""
    ss = np.random.SeedSequence(entropy=int(seed), spawn_key=(int(replication), _key(name)))
    return np.random.Generator(np.random.PCG64(ss))


class UniformStream:
    """Hands out U(0,1) numbers one at a time from numpy batches.

    One scalar ``rng.random()`` call costs more than the event it times, so the hot loop
    takes numbers from a buffer refilled ``BUFFER`` at a time. The sequence is identical to
    ``generator(...).random(n)`` drawn in one go.
    """

    __slots__ = ("_rng", "_buf", "_i")

    def __init__(self, rng: np.random.Generator):
        self._rng = rng
        self._buf: list[float] = []
        self._i = 0

    def __call__(self) -> float:
        i = self._i
        if i >= len(self._buf):
            self._buf = self._rng.random(BUFFER).tolist()
            i = 0
        self._i = i + 1
        return self._buf[i]


class Streams:
    """All named streams of one replication, created on first use."""

    def __init__(self, seed: int, replication: int):
        self.seed = int(seed)
        self.replication = int(replication)
        self._uniform: dict[str, UniformStream] = {}

    def rng(self, name: str) -> np.random.Generator:
        """A Generator for a batch draw (arrivals, per-call attributes)."""
        return generator(self.seed, self.replication, name)

    def uniform(self, name: str) -> UniformStream:
        """A buffered scalar U(0,1) stream for draws made inside the event loop."""
        s = self._uniform.get(name)
        if s is None:
            s = self._uniform[name] = UniformStream(self.rng(name))
        return s
