"""pipeline/memtune.py: with malloc tuned, churning through memory stops costing page faults."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

CHURN = """
import resource, sys
sys.path.insert(0, {root!r})
from pipeline.memtune import tune_malloc
if {tuned}:
    assert tune_malloc()
def faults():
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt
keep = [bytes(1000) for _ in range(20000)]  # warm up: the heap grows once either way
del keep
before = faults()
for _ in range(10):  # what a pipeline does: a batch's worth allocated, then freed
    batch = [bytes(1000) for _ in range(20000)]
    del batch
print(faults() - before)
"""


def churn_faults(tuned: bool) -> int:
    proc = subprocess.run([sys.executable, "-c", CHURN.format(root=str(ROOT), tuned=tuned)],
                          capture_output=True, text=True, check=True)
    return int(proc.stdout)


def test_tuned_malloc_reuses_freed_memory_instead_of_faulting_it_back_in() -> None:
    default, tuned = churn_faults(False), churn_faults(True)
    assert default > 10 * 1000  # about 5k pages a round, given back and faulted in again each time
    assert tuned < default / 10
