"""`farl doctor`: what this machine can run, and a one-line fix for each problem.

Each check is a small function returning a `Check`; `fail` means a FARL job that needs it
cannot run (the command exits non-zero), `warn` means an optional capability is missing
(GPU, RealSense camera, ROS 2 altogether) and FARL falls back to what is available. A ROS 2 that
is present but broken, or FARL's interfaces missing next to it, fails: no FARL node can start.
"""

from __future__ import annotations

import functools
import importlib
import json
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Literal

Status = Literal["ok", "warn", "fail"]

MUJOCO_GL_BACKENDS = ("egl", "osmesa", "glfw")
# Renders one frame of a one-geom model: proves the GL backend works end to end, not just loads.
_GL_PROBE = (
    "import mujoco\n"
    "m = mujoco.MjModel.from_xml_string('<mujoco><worldbody><light pos=\"0 0 1\"/>"
    "<geom size=\".1\"/></worldbody></mujoco>')\n"
    "d = mujoco.MjData(m); mujoco.mj_forward(m, d)\n"
    "r = mujoco.Renderer(m, 16, 16); r.update_scene(d); assert r.render().shape == (16, 16, 3)\n"
)


@dataclass(frozen=True)
class Check:
    """Outcome of one check; `fix` is a one-line hint whenever status is not ok."""

    name: str
    status: Status
    detail: str
    fix: str = ""


def check_python() -> Check:
    version = ".".join(map(str, sys.version_info[:3]))
    return Check("python", "ok", f"{version} ({sys.executable})")


def check_torch() -> Check:
    try:
        torch = importlib.import_module("torch")
    except Exception as exc:  # noqa: BLE001 - any import failure is the finding
        return Check("torch", "fail", f"not importable: {_first_line(exc)}", "run scripts/setup.sh")
    return Check("torch", "ok", f"{torch.__version__}, {torch.get_num_threads()} CPU threads")


def check_cuda() -> Check:
    try:
        torch = importlib.import_module("torch")
        if not torch.cuda.is_available():
            return Check("cuda", "warn", "no usable CUDA device: training and YOLO run on CPU",
                         "optional: install an NVIDIA driver matching torch's CUDA build for GPU training")
        ones = torch.ones(4, device="cuda")
        total = float(ones.sum().item())
        return Check("cuda", "ok", f"{torch.cuda.get_device_name(0)} (test kernel sum={total:.0f})")
    except Exception as exc:  # noqa: BLE001
        return Check("cuda", "warn", f"CUDA present but unusable: {_first_line(exc)}",
                     "check `nvidia-smi` and that the driver supports torch's CUDA version")


def probe_mujoco_gl(backend: str, timeout_s: float = 60.0) -> tuple[bool, str]:
    """Render one offscreen frame with MUJOCO_GL=`backend` in a fresh interpreter.

    A subprocess is needed because MuJoCo picks its GL backend once, at import time.
    """
    env = dict(os.environ, MUJOCO_GL=backend)
    env.pop("PYOPENGL_PLATFORM", None)
    try:
        proc = subprocess.run([sys.executable, "-c", _GL_PROBE], env=env, capture_output=True,
                              text=True, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        return False, f"timed out after {timeout_s:.0f} s"
    if proc.returncode == 0:
        return True, "renders"
    lines = [ln for ln in proc.stderr.strip().splitlines() if ln.strip()]
    return False, lines[-1] if lines else f"exit code {proc.returncode}"


def check_mujoco_gl() -> Check:
    try:
        mujoco = importlib.import_module("mujoco")
    except Exception as exc:  # noqa: BLE001
        return Check("mujoco", "fail", f"not importable: {_first_line(exc)}", "run scripts/setup.sh")
    results = {b: probe_mujoco_gl(b) for b in MUJOCO_GL_BACKENDS}
    working = [b for b, (ok, _) in results.items() if ok]
    detail = f"{mujoco.__version__}; GL backends: " + ", ".join(
        f"{b} {'ok' if ok else 'no'}" for b, (ok, _) in results.items())
    if not working:
        return Check("mujoco", "fail", detail,
                     "apt-get install libosmesa6 and export MUJOCO_GL=osmesa for CPU rendering")
    chosen = os.environ.get("MUJOCO_GL")
    if chosen and chosen not in working:
        return Check("mujoco", "warn", f"{detail}; MUJOCO_GL={chosen} does not work here",
                     f"export MUJOCO_GL={working[0]}")
    return Check("mujoco", "ok", detail + ("" if chosen else f"; use MUJOCO_GL={working[0]}"))


def check_module(name: str, module: str, fix: str, status_if_missing: Status = "fail") -> Check:
    """Importability of one module, with its version when it reports one."""
    try:
        mod = importlib.import_module(module)
    except Exception as exc:  # noqa: BLE001
        return Check(name, status_if_missing, f"not importable: {_first_line(exc)}", fix)
    version = getattr(mod, "__version__", "")
    return Check(name, "ok", f"importable{f' ({version})' if version else ''}")


def check_realsense() -> Check:
    try:
        rs = importlib.import_module("pyrealsense2")
    except Exception as exc:  # noqa: BLE001
        return Check("realsense", "warn", f"pyrealsense2 not importable: {_first_line(exc)}",
                     "apt-get install libusb-1.0-0, then run scripts/setup.sh")
    devices = rs.context().query_devices()
    found = [f"{d.get_info(rs.camera_info.name)} #{d.get_info(rs.camera_info.serial_number)}"
             for d in devices]
    if not found:
        return Check("realsense", "warn", "no RealSense device connected (simulated D435 still works)",
                     "plug the D435 into a USB 3 port and install the librealsense udev rules")
    return Check("realsense", "ok", ", ".join(found))


# rclpy's major version names the ROS 2 distro where ROS_DISTRO is unset (the PyPI wheels set none).
RCLPY_DISTROS = {3: "humble", 7: "jazzy", 9: "kilted"}
NO_ROS_FIX = "run scripts/setup.sh (ROS 2 Kilted wheels into .venv), or source /opt/ros/<distro>/setup.bash"
# Run in a fresh interpreter, like the GL probe: this process stays ROS-free (only *_node.py modules
# import rclpy), and a ROS whose libraries are not on the loader path fails there, not here.
_ROS_PROBE = """
import importlib, json, pathlib, re
from importlib import metadata
out = {}
try:
    rclpy = importlib.import_module("rclpy")
except ModuleNotFoundError:
    print(json.dumps({"rclpy": "missing"})); raise SystemExit
try:
    out["rmw"] = importlib.import_module("rclpy.utilities").get_rmw_implementation_identifier()
except Exception as exc:
    print(json.dumps({"rclpy": "broken", "error": f"{type(exc).__name__}: {str(exc).splitlines()[0]}"}))
    raise SystemExit
out["rclpy"] = "ok"
try:
    out["version"], out["origin"] = metadata.version("ros-rclpy"), "PyPI wheels"
except metadata.PackageNotFoundError:
    prefix = str(pathlib.Path(rclpy.__file__).resolve()).split("/lib/")[0]
    manifest = pathlib.Path(prefix, "share", "rclpy", "package.xml")
    found = re.search(r"<version>([^<]+)</version>", manifest.read_text()) if manifest.is_file() else None
    out["version"], out["origin"] = (found.group(1) if found else "unknown version"), f"ROS install ({prefix})"
try:
    serialization = importlib.import_module("rclpy.serialization")
    msg = importlib.import_module("farl_interfaces.msg")
    out["interfaces"] = str(pathlib.Path(msg.__file__).resolve().parent.parent)
    out["interfaces_bytes"] = len(serialization.serialize_message(msg.ObjectArray()))
except Exception as exc:
    out["interfaces_error"] = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
print(json.dumps(out))
"""


@functools.lru_cache(maxsize=1)
def probe_ros(timeout_s: float = 60.0) -> dict[str, object]:
    """What a fresh interpreter of this environment finds of ROS 2 (one probe for both checks)."""
    try:
        proc = subprocess.run([sys.executable, "-c", _ROS_PROBE], capture_output=True, text=True, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        return {"rclpy": "broken", "error": f"probe timed out after {timeout_s:.0f} s"}
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines:
        last = [ln for ln in proc.stderr.strip().splitlines() if ln.strip()]
        return {"rclpy": "broken", "error": last[-1] if last else f"exit code {proc.returncode}"}
    return json.loads(lines[-1])


def check_ros() -> Check:
    """ROS 2 distro, rclpy version and origin, RMW implementation."""
    found = probe_ros()
    if found["rclpy"] == "missing":
        return Check("ros2", "warn", "rclpy not found: ROS 2 nodes unavailable, the ROS-free runner and CLI work",
                     NO_ROS_FIX)
    if found["rclpy"] == "broken":  # present, but its libraries are not on the loader path
        return Check("ros2", "fail", f"rclpy present but not importable: {found['error']}",
                     "source .venv/farl-ros.env (scripts/setup.sh writes it), or your ROS setup.bash")
    version = str(found["version"])
    major = int(version.split(".")[0]) if version[:1].isdigit() else -1
    distro = os.environ.get("ROS_DISTRO") or RCLPY_DISTROS.get(major, "unknown distro")
    return Check("ros2", "ok", f"{distro}; rclpy {version} from {found['origin']}; RMW {found['rmw']}")


def check_interfaces() -> Check:
    """farl_interfaces imports and its type support loads (a message serialises)."""
    found = probe_ros()
    if found["rclpy"] == "missing":
        return Check("farl_interfaces", "warn", "not checked: no rclpy", NO_ROS_FIX)
    if found["rclpy"] == "broken":
        return Check("farl_interfaces", "fail", "not checked: rclpy does not import (see ros2)", "fix ros2 first")
    if "interfaces_error" in found:
        return Check("farl_interfaces", "fail", f"not importable: {found['interfaces_error']}",
                     "run scripts/setup.sh (builds it into .venv), or colcon build && source install/setup.bash")
    return Check("farl_interfaces", "ok",
                 f"imports from {found['interfaces']} (empty ObjectArray: {found['interfaces_bytes']} bytes CDR)")


CHECKS: tuple[Callable[[], Check], ...] = (
    check_python,
    check_torch,
    check_cuda,
    check_mujoco_gl,
    lambda: check_module("franky", "franky", "pip install franky-control (scripts/setup.sh does it)"),
    lambda: check_module("franky-sim", "franky_sim", "pip install franky-sim (scripts/setup.sh does it)"),
    check_realsense,
    check_ros,
    check_interfaces,
)


def run_checks() -> list[Check]:
    return [check() for check in CHECKS]


def format_report(checks: list[Check]) -> str:
    """Aligned human-readable report, one line per check plus an indented fix line."""
    width = max(len(c.name) for c in checks)
    marks = {"ok": "ok  ", "warn": "WARN", "fail": "FAIL"}
    lines = []
    for c in checks:
        lines.append(f"{marks[c.status]}  {c.name:<{width}}  {c.detail}")
        if c.fix:
            lines.append(f"      {'':<{width}}  fix: {c.fix}")
    failed = sum(c.status == "fail" for c in checks)
    warned = sum(c.status == "warn" for c in checks)
    lines.append(f"{failed} problem(s), {warned} warning(s)")
    return "\n".join(lines)


def as_records(checks: list[Check]) -> list[dict[str, str]]:
    return [asdict(c) for c in checks]


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__
