"""`farl doctor`: what this machine can run, and a one-line fix for each problem.

Each check is a small function returning a `Check`; `fail` means a FARL job that needs it
cannot run (the command exits non-zero), `warn` means an optional capability is missing
(GPU, RealSense camera, ROS 2) and FARL falls back to what is available.
"""

from __future__ import annotations

import importlib
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


def check_rclpy() -> Check:
    try:
        importlib.import_module("rclpy")
    except Exception:  # noqa: BLE001
        return Check("rclpy", "warn", "not found: ROS 2 nodes and launch files unavailable, "
                     "the ROS-free runner and CLI work",
                     "on a ROS 2 machine: source /opt/ros/humble/setup.bash (or jazzy)")
    distro = os.environ.get("ROS_DISTRO", "unknown distro")
    return Check("rclpy", "ok", f"present ({distro})")


CHECKS: tuple[Callable[[], Check], ...] = (
    check_python,
    check_torch,
    check_cuda,
    check_mujoco_gl,
    lambda: check_module("franky", "franky", "pip install franky-control (scripts/setup.sh does it)"),
    lambda: check_module("franky-sim", "franky_sim", "pip install franky-sim (scripts/setup.sh does it)"),
    check_realsense,
    check_rclpy,
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
