"""The `main()` every FARL node executable shares: init, build, spin, stop, with the one-line error on bad input.

A node is built from its parameters; a malformed parameter file (or a checkpoint of another
task, a robot that cannot be reached) is a FarlError raised while building it, and ends the
process with one line on stderr, `<node>: error: <what and the fix>`, and exit code 2, before
anything spins.  Ctrl-C and `ros2 launch` stopping the graph are a normal end (exit code 0).
Several nodes may share one process (the simulated world: bridge and scene) on one executor.

A node that cannot go on in this process (the bridge's lost robot connection: libfranka's client is dead) says
so through a `failure` property (`Failing`): the spin stops, everything is closed, and the process ends with
`<node>: error: <failure>` on stderr and exit code 1; a supervisor or the operator restarts it, and the run
resumes. Without it `farl bringup` waited forever for a bridge that nothing in its process could bring back.

Ctrl-C and SIGTERM are a flag the spin loop reads between callbacks, not rclpy's signal handlers:
those raise KeyboardInterrupt wherever the main thread happens to be (inside the executor, half-way
through a callback) while rclpy's own signal thread is still triggering the executor's guard
conditions that the shutdown below destroys; a node stopped that way died with SIGSEGV about once
in a few hundred stops on a loaded machine (seen in CI). A segfault still prints the Python stacks
(faulthandler), so the log says where.
"""

from __future__ import annotations

import faulthandler
import signal
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import rclpy
from rclpy.executors import ExternalShutdownException, MultiThreadedExecutor, SingleThreadedExecutor
from rclpy.node import Node
from rclpy.signals import SignalHandlerOptions

from farl_core.config import node_parameters
from farl_core.errors import ConfigError, FarlError


def read_parameters(node: Node, own: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the node-only parameters `own`, with their defaults filled in; the rest as the parameter file's nested
    mapping, for the node's config dataclass). The node must allow undeclared overrides: its section of the
    file is validated here, with the CLI's errors, not by rclpy."""
    for name, default in own.items():
        if not node.has_parameter(name):
            node.declare_parameter(name, default)
    values = node_parameters({name: p.value for name, p in node.get_parameters_by_prefix("").items()})
    return {name: values.pop(name) for name in own}, values


def read_own_parameters(node: Node, own: dict[str, Any]) -> dict[str, Any]:
    """A node whose parameters are all its own (`own`, with defaults): any other key is the CLI's one-line error."""
    values, rest = read_parameters(node, own)
    if rest:
        raise ConfigError(f"node {node.get_name()}.{sorted(rest)[0]}: unknown key (expected one of: {', '.join(own)})")
    return values


@dataclass
class Process:
    """One executable's nodes: `build` makes them (after rclpy.init), `close` releases what they hold (a robot,
    a camera thread) after the executor stopped, or after a failed build, so it must allow a partial one."""

    name: str                                   # the error prefix: the node name, or the process's
    build: Callable[[], list[Node]]
    close: Callable[[], None] = field(default=lambda: None)
    threads: int = 2


def closing_process(name: str, make: Callable[[], Any], threads: int) -> Process:
    """The Process of one node that holds something to release: `make()` builds it, its `close()` runs at the end."""
    nodes: list[Any] = []

    def build() -> list[Node]:
        nodes.append(make())
        return list(nodes)

    def close() -> None:
        for node in nodes:
            node.close()

    return Process(name, build, close, threads=threads)


@runtime_checkable
class Failing(Protocol):
    """A node that can fail beyond what its own process can repair (module docstring)."""

    @property
    def failure(self) -> str | None:
        """Why this process must end (one line naming the fix), or None while the node can go on."""


def first_failure(nodes: list[Failing]) -> str | None:
    """`<node>: error: <failure>` of the first node reporting one, else None (read between two callbacks)."""
    for node in nodes:
        if failure := node.failure:
            return f"{node.get_name()}: error: {failure}"  # type: ignore[attr-defined]  (a Node)
    return None


SIGNAL_LATENCY_S = 0.1  # the longest the executor waits before it looks at the stop flag again


def stop_on_signals() -> threading.Event:
    """SIGINT and SIGTERM set the returned event (Python runs the handler in the main thread, between callbacks)."""
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    return stop


def restore_default_signals() -> None:
    """A second Ctrl-C during the shutdown (a robot that does not let go) interrupts it, as usual."""
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def run(process: Process, args: list[str] | None = None) -> None:
    """Build the process's node(s) and spin them until Ctrl-C (a node executable's main)."""
    spin([process], args)


def spin(processes: list[Process], args: list[str] | None = None,
         until: Callable[[list[Node]], bool] | None = None) -> None:
    """Build the nodes of `processes` in this process and spin them on one executor until Ctrl-C, or until
    `until(nodes)` holds (checked between callbacks). A build error is the one-line exit described above."""
    faulthandler.enable()
    rclpy.init(args=args, signal_handler_options=SignalHandlerOptions.NO)
    nodes: list[Node] = []
    started: list[Process] = []
    for process in processes:
        started.append(process)
        try:
            nodes += process.build()
        except FarlError as exc:
            print(f"{process.name}: error: {exc}", file=sys.stderr, flush=True)
            for built in reversed(started):
                built.close()
            rclpy.try_shutdown()
            raise SystemExit(2) from None
    threads = sum(p.threads for p in processes)
    executor = MultiThreadedExecutor(num_threads=threads) if threads > 1 else SingleThreadedExecutor()
    for node in nodes:
        executor.add_node(node)
    stop = stop_on_signals()
    failing = [node for node in nodes if isinstance(node, Failing)]  # once: a Protocol's isinstance is slow
    failure = None
    try:
        while rclpy.ok() and not stop.is_set() and (until is None or not until(nodes)):
            if failure := first_failure(failing):
                break
            executor.spin_once(timeout_sec=SIGNAL_LATENCY_S)
    except ExternalShutdownException:
        pass  # the context was shut down under the executor: a normal end, as Ctrl-C
    finally:
        restore_default_signals()
        executor.shutdown()
        for process in reversed(processes):
            process.close()
        for node in nodes:
            node.destroy_node()
        rclpy.try_shutdown()
    if failure:
        print(failure, file=sys.stderr, flush=True)
        raise SystemExit(1)
