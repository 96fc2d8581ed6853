"""`farl bench franka` end to end at a toy budget: demos, pretraining, FARL and Uni-O4 online runs, report, resume.

The budget (one or two demo episodes per role, tens of gradient steps, one online episode per method) says
nothing about what fine-tuning achieves; BENCHMARKS.md has the full-budget figures.  What it checks
is the pipeline: every stage runs on the hardware path and writes its files, FARL's run carries the
shield and Uni-O4's does not, the report has both, and a rerun resumes instead of redoing anything.
"""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.minutes(5)  # of one core (conftest.py schedules it early)

TASK = "bounded-soccer"
CONFIG = """
farl_franka_bench:
  ros__parameters:
    task_demos: 1
    failure_demos: 2
    recovery_demos: 1
    camera: ground-truth
    episodes: 1
    training:
      offline:
        bc: {ensemble_size: 2, steps: 10}
        critics: {steps: 10}
        dynamics: {steps: 5}
        uni_o4: {steps: 6, eval_every: 3, ope_horizon: 5}
      world_model: {steps: 30, hidden: [32, 32]}
      ppo: {rollout_steps: 20, epochs: 1, minibatch_size: 8}
"""


def bench(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "farl.cli", "bench", "franka", "--tasks", TASK, *args],
                          capture_output=True, text=True, timeout=900)


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, subprocess.CompletedProcess[str]]:
    root = tmp_path_factory.mktemp("bench")
    (root / "bench.yaml").write_text(CONFIG)
    # one online run after the other here (the pytest workers already use both cores); the resume test runs
    # them side by side, as `farl bench franka` does by default
    proc = bench("--out", str(root / "out"), "--config", str(root / "bench.yaml"), "--jobs", "1")
    assert proc.returncode == 0, proc.stderr[-3000:]
    return root / "out", root / "bench.yaml", proc


def test_the_bench_pretrains_runs_both_methods_and_reports(finished) -> None:
    out, _, proc = finished
    pretrain = out / TASK / "pretrain"
    for stage in ("demos/task", "demos/failure", "demos/recovery", "task_policy", "recovery_policy", "world_model",
                  "calibration.json", "farl.yaml"):
        assert (pretrain / stage).exists(), stage
    eps_safe = json.loads((pretrain / "calibration.json").read_text())["eps_safe"]
    assert f"eps_safe: {eps_safe}" in (pretrain / "farl.yaml").read_text()
    rows = {r["method"]: r for r in csv.DictReader((out / "franka.csv").open())}
    assert set(rows) == {"farl", "uni-o4"} and all(int(r["episodes"]) == 1 for r in rows.values())
    assert int(rows["uni-o4"]["overrides"]) == 0  # no shield
    farl_run = json.loads((out / TASK / "farl" / "run.json").read_text())["identity"]
    uni_run = json.loads((out / TASK / "uni-o4" / "run.json").read_text())["identity"]
    assert farl_run["recovery_policy"] and not uni_run["recovery_policy"]
    assert farl_run["task_policy"] == uni_run["task_policy"]  # both from the same pretrained policy
    assert "| bounded-soccer | farl | 1 |" in proc.stdout and "paper target: at most 0.27x" in proc.stdout
    assert (out / "franka.png").stat().st_size > 0 and "farl_over_uni_o4_failures" in json.loads(
        (out / "franka.json").read_text())


def test_a_rerun_resumes_and_shipped_style_checkpoints_skip_pretraining(finished, tmp_path: Path) -> None:
    out, config, first = finished
    stamp = (out / TASK / "pretrain" / "task_policy").stat().st_mtime
    again = bench("--out", str(out), "--config", str(config), "--jobs", "1")
    assert again.returncode == 0, again.stderr[-3000:]
    assert (out / TASK / "pretrain" / "task_policy").stat().st_mtime == stamp
    assert again.stdout.splitlines()[:4] == first.stdout.splitlines()[:4]  # nothing re-ran: the same table
    fresh = bench("--out", str(tmp_path / "online"), "--config", str(config), "--pretrained", str(out),
                  "--episodes", "1")
    assert fresh.returncode == 0, fresh.stderr[-3000:]
    assert not (tmp_path / "online" / TASK / "pretrain").exists()
    assert "| bounded-soccer | uni-o4 | 1 |" in fresh.stdout
    missing = bench("--out", str(tmp_path / "x"), "--pretrained", str(tmp_path / "nowhere"))
    assert missing.returncode == 2 and "lacks task_policy" in missing.stderr
