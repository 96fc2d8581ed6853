"""End to end on BoundedPointMass: offline pre-training of all three models, then online PPO
from the same initial policy and seed with and without the shield.

The claim under test is the paper's: the shield cuts failure episodes sharply without ending at a
lower return.  Budgets are small so this runs in about a minute on one core.  Measured margins at
these budgets (seed 0): AUROC 0.957, failure episodes 6 vs 22, return +1.3 over no shield; at
roughly twice the training steps 0.958, 4 vs 23, +1.5, for 2.7x the time.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from farl.tasks import get_task
from farl.training import (
    FinetuneInputs,
    TrainingConfig,
    calibrate_job,
    finetune_job,
    train_policy,
    train_world_model_job,
)
from farl_core.transitions import Transitions
from farl_policy.bc import BCConfig
from farl_policy.critics import CriticConfig
from farl_policy.dynamics import DynamicsConfig
from farl_policy.gaussian import PolicyConfig
from farl_policy.ppo import PPOConfig
from farl_policy.uni_o4 import OfflineConfig, UniO4Config
from farl_safety.world_model import WorldModelConfig

pytestmark = pytest.mark.minutes(1)  # of one core (conftest.py schedules it early)

TASK = get_task("point-mass")
SMALL = TrainingConfig(
    offline=OfflineConfig(
        policy=PolicyConfig(hidden=(64, 64)),
        bc=BCConfig(ensemble_size=2, steps=800, batch_size=256, lr=1e-3),
        critics=CriticConfig(hidden=(64, 64), steps=800),
        dynamics=DynamicsConfig(ensemble_size=2, hidden=(64, 64), steps=600),
        uni_o4=UniO4Config(steps=100, eval_every=50, ope_horizon=40, ope_repeats=1),
    ),
    world_model=WorldModelConfig(latent_dim=16, hidden=(64, 64), steps=1200),
    ppo=PPOConfig(rollout_steps=512, minibatch_size=128, epochs=4, exploration_log_std=0.3, lr=1e-4),
)
STEPS = 3072


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("farl")
    task = TASK.demonstrations("task", 30, 0)
    recovery = TASK.demonstrations("recovery", 120, 1)
    failure = TASK.demonstrations("failure", 300, 2)
    train_policy("task_policy", task, TASK, SMALL, root / "task", seed=0, progress=False)
    train_policy("recovery_policy", recovery, TASK, SMALL, root / "recovery", seed=0, progress=False)
    train_world_model_job(Transitions.concat([task, failure]), TASK, SMALL, root / "wm", seed=0, progress=False)
    return {"root": root, "task": root / "task", "recovery": root / "recovery", "wm": root / "wm"}


@pytest.fixture(scope="module")
def runs(pretrained: dict[str, Path]):
    root = pretrained["root"]
    calibration = calibrate_job(TASK, pretrained["wm"], pretrained["task"], TASK.demonstrations("failure", 100, 3),
                                SMALL, target_recall=0.7, out=root / "calibration.json")
    # The shield runs at the configured eps_safe (0.3); calibration is checked on its own above.
    shielded = finetune_job(TASK, FinetuneInputs(pretrained["task"], pretrained["recovery"], pretrained["wm"]),
                            SMALL, root / "farl", STEPS, num_envs=4, seed=0, progress=False)
    plain = finetune_job(TASK, FinetuneInputs(pretrained["task"], None, None), SMALL, root / "uni_o4", STEPS,
                         num_envs=4, seed=0, progress=False)
    return calibration, shielded, plain


def test_calibration_separates_failures(runs) -> None:
    calibration, _, _ = runs
    assert calibration.auroc >= 0.9
    assert calibration.recall >= 0.7


def test_shield_cuts_failures_without_losing_return(runs) -> None:
    _, shielded, plain = runs
    assert plain.failure_episodes >= 15, "exploration must produce failures for the comparison to mean anything"
    assert shielded.failure_episodes <= 0.5 * plain.failure_episodes
    assert shielded.mean_return(40) >= plain.mean_return(40) - 1.0
    assert sum(e.overrides for e in shielded.episodes) > 0


def test_run_directories_hold_logs_and_checkpoints(runs, pretrained: dict[str, Path]) -> None:
    root = pretrained["root"]
    for run in ("farl", "uni_o4"):
        assert (root / run / "episodes.csv").stat().st_size > 0
        assert (root / run / "online.png").stat().st_size > 0
        assert (root / run / "summary.json").is_file()
        assert (root / run / "policy" / "weights.safetensors").is_file()
    rows = np.genfromtxt(root / "farl" / "episodes.csv", delimiter=",", names=True)
    assert len(rows) == len(runs[1].episodes)
