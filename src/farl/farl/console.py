"""The operator console: what the person at the robot sees and the keys they press, or a script in their place.

Over SSH, in any terminal (no X display): a rich panel redrawn each control tick with the
episode, its step, the shield's risk and overrides, failures so far and returns, and single-key
commands read from the terminal in cbreak mode:

    s / space  start the episode (after resetting the scene)
    y          mark success            f  mark an IR failure the monitor missed
    a          abort the episode (not a failure: bad reset, person in the workspace)
    q          stop the session after this episode (the checkpoint of the last one is kept)

Without a terminal on stdin (CI, a pipe, nohup) it prints one line per episode instead.
`ScriptedOperator` delivers the same events from a list, for tests and unattended simulation.
Both implement `poll() -> list[HumanEvent]` and `show(view)`, which is all the runner uses.
"""

from __future__ import annotations

import os
import select
import sys
import termios
import tty
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from rich.console import Console
from rich.live import Live
from rich.table import Table

from farl_core.episodes import HumanEvent

KEYS = {"s": HumanEvent.START, " ": HumanEvent.START, "y": HumanEvent.SUCCESS, "f": HumanEvent.FAILURE,
        "a": HumanEvent.ABORT, "q": HumanEvent.STOP}
KEYS_HELP = "s start  y success  f failure  a abort  q stop"
TELEOP_KEYS = {"s": HumanEvent.START, " ": HumanEvent.START, "y": HumanEvent.SUCCESS, "f": HumanEvent.FAILURE,
               "e": HumanEvent.END, "r": HumanEvent.ABORT, "q": HumanEvent.STOP}
TELEOP_KEYS_HELP = "s start  y save (success)  f failure  e end + save  r discard, re-record  q stop"
"""A demonstration session's verbs (LeRobot's record flow: save, re-record, stop), beside the device's keys."""


@dataclass(frozen=True)
class ConsoleView:
    """Everything the console shows; the runner fills it once per tick."""

    task: str
    mode: str
    episode: int
    episodes: int
    phase: str
    step: int
    risk: float | None
    overrides: int
    failures: int
    episode_return: float
    last_return: float | None
    updates: int
    message: str


@dataclass(frozen=True)
class ScriptedEvent:
    """Send `event` at tick `step` of episode `episode` (step 0: as soon as the episode is waiting or running)."""

    episode: int
    step: int
    event: HumanEvent


class ScriptedOperator:
    """Human events from a script; prints nothing (the runner's log and progress bar still do)."""

    def __init__(self, events: Iterable[ScriptedEvent] = ()) -> None:
        self._events = sorted(events, key=lambda e: (e.episode, e.step))
        self.view: ConsoleView | None = None

    def poll(self) -> list[HumanEvent]:
        if self.view is None:
            return []
        due = [e for e in self._events if (e.episode, e.step) <= (self.view.episode, self.view.step)]
        self._events = [e for e in self._events if e not in due]
        return [e.event for e in due]

    def show(self, view: ConsoleView) -> None:
        self.view = view

    def close(self) -> None:
        """Nothing to restore."""


class TerminalConsole:
    """The interactive console (use as a context manager so the terminal mode is restored)."""

    def __init__(self, stdin: Any = None, stream: Any = None, keys: dict[str, HumanEvent] = KEYS,
                 help_line: str = KEYS_HELP, on_key: Callable[[str], object] | None = None) -> None:
        """`stdin`: the terminal keys come from (default sys.stdin); `stream`: where the panel is drawn;
        `on_key`: receives the keys that are no event (a keyboard teleop device's motion keys)."""
        self._keys, self._help, self._on_key = keys, help_line, on_key
        self._stdin = stdin if stdin is not None else sys.stdin
        self._interactive = self._stdin.isatty()
        self._saved: list | None = None
        self._console = Console(file=stream) if stream is not None else Console()
        self._live: Live | None = None
        self._last_episode_line: int | None = None

    @property
    def interactive(self) -> bool:
        """Keys are read and the panel is live (a progress bar would fight it for the terminal)."""
        return self._interactive

    def __enter__(self) -> TerminalConsole:
        if self._interactive:
            self._saved = termios.tcgetattr(self._stdin.fileno())
            tty.setcbreak(self._stdin.fileno())
            self._live = Live(console=self._console, refresh_per_second=5, transient=False)
            self._live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._live is not None:
            self._live.__exit__(None, None, None)
            self._live = None
        if self._saved is not None:
            termios.tcsetattr(self._stdin.fileno(), termios.TCSADRAIN, self._saved)
            self._saved = None

    def poll(self) -> list[HumanEvent]:
        if not self._interactive:
            return []
        events = []
        while select.select([self._stdin], [], [], 0.0)[0]:
            key = os.read(self._stdin.fileno(), 1).decode(errors="ignore").lower()
            if key in self._keys:
                events.append(self._keys[key])
            elif self._on_key is not None:
                self._on_key(key)
        return events

    def show(self, view: ConsoleView) -> None:
        if self._live is not None:
            self._live.update(render_view(view, self._help))
        elif view.last_return is not None and view.episode != self._last_episode_line and view.step == 0:
            self._last_episode_line = view.episode
            self._console.print(f"episode {view.episode}/{view.episodes}: failures so far {view.failures}, "
                                f"last return {view.last_return:.2f}, updates {view.updates}; {view.message}")


def render_view(view: ConsoleView, help_line: str = KEYS_HELP) -> Table:
    """The console panel: one row per figure, then the key help."""
    table = Table(title=f"FARL {view.mode}: {view.task}", show_header=False, expand=False)
    risk = "-" if view.risk is None else f"{view.risk:.3f}"
    last = "-" if view.last_return is None else f"{view.last_return:.2f}"
    for label, value in (("episode", f"{view.episode + 1} / {view.episodes}  ({view.phase})"),
                         ("step", str(view.step)), ("risk C_H", risk), ("overrides", str(view.overrides)),
                         ("failures so far", str(view.failures)), ("return", f"{view.episode_return:.2f}"),
                         ("last episode return", last), ("PPO updates", str(view.updates)),
                         ("status", view.message)):
        table.add_row(label, value)
    table.caption = help_line
    return table
