"""Who acted in the steps before an IR failure: how every shielded run files its failures.

A failure the task policy met alone is the critic's miss ("unalarmed"); one where both acted is a
late alarm or control handed back too soon ("partly_recovered"); one after the recovery alone acted
is the recovery's ("under_recovery"): it had the EARLY_ALARM_STEPS steps the calibration allows it
and still failed.  The kinds say which part to improve: on the FailureBench wall most failures are
late alarms, on Bounded Soccer the recovery's (BENCHMARKS.md).  `farl bench shielded`, the
fine-tuning runs of `farl bench failurebench` and the robot loop's episodes.csv all use them.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable

from farl_safety.calibration import EARLY_ALARM_STEPS

FAILURE_KINDS = ("unalarmed", "partly_recovered", "under_recovery")


def override_window() -> deque[bool]:
    """An empty window for the shield's override flags of the last EARLY_ALARM_STEPS acted steps."""
    return deque(maxlen=EARLY_ALARM_STEPS)


def failure_kind(overridden: Iterable[bool]) -> str:
    """The kind of a failure from the override flags of the steps up to it (the last EARLY_ALARM_STEPS
    count; fewer when the episode was shorter)."""
    recent = list(overridden)[-EARLY_ALARM_STEPS:]
    if not any(recent):
        return "unalarmed"
    return "under_recovery" if all(recent) else "partly_recovered"


def count_by_kind(kinds: Iterable[str]) -> dict[str, int]:
    """How many of `kinds` (one per episode; "" for an episode without a failure) are of each failure kind."""
    kinds = list(kinds)
    return {kind: kinds.count(kind) for kind in FAILURE_KINDS}
