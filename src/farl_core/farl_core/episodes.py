"""The episode manager: waiting-for-reset -> running -> ended, from the task monitor's verdicts and human events.

The paper's real-robot protocol (section VI.C) in one state machine, shared by the synchronous
runner, the ROS graph and teleop recording:

    WAITING_FOR_RESET --start--> RUNNING --(success | IR failure | timeout | abort)--> ENDED
          ^                                                                              |
          '--------------------------- next episode (the scene is reset) ---------------'

- The monitor ends an episode on success, on an IR failure, or when `max_steps` ticks ran out.
- A human (operator console keys, a script, the simulated human) can start an episode, mark a
  success or a failure the monitor missed (counted as a human intervention), abort one (a bad
  reset, a person in the workspace: not a failure, and not learned from as one), or stop the
  session after the current episode.
- Unusable ticks (stale perception) for longer than `stall_abort_s` abort the episode: a camera
  stall is nobody's failure, and the arm already holds (no commands are sent on unusable ticks).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from farl_core.config import param
from farl_core.errors import FarlError


class Phase(str, Enum):
    WAITING_FOR_RESET = "waiting_for_reset"
    RUNNING = "running"
    ENDED = "ended"


class Outcome(str, Enum):
    SUCCESS = "success"
    IR_FAILURE = "ir_failure"
    TIMEOUT = "timeout"
    ABORTED = "aborted"


class HumanEvent(str, Enum):
    """What an operator (or a script standing in for one) can say; the /farl/episode verbs."""

    START = "start"
    SUCCESS = "success"
    FAILURE = "failure"     # an IR failure the monitor missed (or saw first, by eye)
    ABORT = "abort"
    END = "end"             # end the episode here and keep it, truncated (a recovery demonstration's clip)
    STOP = "stop"           # end the session after this episode


@dataclass(frozen=True)
class EpisodeConfig:
    """Episode length and the stall rule (ticks of the 5 Hz control loop, robot-clock seconds)."""

    max_steps: int = param(100, ge=1)            # actions per episode: 20 s at 5 Hz, one real-robot episode
    stall_abort_s: float = param(1.0, gt=0.0)    # unusable ticks this long abort the episode
    end_on_success: bool = True


@dataclass(frozen=True)
class Ending:
    """How an episode ended: the outcome, whether a human decided it, and why."""

    outcome: Outcome
    by_human: bool
    reason: str


class EpisodeManager:
    """One episode at a time; `tick` after each monitored step, `handle` for each human event."""

    def __init__(self, config: EpisodeConfig = EpisodeConfig()) -> None:
        self.config = config
        self.phase = Phase.WAITING_FOR_RESET
        self.episode = 0            # index of the current (or next) episode
        self.steps = 0              # usable ticks of the running episode (tick k observes action k - 1's outcome)
        self.ending: Ending | None = None
        self.stop_requested = False
        self._unusable_since: float | None = None

    def begin(self, episode: int) -> None:
        """The scene is reset and episode `episode` may start (WAITING_FOR_RESET until a START)."""
        self.phase, self.episode, self.steps, self.ending = Phase.WAITING_FOR_RESET, episode, 0, None
        self._unusable_since = None

    def handle(self, event: HumanEvent, reason: str = "") -> None:
        """A human event; events that make no sense in the current phase are ignored (a key pressed twice)."""
        if event is HumanEvent.STOP:
            self.stop_requested = True
            if self.phase is Phase.RUNNING:
                self._end(Outcome.ABORTED, True, reason or "session stopped by the operator")
            return
        if event is HumanEvent.START:
            if self.phase is Phase.WAITING_FOR_RESET:
                self.phase = Phase.RUNNING
            return
        if self.phase is not Phase.RUNNING:
            return
        if event is HumanEvent.END:
            self._end(Outcome.TIMEOUT, True, reason or "ended by the operator")
            return
        outcome = {HumanEvent.SUCCESS: Outcome.SUCCESS, HumanEvent.FAILURE: Outcome.IR_FAILURE,
                   HumanEvent.ABORT: Outcome.ABORTED}[event]
        self._end(outcome, True, reason or f"marked {outcome.value} by the operator")

    def tick(self, usable: bool, success: bool, ir_failure: bool, now: float, reason: str = "") -> Ending | None:
        """Account one control tick of the running episode; the ending if this tick ended it."""
        if self.phase is not Phase.RUNNING:
            raise FarlError(f"tick() in phase {self.phase.value}: start the episode first")
        if not usable:
            self._unusable_since = now if self._unusable_since is None else self._unusable_since
            if now - self._unusable_since >= self.config.stall_abort_s:
                self._end(Outcome.ABORTED, False, f"inputs unusable for {now - self._unusable_since:.1f} s: {reason}")
            return self.ending
        self._unusable_since = None
        self.steps += 1
        if ir_failure:
            self._end(Outcome.IR_FAILURE, False, "IR failure detected by the task monitor")
        elif success and self.config.end_on_success:
            self._end(Outcome.SUCCESS, False, "goal reached")
        elif self.steps > self.config.max_steps:  # this tick observed the outcome of action max_steps
            self._end(Outcome.TIMEOUT, False, f"{self.config.max_steps} actions without success")
        return self.ending

    def _end(self, outcome: Outcome, by_human: bool, reason: str) -> None:
        self.phase = Phase.ENDED
        self.ending = Ending(outcome, by_human, reason)
