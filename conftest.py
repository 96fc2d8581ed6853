"""Root conftest: loaded by pytest in every process (each xdist worker) before any test module.

Once a process has made a MuJoCo GL context (Mesa, for MUJOCO_GL=egl or osmesa), a later
`import torch._dynamo` (every torch optimiser does it) segfaults: Mesa's LLVM and triton's clash
(`mujoco.GLContext(64, 64).make_current(); import triton` exits with 139; the other order is fine).
Product code guards its own GL contexts (farl_sim.franka_scenes.camera.load_torch_compiler_before_gl);
tests also render through MuJoCo directly, so every worker imports it first, here.

Every worker also claims a ROS 2 domain of its own with discovery on loopback, before any test
calls `rclpy.init()`: nodes started by one worker (or by another run on this machine) are never
seen by another's.
"""

import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import NoReturn

import pytest
import torch._dynamo  # noqa: F401  (before any GL context: see above)

from farl_core.ros_domain import claim_isolated_domain

claim_isolated_domain()


# --- ROS 2 nodes as their own processes (as `ros2 launch` starts them) ------------------------------


REPO = Path(__file__).resolve().parent


class NodeProcess:
    """A node executable of the venv started with `--ros-args`, its output kept in a file."""

    def __init__(self, executable: str, ros_args: list[str], log: Path) -> None:
        self.log = log
        self._out = log.open("wb")
        command = [str(Path(sys.executable).with_name(executable)), "--ros-args", *ros_args]
        self.process = subprocess.Popen(command, stdout=self._out, stderr=subprocess.STDOUT, cwd=REPO)

    def output(self) -> str:
        if not self._out.closed:
            self._out.flush()
        return self.log.read_text(errors="replace")

    def interrupt(self, timeout_s: float = 20.0) -> int:
        """Ctrl-C, as `ros2 launch` stops a node; the exit code (killed after timeout_s)."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._out.close()
        return self.process.returncode


@pytest.fixture
def start_node(tmp_path: Path) -> Iterator:
    """start_node(executable, *ros_args) -> NodeProcess; every node still running is stopped after the test."""
    started: list[NodeProcess] = []

    def start(executable: str, *ros_args: str) -> NodeProcess:
        node = NodeProcess(executable, list(ros_args), tmp_path / f"{executable}-{len(started)}.log")
        started.append(node)
        return node

    yield start
    for node in started:
        node.interrupt()


@pytest.fixture
def ros_context() -> Iterator:
    """An initialised rclpy context of this test (on the worker's own domain), shut down after it."""
    import rclpy
    from rclpy.context import Context

    context = Context()
    rclpy.init(context=context)
    yield context
    rclpy.try_shutdown(context=context)


_SIMULATOR_LOSSES: list[str] = []


def _simulator_lost(detail: str) -> NoReturn:
    _SIMULATOR_LOSSES.append(detail)
    message = f"franky-sim lost the robot connection (Net Exception) {detail}"
    if len(_SIMULATOR_LOSSES) < 2:
        pytest.fail(message)
    pytest.skip(f"franky-sim lost the robot connection twice under this machine's load: {detail[:300]}")


@pytest.fixture(scope="session")
def simulator_lost() -> Callable[[str], NoReturn]:
    """simulator_lost(detail): franky-sim dropped by libfranka ("Net Exception": its Python 1 kHz loop starved for
    about a second, seen on loaded 2-core machines) is the simulator failing, not the graph: the first time in this
    worker a failure (the tests that use it rerun once), the second a skip that says so, so that a starved CI
    machine does not hide every other result. README, Limitations."""
    return _simulator_lost


@pytest.fixture(scope="session")
def shipped_config() -> Path:
    return REPO / "config" / "farl.yaml"


# --- scheduling: the long modules first ---------------------------------------------------------------


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Run the modules marked `minutes(n)` first, longest first; the rest keep their order.

    scripts/test.sh spreads modules over two workers in collection order (`--dist loadscope
    --no-loadscope-reorder`). xdist's own order (most tests first) started the three longest
    modules (3-5 min each) last, so one worker ran alone for the final minutes (15 min 51 s of
    wall time for 25 min of CPU on 2026-12-06); longest first lets the short modules fill in.
    """
    def minutes(item: pytest.Item) -> float:
        mark = item.get_closest_marker("minutes")
        return float(mark.args[0]) if mark else 0.0

    items.sort(key=lambda item: -minutes(item))  # stable: a module's tests stay in order
