"""`farl data build` / `farl data info`: episode bags (the recorder's) into a Minari dataset, and what a bag holds.

A training step is a control tick, and a tick is a command on /farl/action/command (the executed,
shielded or teleoperated action, normalised, stamped with its tick).  For each command the task
monitor rebuilds the observation from what the robot loop had at that moment: the latest
/farl/objects and /farl/robot_state received before the command, towards the goal the episode's
START announced, exactly as the policy node does live; the reward and cost of step k come from the
monitor at tick k + 1 (the task's pure rules, franka_tasks.py); the tick that ended the episode (the
objects after the last command) gives the last step's outcome, and that step ends on the bag's
outcome: success or IR failure terminate, a timeout (or an operator's end) truncates.  Aborted episodes are not learned
from and are skipped, as are unfinished recordings (`.partial`: the recorder died mid-episode),
with a one-line warning.  A tick whose inputs the monitor finds unusable cuts the episode there
(truncated).

A bag without FARL's labels (`ros2 bag record` of the /farl/* topics on a ROS workstation: one bag
for a whole session, MCAP or sqlite3) is split into its episodes on /farl/episode (each from a
START to the policy node's outcome); its role comes from `--role`, its task is taken on trust.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from rosbags.rosbag2 import Reader

from farl_control.state_messages import robot_state_from_msg
from farl_core.datasets import save_dataset
from farl_core.errors import FarlError
from farl_core.franka_tasks import FrankaTask, get_franka_task
from farl_core.message_time import stamp_seconds
from farl_core.task_monitor import MonitorConfig, TaskMonitor
from farl_core.transitions import Transitions
from farl_perception.object_messages import from_object_array_msg
from farl_teleop.episode_bags import (
    DISCARD_EVENT,
    HANDOVER_EVENT,
    OUTCOME_EVENTS,
    START_EVENT,
    BagError,
    EpisodeLabel,
    farl_typestore,
    finished_episodes,
    read_label,
)

log = logging.getLogger(__name__)

NEEDED = ("/farl/objects", "/farl/robot_state", "/farl/action/command")
EPISODES = "/farl/episode"
EVENT_OUTCOMES = {event: outcome for outcome, event in OUTCOME_EVENTS.items()}
Messages = dict[str, list[tuple[int, Any]]]
TERMINAL = ("success", "ir_failure")


@dataclass(frozen=True)
class BagSummary:
    """`farl data info` of one bag."""

    path: Path
    label: EpisodeLabel | None         # None: a session bag (ros2 bag record), no FARL label
    duration_s: float
    counts: dict[str, int]
    max_gap_s: dict[str, float]        # the longest silence of each topic


def bag_paths(inputs: Iterable[Path]) -> list[Path]:
    """Bags from bags and folders of bags (episode bags, or `ros2 bag record`'s); unfinished recordings are
    skipped with a warning."""
    paths: list[Path] = []
    for path in map(Path, inputs):
        if (path / "metadata.yaml").is_file():
            paths.append(path)
        elif path.is_dir():
            for partial in sorted(path.glob(".episode_*.partial")):
                log.warning("%s: an unfinished recording (the recorder stopped mid-episode), skipped", partial)
            episodes = finished_episodes(path)
            paths += episodes + sorted(p for p in path.iterdir() if p not in episodes and not p.name.startswith(".")
                                       and (p / "metadata.yaml").is_file())
        else:
            raise BagError(f"{path}: neither an episode bag nor a folder of them")
    if not paths:
        raise BagError("no finished episode bag found: record some with the recorder (record:=true)")
    return paths


def read_bag(path: Path) -> tuple[EpisodeLabel, dict[str, list[tuple[int, Any]]]]:
    """The label and the deserialised messages of an episode bag, per topic, with their receive times (ns)."""
    label = read_label(path)
    messages = read_messages(path)
    _check_topics(path, messages)
    return label, messages


def read_messages(path: Path) -> Messages:
    """The deserialised /farl/* messages of any bag, per topic, with their receive times (ns)."""
    typestore = farl_typestore()
    messages: dict[str, list[tuple[int, Any]]] = {}
    try:
        with Reader(path) as reader:
            for connection, stamp, data in reader.messages():
                if connection.topic.startswith("/farl/"):
                    messages.setdefault(connection.topic, []).append(
                        (stamp, typestore.deserialize_cdr(data, connection.msgtype)))
    except FarlError:
        raise
    except Exception as exc:  # noqa: BLE001  (rosbags and its MCAP reader raise many types for damaged bytes)
        raise BagError(f"{path}: damaged bag ({type(exc).__name__}: {exc}); the other episodes can still be built "
                       "(pass them without this one)") from None
    return messages


def _check_topics(path: Path, messages: Messages) -> None:
    missing = [topic for topic in NEEDED if not messages.get(topic)]
    if missing:
        raise BagError(f"{path}: no {', '.join(missing)} in the bag; record with the FARL recorder (record:=true)")


def is_episode_bag(path: Path) -> bool:
    """Whether `path` is one of FARL's labelled episode bags (else: a session bag, e.g. from `ros2 bag record`)."""
    try:
        read_label(path)
    except BagError:
        return False
    return True


def session_episodes(path: Path, task: str, role: str) -> list[tuple[EpisodeLabel, Messages]]:
    """The episodes of a bag of a whole session (`ros2 bag record` on a ROS workstation), split on /farl/episode:
    each runs from a START to the policy node's outcome (a DISCARD drops it, a HANDOVER starts its data there);
    the role is the caller's (the bag does not say it)."""
    messages = read_messages(path)
    episodes, start, begin = [], None, None
    for stamp, event in messages.get(EPISODES, []):
        if event.event == START_EVENT and start is None:
            start = begin = stamp
        elif start is None or event.source != "farl_policy":
            continue
        elif event.event == HANDOVER_EVENT:  # a recovery demo's approach ran until here: not part of the demo
            begin = stamp
        elif event.event == DISCARD_EVENT:   # the operator re-recorded this episode
            start = None
        elif event.event in EVENT_OUTCOMES:
            window = {topic: [(t, m) for t, m in msgs if (start if topic == EPISODES else begin) <= t <= stamp]
                      for topic, msgs in messages.items()}
            episodes.append((EpisodeLabel(task, role, EVENT_OUTCOMES[event.event], int(event.episode_index)), window))
            start = None
    if not episodes:
        raise BagError(f"{path}: no episode in the bag (a START and then the policy's outcome on /farl/episode); "
                       "record /farl/episode with the other /farl/* topics")
    _check_topics(path, messages)
    return episodes


def bag_episodes(path: Path, task: FrankaTask, role: str | None) -> list[tuple[EpisodeLabel, Messages]]:
    """A FARL episode bag (its label checked against `task`), or a session bag's episodes (needs `role`)."""
    if not is_episode_bag(path):
        if role is None:
            raise BagError(f"{path}: a bag without FARL's episode labels (ros2 bag record?): pass --role to say what "
                           "its episodes are")
        return session_episodes(path, task.name, role)
    if read_label(path).task != task.name:
        raise BagError(f"{path}: a bag of task '{read_label(path).task}', not '{task.name}' (build each task apart)")
    return [read_bag(path)]


def episode_transitions(task: FrankaTask, label: EpisodeLabel, messages: Messages,
                        monitor_config: MonitorConfig | None = None) -> Transitions | None:
    """The steps of one recorded episode (None if nothing usable)."""
    starts = [m for _, m in messages.get(EPISODES, []) if m.event == START_EVENT and len(m.goal) >= 2]
    goal = np.asarray(starts[0].goal, dtype=float) if starts else np.asarray(task.geometry.goal_region.centre)
    monitor = TaskMonitor(task, monitor_config or MonitorConfig())
    monitor.reset(goal)
    objects, states = messages["/farl/objects"], messages["/farl/robot_state"]
    commands = messages["/farl/action/command"]
    # the ticks: one per command, then the tick that ended the episode (its objects came after the last command)
    ticks: list[tuple[int, Any]] = list(commands)
    if objects[-1][0] > commands[-1][0]:
        ticks.append((objects[-1][0], None))
    steps = []  # (observation, action or None, reward, cost) at each tick
    i = j = 0
    latest_objects = latest_state = None
    cut = False
    for received, command in ticks:
        while i < len(objects) and objects[i][0] <= received:
            latest_objects = from_object_array_msg(objects[i][1])
            i += 1
        while j < len(states) and states[j][0] <= received:
            latest_state = robot_state_from_msg(states[j][1])[1]
            j += 1
        if latest_objects is None or latest_state is None:
            continue
        now = stamp_seconds(command.header.stamp) if command is not None else latest_objects.stamp
        step = monitor.step(latest_objects, latest_state, now)
        if not step.usable:
            cut = True  # the episode is cut at an unusable tick, as the agent cuts its trajectory
            break
        action = np.asarray(command.delta, dtype=np.float32) if command is not None else None
        steps.append((step.observation, action, step.reward, step.cost))
    if len(steps) < 2:
        return None
    obs = np.stack([s[0] for s in steps[:-1]])
    next_obs = np.stack([s[0] for s in steps[1:]])
    terminated = np.zeros(len(obs), dtype=bool)
    truncated = np.zeros(len(obs), dtype=bool)
    (terminated if label.outcome in TERMINAL and not cut else truncated)[-1] = True
    cost = np.array([s[3] for s in steps[1:]], dtype=np.float32)
    if label.outcome == "ir_failure" and not cut:
        cost[-1] = 1.0  # a failure the operator marked counts even where the monitor saw none
    return Transitions(obs=obs.astype(np.float32), act=np.stack([s[1] for s in steps[:-1]]),
                       rew=np.array([s[2] for s in steps[1:]], dtype=np.float32), next_obs=next_obs.astype(np.float32),
                       terminated=terminated, truncated=truncated, cost=cost)


def build_dataset(inputs: Iterable[Path], task_name: str, out: Path, role: str | None = None,
                  overwrite: bool = False) -> tuple[Path, int, int]:
    """Bags -> one Minari dataset of role `role` (default: the bags' one role); (path, episodes, steps)."""
    task = get_franka_task(task_name)
    parts, roles = [], set()
    for path in bag_paths(inputs):
        for label, messages in bag_episodes(path, task, role):
            if label.outcome == "aborted" or (role is not None and label.role != role):
                continue
            transitions = episode_transitions(task, label, messages)
            if transitions is not None:
                parts.append(transitions)
                roles.add(label.role)
    if not parts:
        raise BagError(f"no usable episode{' of role ' + role if role else ''} in the bags")
    if len(roles) > 1:
        raise BagError(f"the bags mix roles {sorted(roles)}: pass --role to build one dataset per role")
    data = Transitions.concat(parts)
    recorded = roles.pop()
    label = "task" if recorded == "online" else recorded  # online sessions are the task policy's experience
    path = save_dataset(data, out, task.spec, label=label, description=f"{len(parts)} recorded {recorded} episodes",
                        overwrite=overwrite)
    return path, len(parts), len(data)


def bag_summary(path: Path) -> BagSummary:
    label, messages = read_label(path) if is_episode_bag(path) else None, {}
    with Reader(path) as reader:
        duration = reader.duration / 1e9
        for connection, stamp, _ in reader.messages():
            messages.setdefault(connection.topic, []).append(stamp)
    gaps = {topic: float(np.max(np.diff(stamps)) / 1e9) if len(stamps) > 1 else float("nan")
            for topic, stamps in messages.items()}
    return BagSummary(path, label, duration, {t: len(s) for t, s in messages.items()}, gaps)
