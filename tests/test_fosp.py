"""FOSP end to end on BoundedPointMass through the CLI: demos -> `farl train fosp` -> `farl finetune
--fosp`, against unshielded PPO from the same offline policy, value, seed and budget.

The claim under test is FOSP's: policy expansion under the REF keeps online fine-tuning from the
failures that unshielded exploration from the same start runs into, without ending at a lower
return.  Measured at these budgets (seed 0): 0-1 vs 9-10 failure episodes over the code's
changes; the offline policy's action ran on about 60% of the steps.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from farl import cli
from farl.fosp import FOSPModels, fosp_finetuner_parts
from farl.online import OnlineFinetuner, run_online
from farl.tasks import get_task
from farl.training import TrainingConfig
from farl_core.config import load_section

pytestmark = pytest.mark.minutes(1)  # of one core (conftest.py schedules it early)

TASK = get_task("point-mass")
STEPS = 3072
CONFIG = """
farl_training:
  ros__parameters:
    ppo: {rollout_steps: 512, minibatch_size: 128, epochs: 4, exploration_log_std: 0.3, lr: 1.0e-4}
    fosp:
      critics: {hidden: [64, 64], steps: 3000}
      reachability: {hidden: [64, 64], steps: 3000}
      policy: {hidden: [64, 64]}
      offline: {steps: 3000, lr: 1.0e-3}
"""


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("fosp")
    (root / "fosp.yaml").write_text(CONFIG)
    for kind, count in (("task", 30), ("recovery", 120), ("failure", 300)):
        assert cli.main(["demos", kind, "--count", str(count), "--seed", str(len(kind)),
                         "--out", str(root / f"{kind}.npz")]) == 0
    assert cli.main(["train", "fosp", "--data", *(str(root / f"{k}.npz") for k in ("task", "recovery", "failure")),
                     "--config", str(root / "fosp.yaml"), "--out", str(root / "offline")]) == 0
    return root


@pytest.fixture(scope="module")
def runs(trained: Path):
    assert cli.main(["finetune", "--fosp", str(trained / "offline"), "--steps", str(STEPS), "--num-envs", "4",
                     "--config", str(trained / "fosp.yaml"), "--out", str(trained / "online")]) == 0
    config = load_section(trained / "fosp.yaml", "farl_training", TrainingConfig)
    policy, value, _ = fosp_finetuner_parts(FOSPModels.load(trained / "offline", spec=TASK.spec), config.fosp, seed=0)
    torch.manual_seed(0)
    plain = OnlineFinetuner(policy, value, config.ppo, STEPS // config.ppo.rollout_steps, seed=0)
    return trained / "online", run_online(TASK.make_env, plain, STEPS, num_envs=4, seed=0)


def test_fosp_fails_less_than_unshielded_ppo_from_the_same_start(runs) -> None:
    online, plain = runs
    episodes = list(csv.DictReader((online / "episodes.csv").open()))
    assert plain.failure_episodes >= 6, "exploration must produce failures for the comparison to mean anything"
    assert sum(e["ir_failure"] == "True" for e in episodes) <= 0.3 * plain.failure_episodes
    assert np.mean([float(e["ret"]) for e in episodes[-40:]]) >= plain.mean_return(40) - 1.0
    share = sum(int(e["overrides"]) for e in episodes) / STEPS  # steps on which the frozen offline policy acted
    assert 0.05 < share < 0.95


def test_the_offline_run_and_the_online_run_write_their_files(runs, trained: Path) -> None:
    online, _ = runs
    report = json.loads((trained / "offline" / "report.json").read_text())
    assert report["kind"] == "fosp" and report["failures"] > 0 and report["feasible"] == 0.5
    assert {"multiplier", "violation", "mean_weight"} <= set(report["final"])
    for part in ("policy", "critics", "reachability"):
        assert (trained / "offline" / part / "weights.safetensors").is_file()
    summary = json.loads((online / "summary.json").read_text())
    assert summary["method"] == "fosp" and summary["steps"] == STEPS
    assert (online / "policy" / "weights.safetensors").is_file() and (online / "online.png").stat().st_size > 0


def test_fosp_inputs_are_checked(trained: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["finetune", "--fosp", str(trained / "offline"), "--no-shield", "--out",
                     str(trained / "x")]) == 2
    assert "--fosp fine-tunes FOSP's own policy" in capsys.readouterr().err
    assert cli.main(["finetune", "--out", str(trained / "x")]) == 2
    assert "needs --task-policy (or --fosp DIR" in capsys.readouterr().err
    assert cli.main(["finetune", "--fosp", str(trained / "missing"), "--out", str(trained / "y")]) == 2
    assert "missing" in capsys.readouterr().err
    # another task's FOSP models are refused with a one-line error
    assert cli.main(["finetune", "--task", "bounded-push", "--fosp", str(trained / "offline"), "--out",
                     str(trained / "z")]) == 2
    assert "point" in capsys.readouterr().err.lower()
