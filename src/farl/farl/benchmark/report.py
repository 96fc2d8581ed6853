"""Turn a finished grid into what people read: results.csv, summary.json, tables.md and two PNGs.

Tables follow the paper: failure episodes during fine-tuning (Fig. 4 / Table II) and normalised
return before and after fine-tuning (Fig. 5, expert = 100), each as mean +- std over seeds, plus
the change in failure episodes relative to Uni-O4, the paper's headline number (-43.6% on average).
"""

from __future__ import annotations

import csv
import json
import os
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from farl_core.atomic_files import write_atomic
from farl_safety.calibration import EARLY_ALARM_STEPS
from farl_safety.failure_kinds import FAILURE_KINDS

SUMMARY_FIELDS = ("task", "method", "seed", "steps", "episodes", "failure_episodes", "overrides", "return_before",
                  "return_after", "normalised_before", "normalised_after", "eval_failure_rate_after",
                  "expert_return", "normalised_after_deployed", "eval_failure_rate_deployed",
                  *(f"failed_{kind}" for kind in FAILURE_KINDS))


def write_report(runs: list[dict[str, Any]], out: Path) -> dict[str, Path]:
    """Write every output file for `runs` (their summaries) into `out`; return their paths."""
    paths = {"csv": out / "results.csv", "json": out / "summary.json", "tables": out / "tables.md",
             "failures_plot": out / "failures_vs_steps.png", "return_plot": out / "return_vs_steps.png"}
    _atomic_text(paths["csv"], _csv_text(runs))
    stats = aggregate(runs)
    _atomic_text(paths["json"], json.dumps(stats, indent=2))
    _atomic_text(paths["tables"], tables(stats) + calibration_table(
        {task: out / task / "pretrain" / "calibration.json" for task in stats}))
    curves = {(r["task"], r["method"], r["seed"]): _episodes(out / r["task"] / r["method"] / f"seed{r['seed']}")
              for r in runs}
    _plot(curves, stats, paths["failures_plot"], "failures")
    _plot(curves, stats, paths["return_plot"], "return")
    return paths


def aggregate(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """{task: {method: {metric: {mean, std, n}}}} plus the failure change against Uni-O4."""
    grouped: dict[str, dict[str, list[dict[str, Any]]]] = defaultdict(lambda: defaultdict(list))
    for run in runs:
        grouped[run["task"]][run["method"]].append(run)
    stats: dict[str, Any] = {}
    for task, methods in grouped.items():
        stats[task] = {}
        for method, group in methods.items():
            stats[task][method] = {metric: _mean_std([r[metric] for r in group])
                                   for metric in ("failure_episodes", "episodes", "normalised_before",
                                                  "normalised_after", "return_after", "overrides")}
            stats[task][method]["override_share"] = _mean_std([r["overrides"] / r["steps"] for r in group])
            # runs from before 2026-12-06 lack the deployed return, older runs than 2026-12-07 the failure kinds
            for metric in ("normalised_after_deployed", *(f"failed_{kind}" for kind in FAILURE_KINDS)):
                if all(metric in r for r in group):
                    stats[task][method][metric] = _mean_std([r[metric] for r in group])
        baseline = stats[task].get("uni-o4")
        for entry in stats[task].values():
            if baseline and baseline["failure_episodes"]["mean"] > 0:
                entry["failure_change_vs_uni_o4_pct"] = 100.0 * (
                    entry["failure_episodes"]["mean"] / baseline["failure_episodes"]["mean"] - 1.0)
    return stats


def tables(stats: dict[str, Any]) -> str:
    """Markdown tables in the paper's form (tasks as rows, methods as columns)."""
    methods = list(dict.fromkeys(m for task in stats.values() for m in task))
    header = "| task | " + " | ".join(methods) + " |\n|---|" + "---|" * len(methods) + "\n"

    def cell(entry: dict[str, Any] | None, render) -> str:
        return render(entry) if entry else "-"

    def pm(value: dict[str, float]) -> str:
        return f"{value['mean']:.1f} ± {value['std']:.1f}"

    def failures(entry: dict[str, Any]) -> str:
        change = entry.get("failure_change_vs_uni_o4_pct")
        suffix = f" ({change:+.0f}%)" if change is not None and change != 0.0 else ""
        return pm(entry["failure_episodes"]) + suffix

    def returns(entry: dict[str, Any]) -> str:
        return f"{pm(entry['normalised_before'])} → {pm(entry['normalised_after'])}"

    def section(title: str, render) -> str:
        rows = "".join(f"| {task} | " + " | ".join(cell(stats[task].get(m), render) for m in methods) + " |\n"
                       for task in stats)
        return f"### {title}\n\n{header}{rows}\n"

    n = max((e["failure_episodes"]["n"] for t in stats.values() for e in t.values()), default=0)
    return (section(f"Failure episodes during fine-tuning (mean ± std over {n} seeds; change vs Uni-O4)",
                    failures)
            + section("Normalised return before → after fine-tuning (expert = 100; mean ± std)", returns)
            + section("Normalised return after fine-tuning as deployed: behind the method's shield or policy "
                      "expansion (the policy alone where a method has none; mean ± std)",
                      lambda e: pm(e["normalised_after_deployed"]) if "normalised_after_deployed" in e else "-")
            + section("Episodes during fine-tuning", lambda e: pm(e["episodes"]))
            + section("Share of online steps the shield overrode (mean ± std)",
                      lambda e: f"{e['override_share']['mean']:.2f} ± {e['override_share']['std']:.2f}")
            + section(f"Failure episodes by who acted in the {EARLY_ALARM_STEPS} steps before them: the task policy "
                      "alone (unalarmed) / both (a late alarm, or control handed back) / the recovery alone "
                      "(mean over seeds)", _failure_kinds_cell))


def _failure_kinds_cell(entry: dict[str, Any]) -> str:
    """The failure-kind cell of one (task, method): "-" for runs that did not file their failures."""
    if not all(f"failed_{kind}" in entry for kind in FAILURE_KINDS):
        return "-"
    return " / ".join(f"{entry[f'failed_{kind}']['mean']:.1f}" for kind in FAILURE_KINDS)


def calibration_table(paths: dict[str, Path]) -> str:
    """Each task's eps_safe per critic with its held-out detection quality (tasks without one are skipped).

    Shown next to the results because the shield's operating point explains most of them: a
    critic held to the false-alarm cap reaches less than the target recall.
    """
    rows = ""
    for task, path in paths.items():
        if not path.is_file():
            continue
        calibration = json.loads(path.read_text())
        reports = {critic: calibration[critic] for critic in ("world_model", "q_risk")}
        fosp = path.parent / "fosp" / "reference.json"  # FOSP's REF, when the grid ran fosp
        if fosp.is_file():
            reports["fosp_ref"] = json.loads(fosp.read_text())["calibration"]
        for critic, r in reports.items():
            lead = (f"{r['median_lead']:.1f} | {r['early_alarm_share']:.2f}" if "median_lead" in r
                    else "- | -")  # calibrations from before 2026-12-06
            rows += (f"| {task} | {critic} | {r['auroc']:.2f} | {r['eps_safe']:.4g} | {r['recall']:.2f} | "
                     f"{r['false_alarm']:.2f} | {r['precision']:.2f} | {r['limited_by']} | {lead} |\n")
    if not rows:
        return ""
    return ("### Safety critics on held-out failure episodes (target recall, false-alarm cap)\n\n"
            "| task | critic | AUROC | eps_safe | recall | false alarm | precision | set by | median lead (steps) "
            f"| failures alarmed >= {EARLY_ALARM_STEPS} steps ahead |\n"
            "|---|---|---|---|---|---|---|---|---|---|\n" + rows + "\n")


def _mean_std(values: list[float]) -> dict[str, float]:
    array = np.asarray(values, dtype=float)
    return {"mean": float(array.mean()), "std": float(array.std()), "n": len(array)}


def _csv_text(runs: list[dict[str, Any]]) -> str:
    lines = [",".join(SUMMARY_FIELDS)]
    lines += [",".join(str(run.get(f, "")) for f in SUMMARY_FIELDS) for run in runs]
    return "\n".join(lines) + "\n"


def _episodes(directory: Path) -> dict[str, np.ndarray]:
    with open(directory / "episodes.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    return {"steps": np.array([int(r["env_steps"]) for r in rows]),
            "failure": np.array([r["ir_failure"] == "True" for r in rows]),
            "return": np.array([float(r["ret"]) for r in rows])}


def _plot(curves: dict[tuple[str, str, int], dict[str, np.ndarray]], stats: dict[str, Any], path: Path,
          what: str) -> None:
    """One panel per task, one line per method: mean over seeds on a common step grid."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tasks = list(stats)
    fig, axes = plt.subplots(1, len(tasks), figsize=(4.2 * len(tasks), 3.4), squeeze=False)
    for ax, task in zip(axes[0], tasks, strict=True):
        for method in stats[task]:
            runs = [c for (t, m, _), c in curves.items() if t == task and m == method and len(c["steps"])]
            if not runs:
                continue
            grid = np.linspace(0, max(c["steps"][-1] for c in runs), 100)
            ys = [_curve(c, grid, what) for c in runs]
            ax.plot(grid, np.mean(ys, axis=0), label=method)
        ax.set(title=task, xlabel="env steps",
               ylabel="failure episodes (cumulative)" if what == "failures" else "episode return (moving mean of 20)")
    axes[0][0].legend(fontsize=8)
    fig.tight_layout()
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp, dpi=100)
    plt.close(fig)
    os.replace(tmp, path)


def _curve(run: dict[str, np.ndarray], grid: np.ndarray, what: str) -> np.ndarray:
    """Cumulative failures, or the moving-mean return, as a step function evaluated on `grid`."""
    if what == "failures":
        values = np.cumsum(run["failure"])
    else:
        values = np.convolve(run["return"], np.ones(20), "full")[:len(run["return"])] / np.minimum(
            np.arange(1, len(run["return"]) + 1), 20)
    index = np.searchsorted(run["steps"], grid, side="right") - 1
    return np.where(index >= 0, values[np.clip(index, 0, None)], 0.0 if what == "failures" else np.nan)


def _atomic_text(path: Path, text: str) -> None:
    write_atomic(path, lambda tmp: tmp.write_text(text))
