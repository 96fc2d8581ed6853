"""`farl bench loop` as a user runs it, figures in a JSON file: the robot loop on franky-sim in lock-step.

A short episode (a config that ends it after 8 actions) keeps it to a few seconds of robot time; what is
checked is that the figures are the loop's own and consistent, not how fast this machine is.
(`farl bench graph` shares the CLI's config handling; its graph is what `test_ros_graph.py` starts.)
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.minutes(1)  # of one core (conftest.py schedules it early)

MAX_STEPS = 8
CONFIG = f"""
farl_policy:
  ros__parameters:
    episodes:
      max_steps: {MAX_STEPS}
"""


def bench_loop(episodes: int, tmp_path: Path) -> tuple[dict, str]:
    """`farl bench loop` with the short-episode config: its JSON figures and what it printed."""
    (tmp_path / "farl.yaml").write_text(CONFIG)
    out = tmp_path / "loop.json"
    farl = Path(sys.executable).with_name("farl")
    run = subprocess.run([str(farl), "bench", "loop", "--episodes", str(episodes), "--config",
                          str(tmp_path / "farl.yaml"), "--out", str(out)], capture_output=True, text=True,
                         timeout=600, env=os.environ | {"MUJOCO_GL": "egl"})
    assert run.returncode == 0, run.stderr[-2000:]
    return json.loads(out.read_text()), run.stdout


def acting_ticks(outcomes: list[str], ticks: int) -> bool:
    """max_steps ticks per episode that timed out, fewer only where an episode ended early."""
    ends_early = sum(outcome != "timeout" for outcome in outcomes)
    return ticks == len(outcomes) * MAX_STEPS if ends_early == 0 else 0 < ticks < len(outcomes) * MAX_STEPS


def test_bench_loop_reports_the_step_time_of_every_tick_with_no_overrun_in_lock_step(tmp_path: Path) -> None:
    figures, printed = bench_loop(1, tmp_path)
    assert figures["task"] == "fragile-push-wall" and len(figures["outcomes"]) == 1
    assert acting_ticks(figures["outcomes"], figures["ticks"])  # every acting tick is timed
    step, render = figures["step"], figures["render"]
    assert 0 < step["p50_ms"] <= step["p99_ms"] and 0 < render["p50_ms"] <= render["p99_ms"]
    assert figures["step_share_of_period"]["p99_ms"] == pytest.approx(step["p99_ms"] / figures["period_ms"])
    # In lock-step the simulated robot waits while the loop thinks, so no tick can outlast its period.
    assert figures["overruns"] == 0
    assert f"{figures['ticks']} ticks" in printed and "overruns 0" in printed
