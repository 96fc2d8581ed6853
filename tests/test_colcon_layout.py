"""The tree is a colcon workspace: packages found under src/ only, and the ament_python packages
build and install in the layout `ros2 run` / `ros2 launch` expect.

farl_interfaces (ament_cmake + rosidl) is built by scripts/setup.sh into the venv, against the ROS 2
wheels (scripts/ros_setup.py); the node and message tests import that build, so this module builds
the ament_python packages only.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGES = {"farl_interfaces": "ament_cmake", "farl_core": "ament_python",
            "farl_perception": "ament_python", "farl_policy": "ament_python",
            "farl_safety": "ament_python", "farl_control": "ament_python",
            "farl_teleop": "ament_python", "farl_sim": "ament_python", "farl": "ament_python"}
PYTHON_PACKAGES = sorted(p for p, kind in PACKAGES.items() if kind == "ament_python")
COLCON = Path(sys.executable).with_name("colcon")


def colcon(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, COLCON_LOG_LEVEL="error")
    return subprocess.run([str(COLCON), *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=600)


def test_colcon_finds_exactly_the_src_packages(repo_root: Path) -> None:
    """Crawling from the repository root must not see the root (or .venv) as a package."""
    proc = colcon("list", "--base-paths", ".", cwd=repo_root)
    assert proc.returncode == 0, proc.stderr
    found = {}
    for line in proc.stdout.splitlines():
        name, path, kind = line.split("\t")
        found[name] = (path, kind.strip("()").removeprefix("ros."))
    assert {n: k for n, (_, k) in found.items()} == PACKAGES
    assert all(path == f"src/{name}" for name, (path, _) in found.items())


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory, repo_root: Path) -> Path:
    """colcon build of every ament_python package into a temporary prefix (no source changes)."""
    work = tmp_path_factory.mktemp("colcon")
    shutil.copytree(repo_root / "src", work / "src", ignore=shutil.ignore_patterns("*.egg-info", "__pycache__"))
    for folder in ("launch", "config"):
        shutil.copytree(repo_root / folder, work / folder)
    proc = colcon("--log-base", "log", "build", "--base-paths", "src", "--build-base", "build",
                  "--install-base", "install", "--packages-ignore", "farl_interfaces",
                  "--event-handlers", "console_direct-", cwd=work)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return work / "install"


def test_every_python_package_is_indexed(installed: Path) -> None:
    for name in PYTHON_PACKAGES:
        prefix = installed / name
        assert (prefix / "share/ament_index/resource_index/packages" / name).is_file(), name
        assert (prefix / "share" / name / "package.xml").is_file(), name
        site = list(prefix.glob(f"lib/python3*/site-packages/{name}/__init__.py"))
        assert site, f"{name} Python module not installed"


def test_farl_installs_cli_launch_and_config(installed: Path, repo_root: Path) -> None:
    share = installed / "farl/share/farl"
    launch = sorted(p.name for p in (share / "launch").iterdir())
    config = sorted(p.name for p in (share / "config").iterdir())
    assert launch == sorted(p.name for p in (repo_root / "launch").glob("*.launch.py"))
    assert config == sorted([p.name for p in (repo_root / "config").glob("*.yaml")] + ["fastdds.xml"])
    script = installed / "farl/lib/farl/farl"  # where `ros2 run farl farl` looks
    assert script.is_file() and os.access(script, os.X_OK)


def test_every_node_of_the_launch_file_is_installed_where_ros2_run_looks(installed: Path, repo_root: Path,
                                                                         tmp_path: Path) -> None:
    """Every executable of the node table (farl.graph, which bringup.launch.py starts), on franky-sim and on a
    robot, recording, plus the console an operator starts by hand: installed as `ros2 run PACKAGE EXE` finds it."""
    from dataclasses import replace

    from farl.graph import GraphArgs, graph_nodes

    sim = GraphArgs(task_policy="t", out=str(tmp_path / "run"), record=True, config=repo_root / "config" / "farl.yaml")
    nodes = {(n.package, n.executable) for args in (sim, replace(sim, robot="172.16.0.2", camera="topics"))
             for n in graph_nodes(args)}
    assert {("farl_sim", "sim_world_node"), ("farl_control", "bridge_node"), ("farl", "policy_node"),
            ("farl_safety", "shield_node"), ("farl_perception", "perception_node"),
            ("farl_teleop", "recorder_node")} <= nodes
    for package, executable in sorted(nodes | {("farl", "console_node")}):
        script = installed / package / "lib" / package / executable
        assert script.is_file() and os.access(script, os.X_OK), script


def test_installed_cli_runs_from_the_install_prefix(installed: Path, tmp_path: Path) -> None:
    """The installed `farl` resolves config from share/farl, not from the source tree."""
    site = sorted(str(p) for p in installed.glob("*/lib/python3*/site-packages"))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(site), FARL_CONFIG=str(
        installed / "farl/share/farl/config/farl.yaml"))
    proc = subprocess.run([sys.executable, str(installed / "farl/lib/farl/farl"), "config", "check"],
                          env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "share/farl/config/farl.yaml: ok" in proc.stdout
