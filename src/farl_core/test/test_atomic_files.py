"""A failed write leaves the previous result untouched and no staging file behind."""

from __future__ import annotations

from pathlib import Path

import pytest

from farl_core.atomic_files import replace_folder, write_atomic


def test_a_write_that_fails_keeps_the_old_file(tmp_path: Path) -> None:
    path = tmp_path / "result.json"
    write_atomic(path, lambda staging: staging.write_text("old"))

    def crash(staging: Path) -> None:
        staging.write_text("half")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        write_atomic(path, crash)
    assert path.read_text() == "old" and sorted(p.name for p in tmp_path.iterdir()) == ["result.json"]


def test_replace_folder_swaps_in_the_new_folder_and_drops_the_old(tmp_path: Path) -> None:
    target, staging = tmp_path / "dataset", tmp_path / ".staging"
    target.mkdir()
    (target / "old.txt").write_text("old")
    staging.mkdir()
    (staging / "new.txt").write_text("new")
    replace_folder(staging, target)
    assert [p.name for p in target.iterdir()] == ["new.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dataset"]
