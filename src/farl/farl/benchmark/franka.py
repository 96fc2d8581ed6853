"""`farl bench franka`: the paper's real-robot experiment (section VI.C, Table III and Fig. 7) on franky-sim.

Everything goes through the hardware path: the bridge on franky-sim, the simulated D435, perception
in the loop, the task monitor, the episode manager and the simulated human, i.e. `farl run`.  Per
task, under `<out>/<task>/`, each stage skipped when its output exists (an interrupted bench resumes;
`farl run` itself resumes a half-finished online run):

  pretrain/demos/{task,failure,recovery}   scripted demos through the robot loop (demo_recording.py)
  pretrain/task_policy                     the offline pipeline (BC ensemble -> IQL -> Uni-O4)
  pretrain/recovery_policy                 the same pipeline on the recovery clips
  pretrain/world_model                     task + recovery demos + the fit share of the failure demos
  pretrain/calibration.json                eps_safe for the target recall on the held-out failures
  pretrain/farl.yaml                       the online runs' parameter file (calibrated eps_safe)
  farl/, uni-o4/                           `farl run --mode finetune` from the same pretrained policy,
                                           with the shield and without it (run in parallel)

`--pretrained DIR` reads `DIR/<task>/pretrain/` instead of building it (the main command uses the
checkpoints shipped in checkpoints/franka/); `--pretrain-only` stops after pretraining.
The report (franka.md, franka.csv, franka.json, franka.png) has, per task and method, failure
episodes, the return of the first and last ten episodes, shield overrides, and FARL's failures as a
share of Uni-O4's (the paper's Table III: -73.1% on average).
"""

from __future__ import annotations

import csv
import io
import json
import math
import time
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml
from tqdm import tqdm

from farl.benchmark.pretrain import split_episodes
from farl.config_files import default_config_path
from farl.demo_recording import DemoRequest, record_demos
from farl.run_session import RunRequest, run_session
from farl.tasks import franka_task_id, get_task
from farl.training import TrainingConfig, train_policy, train_world_model_job, write_json
from farl_control.bridge import ConnectionLost
from farl_core.atomic_files import write_atomic
from farl_core.config import param, read_yaml, to_mapping
from farl_core.datasets import load_dataset
from farl_core.errors import FarlError
from farl_core.transitions import Transitions
from farl_core.worker_processes import die_with_parent
from farl_policy.gaussian import GaussianPolicy
from farl_safety.calibration import calibrate
from farl_safety.safety_critic import SafetyCritic
from farl_safety.world_model import WorldModel

SECTION = "farl_franka_bench"
METHODS = ("farl", "uni-o4")
LOST_CONNECTIONS = "lost_connections.json"
MAX_LOST_CONNECTIONS = 3
"""Resumes after a lost franky-sim connection per online run (`_note_lost_connection`)."""
# Each online run's torch threads, whatever --jobs: batch-1 inference and small PPO updates gain nothing from a
# second thread, which would only compete with franky-sim's 1 kHz loop for the cores.
ONLINE_TORCH_THREADS = 1
PRETRAINED = ("task_policy", "recovery_policy", "world_model", "calibration.json", "farl.yaml")


@dataclass(frozen=True)
class FrankaBenchConfig:
    """Budget of `farl bench franka` (section farl_franka_bench of config/franka_bench.yaml)."""

    task_demos: int = param(20, ge=1)        # paper: 20 task demonstrations
    failure_demos: int = param(20, ge=1)     # ours: guided failures (the paper's operator-guided ones)
    recovery_demos: int = param(30, ge=1)    # ours: recovery clips from near-failure states
    camera: str = "sim"                      # the demos' camera: sim (perception in the loop) | ground-truth
    heldout_fraction: float = param(0.25, gt=0.0, lt=1.0)  # failure episodes kept out of the world model
    target_recall: float = param(0.9, gt=0.0, le=1.0)
    max_false_alarm: float = param(0.2, ge=0.0, le=1.0)
    episodes: int = param(50, ge=1)          # online episodes per method (paper Fig. 7: 50)
    training: TrainingConfig = field(default_factory=TrainingConfig)


@dataclass(frozen=True)
class FrankaBenchRequest:
    tasks: tuple[str, ...]
    out: Path
    config: FrankaBenchConfig
    episodes: int
    pretrained: Path | None = None
    pretrain_only: bool = False
    jobs: int = 2


def pretrain_franka(task_name: str, root: Path, config: FrankaBenchConfig, progress: bool = True) -> Path:
    """Build (or finish) the pretraining artefacts of one Franka task under `root` (module docstring).

    Bridge, perception and loop settings come from the shipped config/farl.yaml, as for `farl run`.
    """
    task = get_task(franka_task_id(task_name))
    base_config = default_config_path()
    demos = root / "demos"
    counts = {"task": config.task_demos, "failure": config.failure_demos, "recovery": config.recovery_demos}
    for seed, (role, count) in enumerate(counts.items()):
        if not (demos / role).exists():
            record_demos(DemoRequest(task=task_name, role=role, count=count, out=demos / role, camera=config.camera,
                                     seed=seed, config=base_config), progress=progress)
    data = {role: load_dataset(demos / role, task.spec)[0] for role in counts}
    fit, heldout = split_episodes(data["failure"], config.heldout_fraction)
    training = config.training
    _stage(root / "task_policy", lambda p: train_policy("task_policy", data["task"], task, training, p, seed=0,
                                                         progress=progress))
    _stage(root / "recovery_policy", lambda p: train_policy("recovery_policy", data["recovery"], task, training, p,
                                                             seed=0, progress=progress))
    model_data = Transitions.concat([data["task"], data["recovery"], fit])
    _stage(root / "world_model", lambda p: train_world_model_job(model_data, task, training, p, seed=0,
                                                                  progress=progress))
    _stage(root / "calibration.json", lambda p: write_json(p, _calibrate(root, task_name, heldout, config)))
    eps_safe = json.loads((root / "calibration.json").read_text())["eps_safe"]
    _stage(root / "farl.yaml", lambda p: _write_run_config(p, base_config, training, eps_safe))
    return root


def run_franka_bench(request: FrankaBenchRequest, progress: bool = True) -> list[dict[str, Any]]:
    """Pretrain (or read the pretrained checkpoints), then both online runs per task; the report rows."""
    runs = []
    for task_name in request.tasks:
        root = _pretrained_root(request, task_name, progress)
        if request.pretrain_only:
            continue
        _online(task_name, root, request.out / task_name, request.episodes, request.jobs, progress)
        runs += [_row(task_name, method, request.out / task_name / method) for method in METHODS]
    return runs


def _pretrained_root(request: FrankaBenchRequest, task_name: str, progress: bool) -> Path:
    if request.pretrained is None:
        return pretrain_franka(task_name, request.out / task_name / "pretrain", request.config, progress)
    root = request.pretrained / task_name / "pretrain"
    missing = [name for name in PRETRAINED if not (root / name).exists()]
    if missing:
        raise FarlError(f"{root} lacks {', '.join(missing)}: pass a folder written by `farl bench franka "
                        "--pretrain-only --out DIR` (or leave out --pretrained to pretrain here)")
    return root


def online_request(task_name: str, method: str, root: Path, out: Path, episodes: int) -> RunRequest:
    """The `farl run` of one method: FARL with the shield, Uni-O4 without, from the same pretrained policy."""
    shielded = method == "farl"
    return RunRequest(task=task_name, mode="finetune", episodes=episodes, task_policy=root / "task_policy", out=out,
                      camera="sim", recovery_policy=root / "recovery_policy" if shielded else None,
                      world_model=root / "world_model" if shielded else None, seed=0, config=root / "farl.yaml")


def _online(task_name: str, root: Path, out: Path, episodes: int, jobs: int, progress: bool,
            worker: Callable[[int, str, str, Path, Path, int], None] | None = None) -> None:
    """Both methods' `farl run` on `jobs` worker processes, one progress bar per method fed from its episodes.csv.
    A run that lost franky-sim is started again (`_note_lost_connection`); `worker` is `_online_worker`'s
    stand-in for tests (an importable module function: the processes are spawned)."""
    worker = worker or _online_worker
    bars = {method: tqdm(total=episodes, desc=f"{method} {task_name}", unit="episode", position=k,
                         disable=not progress) for k, method in enumerate(METHODS)}
    # spawn, not fork: MuJoCo GL contexts and torch thread pools do not survive a fork
    with ProcessPoolExecutor(max_workers=jobs, mp_context=get_context("spawn"), initializer=die_with_parent) as pool:
        def submit(method: str) -> Future:
            return pool.submit(worker, ONLINE_TORCH_THREADS, task_name, method, root, out / method, episodes)

        futures = {method: submit(method) for method in METHODS}
        given_up: set[str] = set()  # lost once too often: the error stands
        while True:
            # taken before the resubmissions below: a resubmitted run can end (and lose again) within this pass
            finished = all(f.done() for f in futures.values())
            for method, bar in bars.items():
                future = futures[method]
                done = future.done()  # before reading the rows, so a run that ended has all its rows read
                rows = _episodes_csv(out / method / "episodes.csv")
                bar.update(len(rows) - bar.n)
                bar.set_postfix(failures=sum(r["outcome"] == "ir_failure" for r in rows), refresh=True)
                if method in given_up or not done or not isinstance(future.exception(), ConnectionLost):
                    continue
                if _note_lost_connection(out / method, len(rows), future.exception()):
                    futures[method] = submit(method)  # `farl run` resumes from its session checkpoint
                    finished = False
                else:
                    given_up.add(method)
            if finished:
                break
            time.sleep(1.0)
    for bar in bars.values():
        bar.close()
    for future in futures.values():
        future.result()


def _note_lost_connection(out: Path, episodes_done: int, error: BaseException | None) -> bool:
    """Record a lost franky-sim connection in `out/lost_connections.json`; whether the run may resume again.

    On franky-sim a lost connection is the simulator starved of the CPU (README, known limitations), not the
    method: the run resumes from its session checkpoint, losing only the episode in progress, as a person
    would rerun it.  The count goes into the report; after MAX_LOST_CONNECTIONS the error stands."""
    path = out / LOST_CONNECTIONS
    lost = json.loads(path.read_text())["lost"] if path.exists() else []
    lost.append({"episodes_done": episodes_done, "error": str(error)})
    write_json(path, {"lost": lost})
    resume = len(lost) <= MAX_LOST_CONNECTIONS
    then = f"resuming ({len(lost)} of {MAX_LOST_CONNECTIONS})" if resume else f"lost {len(lost)} times: giving up"
    tqdm.write(f"{out.name}: {error}; {then}")
    return resume


def _online_worker(threads: int, task_name: str, method: str, root: Path, out: Path, episodes: int) -> None:
    from farl.console import ScriptedOperator

    torch.set_num_threads(threads)
    run_session(online_request(task_name, method, root, out, episodes), operator=ScriptedOperator(), progress=False)


def _row(task_name: str, method: str, out: Path) -> dict[str, Any]:
    summary = json.loads((out / "summary.json").read_text())
    return {"task": task_name, "method": method, "episodes": summary["episodes"],
            "failure_episodes": summary["failure_episodes"], "return_first_10": summary["mean_return_first_10"],
            "return_last_10": summary["mean_return_last_10"], "overrides": summary["overrides"],
            "updates": summary["updates"], "successes": summary["outcomes"]["success"],
            "step_p50_ms": summary["step_p50_ms"], "lost_connections": _lost_connections(out)}


def _lost_connections(out: Path) -> int:
    path = out / LOST_CONNECTIONS
    return len(json.loads(path.read_text())["lost"]) if path.exists() else 0


def _calibrate(root: Path, task_name: str, heldout: Transitions, config: FrankaBenchConfig) -> dict[str, Any]:
    spec = get_task(franka_task_id(task_name)).spec
    policy = GaussianPolicy.load(root / "task_policy" / "policy", kind="task_policy", spec=spec)
    model = WorldModel.load(root / "world_model" / "world_model", spec=spec)
    with torch.inference_mode():
        report = calibrate(SafetyCritic(model, policy, config.training.safety_critic), heldout, config.target_recall,
                           max_false_alarm=config.max_false_alarm)
    return {"target_recall": config.target_recall, "max_false_alarm": config.max_false_alarm, **asdict(report)}


def _write_run_config(path: Path, base_config: Path, training: TrainingConfig, eps_safe: float) -> None:
    """The base parameter file with the bench's training section and the calibrated eps_safe."""
    document = read_yaml(base_config)
    trained = replace(training, shield=replace(training.shield, eps_safe=float(eps_safe)))
    document["farl_training"] = {"ros__parameters": to_mapping(trained)}
    text = "# written by `farl bench franka`: the online runs' parameters (eps_safe from calibration.json)\n"
    text += yaml.safe_dump(document, sort_keys=False)
    write_atomic(path, lambda tmp: tmp.write_text(text))


def _stage(path: Path, build) -> None:
    if not path.exists():
        build(path)


# --- report ---------------------------------------------------------------------------------------

def write_franka_report(runs: list[dict[str, Any]], out: Path) -> dict[str, Path]:
    """franka.md (the table), franka.csv, franka.json and franka.png under `out`."""
    paths = {"tables": out / "franka.md", "csv": out / "franka.csv", "json": out / "franka.json",
             "plot": out / "franka.png"}
    ratios = failure_ratios(runs)
    write_json(paths["json"], {"runs": runs, "farl_over_uni_o4_failures": ratios})
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(runs[0]) if runs else ["task"])
    writer.writeheader()
    writer.writerows(runs)
    write_atomic(paths["csv"], lambda tmp: tmp.write_text(buffer.getvalue()))
    table = franka_table(runs, ratios)
    write_atomic(paths["tables"], lambda tmp: tmp.write_text(table))
    _plot(runs, out, paths["plot"])
    return paths


def failure_ratios(runs: list[dict[str, Any]]) -> dict[str, float]:
    """FARL's failure episodes over Uni-O4's, per task (NaN when Uni-O4 had none)."""
    by = {(r["task"], r["method"]): r["failure_episodes"] for r in runs}
    tasks = dict.fromkeys(r["task"] for r in runs)
    return {t: by[(t, "farl")] / by[(t, "uni-o4")] if by.get((t, "uni-o4")) else float("nan")
            for t in tasks if (t, "farl") in by}


def franka_table(runs: list[dict[str, Any]], ratios: dict[str, float]) -> str:
    lines = ["| task | method | episodes | failure episodes | successes | return first 10 | return last 10 | "
             "overrides | PPO updates | lost connections |", "|---|---|---|---|---|---|---|---|---|---|"]
    for r in runs:
        lines.append(f"| {r['task']} | {r['method']} | {r['episodes']} | {r['failure_episodes']} | {r['successes']} | "
                     f"{r['return_first_10']:.2f} | {r['return_last_10']:.2f} | {r['overrides']} | {r['updates']} | "
                     f"{r['lost_connections']} |")
    lines.append("")
    failures = {(r["task"], r["method"]): r["failure_episodes"] for r in runs}
    for task, ratio in ratios.items():
        shown = f"{ratio:.2f}x Uni-O4's" if math.isfinite(ratio) else "no ratio: Uni-O4 had none"
        lines.append(f"{task}: FARL {failures[(task, 'farl')]} vs Uni-O4 {failures[(task, 'uni-o4')]} failure "
                     f"episodes ({shown}; paper target: at most 0.27x)")
    return "\n".join(lines) + "\n"


def _plot(runs: list[dict[str, Any]], out: Path, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tasks = list(dict.fromkeys(r["task"] for r in runs))
    fig, axes = plt.subplots(2, max(1, len(tasks)), figsize=(4.5 * max(1, len(tasks)), 6), squeeze=False)
    for column, task in enumerate(tasks):
        for method in METHODS:
            episodes = _episodes_csv(out / task / method / "episodes.csv")
            if not episodes:
                continue
            index = np.arange(1, len(episodes) + 1)
            axes[0, column].plot(index, np.cumsum([e["outcome"] == "ir_failure" for e in episodes]), label=method)
            axes[1, column].plot(index, [float(e["ret"]) for e in episodes], label=method)
        axes[0, column].set(title=task, xlabel="episode", ylabel="failure episodes (cumulative)")
        axes[1, column].set(xlabel="episode", ylabel="return")
        axes[0, column].legend()
    fig.tight_layout()
    write_atomic(path, lambda tmp: fig.savefig(tmp, dpi=100, format="png"))
    plt.close(fig)


def _episodes_csv(path: Path) -> list[dict[str, str]]:
    if not path.is_file():
        return []
    with path.open() as handle:
        return list(csv.DictReader(handle))


def load_bench_config(path: Path | None) -> tuple[FrankaBenchConfig, Path]:
    """The bench budget from `path` (default: the shipped config/franka_bench.yaml) and the file it came from."""
    from farl_core.config import load_section

    path = path or default_config_path("franka_bench.yaml")
    return load_section(path, SECTION, FrankaBenchConfig), path
