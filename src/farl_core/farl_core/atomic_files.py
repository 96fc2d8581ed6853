"""Writes that never leave a half-written file or folder behind (DESIGN.md: nothing recorded is lost).

Everything is written next to its target first and renamed into place (os.replace is atomic
within one file system): a crash mid-write leaves the old result, never a torn one.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path


def write_atomic(path: Path, write: Callable[[Path], object]) -> None:
    """Call `write(staging)` on a temporary sibling of `path`, then rename it over `path`."""
    staging = path.with_name(f".{path.name}.tmp")
    try:
        write(staging)
        os.replace(staging, path)
    finally:
        staging.unlink(missing_ok=True)


def replace_folder(staging: Path, target: Path) -> None:
    """Move the finished folder `staging` to `target`; an old `target` (overwrite asked for) goes only after."""
    if target.exists():
        retired = target.with_name(f".{target.name}.old")
        shutil.rmtree(retired, ignore_errors=True)
        os.replace(target, retired)
        os.replace(staging, target)
        shutil.rmtree(retired)
    else:
        os.replace(staging, target)
