"""The (task x method x seed) grid: pretrain each task once, then fine-tune every run, resumably.

Layout under the output directory:

  config.json                         the exact FailureBenchConfig and grid of this benchmark
  <task>/pretrain/...                 see pretrain.py
  <task>/<method>/seed<k>/            episodes.csv, TensorBoard, the fine-tuned policy/ (as `farl finetune`
                                      writes it: evaluate or deploy it later), summary.json (written last)

A run counts as done when its summary.json exists; anything else in its folder is a leftover of an
interrupted run and is redone.  Work goes to `jobs` worker processes with `config.torch_threads`
torch threads each, so a 2-core machine runs two fine-tuning runs side by side; the results do not
depend on `jobs`, the order the runs finish in, or the machine's core count.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from farl.benchmark.config import FailureBenchConfig
from farl.benchmark.methods import METHODS, build_finetuner, deployed_filter
from farl.benchmark.pretrain import evaluate, filtered_controller, load_json, policy_controller, pretrain
from farl.online import run_online
from farl.tasks import get_task
from farl.training import write_json
from farl_core.config import to_mapping
from farl_core.errors import FarlError
from farl_core.worker_processes import die_with_parent
from farl_safety.failure_kinds import count_by_kind


@dataclass(frozen=True)
class Run:
    task: str
    method: str
    seed: int

    def directory(self, out: Path) -> Path:
        return out / self.task / self.method / f"seed{self.seed}"


def run_grid(tasks: Sequence[str], methods: Sequence[str], seeds: Sequence[int], steps: int, out: Path,
             config: FailureBenchConfig, jobs: int = 2, progress: bool = True) -> list[dict[str, Any]]:
    """Pretrain, fine-tune every missing run, and return every run's summary (done before or now)."""
    for task in tasks:
        get_task(task)
    unknown = sorted(set(methods) - set(METHODS))
    if unknown:
        raise FarlError(f"unknown method(s) {', '.join(unknown)} (available: {', '.join(METHODS)})")
    _pin_config(out, config, steps)
    runs = [Run(t, m, s) for t in tasks for m in methods for s in seeds]
    threads = config.torch_threads
    run_parallel(_pretrain_worker, [(t, out / t / "pretrain", config, "fosp" in methods) for t in tasks], jobs,
                 threads, "pretraining", progress)
    todo = [r for r in runs if not (r.directory(out) / "summary.json").exists()]
    run_parallel(_run_worker, [(r, out, steps, config) for r in todo], jobs, threads, "fine-tuning runs", progress)
    return [load_json(r.directory(out) / "summary.json") for r in runs]


def run_one(run: Run, out: Path, steps: int, config: FailureBenchConfig, progress: bool = False) -> dict[str, Any]:
    """Fine-tune one (task, method, seed) from the task's pretrained policy; write summary.json last."""
    task = get_task(run.task)
    root = out / run.task / "pretrain"
    directory = run.directory(out)
    shutil.rmtree(directory, ignore_errors=True)  # leftovers of an interrupted run
    finetuner = build_finetuner(run.method, task, root, config, steps, run.seed)
    result = run_online(task.make_env, finetuner, steps, num_envs=config.num_envs, seed=run.seed,
                        log_dir=directory, progress=progress)
    finetuner.policy.save(directory / "policy", kind="task_policy", extra={"seed": run.seed, "online_steps": steps,
                                                                          "method": run.method})
    after = evaluate(task, policy_controller(finetuner.policy), config.eval_episodes)
    action_filter = deployed_filter(run.method, task, root, config, finetuner, run.seed)
    deployed = after if action_filter is None else evaluate(
        task, filtered_controller(finetuner.policy, action_filter), config.eval_episodes)
    reference = load_json(root / "reference.json")
    expert = reference["expert"]["return"]
    if run.method == "fosp":  # FOSP starts from its own offline policy
        reference = {**reference, **load_json(root / "fosp" / "reference.json")}
    summary = {
        "task": run.task, "method": run.method, "seed": run.seed, "steps": steps,
        "episodes": len(result.episodes), "failure_episodes": result.failure_episodes,
        "overrides": int(sum(e.overrides for e in result.episodes)),
        # the failure episodes by who acted in the steps before the failure (all "unalarmed" unshielded)
        **{f"failed_{kind}": n for kind, n in count_by_kind(e.failure_kind for e in result.episodes).items()},
        "return_before": reference["pretrained"]["return"], "return_after": after["return"],
        "normalised_before": 100.0 * reference["pretrained"]["return"] / expert,
        "normalised_after": 100.0 * after["return"] / expert,
        "eval_failure_rate_after": after["failure_rate"], "expert_return": expert,
        # as the method deploys it: behind its shield or policy expansion (the policy alone without one)
        "normalised_after_deployed": 100.0 * deployed["return"] / expert,
        "eval_failure_rate_deployed": deployed["failure_rate"],
    }
    write_json(directory / "summary.json", summary)
    return summary


def _pretrain_worker(threads: int, task: str, root: Path, config: FailureBenchConfig, fosp: bool) -> None:
    torch.set_num_threads(threads)
    pretrain(task, root, config, fosp=fosp)


def _run_worker(threads: int, run: Run, out: Path, steps: int, config: FailureBenchConfig) -> None:
    torch.set_num_threads(threads)
    run_one(run, out, steps, config)


def run_parallel(worker: Callable[..., Any], calls: list[tuple], jobs: int, threads: int, desc: str,
                 progress: bool) -> None:
    """Run `worker(threads, *args)` for every call on `jobs` processes (in-process when jobs == 1)."""
    if not calls:
        return
    bar = tqdm(total=len(calls), desc=desc, disable=not progress)
    if jobs == 1:
        for args in calls:
            worker(threads, *args)
            bar.update()
    else:
        # spawn, not fork: MuJoCo GL contexts and torch thread pools do not survive a fork.
        with ProcessPoolExecutor(max_workers=jobs, mp_context=get_context("spawn"),
                                 initializer=die_with_parent) as pool:
            for future in as_completed([pool.submit(worker, threads, *args) for args in calls]):
                future.result()
                bar.update()
    bar.close()


def _pin_config(out: Path, config: FailureBenchConfig, steps: int) -> None:
    """Record the config on first use; refuse to resume a grid with different settings."""
    pinned = {"config": to_mapping(config), "steps": steps}
    path = out / "config.json"
    if path.exists():
        if json.loads(path.read_text()) != json.loads(json.dumps(pinned)):
            raise FarlError(f"{path} was written with other settings (--steps or --config differ); "
                            "use a new --out to benchmark these, or the same settings to resume")
        return
    out.mkdir(parents=True, exist_ok=True)
    write_json(path, pinned)
