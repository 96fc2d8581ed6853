"""Demonstrations as Minari datasets (the Farama offline-RL standard), with FARL's two extras.

A FARL dataset is a plain Minari dataset folder (`<dir>/data/main_data.hdf5` + `metadata.json`)
that any Minari user can open with `minari.MinariDataset("<dir>/data")`, or with
`minari.load_dataset(id)` once the folder sits at `$MINARI_DATASETS_PATH/<id>`.  Every step
carries, in its `infos`:

  cost    0/1 constraint signal C(s, a) of paper Eq. 1 (1 on the step that causes an IR failure)
  label   which demonstration role the step belongs to: 0 task, 1 recovery, 2 failure

Minari stores N + 1 infos per episode (the first comes from `reset`), so step i's values sit
at index i + 1; the reset entry repeats the episode's label with cost 0.

Writes are atomic (built in a temporary folder beside the target, then renamed into place) and an
existing dataset is never replaced unless `overwrite=True`: recorded demonstrations are the one
thing a lab cannot regenerate.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import warnings
from contextlib import contextmanager
from pathlib import Path

import gymnasium as gym
import numpy as np

from farl_core.atomic_files import replace_folder
from farl_core.spec import TaskSpec
from farl_core.transitions import DataError, Transitions

LABELS = {"task": 0, "recovery": 1, "failure": 2}


def is_dataset(path: Path) -> bool:
    """True when `path` is a Minari dataset folder (as opposed to a .npz transitions file)."""
    return (path / "data" / "metadata.json").is_file()


class _SpecOnly(gym.Env):
    """The registered env's spec, which is all Minari keeps of it (for `recover_environment`).

    Given an id or a spec, Minari builds the env to read its spaces and never closes it: for a
    FrankaSim env that starts a franky-sim server whose 1 kHz thread then holds the GIL for as long
    as the process lives.  The spaces come from the task spec instead.
    """

    def __init__(self, spec: gym.envs.registration.EnvSpec) -> None:
        self.spec = spec


def save_dataset(data: Transitions, path: str | Path, spec: TaskSpec, label: str, env_id: str | None = None,
                 description: str = "", overwrite: bool = False) -> Path:
    """Write `data` (validated against `spec`) as a Minari dataset folder at `path`.

    `env_id` names the registered gymnasium env that produced the data, so that
    `dataset.recover_environment()` works; leave it None for robot recordings.
    """
    if label not in LABELS:
        raise DataError(f"unknown demonstration label '{label}' (use one of {', '.join(LABELS)})")
    data = data.validate(spec, f"dataset {path}")
    path = Path(path).absolute()  # Minari joins a relative dataset path onto itself (FileNotFoundError)
    if path.exists() and not overwrite:
        raise DataError(f"{path} already exists (choose another path, or pass --overwrite to replace it)")
    if len(data) == 0:
        raise DataError(f"refusing to write an empty dataset to {path}")
    import minari
    from minari.data_collector import EpisodeBuffer

    code = LABELS[label]
    buffers = []
    for k, part in enumerate(data.episode_slices()):
        episode = data.subset(part)
        steps = len(episode)
        buffers.append(EpisodeBuffer(
            id=k, observations=np.concatenate([episode.obs, episode.next_obs[-1:]]), actions=episode.act,
            rewards=episode.rew.astype(np.float64).tolist(), terminations=episode.terminated.tolist(),
            truncations=episode.truncated.tolist(),
            infos={"cost": np.concatenate([[0.0], episode.cost]).astype(np.float32),
                   "label": np.full(steps + 1, code, dtype=np.int8)}))
    observation_space = gym.spaces.Box(-np.inf, np.inf, (spec.obs_dim,), np.float32)
    action_space = gym.spaces.Box(np.asarray(spec.action_low, np.float32), np.asarray(spec.action_high, np.float32),
                                  dtype=np.float32)
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    try:
        dataset_id = f"farl/{_slug(spec.name)}/{label}-v0"
        with _minari_root(staging), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Minari warns about optional metadata (author, URL, ...)
            minari.create_dataset_from_buffers(
                dataset_id, buffers, env=_SpecOnly(gym.spec(env_id)) if env_id else None,
                algorithm_name=f"farl-{label}-demos", observation_space=observation_space,
                action_space=action_space, description=description or f"FARL {label} demonstrations for "
                f"{spec.name}; infos: cost (0/1 C of Eq. 1), label (0 task, 1 recovery, 2 failure)")
        replace_folder(staging / dataset_id, path)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return path


def load_dataset(path: str | Path, spec: TaskSpec) -> tuple[Transitions, np.ndarray]:
    """Transitions and per-step labels [N] int8 of a Minari dataset folder, validated against `spec`."""
    path = Path(path)
    if not is_dataset(path):
        raise DataError(f"{path} is not a Minari dataset folder (expected {path}/data/metadata.json; "
                        "create one with `farl demos`)")
    from minari import MinariDataset

    try:
        episodes = list(MinariDataset(str(path / "data")).iterate_episodes())
    except Exception as error:  # noqa: BLE001 - h5py/minari raise many types for a damaged file
        raise DataError(f"cannot read dataset {path}: {error} (the file is damaged; re-record or restore it)") from None
    parts, labels = [], []
    for episode in episodes:
        infos = episode.infos
        if "cost" not in infos or "label" not in infos:
            raise DataError(f"dataset {path} lacks per-step 'cost'/'label' infos (not written by FARL; "
                            "convert it with farl_core.datasets.save_dataset)")
        obs = np.asarray(episode.observations, dtype=np.float32)
        parts.append(Transitions(obs=obs[:-1], act=np.asarray(episode.actions, dtype=np.float32),
                                 rew=np.asarray(episode.rewards, dtype=np.float32), next_obs=obs[1:],
                                 terminated=np.asarray(episode.terminations, dtype=bool),
                                 truncated=np.asarray(episode.truncations, dtype=bool),
                                 cost=np.asarray(infos["cost"][1:], dtype=np.float32)))
        labels.append(np.asarray(infos["label"][1:], dtype=np.int8))
    if not parts:
        raise DataError(f"dataset {path} holds no episodes")
    return Transitions.concat(parts).validate(spec, f"dataset {path}"), np.concatenate(labels)


def _slug(name: str) -> str:
    """A Minari-id-safe form of a task name ("Bounded Push" -> "bounded-push")."""
    return "".join(c if c.isalnum() else "-" for c in name.lower()).strip("-") or "task"


@contextmanager
def _minari_root(root: Path):
    """Point Minari at `root` for the duration (it locates datasets through this variable)."""
    previous = os.environ.get("MINARI_DATASETS_PATH")
    os.environ["MINARI_DATASETS_PATH"] = str(root)
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop("MINARI_DATASETS_PATH", None)
        else:
            os.environ["MINARI_DATASETS_PATH"] = previous


