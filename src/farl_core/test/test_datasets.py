"""Minari dataset round trips: shapes, per-step cost and label, atomic no-overwrite writes, damage."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from farl_core.datasets import LABELS, is_dataset, load_dataset, save_dataset
from farl_core.spec import SpecError, TaskSpec
from farl_core.transitions import DataError
from farl_sim import point_mass


def test_round_trip_keeps_every_array_and_labels_each_step(tmp_path: Path) -> None:
    data = point_mass.demonstrations("failure", 12, 3)
    assert data.cost.sum() > 0  # the check below must see real failures
    path = save_dataset(data, tmp_path / "failure", point_mass.SPEC, "failure", env_id="FARL/BoundedPointMass-v0")
    assert is_dataset(path)
    loaded, labels = load_dataset(path, point_mass.SPEC)
    for name in ("obs", "act", "rew", "next_obs", "terminated", "truncated", "cost"):
        np.testing.assert_array_equal(getattr(loaded, name), getattr(data, name), err_msg=name)
    assert labels.shape == (len(data),) and set(labels.tolist()) == {LABELS["failure"]}
    assert [s.stop - s.start for s in loaded.episode_slices()] == [s.stop - s.start for s in data.episode_slices()]


def test_dataset_opens_with_plain_minari_and_recovers_its_env(tmp_path: Path) -> None:
    import minari

    save_dataset(point_mass.demonstrations("task", 3, 0), tmp_path / "task", point_mass.SPEC, "task",
                 env_id="FARL/BoundedPointMass-v0")
    dataset = minari.MinariDataset(str(tmp_path / "task" / "data"))
    assert dataset.total_episodes == 3
    env = dataset.recover_environment()
    assert env.observation_space.shape == (point_mass.SPEC.obs_dim,)


def test_existing_dataset_is_never_replaced_unless_asked(tmp_path: Path) -> None:
    first = point_mass.demonstrations("task", 2, 0)
    path = save_dataset(first, tmp_path / "task", point_mass.SPEC, "task")
    with pytest.raises(DataError, match="already exists"):
        save_dataset(point_mass.demonstrations("task", 5, 1), path, point_mass.SPEC, "task")
    assert len(load_dataset(path, point_mass.SPEC)[0]) == len(first)
    second = point_mass.demonstrations("recovery", 4, 1)
    save_dataset(second, path, point_mass.SPEC, "recovery", overwrite=True)
    loaded, labels = load_dataset(path, point_mass.SPEC)
    assert len(loaded) == len(second) and set(labels.tolist()) == {LABELS["recovery"]}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["task"]  # no staging or retired folders left


def test_bad_inputs_are_one_line_errors(tmp_path: Path) -> None:
    data = point_mass.demonstrations("task", 2, 0)
    with pytest.raises(DataError, match="unknown demonstration label 'expert'"):
        save_dataset(data, tmp_path / "x", point_mass.SPEC, "expert")
    with pytest.raises(DataError, match="not a Minari dataset folder"):
        load_dataset(tmp_path / "missing", point_mass.SPEC)
    path = save_dataset(data, tmp_path / "task", point_mass.SPEC, "task")
    (path / "data" / "main_data.hdf5").write_bytes(b"not hdf5")
    with pytest.raises(DataError, match="damaged"):
        load_dataset(path, point_mass.SPEC)
    other = TaskSpec(name="Other", observation_names=("a", "b", "c"), action_names=("u", "v"),
                     action_low=(-1.0, -1.0), action_high=(1.0, 1.0))
    good = save_dataset(data, tmp_path / "good", point_mass.SPEC, "task")
    with pytest.raises(SpecError, match="expected"):
        load_dataset(good, other)


def test_a_relative_path_works(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`farl bench ... --out runs/demo` hands Minari a relative path, which it used to join onto itself."""
    monkeypatch.chdir(tmp_path)
    data = point_mass.demonstrations("task", 2, 0)
    path = save_dataset(data, Path("runs/demos/task"), point_mass.SPEC, "task")
    assert is_dataset(tmp_path / "runs/demos/task") and len(load_dataset(path, point_mass.SPEC)[0]) == len(data)
