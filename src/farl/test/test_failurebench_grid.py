"""`farl bench failurebench` at a tiny budget: every method runs, files appear, the grid resumes.

Uses the point mass (seconds per run) so the plumbing is tested apart from MetaWorld; the
FailureBench envs themselves are tested in src/farl_sim/test/test_failurebench.py.
"""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from farl import cli
from farl.benchmark.config import FailureBenchConfig
from farl.benchmark.grid import run_grid
from farl.benchmark.methods import METHODS, build_shield
from farl.benchmark.pretrain import _calibrate, evaluate, filtered_controller, policy_controller, split_episodes
from farl.benchmark.shielded import ScriptedRecovery, _rollouts
from farl.online import run_online
from farl.tasks import get_task
from farl_core.config import load_section
from farl_core.datasets import load_dataset
from farl_policy.gaussian import GaussianPolicy
from farl_safety.calibration import EARLY_ALARM_STEPS
from farl_safety.failure_kinds import FAILURE_KINDS
from farl_safety.shield import Shield, ShieldConfig, Verdict
from farl_sim import point_mass
from farl_sim.point_mass import SPEC as POINT_MASS

CONFIG = Path(__file__).with_name("tiny_failurebench.yaml")


@pytest.fixture(scope="module")
def grid(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("bench")
    code = cli.main(["bench", "failurebench", "--tasks", "point-mass", "--methods", *METHODS, "--seeds", "0",
                     "--steps", "256", "--jobs", "2", "--out", str(out), "--config", str(CONFIG)])
    assert code == 0
    return out


def test_every_method_runs_and_the_report_is_written(grid: Path) -> None:
    rows = list(csv.DictReader((grid / "results.csv").open()))
    assert sorted(r["method"] for r in rows) == sorted(METHODS)
    for row in rows:
        assert int(row["episodes"]) > 0 and 0 <= int(row["failure_episodes"]) <= int(row["episodes"])
        assert float(row["expert_return"]) > 0
    summary = json.loads((grid / "summary.json").read_text())
    assert set(summary["point-mass"]) == set(METHODS)
    assert "failure_change_vs_uni_o4_pct" in summary["point-mass"]["farl"]
    tables = (grid / "tables.md").read_text()
    assert "Failure episodes during fine-tuning" in tables and "| point-mass |" in tables
    assert "| point-mass | world_model |" in tables and "| point-mass | q_risk |" in tables
    assert "| point-mass | fosp_ref |" in tables
    assert summary["point-mass"]["uni-o4"]["override_share"]["mean"] == 0.0
    for plot in ("failures_vs_steps.png", "return_vs_steps.png"):
        assert (grid / plot).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    pretrain = grid / "point-mass" / "pretrain"
    calibration = json.loads((pretrain / "calibration.json").read_text())
    for critic in ("world_model", "q_risk"):  # the recall target, unless the false-alarm cap had to win
        report = calibration[critic]
        assert report["false_alarm"] <= calibration["max_false_alarm"]
        assert report["recall"] >= 0.9 or report["limited_by"] == "false_alarm"
        assert report["median_lead"] >= 0 and 0.0 <= report["early_alarm_share"] <= 1.0
    assert "median lead (steps)" in tables
    for dataset in ("task", "recovery", "failure"):
        assert (pretrain / "demos" / dataset / "data" / "metadata.json").is_file()
    shielded = {r["method"]: int(r["overrides"]) for r in rows}
    assert shielded["uni-o4"] == 0 and shielded["ppo-lag"] == 0
    for row in rows:  # every failure episode is filed once by who acted; unshielded ones as unalarmed
        kinds = {kind: int(row[f"failed_{kind}"]) for kind in FAILURE_KINDS}
        assert sum(kinds.values()) == int(row["failure_episodes"])
        if int(row["overrides"]) == 0:
            assert kinds["unalarmed"] == int(row["failure_episodes"])
        episodes = list(csv.DictReader((grid / "point-mass" / row["method"] / "seed0" / "episodes.csv").open()))
        assert all((e["failure_kind"] in FAILURE_KINDS) == (e["ir_failure"] == "True") for e in episodes)
    assert "Failure episodes by who acted in the 10 steps before them" in tables


def test_each_run_keeps_its_fine_tuned_policy_and_it_is_the_one_evaluated(grid: Path) -> None:
    config = load_section(CONFIG, "farl_failurebench", FailureBenchConfig)
    task = get_task("point-mass")
    offline = GaussianPolicy.load(grid / "point-mass" / "pretrain" / "task_policy" / "policy", kind="task_policy")
    for method in ("uni-o4", "farl"):
        run = grid / "point-mass" / method / "seed0"
        policy = GaussianPolicy.load(run / "policy", kind="task_policy", spec=POINT_MASS)
        summary = json.loads((run / "summary.json").read_text())
        again = evaluate(task, policy_controller(policy), config.eval_episodes)["return"]
        assert again == pytest.approx(summary["return_after"], rel=1e-6)
        assert any(not torch.equal(a, b) for a, b in zip(policy.state_dict().values(),
                                                         offline.state_dict().values(), strict=True))


def test_each_run_is_also_scored_as_deployed_behind_its_shield(grid: Path) -> None:
    config = load_section(CONFIG, "farl_failurebench", FailureBenchConfig)
    task = get_task("point-mass")
    root = grid / "point-mass" / "pretrain"
    expert = json.loads((root / "reference.json").read_text())["expert"]["return"]
    for method in ("farl", "mppi"):
        run = grid / "point-mass" / method / "seed0"
        summary = json.loads((run / "summary.json").read_text())
        policy = GaussianPolicy.load(run / "policy", kind="task_policy", spec=POINT_MASS)
        shield = build_shield(method, task, root, config, policy, seed=0)
        again = evaluate(task, filtered_controller(policy, shield), config.eval_episodes)
        assert 100.0 * again["return"] / expert == pytest.approx(summary["normalised_after_deployed"], rel=1e-6)
        assert again["failure_rate"] == summary["eval_failure_rate_deployed"]
    for method in ("uni-o4", "ppo-lag"):  # no filter: deployed is the policy alone
        summary = json.loads((grid / "point-mass" / method / "seed0" / "summary.json").read_text())
        assert summary["normalised_after_deployed"] == summary["normalised_after"]
    tables = (grid / "tables.md").read_text()
    assert "as deployed" in tables
    # The point mass's fine-tuned policies never come near a wall in evaluation, so the shield stays
    # silent there; that the deployed controller executes the shield's choice is checked directly:
    policy = GaussianPolicy.load(grid / "point-mass" / "farl" / "seed0" / "policy", kind="task_policy", spec=POINT_MASS)
    shield = build_shield("farl", task, root, config, policy, seed=0)
    obs = task.make_env().reset(seed=0)[0]
    chosen = {}
    for name, eps_safe in (("always", 1e-12), ("never", 1e9)):
        strictness = Shield(shield.critic, shield.recovery, ShieldConfig(eps_safe=eps_safe))
        chosen[name] = filtered_controller(policy, strictness)(task.make_env())(obs)
    recovery = shield.recovery.mean(torch.as_tensor(obs[None], dtype=torch.float32))[0].numpy()
    np.testing.assert_allclose(chosen["always"], recovery, rtol=1e-6)
    np.testing.assert_allclose(chosen["never"], policy.act(obs, deterministic=True)[0], rtol=1e-6)
    assert not np.allclose(chosen["always"], chosen["never"])
    assert json.loads((grid / "summary.json").read_text())["point-mass"]["farl"]["normalised_after_deployed"]["n"] == 1


def test_finished_runs_are_not_redone_and_settings_are_pinned(grid: Path) -> None:
    summary = grid / "point-mass" / "farl" / "seed0" / "summary.json"
    before = summary.stat().st_mtime_ns
    config = load_section(CONFIG, "farl_failurebench", FailureBenchConfig)
    runs = run_grid(["point-mass"], ["farl"], [0], 256, grid, config, jobs=1, progress=False)
    assert summary.stat().st_mtime_ns == before and runs[0]["method"] == "farl"
    code = cli.main(["bench", "failurebench", "--tasks", "point-mass", "--methods", "farl", "--seeds", "0",
                     "--steps", "512", "--out", str(grid), "--config", str(CONFIG)])
    assert code == 2  # other --steps: refused with a one-line error, nothing overwritten
    assert summary.stat().st_mtime_ns == before


def test_a_longer_calibration_window_labels_earlier_pairs_for_every_critic(grid: Path) -> None:
    config = load_section(CONFIG, "farl_failurebench", FailureBenchConfig)
    task = get_task("point-mass")
    root = grid / "point-mass" / "pretrain"
    policy = GaussianPolicy.load(root / "task_policy" / "policy", kind="task_policy", spec=POINT_MASS)
    _, heldout = split_episodes(load_dataset(root / "demos" / "failure", POINT_MASS)[0],
                                config.demos.heldout_fraction)
    default = _calibrate(root, task, policy, heldout, config)
    assert default == {**json.loads((root / "calibration.json").read_text())}  # None: the critic's own H
    longer = _calibrate(root, task, policy, heldout, replace(config, calibration_window=10))
    for critic in ("world_model", "q_risk"):
        assert longer[critic]["n_pos"] > default[critic]["n_pos"]
    assert longer["world_model"]["n_pos"] == longer["q_risk"]["n_pos"]


def test_unknown_method_is_a_clear_error(tmp_path: Path, capsys) -> None:
    code = cli.main(["bench", "failurebench", "--tasks", "point-mass", "--methods", "sac", "--out", str(tmp_path),
                     "--config", str(CONFIG)])
    assert code == 2 and "unknown method(s) sac" in capsys.readouterr().err


def test_recovery_demos_are_as_many_as_configured_and_the_cli_makes_them_from_a_policy(
        grid: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = load_section(CONFIG, "farl_failurebench", FailureBenchConfig)
    data, _ = load_dataset(grid / "point-mass" / "pretrain" / "demos" / "recovery", POINT_MASS)
    assert len(data.episode_slices()) == config.demos.recovery_episodes
    assert not data.cost.any()
    out = tmp_path / "recovery.npz"
    policy = grid / "point-mass" / "pretrain" / "task_policy"
    assert cli.main(["demos", "recovery", "--task", "point-mass", "--policy", str(policy), "--count", "3",
                     "--out", str(out)]) == 0
    assert "3 episodes, 0 failure steps" in capsys.readouterr().out
    assert cli.main(["demos", "task", "--task", "point-mass", "--policy", str(policy), "--out", str(out)]) == 2
    assert "--policy generates failure or recovery demos" in capsys.readouterr().err


def test_shielded_rollouts_of_the_pretrained_policy(grid: Path, capsys: pytest.CaptureFixture[str]) -> None:
    earlier = {"bounded-push": {"none": {"failure_rate": 0.5, "override_share": 0.0, "episodes": 100}},
               "point-mass": {"rec-rl": {"failure_rate": 0.25, "override_share": 0.1, "episodes": 4}}}
    (grid / "shielded.json").write_text(json.dumps(earlier))
    assert cli.main(["bench", "shielded", "--tasks", "point-mass", "--methods", "uni-o4", "farl", "mppi", "fosp",
                     "farl-scripted", "farl-gated", "--episodes", "4", "--out", str(grid)]) == 0
    measured = json.loads((grid / "shielded.json").read_text())
    assert measured["bounded-push"] == earlier["bounded-push"]  # another task's measurement is kept
    results = measured["point-mass"]
    # uni-o4 is the unshielded row; FOSP's own offline policy is measured alone and inside its expansion;
    # rec-rl, measured earlier and not this time, is kept
    assert set(results) == {"none", "farl", "mppi", "fosp-unshielded", "fosp", "farl-scripted", "farl-gated", "rec-rl"}
    assert results["rec-rl"] == earlier["point-mass"]["rec-rl"]
    assert results["none"]["override_share"] == 0.0 and results["fosp-unshielded"]["override_share"] == 0.0
    assert 0.0 < results["farl"]["override_share"] <= 1.0  # eps_safe is calibrated to flag some steps
    assert 0.0 < results["farl-scripted"]["override_share"] <= 1.0  # the same critic, the script behind it
    assert 0.0 < results["fosp"]["override_share"] < 1.0  # the expansion picks each policy some of the time
    assert all(0.0 <= r["failure_rate"] <= 1.0 and r["episodes"] == 4 for r in results.values())
    for name, r in results.items():  # every failure is filed once, and unshielded ones all as unalarmed
        if name != "rec-rl":
            assert sum(r[f"failed_{kind}"] for kind in FAILURE_KINDS) == pytest.approx(r["failure_rate"])
    assert results["none"]["failed_unalarmed"] == results["none"]["failure_rate"]
    assert "| point-mass |" in capsys.readouterr().out
    assert cli.main(["bench", "shielded", "--tasks", "bounded-push", "--out", str(grid)]) == 2
    assert "holds no finished pretraining" in capsys.readouterr().err
    assert cli.main(["bench", "shielded", "--tasks", "point-mass", "--out", str(grid / "point-mass")]) == 2
    assert "pass that directory as --out" in capsys.readouterr().err


def test_the_scripted_recovery_answers_the_shield_row_by_row() -> None:
    recovery = ScriptedRecovery(POINT_MASS, point_mass.recovery_action)
    obs = np.array([[0.9, 0.0, 0.2, 0.0], [-0.5, 0.5, 0.0, -0.3]], dtype=np.float32)
    actions = recovery.mean(torch.from_numpy(obs))
    assert actions.dtype == torch.float32 and actions.shape == (2, POINT_MASS.act_dim)
    for row, action in zip(obs, actions.numpy(), strict=True):
        np.testing.assert_allclose(action, point_mass.recovery_action(row), rtol=1e-6)
    assert not np.allclose(actions[0], actions[1])  # each row gets its own action


class _ScheduledFailures:
    """An env whose episode e ends with an IR failure after FAIL_AT[e] steps (None: runs to a time limit)."""

    FAIL_AT = (12, 12, 12, 3, None)

    def __init__(self) -> None:
        self.episode, self.t = -1, 0

    def reset(self, seed: int | None = None) -> tuple[np.ndarray, dict]:
        self.episode, self.t = self.episode + 1, 0
        return np.zeros(POINT_MASS.obs_dim, dtype=np.float32), {}

    def step(self, act: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict]:
        self.t += 1
        fail_at = self.FAIL_AT[self.episode]
        failed = fail_at is not None and self.t == fail_at
        return (np.full(POINT_MASS.obs_dim, self.t, dtype=np.float32), 0.0, failed, self.t == 20,
                {"ir_failure": failed})


class _ScheduledShield:
    """Overrides step t (1-based, obs carries t - 1) of episode e where OVERRIDE[e](t) is true."""

    OVERRIDE = (lambda t: False, lambda t: t >= 2, lambda t: t in (5, 11), lambda t: True, lambda t: True)

    def __init__(self, env: _ScheduledFailures) -> None:
        self.env = env

    def filter(self, obs: np.ndarray, act: np.ndarray) -> tuple[np.ndarray, list[Verdict]]:
        overridden = self.OVERRIDE[self.env.episode](int(obs[0, 0]) + 1)
        return act, [Verdict(1.0, 0.5, overridden, "recovery" if overridden else "task", 0.0)]


def test_shielded_failures_are_filed_by_who_acted_before_them() -> None:
    """Episode 0: task alone (unalarmed); 1: the recovery from step 2, the last 10 of 12 steps (under
    recovery); 2: two overrides in the last 10 steps (partly); 3: a 3-step episode overridden throughout
    (under recovery: the window is the episode, nothing of episode 2's is left in it); 4: overridden
    throughout but no failure (not filed)."""
    assert EARLY_ALARM_STEPS == 10
    env = _ScheduledFailures()
    policy = type("Zero", (), {"act": lambda self, obs, generator: (np.zeros(POINT_MASS.act_dim, np.float32), 0.0)})()
    result = _rollouts(env, policy, _ScheduledShield(env), episodes=5, seed=0, progress=False, desc="")
    assert result["failure_rate"] == pytest.approx(4 / 5)
    assert (result["failed_unalarmed"], result["failed_partly_recovered"], result["failed_under_recovery"]) == \
        pytest.approx((1 / 5, 1 / 5, 2 / 5))
    assert result["override_share"] == pytest.approx((0 + 11 + 2 + 3 + 20) / (12 + 12 + 12 + 3 + 20))


class _ScheduledLearner:
    """The fine-tuner's side of run_online with _ScheduledShield in front of a zero task action; learns nothing."""

    def __init__(self, shield: _ScheduledShield) -> None:
        self.shield = shield

    def act(self, obs: np.ndarray) -> tuple[np.ndarray, list[Verdict]]:
        return self.shield.filter(obs, np.zeros((len(obs), POINT_MASS.act_dim), dtype=np.float32))

    def observe(self, *outcome: np.ndarray) -> None:
        pass

    def ready(self) -> bool:
        return False


def test_fine_tuning_files_its_failures_by_who_acted_like_the_shielded_rollouts(tmp_path: Path) -> None:
    """The same five scheduled episodes as above, through run_online: each failure episode's kind, in the
    result and in episodes.csv, and the override windows do not leak from one episode into the next."""
    env = _ScheduledFailures()
    result = run_online(lambda: env, _ScheduledLearner(_ScheduledShield(env)), total_steps=12 + 12 + 12 + 3 + 20,
                        log_dir=tmp_path)
    assert [e.failure_kind for e in result.episodes] == \
        ["unalarmed", "under_recovery", "partly_recovered", "under_recovery", ""]
    assert [e.overrides for e in result.episodes] == [0, 11, 2, 3, 20]
    rows = list(csv.DictReader((tmp_path / "episodes.csv").open()))
    assert [r["failure_kind"] for r in rows] == [e.failure_kind for e in result.episodes]


def outputs(root: Path) -> dict[str, bytes]:
    """Every file under `root` by relative path, but TensorBoard's event files (named by time and host)."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and "tfevents" not in p.name}


def test_a_rerun_gives_the_same_pretraining_and_runs_bit_for_bit_whatever_the_jobs(grid: Path, tmp_path: Path) -> None:
    """Issue 16: the grid above ran on 2 spawned workers; again in this process (--jobs 1), from scratch:
    demos, checkpoints, calibration and fine-tuning come out identical, byte for byte."""
    config = load_section(CONFIG, "farl_failurebench", FailureBenchConfig)
    run_grid(["point-mass"], ["farl", "uni-o4", "fosp"], [0], 256, tmp_path, config, jobs=1, progress=False)
    first, again = outputs(grid / "point-mass" / "pretrain"), outputs(tmp_path / "point-mass" / "pretrain")
    assert any(name.startswith("fosp/") for name in first) and first.keys() == again.keys()
    assert [name for name in first if first[name] != again[name]] == []
    for method in ("farl", "uni-o4", "fosp"):
        assert outputs(grid / "point-mass" / method) == outputs(tmp_path / "point-mass" / method)


WORKER = '''
import os, sys, time
from pathlib import Path

def worker(threads, folder):
    (Path(folder) / str(os.getpid())).write_text("")
    time.sleep(120)
'''

PARENT = '''
import sys
sys.path.insert(0, sys.argv[1])
from farl.benchmark.grid import run_parallel
from sleeper import worker
run_parallel(worker, [(sys.argv[1],), (sys.argv[1],)], jobs=2, threads=1, desc="", progress=False)
'''


def test_killing_the_grid_process_stops_its_workers(tmp_path: Path) -> None:
    (tmp_path / "sleeper.py").write_text(WORKER)
    parent = subprocess.Popen([sys.executable, "-c", PARENT, str(tmp_path)])
    try:
        deadline = time.monotonic() + 60
        while len(workers := [int(p.name) for p in tmp_path.iterdir() if p.name.isdigit()]) < 2:
            assert time.monotonic() < deadline and parent.poll() is None, "the workers did not start"
            time.sleep(0.2)
        os.kill(parent.pid, signal.SIGKILL)  # no handler in the parent runs: the kernel tells the workers
        parent.wait(10)
        deadline = time.monotonic() + 20
        while alive := [pid for pid in workers if Path(f"/proc/{pid}").exists() and not _zombie(pid)]:
            assert time.monotonic() < deadline, f"workers {alive} outlived the killed grid process"
            time.sleep(0.2)
    finally:
        parent.kill()


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1].startswith("Z")
    except (FileNotFoundError, IndexError):
        return True
