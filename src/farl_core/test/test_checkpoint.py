"""Checkpoints: bit-exact round trip, never overwritten silently, mismatches and corruption refused."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from farl_core.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from farl_core.spec import SpecError, TaskSpec
from farl_core.transitions import DataError, Transitions

SPEC = TaskSpec("toy", ("a", "b"), ("u",), (-1.0,), (1.0,))


def tensors() -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return {"w": torch.randn(3, 4, generator=g), "b": torch.randn(4, generator=g, dtype=torch.float64)}


def test_round_trip_is_bit_exact(tmp_path: Path) -> None:
    original = tensors()
    save_checkpoint(tmp_path / "ck", kind="toy_model", tensors=original, spec=SPEC, config={"h": [1, 2]})
    loaded = load_checkpoint(tmp_path / "ck", kind="toy_model", spec=SPEC)
    assert set(loaded.tensors) == set(original)
    for key, value in original.items():
        assert loaded.tensors[key].dtype == value.dtype and torch.equal(loaded.tensors[key], value)
    assert loaded.config == {"h": [1, 2]} and loaded.spec == SPEC
    assert "torch" in loaded.meta["versions"]


def test_existing_checkpoint_is_not_overwritten(tmp_path: Path) -> None:
    save_checkpoint(tmp_path / "ck", kind="toy_model", tensors=tensors(), spec=SPEC, config={})
    before = (tmp_path / "ck" / "weights.safetensors").read_bytes()
    with pytest.raises(CheckpointError, match="already exists.*--overwrite"):
        save_checkpoint(tmp_path / "ck", kind="toy_model", tensors={"w": torch.zeros(1)}, spec=SPEC, config={})
    assert (tmp_path / "ck" / "weights.safetensors").read_bytes() == before
    save_checkpoint(tmp_path / "ck", kind="toy_model", tensors={"w": torch.zeros(1)}, spec=SPEC, config={},
                    overwrite=True)
    assert set(load_checkpoint(tmp_path / "ck", kind="toy_model").tensors) == {"w"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ck"]  # no staging leftovers


def test_mismatched_spec_is_refused(tmp_path: Path) -> None:
    save_checkpoint(tmp_path / "ck", kind="toy_model", tensors=tensors(), spec=SPEC, config={})
    other = TaskSpec("toy", ("a", "b", "c"), ("u",), (-1.0,), (1.0,))
    with pytest.raises(SpecError, match="different task spec: observation_names"):
        load_checkpoint(tmp_path / "ck", kind="toy_model", spec=other)


def test_wrong_kind_missing_and_corrupt(tmp_path: Path) -> None:
    save_checkpoint(tmp_path / "ck", kind="toy_model", tensors=tensors(), spec=SPEC, config={})
    with pytest.raises(CheckpointError, match="holds a 'toy_model' model, expected 'world_model'"):
        load_checkpoint(tmp_path / "ck", kind="world_model")
    with pytest.raises(CheckpointError, match="is not a FARL checkpoint"):
        load_checkpoint(tmp_path / "nothing", kind="toy_model")
    (tmp_path / "ck" / "weights.safetensors").write_bytes(b"\x00garbage")
    with pytest.raises(CheckpointError, match="corrupt"):
        load_checkpoint(tmp_path / "ck", kind="toy_model")
    (tmp_path / "ck" / "meta.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="meta.json is corrupt"):
        load_checkpoint(tmp_path / "ck", kind="toy_model")


def test_nan_observation_names_the_field() -> None:
    with pytest.raises(SpecError, match="NaN/inf in 'b'"):
        SPEC.check_observation([0.0, float("nan")])
    with pytest.raises(SpecError, match=r"shape \(3,\), expected \(\.\.\., 2\)"):
        SPEC.check_observation([0.0, 1.0, 2.0])


def test_transitions_file_round_trip_and_errors(tmp_path: Path) -> None:
    n = 5
    data = Transitions(obs=np.zeros((n, 2)), act=np.zeros((n, 1)), rew=np.arange(n, dtype=float),
                       next_obs=np.ones((n, 2)), terminated=np.array([0, 1, 0, 0, 0], bool),
                       truncated=np.zeros(n, bool), cost=np.zeros(n)).validate(SPEC, "test")
    path = data.save(tmp_path / "d.npz")
    back = Transitions.load(path, SPEC)
    np.testing.assert_array_equal(back.rew, data.rew)
    assert [(s.start, s.stop) for s in back.episode_slices()] == [(0, 2), (2, 5)]
    with pytest.raises(DataError, match="already exists"):
        data.save(path)
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    with pytest.raises(DataError, match="not a readable .npz"):
        Transitions.load(tmp_path / "bad.npz")
    data.obs[3, 0] = np.nan
    with pytest.raises(SpecError, match="obs for task 'toy' contains NaN"):
        data.validate(SPEC, "test")
