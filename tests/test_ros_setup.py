"""scripts/ros_setup.py: the ROS wheels' baked build-machine paths are rewritten, and the env file
sourced by the scripts makes the venv's ROS importable with the bootstrapper's re-exec skipped."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import numpy as np

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "ros_setup.py"
spec = importlib.util.spec_from_file_location("ros_setup", SCRIPT)
ros_setup = importlib.util.module_from_spec(spec)
spec.loader.exec_module(ros_setup)


def test_baked_include_paths_are_rewritten_once(tmp_path: Path) -> None:
    cmake = tmp_path / "share" / "std_msgs" / "cmake" / "export_std_msgs__rosidl_generator_pyExport.cmake"
    cmake.parent.mkdir(parents=True)
    cmake.write_text('INTERFACE_INCLUDE_DIRECTORIES "/opt/python/cp312-cp312/include/python3.12;'
                     '/opt/python/cp312-cp312/lib/python3.12/site-packages/numpy/_core/include"\n')
    assert ros_setup.fix_baked_paths(tmp_path) == 1
    text = cmake.read_text()
    assert "/opt/python" not in text
    assert f'"{sysconfig.get_paths()["include"]};{np.get_include()}"' in text
    assert ros_setup.fix_baked_paths(tmp_path) == 0  # idempotent


def test_the_env_file_lets_rclpy_and_farl_interfaces_import_with_no_reexec() -> None:
    prefix = Path(sys.prefix).resolve()
    env_file = prefix / ros_setup.ENV_FILE
    assert env_file.read_text() == ros_setup.env_file_text(prefix, wheels=not os.environ.get("ROS_DISTRO"))
    clean = {k: v for k, v in os.environ.items()
             if k not in ("LD_LIBRARY_PATH", "FARL_ROS_ENV", "_ROS_WHEELS_BOOTSTRAP_COMPLETE", "AMENT_PREFIX_PATH")}
    probe = ("import os; from farl_interfaces.msg import ObjectArray; from rclpy.serialization import "
             "serialize_message; serialize_message(ObjectArray()); "
             "print(os.environ['_ROS_WHEELS_BOOTSTRAP_COMPLETE'], os.environ['LD_LIBRARY_PATH'])")
    proc = subprocess.run(["bash", "-c", f'. "{env_file}" && exec "{sys.executable}" -c "{probe}"'], env=clean,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    guard, library_path = proc.stdout.split()
    # the bootstrapper's guard was set before python started, so it never re-executed: the loader path
    # is the env file's, in its fixed order (the bootstrapper would have rebuilt it from a set)
    assert guard == "1"
    if not os.environ.get("ROS_DISTRO"):
        assert library_path.startswith(":".join(ros_setup.wheel_library_dirs(prefix)))
