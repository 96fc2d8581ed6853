"""Package manifests tell the truth: format 3, versions agree, imports are declared, ROS stays at
the edges (only *_node.py modules may import rclpy, DESIGN.md)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
from catkin_pkg.package import parse_package

SRC = Path(__file__).resolve().parent.parent / "src"
PYTHON_PACKAGES = sorted(p.parent.name for p in SRC.glob("*/setup.py"))


def imported_top_levels(package_dir: Path) -> dict[str, set[str]]:
    """Top-level module names imported by each .py file under package_dir (tests excluded)."""
    found = {}
    for path in (package_dir / package_dir.name).rglob("*.py"):
        names = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names.add(node.module.split(".")[0])
        found[str(path.relative_to(SRC))] = names
    return found


@pytest.mark.parametrize("name", PYTHON_PACKAGES)
def test_manifest_matches_setup(name: str) -> None:
    pkg = parse_package(str(SRC / name))
    assert pkg.package_format == 3
    assert pkg.name == name
    assert [e.content for e in pkg.exports if e.tagname == "build_type"] == ["ament_python"]
    setup_version = re.search(r'version="([^"]+)"', (SRC / name / "setup.py").read_text()).group(1)
    assert setup_version == pkg.version
    assert (SRC / name / "resource" / name).is_file()
    assert (SRC / name / "test").is_dir()


@pytest.mark.parametrize("name", PYTHON_PACKAGES)
def test_farl_imports_are_declared_dependencies(name: str) -> None:
    pkg = parse_package(str(SRC / name))
    declared = {d.name for d in pkg.exec_depends + pkg.build_export_depends}
    for path, modules in imported_top_levels(SRC / name).items():
        farl_modules = {m for m in modules if m.startswith("farl") and m != name}
        missing = farl_modules - declared
        assert not missing, f"{path} imports {sorted(missing)} but package.xml does not exec_depend on them"


def test_rclpy_only_in_node_modules() -> None:
    offenders = [path for name in PYTHON_PACKAGES
                 for path, modules in imported_top_levels(SRC / name).items()
                 if "rclpy" in modules and not path.endswith("_node.py")]
    assert not offenders, f"rclpy imported outside *_node.py: {offenders}"
