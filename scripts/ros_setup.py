#!/usr/bin/env python3
"""ROS 2 in the project venv: fix the ROS wheels' baked paths, write the venv's ROS environment,
and build `farl_interfaces` into the venv. Called by scripts/setup.sh; run with the venv's python.

Why each step:
- The PyPI ROS 2 wheels carry, in their CMake export files, the Python and numpy include folders
  of the machine that built them (`/opt/python/cp311-cp311/include/python3.11`, ...). A rosidl
  build of our own interfaces links against those targets, so they are rewritten to this venv's.
- `ros-wheels-bootstrapper` (a dependency of ros-rclpy) re-executes every Python process started
  from the venv once, with LD_LIBRARY_PATH pointing at the wheels' libraries. `.venv/farl-ros.env`
  sets those variables (and the guard the bootstrapper checks) up front, so a shell that sources it
  (the scripts, and `.venv/bin/activate`) never re-executes; a bare `.venv/bin/python` still works
  through the bootstrapper.
- `farl_interfaces` is installed into the venv prefix itself, where the wheels put theirs (libraries
  in `.venv/lib`, Python in site-packages, the ament index in `.venv/share`), so it imports with
  nothing sourced by hand.

Where a ROS 2 is sourced (ROS_DISTRO set: Humble/Jazzy from apt) no wheel is touched: the build
uses that ROS, and the env file only adds the venv's own prefix.

Usage: python scripts/ros_setup.py [--venv .venv] [--force]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
INTERFACES = ROOT / "src" / "farl_interfaces"
BUILD_BASE = ROOT / "build" / "ros"
ENV_FILE = "farl-ros.env"
FASTDDS_PROFILE = ROOT / "config" / "fastdds.xml"
STAMP = ".farl-interfaces-stamp"
ACTIVATE_HOOK = 'if [ -f "$VIRTUAL_ENV/farl-ros.env" ]; then . "$VIRTUAL_ENV/farl-ros.env"; fi  # FARL: ROS 2\n'
# The wheels' build machine: manylinux's interpreter prefix, e.g. /opt/python/cp311-cp311.
BAKED_PYTHON_INCLUDE = re.compile(r"/opt/python/cp3\d+-cp3\d+/include/python3\.\d+")
BAKED_NUMPY_INCLUDE = re.compile(r"/opt/python/cp3\d+-cp3\d+/lib/python3\.\d+/site-packages/numpy/_core/include")


def fail(message: str) -> None:
    print(f"setup: error: {message}", file=sys.stderr)
    raise SystemExit(1)


def python_include() -> str:
    include = sysconfig.get_paths()["include"]
    if not (Path(include) / "Python.h").is_file():
        version = f"{sys.version_info.major}.{sys.version_info.minor}"
        fail(f"Python headers missing in {include} (a rosidl build needs them): apt-get install python{version}-dev")
    return include


def fix_baked_paths(prefix: Path) -> int:
    """Rewrite the wheels' build-machine include folders in every CMake file under prefix; idempotent."""
    replacements: tuple = ()
    changed = 0
    for path in sorted({*prefix.glob("share/*/cmake/*.cmake"), *prefix.glob("lib/cmake/**/*.cmake")}):
        text = path.read_text()
        if "/opt/python/cp3" not in text:
            continue
        if not replacements:  # numpy only when there is something to rewrite (a no-op setup stays fast)
            import numpy

            replacements = ((BAKED_PYTHON_INCLUDE, python_include()), (BAKED_NUMPY_INCLUDE, numpy.get_include()))
        new = text
        for pattern, replacement in replacements:
            new = pattern.sub(replacement, new)
        if new != text:
            path.write_text(new)
            changed += 1
    return changed


def wheel_library_dirs(prefix: Path) -> list[str]:
    """The folders the bootstrapper would put on LD_LIBRARY_PATH, in a fixed order."""
    site = Path(sysconfig.get_paths()["purelib"])
    return [str(prefix / "lib"), *sorted(str(p) for p in site.glob("ros_*.libs") if p.is_dir())]


def env_file_text(prefix: Path, wheels: bool) -> str:
    """Shell code that makes the venv's ROS 2 importable; safe to source more than once."""
    libraries = wheel_library_dirs(prefix) if wheels else [str(prefix / "lib")]
    lines = [
        "# Written by scripts/setup.sh (scripts/ros_setup.py); sourced by the scripts and by bin/activate.",
        f"# ROS 2 from {'the PyPI wheels in this venv' if wheels else 'the sourced ROS_DISTRO, plus this venv'}.",
        f'if [ "${{FARL_ROS_ENV:-}}" != "{prefix}" ]; then',
        f'  export FARL_ROS_ENV="{prefix}"',
        f'  export LD_LIBRARY_PATH="{":".join(libraries)}${{LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}}"',
        f'  export AMENT_PREFIX_PATH="{prefix}${{AMENT_PREFIX_PATH:+:$AMENT_PREFIX_PATH}}"',
        "  # camera frames in shared memory instead of UDP fragments (config/fastdds.xml says why)",
        f'  export FASTDDS_DEFAULT_PROFILES_FILE="${{FASTDDS_DEFAULT_PROFILES_FILE:-{FASTDDS_PROFILE}}}"',
    ]
    if wheels:
        lines += [
            "  # the guard of ros-wheels-bootstrapper: the libraries are set, no re-exec needed",
            "  export _ROS_WHEELS_BOOTSTRAP_COMPLETE=1",
            "  export RMW_IMPLEMENTATION=${RMW_IMPLEMENTATION:-rmw_fastrtps_cpp}",
        ]
    lines.append("fi")
    return "\n".join(lines) + "\n"


def write_if_changed(path: Path, text: str) -> None:
    if not path.is_file() or path.read_text() != text:
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(text)
        tmp.replace(path)


def hook_activate(prefix: Path) -> None:
    activate = prefix / "bin" / "activate"
    text = activate.read_text()
    if ACTIVATE_HOOK not in text:
        activate.write_text(text + "\n" + ACTIVATE_HOOK)


def interfaces_digest() -> str:
    digest = hashlib.sha256(os.environ.get("ROS_DISTRO", "wheels").encode())
    for name in ("requirements-ros.txt", "constraints.txt"):
        digest.update((ROOT / name).read_bytes())
    for path in sorted(INTERFACES.rglob("*")):
        if path.is_file():
            digest.update(str(path.relative_to(INTERFACES)).encode() + path.read_bytes())
    return digest.hexdigest()


def remove_previous_install() -> None:
    """Delete what the last build installed, so a removed .msg leaves no stale module behind."""
    manifest = BUILD_BASE / "farl_interfaces" / "install_manifest.txt"
    if manifest.is_file():
        for line in manifest.read_text().splitlines():
            Path(line).unlink(missing_ok=True)


def build_interfaces(prefix: Path, env: dict[str, str]) -> None:
    colcon = prefix / "bin" / "colcon"
    if not colcon.is_file():
        fail(f"{colcon} missing: re-run scripts/setup.sh (colcon-common-extensions is in requirements.txt)")
    for tool in ("cmake", "c++"):
        if shutil.which(tool) is None:
            fail(f"{tool} not found (needed to build farl_interfaces): apt-get install cmake g++ make")
    remove_previous_install()
    print("setup: building farl_interfaces (colcon + rosidl) into the venv")
    command = [str(colcon), "--log-base", str(BUILD_BASE / "log"), "build",
               "--base-paths", str(INTERFACES), "--build-base", str(BUILD_BASE),
               "--install-base", str(prefix), "--merge-install", "--event-handlers", "console_direct-",
               "--cmake-args", f"-DPython3_EXECUTABLE={prefix / 'bin' / 'python'}", "-DBUILD_TESTING=OFF"]
    proc = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.stderr.write(proc.stdout[-4000:] + proc.stderr[-4000:])
        fail(f"colcon build of farl_interfaces failed (full log under {BUILD_BASE / 'log'})")


def check_import(prefix: Path, env: dict[str, str]) -> None:
    probe = ("from farl_interfaces.msg import ObjectArray; import rclpy.serialization as s; "
             "s.serialize_message(ObjectArray())")
    proc = subprocess.run([str(prefix / "bin" / "python"), "-c", probe], env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr[-3000:])
        fail("farl_interfaces was built but does not import; remove build/ros and re-run scripts/setup.sh")


def ros_environment(prefix: Path, wheels: bool) -> dict[str, str]:
    """This process's environment as a shell that sourced the env file would have it."""
    env = dict(os.environ)
    libraries = wheel_library_dirs(prefix) if wheels else [str(prefix / "lib")]
    env["LD_LIBRARY_PATH"] = os.pathsep.join([*libraries, *filter(None, [env.get("LD_LIBRARY_PATH")])])
    env["AMENT_PREFIX_PATH"] = os.pathsep.join([str(prefix), *filter(None, [env.get("AMENT_PREFIX_PATH")])])
    env["CMAKE_PREFIX_PATH"] = os.pathsep.join([str(prefix), *filter(None, [env.get("CMAKE_PREFIX_PATH")])])
    env["PATH"] = os.pathsep.join([str(prefix / "bin"), env.get("PATH", "")])
    if wheels:
        env["_ROS_WHEELS_BOOTSTRAP_COMPLETE"] = "1"
    return env


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--venv", type=Path, default=ROOT / ".venv")
    parser.add_argument("--force", action="store_true", help="rebuild farl_interfaces even if nothing changed")
    args = parser.parse_args()
    prefix = args.venv.resolve()
    wheels = not os.environ.get("ROS_DISTRO")
    if wheels:
        fixed = fix_baked_paths(prefix)
        if fixed:
            print(f"setup: rewrote the ROS wheels' build-machine include paths in {fixed} CMake files")
    write_if_changed(prefix / ENV_FILE, env_file_text(prefix, wheels))
    hook_activate(prefix)
    stamp = prefix / STAMP
    digest = interfaces_digest()
    env = ros_environment(prefix, wheels)
    if args.force or not stamp.is_file() or stamp.read_text() != digest:
        build_interfaces(prefix, env)
        check_import(prefix, env)
        stamp.write_text(digest)
    return 0


if __name__ == "__main__":
    sys.exit(main())
