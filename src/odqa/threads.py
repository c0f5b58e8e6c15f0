"""How torch's worker threads wait between parallel operations, set before torch loads.

torch's CPU operators run on libgomp (GNU OpenMP), whose idle workers spin for about
300,000 rounds before sleeping. On a machine another process shares, a spinning worker
holds a core the other process also wants, and the scheduler hands that core back and
forth in slices of milliseconds: every parallel operation then waits for the worker's next
slice. ColBERT search runs hundreds of small parallel operations a query, so with one of two
cores taken its 2-thread latency grew ninefold or more (``bench/latency_contention.py``).
Spinning briefly and then sleeping lets a search slow down in proportion to the cores it
loses instead.

libgomp reads its setting once, when torch loads; so this applies only where ``odqa`` is
imported before torch (the ``odqa`` command and service always are), and never over a
setting the user made (``GOMP_SPINCOUNT`` or ``OMP_WAIT_POLICY``).
"""

from __future__ import annotations

import os
import sys

SPIN_ROUNDS = "1000"
"""Rounds an idle worker spins before sleeping (libgomp's default is 300,000)."""


def set_worker_wait(environ: dict[str, str] | os._Environ = os.environ) -> bool:
    """Ask libgomp for brief spins; False where torch is loaded or the user chose."""
    if "torch" in sys.modules or "GOMP_SPINCOUNT" in environ or "OMP_WAIT_POLICY" in environ:
        return False
    environ["GOMP_SPINCOUNT"] = SPIN_ROUNDS
    return True
