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


# --------------------------------------------------------------------------- draws keyed to a call
# A draw made while a call is being handled (a desk's service time, a drive back, a length of
# stay, a backup's time on scene...) must not depend on the order events happen in: with 2
# desk staff instead of 3 the calls reach the desk in another order, and a shared stream would
# hand each call someone else's number. So each such draw is a pure function of
# (seed, replication, call, role): a SplitMix64 hash, identical on every machine.

_M64 = (1 << 64) - 1


def _mix(z: int) -> int:
    z = (z + 0x9E3779B97F4A7C15) & _M64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _M64
    return z ^ (z >> 31)


# the roles of keyed draws; a role + k (k < 16) is the k-th draw of that kind for one call
# (a second transport leg after a diversion, a resumed follow-up's drive)
(DESK_SERVICE, CONSULT_SERVICE, RETURN_FIRST, RETURN_SECOND, RETURN_BACKUP, RETURN_FOLLOW_UP,
 TRANSPORT_TRAVEL, LENGTH_OF_STAY, STEP_DOWN, BACKUP_TURNOUT, BACKUP_TRAVEL, BACKUP_ON_SCENE,
 SECOND_TURNOUT, SECOND_TRAVEL, FOLLOW_UP_SHARE, FOLLOW_UP_DELAY, FOLLOW_UP_TURNOUT, FOLLOW_UP_TRAVEL,
 FOLLOW_UP_ON_SCENE, ESCALATE_TURNOUT, ESCALATE_TRAVEL, ESCALATE_ON_SCENE, ESCALATE_ADVOCACY,
 ESCALATE_ADVOCACY_TIME) = (16 * k for k in range(1, 25))


class KeyedUniforms:
    """U(0,1) numbers that are a function of (seed, replication, call, role) only."""

    __slots__ = ("_base",)

    def __init__(self, seed: int, replication: int):
        self._base = _mix(_mix(int(seed) & _M64) ^ (int(replication) & _M64))

    def __call__(self, call: int, role: int) -> float:
        h = _mix(self._base ^ ((call * 0x9E3779B1 + role) & _M64))
        return ((h >> 11) + 0.5) * (1.0 / 9007199254740992.0)   # in (0, 1), never 0 or 1
