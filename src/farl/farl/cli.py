"""The `farl` command: one verb per user job.

Errors a user can cause (`FarlError`) are caught here, once, and printed as a single line;
anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TypeVar

import yaml

from farl import __version__
from farl.config_files import NODE_SCHEMAS, default_config_path
from farl.perception_cli import add_perception_parser
from farl_control.config import BridgeConfig
from farl_core.config import ROS_PARAMS_KEY, from_mapping, load_file, load_section, to_mapping
from farl_core.errors import FarlError

T = TypeVar("T")

TRAINING_SECTION = "farl_training"
BENCH_TASKS = ["bounded-push", "bounded-soccer", "fragile-push-wall", "obstructed-push"]


def cmd_doctor(args: argparse.Namespace) -> int:
    from farl.doctor import as_records, format_report, run_checks

    checks = run_checks()
    if args.json:
        print(json.dumps(as_records(checks), indent=2))
    else:
        print(format_report(checks))
    return 1 if any(c.status == "fail" for c in checks) else 0


def cmd_config_check(args: argparse.Namespace) -> int:
    path = Path(args.path) if args.path else default_config_path()
    configs = load_file(path, NODE_SCHEMAS)
    print(f"{path}: ok ({', '.join(configs) or 'no sections'})")
    return 0


def cmd_config_show(args: argparse.Namespace) -> int:
    """Print the defaults of every node as a parameter file, a starting point to edit."""
    document = {node: {ROS_PARAMS_KEY: to_mapping(schema())} for node, schema in NODE_SCHEMAS.items()}
    print(yaml.safe_dump(document, sort_keys=False, default_flow_style=None), end="")
    return 0


def training_config(args: argparse.Namespace):
    """The `farl_training` section of --config (default: the shipped config/farl.yaml)."""
    from farl.training import TrainingConfig

    path = Path(args.config) if args.config else default_config_path()
    return load_section(path, TRAINING_SECTION, TrainingConfig)


def cmd_demos(args: argparse.Namespace) -> int:
    from farl.benchmark.config import DemoConfig
    from farl.tasks import FRANKA_PREFIX, get_task
    from farl.training import policy_failure_demos, policy_recovery_demos, save_data

    if args.task.startswith(FRANKA_PREFIX) and not args.policy:
        return _franka_demos(args)
    task = get_task(args.task)
    if args.policy and args.kind == "task":
        raise FarlError("--policy generates failure or recovery demos (task demos come from the scripted expert)")
    if args.policy and args.kind == "failure":
        noise = 0.5 if args.noise is None else args.noise
        data = policy_failure_demos(task, Path(args.policy), noise, args.transitions, args.seed, progress=True)
    elif args.policy:
        clip = DemoConfig()  # FailureBench's recovery clip: noise 0.1, at most 30 steps
        noise = clip.recovery_noise if args.noise is None else args.noise
        data = policy_recovery_demos(task, Path(args.policy), args.count, noise, clip.recovery_steps, args.seed,
                                     progress=True)
        if len(data) == 0:
            raise FarlError(f"the policy in {args.policy} did not fail in its rollouts, or the scripted recovery "
                            "could not escape its failures: no recovery clips (use scripted starts without --policy)")
    else:
        data = task.demonstrations(args.kind, args.count, args.seed)
    save_data(data, Path(args.out), task, args.kind, overwrite=args.overwrite)
    episodes = data.episode_slices()
    print(f"{args.out}: {len(data)} transitions, {len(episodes)} episodes, "
          f"{int(data.cost.sum())} failure steps ({args.kind} demos of {task.spec.name})")
    return 0


def _franka_demos(args: argparse.Namespace) -> int:
    """Scripted Franka demos through the robot loop (demo_recording.py): perception in the loop by default."""
    from farl.demo_recording import DemoRequest, record_demos
    from farl.tasks import FRANKA_PREFIX

    request = DemoRequest(task=args.task.removeprefix(FRANKA_PREFIX), role=args.kind, count=args.count,
                          out=Path(args.out),
                          camera=args.camera, seed=args.seed, noise=args.noise,
                          config=Path(args.config) if args.config else None, overwrite=args.overwrite)
    data = record_demos(request)
    print(f"{args.out}: {len(data)} transitions, {len(data.episode_slices())} episodes, "
          f"{int(data.cost.sum())} failure steps ({args.kind} demos of {args.task}, camera {args.camera})")
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from farl.tasks import get_task
    from farl.training import load_data, train_fosp_job, train_policy, train_world_model_job

    task = get_task(args.task)
    config = training_config(args)
    data = load_data([Path(p) for p in args.data], task)
    out = Path(args.out)
    if args.model == "fosp":
        report = train_fosp_job(data, task, config, out, args.seed, args.overwrite)
        final = report["final"]
        print(f"{out}: FOSP policy, reward critics and REF trained on {report['transitions']} transitions "
              f"({report['failures']} failure steps); final Lagrange multiplier {final['multiplier']:.3g}, "
              f"constraint violation {final['violation']:.3f}; losses in {out / 'metrics.csv'}")
    elif args.model == "world-model":
        report = train_world_model_job(data, task, config, out, args.seed, args.overwrite)
        print(f"{out}: world model trained on {report['transitions']} transitions "
              f"({report['failures']} failure steps); losses in {out / 'metrics.csv'}")
    else:
        kind = args.model.replace("-", "_")
        report = train_policy(kind, data, task, config, out, args.seed, args.overwrite)
        print(f"{out}: {args.model} trained on {report['transitions']} transitions; "
              f"OPE return {report['ope_best']:.2f}; report in {out / 'report.json'}, "
              f"per-step losses in {out / 'metrics.csv'}")
    return 0


def cmd_calibrate(args: argparse.Namespace) -> int:
    from farl.tasks import get_task
    from farl.training import calibrate_job, load_data
    from farl_safety.calibration import EARLY_ALARM_STEPS

    if not (0.0 < args.recall <= 1.0 and 0.0 <= args.max_false_alarm <= 1.0):
        raise FarlError(f"--recall must be in (0, 1] and --max-false-alarm in [0, 1], got {args.recall} and "
                        f"{args.max_false_alarm}: both are shares of the held-out pairs")
    task = get_task(args.task)
    data = load_data([Path(p) for p in args.data], task)
    report = calibrate_job(task, Path(args.world_model), Path(args.task_policy), data, training_config(args),
                           args.recall, Path(args.out) if args.out else None, args.max_false_alarm)
    print(f"eps_safe={report.eps_safe:.4f} (set by {report.limited_by}) precision={report.precision:.3f} "
          f"recall={report.recall:.3f} false alarms={report.false_alarm:.3f} AUROC={report.auroc:.3f} "
          f"({report.n_pos} positive / {report.n_neg} negative pairs); alarm lead: median {report.median_lead:g} "
          f"steps, {report.early_alarm_share:.2f} of failures >= {EARLY_ALARM_STEPS} steps ahead")
    return 0


def cmd_finetune(args: argparse.Namespace) -> int:
    from farl.tasks import get_task
    from farl.training import FinetuneInputs, finetune_job

    task = get_task(args.task)
    if args.fosp:
        if args.task_policy or args.recovery_policy or args.world_model or args.no_shield:
            raise FarlError("--fosp fine-tunes FOSP's own policy inside its policy expansion: leave out "
                            "--task-policy, --recovery-policy, --world-model and --no-shield")
        inputs = FinetuneInputs(None, None, None, fosp=Path(args.fosp))
    else:
        shielded = not args.no_shield
        if not args.task_policy:
            raise FarlError("finetune needs --task-policy (or --fosp DIR for FOSP)")
        if shielded and not (args.world_model and args.recovery_policy):
            raise FarlError("the shield needs --world-model and --recovery-policy (or pass --no-shield for plain "
                            "Uni-O4 fine-tuning)")
        inputs = FinetuneInputs(Path(args.task_policy), Path(args.recovery_policy) if shielded else None,
                                Path(args.world_model) if shielded else None)
    out = Path(args.out)
    result = finetune_job(task, inputs, training_config(args), out, args.steps, args.num_envs, args.seed,
                          args.overwrite)
    print(f"{out}: {len(result.episodes)} episodes, {result.failure_episodes} with an IR failure, "
          f"mean return (last 20) {result.mean_return(20):.2f}; plot {out / 'online.png'}")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    """The robot loop (run_session.py): deploy or fine-tune on franky-sim or a Panda, resumable."""
    from farl.run_session import RunRequest, run_session

    if not args.no_shield and not (args.recovery_policy and args.world_model):
        raise FarlError("the shield needs --recovery-policy and --world-model (or pass --no-shield to run the "
                        "task policy unshielded)")
    request = RunRequest(task=args.task, mode=args.mode, episodes=args.episodes, task_policy=Path(args.task_policy),
                         out=Path(args.out), robot=args.robot, camera=args.camera,
                         recovery_policy=None if args.no_shield else Path(args.recovery_policy),
                         world_model=None if args.no_shield else Path(args.world_model), seed=args.seed,
                         config=Path(args.config) if args.config else None, record=args.record)
    records = _until_interrupted(lambda: run_session(request), args.out)
    if records is None:
        return 130
    failures = sum(r.ir_failure for r in records)
    mean = sum(r.ret for r in records) / max(len(records), 1)
    print(f"{args.out}: {len(records)} episodes, {failures} with an IR failure, mean return {mean:.2f}; "
          f"episodes.csv, summary.json, episodes.png")
    return 0


def _until_interrupted(session: Callable[[], T], out: str) -> T | None:
    """Run a resumable session; on Ctrl-C say where its finished episodes are (None: interrupted)."""
    try:
        return session()
    except KeyboardInterrupt:
        print(f"farl: interrupted; finished episodes are kept in {out}: rerun the same command to continue",
              file=sys.stderr)
        return None


def cmd_teleop(args: argparse.Namespace) -> int:
    """A demonstration session (teleop_session.py): a device drives the robot loop, one bag per episode."""
    from farl.teleop_session import TeleopRequest, run_teleop

    request = TeleopRequest(task=args.task, role=args.role, episodes=args.episodes, out=Path(args.out),
                            device=args.device, robot=args.robot, camera=args.camera, seed=args.seed,
                            noise=args.noise, config=Path(args.config) if args.config else None)
    summary = _until_interrupted(lambda: run_teleop(request), args.out)
    if summary is None:
        return 130
    outcomes = ", ".join(f"{n} {o}" for o, n in summary.saved.items() if n)
    print(f"{args.out}: {len(summary.bags)} {args.role} episodes saved ({outcomes}), {summary.discarded} discarded; "
          f"`farl data build {args.out} --task {args.task} --out DATASET` makes them a dataset")
    return 0


def cmd_bringup(args: argparse.Namespace) -> int:
    """The ROS graph of bringup.launch.py in one process (bringup_node.py), until its episodes are done."""
    from farl.bringup_node import bringup
    from farl.config_files import default_config_path
    from farl.graph import GraphArgs

    graph = GraphArgs(robot=args.robot, camera=args.camera, task=args.task, mode=args.mode,
                      config=Path(args.config) if args.config else default_config_path(),
                      task_policy=args.task_policy, recovery_policy=args.recovery_policy or "",
                      world_model=args.world_model or "", out=args.out, episodes=args.episodes, seed=args.seed,
                      sim_time=not args.wall_clock, role=args.role, device=args.device, record=args.record)
    bringup(graph)
    summary = Path(args.out) / "summary.json"
    if summary.is_file():
        figures = json.loads(summary.read_text())
        print(f"{args.out}: {figures['episodes']} episodes, {figures['failure_episodes']} with an IR failure, "
              f"mean return {figures['mean_return']:.2f}; episodes.csv, summary.json, episodes.png")
    return 0


def cmd_data_build(args: argparse.Namespace) -> int:
    """Episode bags -> a Minari dataset (data_build.py)."""
    from farl.data_build import build_dataset

    path, episodes, steps = build_dataset([Path(p) for p in args.bags], args.task, Path(args.out), role=args.role,
                                          overwrite=args.overwrite)
    print(f"{path}: {episodes} episodes, {steps} steps")
    return 0


def cmd_data_info(args: argparse.Namespace) -> int:
    """What each episode bag holds: role, outcome, duration, messages per topic, the longest gap."""
    from farl.data_build import bag_paths, bag_summary

    for path in bag_paths([Path(p) for p in args.bags]):
        info = bag_summary(path)
        if info.label is None:
            print(f"{path}: a session bag without FARL labels (ros2 bag record), {info.duration_s:.1f} s; `farl data "
                  "build --role R` splits it into episodes on /farl/episode")
        else:
            print(f"{path}: {info.label.task} episode {info.label.episode}, role {info.label.role}, outcome "
                  f"{info.label.outcome}, {info.duration_s:.1f} s")
        for topic, count in sorted(info.counts.items()):
            print(f"  {topic}: {count} messages, longest gap {info.max_gap_s[topic]:.2f} s")
    return 0


def cmd_data_replay(args: argparse.Namespace) -> int:
    """A bag's commands re-executed on franky-sim, open loop (data_replay.py)."""
    from farl.data_replay import replay_bag

    report = replay_bag(Path(args.bag), Path(args.out), robot=args.robot,
                        config=Path(args.config) if args.config else None)
    cm = {name: (report.mean_divergence_m[name] * 100, report.max_divergence_m[name] * 100,
                 report.final_divergence_m[name] * 100) for name in report.mean_divergence_m}
    paths = ", ".join(f"{name} mean {mean:.1f} cm, max {top:.1f} cm, final {final:.1f} cm"
                      for name, (mean, top, final) in cm.items()) or "no object seen"
    print(f"{args.bag}: {report.commands} commands replayed; replayed vs recorded object paths: {paths}; "
          f"{Path(args.out) / 'replay.json'}, replay.png")
    return 0


def cmd_bench_failurebench(args: argparse.Namespace) -> int:
    from farl.benchmark.config import FailureBenchConfig
    from farl.benchmark.grid import run_grid
    from farl.benchmark.report import write_report

    path = Path(args.config) if args.config else default_config_path("failurebench.yaml")
    config = load_section(path, "farl_failurebench", FailureBenchConfig)
    out = Path(args.out)
    runs = run_grid(args.tasks, args.methods, args.seeds, args.steps or 20_000, out, config, jobs=args.jobs)
    paths = write_report(runs, out)
    print(paths["tables"].read_text(), end="")
    print(f"results: {paths['csv']}, {paths['json']}; plots: {paths['failures_plot']}, {paths['return_plot']}")
    return 0


def cmd_bench_franka(args: argparse.Namespace) -> int:
    """The paper's real-robot experiment on franky-sim (benchmark/franka.py), resumable."""
    from farl.benchmark.franka import FrankaBenchRequest, load_bench_config, run_franka_bench, write_franka_report
    from farl_core.franka_tasks import FRANKA_TASKS

    config, _ = load_bench_config(Path(args.config) if args.config else None)
    tasks = tuple(FRANKA_TASKS) if args.tasks == BENCH_TASKS else tuple(args.tasks)
    unknown = [t for t in tasks if t not in FRANKA_TASKS]
    if unknown:
        raise FarlError(f"bench franka: unknown task {', '.join(unknown)}; choose from {', '.join(FRANKA_TASKS)}")
    if not args.out:
        raise FarlError("bench franka needs --out DIR (rerun with the same one to resume)")
    out = Path(args.out)
    request = FrankaBenchRequest(tasks=tasks, out=out, config=config,
                                 episodes=args.episodes if args.episodes != 100 else config.episodes,
                                 pretrained=Path(args.pretrained) if args.pretrained else None,
                                 pretrain_only=args.pretrain_only, jobs=args.jobs)
    runs = run_franka_bench(request)
    if args.pretrain_only:
        print(f"pretrained {', '.join(tasks)} in {out} (use it as --pretrained {out})")
        return 0
    paths = write_franka_report(runs, out)
    print(paths["tables"].read_text(), end="")
    print(f"results: {paths['csv']}, {paths['json']}; plot: {paths['plot']}")
    return 0


def _print_shield_table(results: dict[str, dict[str, dict[str, float]]],
                        cell: Callable[[dict[str, float]], str]) -> None:
    """A markdown table: one row per task, one column per shield of the first task."""
    columns = list(next(iter(results.values())))
    print("| task | " + " | ".join(columns) + " |\n|---|" + "---|" * len(columns))
    for task, by_shield in results.items():
        print(f"| {task} | " + " | ".join(cell(r) for r in by_shield.values()) + " |")


def cmd_bench_shielded(args: argparse.Namespace) -> int:
    """Failure rate of each task's pretrained policy unshielded and under each shield (benchmark/shielded.py)."""
    from farl.benchmark.config import FailureBenchConfig
    from farl.benchmark.shielded import SHIELDED, shielded_rollouts
    from farl.training import write_json
    from farl_safety.calibration import EARLY_ALARM_STEPS
    from farl_safety.failure_kinds import FAILURE_KINDS

    out = Path(args.out or "")
    pinned = out / "config.json"
    if not args.out or not pinned.is_file():
        raise FarlError(f"bench shielded reads a `farl bench failurebench` output directory: no {pinned} "
                        "(pass that directory as --out)")
    config = from_mapping(FailureBenchConfig, json.loads(pinned.read_text())["config"], where=str(pinned))
    methods = [m for m in args.methods if m in SHIELDED]
    results = {}
    for task in args.tasks:
        root = out / task / "pretrain"
        if not (root / "calibration.json").is_file():
            raise FarlError(f"{root} holds no finished pretraining (run `farl bench failurebench --tasks {task}` "
                            "first, or leave the task out of --tasks)")
        if "fosp" in methods and not (root / "fosp" / "reference.json").is_file():
            raise FarlError(f"{root} holds no FOSP offline phase (run `farl bench failurebench --tasks {task} "
                            "--methods fosp` first, or leave fosp out of --methods)")
        results[task] = shielded_rollouts(task, root, config, methods, args.episodes, progress=True)
    path = out / "shielded.json"  # one entry per task and shield: earlier measurements of others are kept
    earlier = json.loads(path.read_text()) if path.is_file() else {}
    write_json(path, earlier | {task: earlier.get(task, {}) | by_shield for task, by_shield in results.items()})
    print(f"failure rate (override share) of the pretrained policy's sampled actions, {args.episodes} episodes\n")
    _print_shield_table(results, lambda r: f"{r['failure_rate']:.2f} ({r['override_share']:.2f})")
    print(f"\nthe same failures by who acted in the {EARLY_ALARM_STEPS} steps before them: the task policy alone "
          "(unalarmed) / both (a late alarm, or control handed back) / the recovery alone\n")
    _print_shield_table(results, lambda r: " / ".join(f"{r[f'failed_{kind}']:.2f}" for kind in FAILURE_KINDS))
    print(f"\nresults: {path}")
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    from farl.bench import bench_shield, bench_training

    if args.what == "failurebench":
        return cmd_bench_failurebench(args)
    if args.what == "shielded":
        return cmd_bench_shielded(args)
    if args.what == "franka":
        return cmd_bench_franka(args)
    if args.what == "shield":
        results = bench_shield(calls=args.calls)
        print(f"policy forward: p50 {results['policy_forward']['p50_ms']:.3f} ms, "
              f"p99 {results['policy_forward']['p99_ms']:.3f} ms (1 thread, batch 1)")
        for horizon, fig in results["shield"].items():
            print(f"shield {horizon}: p50 {fig['p50_ms']:.3f} ms, p99 {fig['p99_ms']:.3f} ms "
                  f"({fig['p99_ratio_to_policy_forward']:.1f}x policy forward at p99)")
    elif args.what == "robot":
        from farl.bench_robot import bench_robot
        results = bench_robot(trials=args.calls if args.calls != 2000 else 30)
        for name in ("bridge_command", "bare_franky_move"):
            fig = results[name]
            print(f"{name}: command-to-motion p50 {fig['p50_ms']:.1f} ms, p99 {fig['p99_ms']:.1f} ms")
        print(f"bridge / bare franky at p50: {results['p50_ratio']:.2f}x")
        print(f"franky-sim real-time factor (paced): {results['realtime_factor']:.2f}")
        for name, speed in results["sim_speed_beside_a_busy_thread"].items():
            print(f"franky-sim speed, {name.replace('_', ' ')}: {speed:.2f}x real time")
        print(f"RGB-D 640x480 render: p50 {results['render_rgbd']['p50_ms']:.0f} ms, "
              f"p99 {results['render_rgbd']['p99_ms']:.0f} ms")
    elif args.what == "loop":
        from farl.bench_loop import bench_loop
        results = bench_loop(args.tasks[0] if args.tasks != BENCH_TASKS else "fragile-push-wall",
                             episodes=args.episodes if args.episodes != 100 else 3,
                             config=Path(args.config) if args.config else None)
        step, render, share = results["step"], results["render"], results["step_share_of_period"]
        print(f"{results['task']}: {results['ticks']} ticks; loop step p50 {step['p50_ms']:.1f} ms, p99 "
              f"{step['p99_ms']:.1f} ms ({share['p50_ms'] * 100:.0f}% / {share['p99_ms'] * 100:.0f}% of the "
              f"{results['period_ms']:.0f} ms period); simulated camera render p50 {render['p50_ms']:.1f} ms, p99 "
              f"{render['p99_ms']:.1f} ms (not in the step); overruns {results['overruns']}")
    elif args.what == "graph":
        from farl.bench_graph import bench_graph
        results = bench_graph(args.tasks[0] if args.tasks != BENCH_TASKS else "fragile-push-wall",
                              episodes=args.episodes if args.episodes != 100 else 3,
                              config=Path(args.config) if args.config else None)
        graph, runner = results["graph"]["latency"], results["runner"]["step"]
        print(f"{results['task']}: graph tick -> command applied p50 {graph['p50_ms']:.1f} ms, p99 "
              f"{graph['p99_ms']:.1f} ms ({results['graph']['commands']} commands); synchronous runner step p50 "
              f"{runner['p50_ms']:.1f} ms, p99 {runner['p99_ms']:.1f} ms; graph / runner {results['ratio_p50']:.2f}x "
              f"(p50), {results['ratio_p99']:.2f}x (p99)")
    elif args.what == "recorder":
        from farl.recorder_bench_node import bench_recorder
        results = bench_recorder(seconds=args.seconds, camera_every=args.camera_every)
        for name in ("no_camera", "camera"):
            fig = results[name]
            print(f"recorder {name.replace('_', ' ')}: published {fig['published_msgs_per_s']:.0f} msg/s, "
                  f"{fig['published_mb_per_s']:.2f} MB/s; recorded {fig['recorded_msgs_per_s']:.0f} msg/s, "
                  f"{fig['recorded_mb_per_s']:.2f} MB/s ({fig['ratio_recorded_to_expected']:.3f}x the messages "
                  f"expected), {fig['dropped']} dropped")
        build = results["build"]
        print(f"farl data build: {build['build_s']:.2f} s for {build['recorded_s']:.1f} s recorded ({build['steps']} "
              f"steps): {build['build_s_per_recorded_hour']:.0f} s per recorded hour")
    elif args.what == "perception":
        from farl.bench_perception import bench_perception
        results = bench_perception(frames=args.frames, weights=Path(args.weights) if args.weights else None)
        grab = results["grab"]
        print(f"frame grab (sim D435 render): p50 {grab['p50_ms']:.0f} ms, p95 {grab['p95_ms']:.0f} ms")
        for label in ("colour", "yolov8n_320", "yolov8n_640", "yolov8n_320_gated_colour"):
            fig = results[label]
            print(f"{label}: processing p50 {fig['processing']['p50_ms']:.0f} ms, p95 {fig['processing']['p95_ms']:.0f}"
                  f" ms; grab + processing p95 {fig['full']['p95_ms']:.0f} ms "
                  f"({fig['full_p95_ratio_to_grab']:.2f}x the grab)")
    elif args.what == "ros":
        from farl.ros_latency_node import bench_ros
        results = bench_ros(count=args.calls if args.calls != 2000 else 500)
        for name in ("object_array_3", "rgbd_640x480"):
            fig, ref = results[name], results[name]["serialise_deserialise_in_process"]
            print(f"{name} ({fig['bytes']} B): round trip p50 {fig['round_trip']['p50_ms']:.2f} ms, "
                  f"p99 {fig['round_trip']['p99_ms']:.2f} ms ({fig['p99_share_of_period'] * 100:.1f}% of the "
                  f"200 ms period), {fig['lost']} lost; in-process serialise+deserialise p50 {ref['p50_ms']:.2f} ms")
    else:
        results = bench_training(steps=args.steps or 200)
        for name, fig in results.items():
            print(f"{name}: {fig['samples_per_s']:.0f} samples/s ({fig['steps']} steps, {fig['wall_s']:.1f} s)")
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=2))
    return 0


def cmd_robot_check(args: argparse.Namespace) -> int:
    from farl.robot_check import robot_check
    config = load_section(args.config, "farl_bridge", BridgeConfig) if args.config else BridgeConfig()
    robot_check(replace(config, robot=args.robot))
    return 0


def robot_run_arguments(parser: argparse.ArgumentParser, teleop: bool = False) -> None:
    """What `farl run` and `farl bringup` both take: the robot, the task, the checkpoints, the run directory
    (`teleop`: also mode teleop, which needs no checkpoint)."""
    parser.add_argument("--robot", default="sim", help="'sim' (embedded franky-sim) or the Panda's FCI IP")
    parser.add_argument("--task", required=True, help="fragile-push-wall | disturbed-push | bounded-soccer")
    parser.add_argument("--mode", choices=["deploy", "finetune", "teleop"] if teleop else ["deploy", "finetune"],
                        default="deploy")
    parser.add_argument("--episodes", type=int, default=10)
    parser.add_argument("--task-policy", required=not teleop, default="",
                        help="run dir of `farl train task-policy` (or of `farl run`)")
    parser.add_argument("--recovery-policy", help="run dir of `farl train recovery-policy` (the shield)")
    parser.add_argument("--world-model", help="run dir of `farl train world-model` (the shield)")
    parser.add_argument("--out", required=True, help="run directory; rerun with the same one to resume")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--config", help="parameter file (default: the shipped config/farl.yaml)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="farl", description="Failure-aware offline-to-online RL "
                                     "for manipulation: simulation, training and the Franka stack.")
    parser.add_argument("--version", action="version", version=f"farl {__version__}")
    verbs = parser.add_subparsers(dest="verb", required=True, metavar="COMMAND")

    doctor = verbs.add_parser("doctor", help="report what this machine can run, with fixes")
    doctor.add_argument("--json", action="store_true", help="machine-readable output")
    doctor.set_defaults(func=cmd_doctor)

    config = verbs.add_parser("config", help="validate or print configuration files")
    config_verbs = config.add_subparsers(dest="config_verb", required=True, metavar="ACTION")
    check = config_verbs.add_parser("check", help="validate every section of a YAML file")
    check.add_argument("path", nargs="?", help="YAML file (default: the shipped config/farl.yaml)")
    check.set_defaults(func=cmd_config_check)
    show = config_verbs.add_parser("show", help="print every node's defaults as a parameter file")
    show.set_defaults(func=cmd_config_show)

    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--task", default="point-mass", help="task name (default: point-mass)")
    common.add_argument("--seed", type=int, default=0)
    common.add_argument("--config", help="parameter file with a farl_training section (default: config/farl.yaml)")
    common.add_argument("--overwrite", action="store_true", help="replace existing outputs")

    demos = verbs.add_parser("demos", parents=[common], help="generate scripted demonstrations for a sim task")
    demos.add_argument("kind", choices=["task", "recovery", "failure"])
    demos.add_argument("--count", type=int, default=20, help="episodes (scripted demos)")
    demos.add_argument("--out", required=True, help="Minari dataset folder to create (or a .npz file)")
    demos.add_argument("--policy", help="failure demos of this `farl train task-policy` run dir plus noise, or "
                       "recovery demos from where it was about to fail")
    demos.add_argument("--noise", type=float, help="--policy: action noise std (default 0.5 for failure demos, "
                       "0.1 on the scripted recovery)")
    demos.add_argument("--camera", default="sim", choices=["sim", "ground-truth"],
                       help="Franka tasks: the simulated D435 + perception (default) or the simulator's object states")
    demos.add_argument("--transitions", type=int, default=20_000,
                       help="--policy: failing transitions to collect (default 20000, the paper's minimum)")
    demos.set_defaults(func=cmd_demos)

    train = verbs.add_parser("train", parents=[common], help="offline training from demonstration files")
    train.add_argument("model", choices=["task-policy", "recovery-policy", "world-model", "fosp"],
                       help="fosp: FOSP's offline phase (policy, reward critics, REF) on task + recovery + "
                            "failure demos")
    train.add_argument("--data", nargs="+", required=True, help="Minari dataset folders and/or .npz files")
    train.add_argument("--out", required=True, help="run directory to create")
    train.set_defaults(func=cmd_train)

    calib = verbs.add_parser("calibrate", parents=[common], help="pick eps_safe for a target failure recall")
    calib.add_argument("--world-model", required=True, help="run dir of `farl train world-model`")
    calib.add_argument("--task-policy", required=True, help="run dir of `farl train task-policy`")
    calib.add_argument("--data", nargs="+", required=True, help="held-out datasets (or .npz) with failures")
    calib.add_argument("--recall", type=float, default=0.9, help="target failure recall (default 0.9)")
    calib.add_argument("--max-false-alarm", type=float, default=1.0,
                       help="cap on the share of safe pairs flagged; raises eps_safe above the recall's "
                            "threshold when needed (default 1.0: no cap)")
    calib.add_argument("--out", help="JSON file for the report")
    calib.set_defaults(func=cmd_calibrate)

    finetune = verbs.add_parser("finetune", parents=[common], help="online PPO fine-tuning with the shield")
    finetune.add_argument("--task-policy", help="run dir of `farl train task-policy`")
    finetune.add_argument("--fosp", help="run dir of `farl train fosp`: FOSP's online phase (safe policy expansion) "
                          "instead of the shield")
    finetune.add_argument("--recovery-policy", help="run dir of `farl train recovery-policy`")
    finetune.add_argument("--world-model", help="run dir of `farl train world-model`")
    finetune.add_argument("--no-shield", action="store_true", help="plain Uni-O4 fine-tuning (baseline)")
    finetune.add_argument("--steps", type=int, default=20000, help="online env steps")
    finetune.add_argument("--num-envs", type=int, default=1, help="synchronously stepped envs")
    finetune.add_argument("--out", required=True, help="run directory to create")
    finetune.set_defaults(func=cmd_finetune)

    run = verbs.add_parser("run", help="the robot loop: perception -> policy -> shield -> bridge, episode by "
                           "episode, on franky-sim or a Panda (resumable)")
    robot_run_arguments(run)
    run.add_argument("--camera", default="sim", help="sim (simulated D435 + perception), realsense[:SERIAL], or "
                     "ground-truth (sim object states, no perception)")
    run.add_argument("--no-shield", action="store_true", help="run the task policy without the shield (Uni-O4)")
    run.add_argument("--record", action="store_true", help="also record each episode as a labelled bag under "
                     "OUT/bags (role online; `farl data build` makes it training data)")
    run.set_defaults(func=cmd_run)

    teleop = verbs.add_parser("teleop", help="a demonstration session: teleoperate the robot loop, one labelled bag "
                              "per episode (task, recovery or failure demos)")
    teleop.add_argument("--robot", default="sim", help="'sim' (embedded franky-sim) or the Panda's FCI IP")
    teleop.add_argument("--task", required=True, help="fragile-push-wall | disturbed-push | bounded-soccer")
    teleop.add_argument("--role", required=True, choices=["task", "recovery", "failure"])
    teleop.add_argument("--device", default="keyboard", help="keyboard | spacemouse | twist:TOPIC | joy:TOPIC | "
                        "scripted (the task's scripted controller, franky-sim only)")
    teleop.add_argument("--camera", default="sim", help="sim (simulated D435 + perception), realsense[:SERIAL], or "
                        "ground-truth (sim object states, no perception)")
    teleop.add_argument("--episodes", type=int, default=10, help="episodes to save (discarded ones are re-recorded)")
    teleop.add_argument("--out", required=True, help="bag folder; rerun with the same one to continue")
    teleop.add_argument("--noise", type=float, default=0.2, help="--device scripted: action noise std (default 0.2)")
    teleop.add_argument("--seed", type=int, default=0)
    teleop.add_argument("--config", help="parameter file (default: the shipped config/farl.yaml)")
    teleop.set_defaults(func=cmd_teleop)

    graph = verbs.add_parser("bringup", help="the ROS 2 graph of bringup.launch.py in one process (no ros2 launch "
                             "needed), until its episodes are done")
    robot_run_arguments(graph, teleop=True)
    graph.add_argument("--role", default="task", choices=["task", "recovery", "failure"],
                       help="mode teleop: the demonstrations' role")
    graph.add_argument("--device", default="twist:/cmd_vel", help="mode teleop: twist:TOPIC | joy:TOPIC | spacemouse "
                       "| scripted (default twist:/cmd_vel, teleop_twist_keyboard's)")
    graph.add_argument("--camera", default="sim", choices=["sim", "ground-truth", "realsense", "topics"],
                       help="sim (the scene's D435), ground-truth (sim states), realsense, topics (already published)")
    graph.add_argument("--wall-clock", action="store_true", help="robot sim: nodes on the wall clock, not /clock")
    graph.add_argument("--record", action="store_true", help="the recorder node: one bag per episode into OUT.bags "
                       "(always on in mode teleop)")
    graph.set_defaults(func=cmd_bringup)

    data = verbs.add_parser("data", help="recorded episode bags: inspect them, build datasets from them")
    data_verbs = data.add_subparsers(dest="data_verb", required=True, metavar="ACTION")
    build = data_verbs.add_parser("build", help="episode bags (or folders of them) -> a Minari dataset")
    build.add_argument("bags", nargs="+", help="episode bags or folders of them (the recorder's <out>.bags)")
    build.add_argument("--task", required=True, help="fragile-push-wall | disturbed-push | bounded-soccer")
    build.add_argument("--out", required=True, help="Minari dataset folder to create")
    build.add_argument("--role", choices=["task", "recovery", "failure", "online"], help="only episodes of this role")
    build.add_argument("--overwrite", action="store_true")
    build.set_defaults(func=cmd_data_build)
    info = data_verbs.add_parser("info", help="episodes, roles, outcomes, duration, topics and gaps of bags")
    info.add_argument("bags", nargs="+")
    info.set_defaults(func=cmd_data_info)
    replay = data_verbs.add_parser("replay", help="re-execute a bag's recorded commands on franky-sim and report how "
                                   "far the objects' paths diverge")
    replay.add_argument("bag", help="one episode bag")
    replay.add_argument("--robot", default="sim", help="sim (the only robot a recording is replayed on open loop)")
    replay.add_argument("--out", required=True, help="folder for replay.json and replay.png")
    replay.add_argument("--config", help="parameter file (default: the shipped config/farl.yaml)")
    replay.set_defaults(func=cmd_data_replay)

    robot = verbs.add_parser("robot", help="the Franka bridge")
    robot_verbs = robot.add_subparsers(dest="robot_verb", required=True, metavar="ACTION")
    robot_check = robot_verbs.add_parser("check", help="connect, print state, a 2 cm safe motion, reset")
    robot_check.add_argument("--robot", default="sim", help="'sim' (embedded franky-sim) or the robot's FCI IP")
    robot_check.add_argument("--config", help="parameter file with a farl_bridge section (limits, home pose)")
    robot_check.set_defaults(func=cmd_robot_check)

    add_perception_parser(verbs)

    bench = verbs.add_parser("bench", help="speed figures for BENCHMARKS.md")
    bench.add_argument("what", choices=["shield", "training", "failurebench", "shielded", "franka", "robot",
                                        "perception", "ros", "loop", "graph", "recorder"])
    bench.add_argument("--calls", type=int, default=2000, help="shield: timed calls per configuration; "
                       "robot: latency trials (default 30); ros: round trips per payload (default 500)")
    bench.add_argument("--steps", type=int, help="training: gradient steps per model (default 200); "
                       "failurebench: online env steps per run (default 20000)")
    bench.add_argument("--out", help="shield/training/robot: JSON file for the figures; failurebench: output directory "
                       "(re-run with the same settings to resume)")
    bench.add_argument("--tasks", nargs="+", default=BENCH_TASKS, help="failurebench: tasks; franka: Franka tasks "
                       "(default all three); loop: the Franka task (default fragile-push-wall)")
    bench.add_argument("--methods", nargs="+", default=["uni-o4", "farl", "rec-rl", "mppi"],
                       help="failurebench: uni-o4 farl rec-rl mppi ppo-lag fosp; shielded: farl rec-rl mppi fosp "
                       "farl-scripted (FARL's critic with the scripted recovery in place of the learned one), "
                       "farl-gated (FARL's shield with recovery_must_lower_risk)")
    bench.add_argument("--seeds", nargs="+", type=int, default=[0, 1], help="failurebench: online seeds")
    bench.add_argument("--frames", type=int, default=40, help="perception: frames (default 40)")
    bench.add_argument("--seconds", type=float, default=20.0, help="recorder: seconds per recorded episode (default "
                       "20)")
    bench.add_argument("--camera-every", type=int, default=1, help="recorder: the recorder node's camera_every "
                       "(keep every N-th frame; default 1)")
    bench.add_argument("--weights", help="perception: trained YOLO weights (default: an untrained YOLOv8n)")
    bench.add_argument("--jobs", type=int, default=2, help="failurebench: worker processes (default 2)")
    bench.add_argument("--episodes", type=int, default=100, help="shielded: episodes per shield (default 100); "
                       "loop: episodes (default 3); franka: online episodes per method (default: the config's 50)")
    bench.add_argument("--pretrained", help="franka: read DIR/<task>/pretrain/ (task_policy, recovery_policy, "
                       "world_model, calibration.json, farl.yaml) instead of pretraining, e.g. checkpoints/franka")
    bench.add_argument("--pretrain-only", action="store_true", help="franka: stop after the demos and pretraining")
    bench.add_argument("--config", help="failurebench: parameter file with a farl_failurebench section "
                       "(default: config/failurebench.yaml); franka: with a farl_franka_bench section "
                       "(default: config/franka_bench.yaml); loop, graph: the runtime's parameter file "
                       "(default: config/farl.yaml)")
    bench.set_defaults(func=cmd_bench)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except FarlError as exc:
        print(f"farl: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
