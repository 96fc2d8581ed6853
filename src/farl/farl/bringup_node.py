"""`farl bringup`: every node of the graph's table in this one process, on one executor (no `ros2 launch` needed).

The same processes `bringup.launch.py` starts (farl.graph), built from their modules' `process()`
and spun together, with the same two parameter files (the shipped config and the bringup's own).
It stops when the policy node has run its episodes (and the recorder, with `--record` or in mode
teleop, has closed the last bag), or on Ctrl-C.  One process means one GIL: the
graph runs slower than under `ros2 launch` on several cores, and in simulation it follows
franky-sim's clock either way.
"""

from __future__ import annotations

from farl.graph import GraphArgs, build_in_process, graph_nodes, ros_arguments, write_bringup_parameters
from farl.policy_node import PolicyNode
from farl_core.run_node import spin
from farl_teleop.recorder_node import RecorderNode


def bringup(args: GraphArgs) -> None:
    """Run the graph of `args` until its session is finished."""
    nodes = graph_nodes(args)
    parameters = write_bringup_parameters(args, nodes)
    arguments = ros_arguments(nodes[0], args.config, parameters)[:4]  # both files, no node remap (many nodes)
    spin(build_in_process(nodes), ["--ros-args", *arguments], until=_finished)


def _finished(built: list) -> bool:
    """The policy node ran its episodes and the recorder, if any, has closed the last one's bag."""
    return any(isinstance(n, PolicyNode) and n.finished for n in built) and \
        not any(isinstance(n, RecorderNode) and n.recording for n in built)
