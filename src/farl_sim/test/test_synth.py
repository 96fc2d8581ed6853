"""Synthetic detector datasets: layout, exact labels, the hidden-object rule, seeding, overwrite refusal.

Needs offscreen rendering (MUJOCO_GL=egl).  The three task scenes compile once per process
(synth caches them), so after the first test everything here renders in milliseconds.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from farl_core.errors import FarlError
from farl_core.franka_tasks import BoundedSoccerGeometry, DisturbedPushGeometry, FragilePushWallGeometry
from farl_sim.franka_scenes.synth import (
    DISTRACTOR_POOL,
    Randomisation,
    SceneSynthesizer,
    class_names,
    synthesize,
)

TASKS = ("fragile-push-wall", "disturbed-push", "bounded-soccer")
NAMES = ("object", "wall", "obstacle", "ball")
N_IMAGES = 9


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("synth") / "dataset"
    data_yaml = synthesize(TASKS, out, N_IMAGES, seed=0, imgsz=224, val_fraction=0.34, progress=False)
    assert data_yaml == out / "data.yaml"
    return out


def _labels(path: Path) -> list[tuple[int, float, float, float, float]]:
    return [(int(c), *map(float, rest)) for c, *rest in (line.split() for line in path.read_text().splitlines())]


def test_layout_and_data_yaml(dataset: Path) -> None:
    data = yaml.safe_load((dataset / "data.yaml").read_text())
    assert data == {"path": str(dataset), "train": "images/train", "val": "images/val", "names": dict(enumerate(NAMES))}
    assert class_names(TASKS) == NAMES
    counts, lines = {}, 0
    for split in ("train", "val"):
        images = sorted(p.stem for p in (dataset / "images" / split).glob("*.jpg"))
        assert images == sorted(p.stem for p in (dataset / "labels" / split).glob("*.txt"))
        counts[split] = images
        for stem in images:
            for class_id, *xywh in _labels(dataset / "labels" / split / f"{stem}.txt"):
                assert 0 <= class_id < len(NAMES)
                assert all(0.0 <= v <= 1.0 for v in xywh) and xywh[2] > 0 and xywh[3] > 0
                lines += 1
    assert len(counts["train"]) + len(counts["val"]) == N_IMAGES
    assert {stem.split("_", 1)[1] for stem in counts["val"]} == set(TASKS)  # every task validated
    summary = json.loads((dataset / "summary.json").read_text())
    assert summary["images"] == {"train": len(counts["train"]), "val": len(counts["val"]), "total": N_IMAGES}
    assert sum(summary["boxes_per_class"].values()) == lines
    assert summary["seed"] == 0 and summary["image_size"] == [224, 168]
    assert not list(dataset.parent.glob(".dataset*"))  # no staging folder left behind


def _silhouette_box(points: np.ndarray, synth: SceneSynthesizer) -> np.ndarray:
    """The box (pixel-edge convention) of projected surface points of a convex solid."""
    uv = synth.intrinsics.project(synth.extrinsics.to_camera(points))
    return np.array([*uv.min(axis=0), *uv.max(axis=0)]) + 0.5  # OpenCV pixel centres -> pixel edges


def _cylinder(centre: np.ndarray, radius: float, height: float) -> np.ndarray:
    angles = np.linspace(0.0, 2 * np.pi, 720, endpoint=False)
    rim = np.stack([radius * np.cos(angles), radius * np.sin(angles), np.zeros_like(angles)], axis=1)
    return np.concatenate([centre + rim + [0, 0, dz] for dz in (-height / 2, height / 2)])


def _sphere(centre: np.ndarray, radius: float) -> np.ndarray:
    i = np.arange(4000) + 0.5
    polar, azimuth = np.arccos(1 - 2 * i / len(i)), np.pi * (1 + 5 ** 0.5) * i
    return centre + radius * np.stack([np.cos(azimuth) * np.sin(polar), np.sin(azimuth) * np.sin(polar),
                                       np.cos(polar)], axis=1)


def _box(lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    return np.array([[x, y, z] for x in (lo[0], hi[0]) for y in (lo[1], hi[1]) for z in (lo[2], hi[2])])


PLACEMENTS = {
    "fragile-push-wall": {"object": (0.45, -0.10, 0.03)},
    "disturbed-push": {"object": (0.42, -0.14, 0.02), "obstacle": (0.56, 0.02, 0.07)},
    "bounded-soccer": {"ball": (0.62, 0.10, 0.033)},
}


def _solids(task: str, synth: SceneSynthesizer) -> dict[str, np.ndarray]:
    """Surface points of each task object where PLACEMENTS (or the static scene) puts it."""
    at = {name: np.array(p) for name, p in PLACEMENTS[task].items()}
    geometry = synth.scene.task.geometry
    if isinstance(geometry, FragilePushWallGeometry):
        wall = geometry.wall
        return {"object": _cylinder(at["object"], geometry.object_radius, geometry.object_height),
                "wall": _box(np.array([wall.x_min, wall.y_min, 0.0]),
                             np.array([wall.x_max, wall.y_max, geometry.wall_height]))}
    if isinstance(geometry, DisturbedPushGeometry):
        return {"object": _cylinder(at["object"], geometry.object_radius, geometry.object_height),
                "obstacle": _cylinder(at["obstacle"], geometry.obstacle_radius, geometry.obstacle_height)}
    assert isinstance(geometry, BoundedSoccerGeometry)
    return {"ball": _sphere(at["ball"], geometry.ball_radius)}


@pytest.mark.parametrize("task", TASKS)
def test_boxes_are_the_projected_objects(task: str) -> None:
    """With no randomisation, each box is the projected silhouette of the object at its known place (320x240)."""
    with SceneSynthesizer(task, NAMES, imgsz=320, randomisation=Randomisation.none()) as synth:
        image = synth.render(np.random.default_rng(0), placements=PLACEMENTS[task])
        solids = _solids(task, synth)
    assert image.rgb.shape == (240, 320, 3)
    assert not image.unlabelled
    boxes = {box.name: box for box in image.boxes}
    assert set(boxes) == set(solids)
    for name, points in solids.items():
        expected = _silhouette_box(points, synth)
        label = np.array(boxes[name].box)
        np.testing.assert_allclose(label, expected, atol=1.0, err_msg=name)  # rasterisation: under a pixel
        centre = (label[:2] + label[2:]) / 2
        np.testing.assert_allclose(centre, (expected[:2] + expected[2:]) / 2, atol=0.75, err_msg=name)
        assert boxes[name].class_id == NAMES.index(name)
    for name, position in PLACEMENTS[task].items():
        np.testing.assert_allclose(image.objects[name], position, atol=1e-9)


def test_hidden_and_outside_objects_follow_the_visibility_rule() -> None:
    with SceneSynthesizer("disturbed-push", NAMES, imgsz=320, randomisation=Randomisation.none()) as synth:
        rng = np.random.default_rng(0)
        vase = np.array([0.52, 0.0, 0.07])
        behind = synth.render(rng, {"obstacle": vase, "object": (0.45, 0.0, 0.02)})  # the vase hides the puck
        outside = synth.render(rng, {"obstacle": vase, "object": (0.45, 0.9, 0.02)})
        y = np.linspace(-0.6, 0.6, 2401)
        u = synth.intrinsics.project(synth.extrinsics.to_camera(np.stack([np.full_like(y, 0.45), y,
                                                                          np.full_like(y, 0.02)], axis=1)))[:, 0]
        on_edge = y[np.argmin(np.abs(u))]  # the puck's centre on the image's left edge
        half_out = synth.render(rng, {"obstacle": vase, "object": (0.45, on_edge, 0.02)})
        inside = synth.render(rng, {"obstacle": vase, "object": (0.45, on_edge + 0.2 * np.sign(-on_edge), 0.02)})
    for image in (behind, outside):
        assert image.unlabelled == ("object",)
        assert [box.name for box in image.boxes] == ["obstacle"]
    clipped = next(box for box in half_out.boxes if box.name == "object").box
    full = next(box for box in inside.boxes if box.name == "object").box
    assert clipped[0] == 0.0                                               # clipped at the image edge
    assert 0.3 < (clipped[2] - clipped[0]) / (full[2] - full[0]) < 0.7     # about half of it shows


def test_same_seed_repeats_exactly_and_seeds_differ(tmp_path: Path) -> None:
    def files(seed: int, name: str) -> dict[str, bytes]:
        out = synthesize("disturbed-push", tmp_path / name, 3, seed=seed, imgsz=160, val_fraction=0.34,
                         progress=False).parent
        return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*"))
                if p.suffix in {".jpg", ".txt"}}

    first, again, other = files(0, "a"), files(0, "b"), files(1, "c")
    assert first == again
    images = [name for name in first if name.endswith(".jpg")]
    assert len(images) == 3
    other_images = sorted(name for name in other if name.endswith(".jpg"))
    assert all(first[a] != other[b] for a, b in zip(sorted(images), other_images, strict=True))


def test_randomisation_changes_the_appearance_of_a_fixed_scene() -> None:
    placements = PLACEMENTS["disturbed-push"]
    no_distractors = Randomisation(distractors=0, table_fraction=0.0)
    with SceneSynthesizer("disturbed-push", NAMES, imgsz=160, randomisation=no_distractors) as synth:
        a, b = (synth.render(np.random.default_rng(seed), placements) for seed in (1, 2))
    difference = np.abs(a.rgb.astype(int) - b.rgb.astype(int)).mean()
    assert difference > 5.0                   # light, colours, camera, noise all moved
    for box_a, box_b in zip(a.boxes, b.boxes, strict=True):
        assert box_a.name == box_b.name
        assert np.abs(np.subtract(box_a.box, box_b.box)).max() < 16  # a few cm and degrees of camera jitter


def test_existing_dataset_is_kept_unless_overwrite(dataset: Path, tmp_path: Path) -> None:
    before = (dataset / "summary.json").read_bytes()
    with pytest.raises(FarlError, match="already exists.*overwrite"):
        synthesize(TASKS, dataset, 3, imgsz=160, progress=False)
    assert (dataset / "summary.json").read_bytes() == before
    small = synthesize("bounded-soccer", tmp_path / "small", 2, imgsz=160, progress=False).parent
    synthesize("bounded-soccer", small, 3, seed=5, imgsz=160, progress=False, overwrite=True)
    assert json.loads((small / "summary.json").read_text())["images"]["total"] == 3
    assert sorted(p.name for p in tmp_path.iterdir()) == ["small"]  # no staging or retired folder left


def test_bad_requests_fail_in_one_line(tmp_path: Path) -> None:
    with pytest.raises(FarlError, match="unknown Franka task"):
        synthesize("soccer", tmp_path / "x", 2, progress=False)
    with pytest.raises(FarlError, match="val_fraction"):
        synthesize("bounded-soccer", tmp_path / "x", 2, val_fraction=1.0, progress=False)
    with pytest.raises(FarlError, match=f"distractors must be in \\[0, {DISTRACTOR_POOL}\\]"):
        synthesize("bounded-soccer", tmp_path / "x", 2, randomisation=Randomisation(distractors=99), progress=False)
    assert not (tmp_path / "x").exists()
