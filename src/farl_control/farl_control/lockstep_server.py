"""franky-sim in lock-step: the simulation steps only when everything that drives it has spoken.

franky-sim's own loop (SimulationServer.run_once) handles whatever commands have arrived, steps
the physics 1 ms and sends the state, as fast as its thread runs.  What happens in the simulation
then depends on the scheduler: how many steps pass before libfranka's answer to a state arrives,
before a new motion or gripper command is read, before the control loop reads the camera.  Two
runs of the same seed part after a few ticks.

`LockstepServer` steps only when
  - a motion is running and libfranka has answered the last state sent (its command carries that
    state's message id), so the robot's command stream is the same sequence of 1 ms steps
    however late each answer comes;
  - the step is allowed: `limit` steps (the control loop's next tick), or, with no limit, only
    while the arm or the gripper is moving (a reset: homing, opening the gripper).
While it waits it keeps reading commands (a stop, a new motion, a gripper command are taken at
this instant, not at whichever step they would have reached), runs `idle` (the embedded sim's
jobs: camera renders, object placement) and, when no motion runs, re-sends the unchanged state
so libfranka's state reads (readOnce) are answered.  libfranka drops a motion whose state stops
for its receive timeout (1 s): a wait longer than HOLD_LIMIT_S with a motion running for the control
loop lets a step go ahead anyway (a starved control loop costs the run its exactness, not the
connection); for libfranka's answer it sends the unchanged state again under a new id (libfranka reads
the newest state and answers that one; the physics does not step, so the run stays exact).

What libfranka does that this has to respect (found by experiment, libfranka in franky 2.0):
  - the first state of a new motion is read by startMotion and never answered; the control loop
    answers from the second on;
  - startMotion reads the newest state queued in its socket, so the second state must wait until
    the first has left the socket (`client_backlog`), or both are read at once and each side waits
    for the other;
  - libfranka's clock is the message id and it reads no id twice, so the re-sent states advance
    its clock with the wall clock: in lock-step the robot clock is `steps` (1 ms each).

franky-sim has no hooks for this: the waiting loop calls its servers' command parsing directly
(name-mangled methods of franky-sim 1.0.4, pinned in constraints.txt; an upgrade reruns test_lockstep.py).
"""

from __future__ import annotations

import logging
import os
import struct
import time
from collections import deque
from collections.abc import Callable

from franky_sim import SimulationServer
from franky_sim.base_simulator import BaseSimulator
from franky_sim.franka_robot_server import FrankaRobotServer

from farl_core.errors import FarlError

log = logging.getLogger(__name__)

RESEND_IDLE_S = 0.001
"""While waiting with no motion: how often the unchanged state goes out (a real robot's 1 kHz)."""
POLL_S = 0.0001
"""Sleep between two polls of the sockets while waiting (libfranka answers within tens of microseconds)."""
TRAIL_LENGTH = 12
"""Motion events kept for the warnings of a forced step or a resent state (LockstepRobotServer.trail)."""
UDP_TABLE = "/proc/net/udp"
"""Linux's table of UDP sockets with their receive queues (LockstepRobotServer.client_backlog)."""
HOLD_LIMIT_S = 0.7
"""Longest wall-clock wait with a motion running before lock-step acts (logged): libfranka drops a motion whose
states stop for 1 s.  Waiting for the control loop (a CPU shared with other work), one step goes ahead anyway
(`forced_steps`; the run is then no longer exact); waiting for libfranka's answer, the unchanged state goes out
again (`resent_states`; exact)."""


class LockstepRobotServer(FrankaRobotServer):
    """franky-sim's robot server, counting what the lock-step needs: message ids and commands taken."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.last_answer = -1       # message id of the last UDP command from libfranka
        self.last_motion_state = -1  # message id of the last state sent while a motion ran
        self.moves = 0              # Move commands taken (a new control loop started)
        self.gripper_commands = 0   # gripper commands taken (move, grasp, homing, stop)
        self._opening_state = False  # the next motion state ends libfranka's startMotion: never answered
        self.opening_unread = False  # that state sent, maybe still in libfranka's socket (see client_backlog)
        self.trail: deque[str] = deque(maxlen=TRAIL_LENGTH)
        """The last motion events (start, preempt, finish, opening state read, first answer), each with the id of the
        state it came before: what the warnings of a forced step or a resent state show, to trace the wait they end."""
        self._answered_since_opening = True

    def note(self, event: str) -> None:
        """Add `event` to the trail, stamped with the id of the next state to go out."""
        self.trail.append(f"{event} @{self._FrankaServer__message_id}")  # type: ignore[attr-defined]

    def _bind_children(self, hostname: str) -> None:
        super()._bind_children(hostname)
        gripper = self.gripper_server
        if gripper is not None:  # count the commands where franky-sim's gripper server takes them
            for name in ("start_move", "start_grasp", "start_homing", "stop"):
                setattr(gripper, name, self._counted(getattr(gripper, name)))

    def _counted(self, method: Callable[..., None]) -> Callable[..., None]:
        def counted(*args: object, **kwargs: object) -> None:
            self.gripper_commands += 1
            method(*args, **kwargs)
        return counted

    def start_motion(self, *args: object, **kwargs: object) -> None:
        super().start_motion(*args, **kwargs)
        self.moves += 1
        self._opening_state = True
        self.note(f"start motion {self.current_motion_id}")

    def stop_motion(self, send_preemption_signal: bool = True) -> None:
        if self.current_motion_id:
            self.note(f"{'preempt' if send_preemption_signal else 'finish'} motion {self.current_motion_id}")
        super().stop_motion(send_preemption_signal)

    def _handle_udp_command(self, command_data: bytes) -> None:
        self.last_answer = struct.unpack_from("<Q", command_data)[0]
        if not self._answered_since_opening:
            self._answered_since_opening = True
            self.note(f"first answer {self.last_answer}")
        super()._handle_udp_command(command_data)

    def send_state(self) -> None:
        if self.current_motion_id and self._opening_state:
            self.note("opening state")
            self._opening_state = False
            self.opening_unread = True
            self._answered_since_opening = False
        elif self.current_motion_id:
            self.last_motion_state = self._FrankaServer__message_id  # type: ignore[attr-defined]
        super().send_state()

    @property
    def motion_unseen(self) -> bool:
        """A motion runs whose states libfranka has not answered yet (taken while lock-step held the simulation).

        Stopped now, libfranka's startMotion waited for it forever in about 1 close in 5 (lock-step, a command then
        a close with no tick between), franky's control thread with it: the preemption, sent right after the
        start, apparently never ends startMotion.  A real Panda streams states, so libfranka always sees a motion
        start before anything can stop it."""
        return bool(self.current_motion_id) and (self._opening_state or not self._answered_since_opening)

    @property
    def client_backlog(self) -> int:
        """Bytes waiting in libfranka's UDP socket (Linux: /proc/net/udp, the client's port).

        libfranka's startMotion reads the newest of the states queued and its control loop then waits for a
        new one: a state sent before startMotion read the opening one would be swallowed with it."""
        port = f":{self._FrankaServer__client_udp_port:04X}"  # type: ignore[attr-defined]
        with open(UDP_TABLE) as table:
            for line in table:
                fields = line.split()
                if len(fields) > 4 and fields[1].endswith(port):
                    return int(fields[4].split(":")[1], 16)
        return 0

    @property
    def awaiting_answer(self) -> bool:
        """A motion runs and libfranka has not yet answered the last state sent."""
        return bool(self.current_motion_id) and self.last_answer < self.last_motion_state

    def poll(self) -> None:
        """Read the sockets (TCP commands, libfranka's UDP commands) of the robot and the gripper."""
        self._FrankaServer__process_tcp_commands()  # type: ignore[attr-defined]
        self._process_udp_commands()
        gripper = self.gripper_server
        if gripper is not None:
            gripper._FrankaServer__process_tcp_commands()  # type: ignore[attr-defined]
            gripper._process_udp_commands()

    def apply(self) -> None:
        """Turn the commands taken into the actuation of the next step (franky-sim's post-processing)."""
        self._post_process_commands()
        if self.gripper_server is not None:
            self.gripper_server._post_process_commands()

    def send_idle_state(self) -> None:
        """The unchanged state again (gripper always; robot only with no motion: a motion's states are answered).

        libfranka reads a state only under a new message id, and its clock is that id: while the loop waits,
        libfranka's clock runs on with the wall clock.  The lock-step's clock is the step count
        (LockstepServer.steps), which is what the bridge reads as robot time in lock-step."""
        if not self.current_motion_id:
            FrankaRobotServer.send_state(self)
        elif self.gripper_server is not None:
            self.gripper_server.send_state()

    @property
    def gripper_busy(self) -> bool:
        gripper = self.gripper_server
        return gripper is not None and gripper._pending_command_id is not None


class LockstepServer(SimulationServer):
    """A SimulationServer whose loop steps only when allowed (module docstring)."""

    def __init__(self, sim: BaseSimulator, idle: Callable[[], None]) -> None:
        if not os.path.exists(UDP_TABLE):
            raise FarlError(f"franky-sim's lock-step reads libfranka's socket queue from {UDP_TABLE} (Linux); "
                            "without it, connect with lockstep=False")
        super().__init__(sim)
        self._idle = idle
        self.steps = 0
        self._limit: int | None = 1  # set by one thread, read by the loop: a plain attribute is enough
        self.forced_steps = 0
        """Steps taken because a wait for the control loop with a motion running outlasted HOLD_LIMIT_S."""
        self.resent_states = 0
        """Motion states sent again, unchanged, because libfranka had not answered them for HOLD_LIMIT_S: seen once in
        about nine runs of the main command, libfranka waiting for a newer state after reading a new motion's
        second one without answering it.  The physics does not step, so the run stays exact."""
        self.waiting_for: tuple[str, float] | None = None
        """What the loop waits for now and since when (time.monotonic()), for a lost connection's error."""
        self.longest_gap_s = 0.0
        """The longest wall-clock gap between two polls of a wait (they come every POLL_S when this thread runs):
        a long one is this thread starved of the CPU or of the GIL, which no waiting rule can make up for."""
        self.longest_hold_s = 0.0
        """The longest wall-clock wait with a motion running: libfranka drops the connection at 1 s; forced steps
        keep it near HOLD_LIMIT_S unless this thread itself stops running (longest_gap_s)."""

    def init(self) -> None:
        for robot in self.sim.robots:
            server = LockstepRobotServer(robot, self._remaining_hostname_candidates)
            server.init()
            self.robot_servers.append(server)
        self.sim.start()
        self._step()  # franky-sim's state is defined only after a first step

    def _step(self) -> None:
        self.robot_server.apply()
        self.sim.step()
        self.steps += 1

    @property
    def robot_server(self) -> LockstepRobotServer:
        server = self.robot_servers[0]
        assert isinstance(server, LockstepRobotServer)
        return server

    def allow(self, limit: int | None) -> None:
        """Step up to `limit` steps in all (None: only while the arm or the gripper moves)."""
        self._limit = limit

    @property
    def at_rest(self) -> bool:
        """Waiting at its limit (or, without one, with nothing moving), libfranka's last state answered."""
        server = self.robot_server
        return not server.awaiting_answer and self._held(server)

    def run_once(self, realtime: bool | float = False) -> None:
        del realtime  # lock-step is paced by its clients, never by the wall clock
        server = self.robot_server
        server._pre_process_commands()
        resent = started = polled = time.monotonic()
        moving_since: float | None = None  # when this wait first saw a motion running
        while self.running:
            server.poll()
            self._idle()
            waiting_for = self._waiting(server)
            if waiting_for is None:
                break
            now = time.monotonic()
            self.waiting_for = (waiting_for, started)
            self.longest_gap_s = max(self.longest_gap_s, now - polled)
            polled = now
            if server.current_motion_id and moving_since is None:
                moving_since = now
            if self._starving_libfranka(server, moving_since, now):
                assert moving_since is not None
                trail = f"motion {server.current_motion_id}, last events: {'; '.join(server.trail)}"
                if server.awaiting_answer:
                    self.resent_states += 1
                    log.warning("lock-step: libfranka has not answered state %s for %.1f s; sending the unchanged "
                                "state again under a new id (no step: the run stays exact); %s",
                                server.last_motion_state, now - moving_since, trail)
                    server.note(f"resent state {server.last_motion_state}")
                    server.send_state()  # the same physics under the next id, which libfranka then answers
                    moving_since = now
                    continue
                self.forced_steps += 1
                log.warning("lock-step: waited %.1f s with a motion running for %s; stepping on before libfranka's "
                            "1 s timeout drops it (this run is no longer exact); %s", now - moving_since, waiting_for,
                            trail)
                break
            if now - resent >= RESEND_IDLE_S:
                server.send_idle_state()
                resent = now
            time.sleep(POLL_S)
        else:
            return
        self.waiting_for = None
        if moving_since is not None:
            self.longest_hold_s = max(self.longest_hold_s, time.monotonic() - moving_since)
        self._step()
        server.send_state()

    @staticmethod
    def _starving_libfranka(server: LockstepRobotServer, moving_since: float | None, now: float) -> bool:
        """A motion has been running for HOLD_LIMIT_S of this wait, and the wait is not for libfranka to read a
        new motion's first state (a second state then would be read with it): libfranka may be waiting for a
        newer state, which a resend (waiting for its answer) or a step (waiting for the control loop) gives it."""
        return (moving_since is not None and now - moving_since > HOLD_LIMIT_S and bool(server.current_motion_id)
                and not server.opening_unread)

    def _waiting(self, server: LockstepRobotServer) -> str | None:
        """What the next step waits for (None: nothing, step now)."""
        if server.opening_unread:
            if backlog := server.client_backlog:
                return f"libfranka to read a new motion's first state ({backlog} bytes in its socket)"
            server.opening_unread = False
            server.note("opening state read")
        if server.awaiting_answer:
            return f"libfranka's answer to state {server.last_motion_state} (last answer {server.last_answer})"
        if self._held(server):
            return f"the control loop (step {self.steps}, limit {self._limit})"
        return None

    def _held(self, server: LockstepRobotServer) -> bool:
        """The limit forbids the next step: reached, or (no limit) nothing moves."""
        limit = self._limit
        if limit is None:
            return not server.current_motion_id and not server.gripper_busy
        return self.steps >= limit
