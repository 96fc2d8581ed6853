"""The operator console: keys from a real terminal (a pseudo-terminal here, as over SSH) and its panel."""

from __future__ import annotations

import io
import os
import pty

from farl.console import ConsoleView, ScriptedEvent, ScriptedOperator, TerminalConsole
from farl_core.episodes import HumanEvent

VIEW = ConsoleView(task="fragile-push-wall", mode="finetune", episode=2, episodes=50, phase="running", step=17,
                   risk=0.412, overrides=3, failures=1, episode_return=-4.5, last_return=-8.25, updates=2,
                   message="running")


def test_keys_typed_in_a_terminal_become_episode_events() -> None:
    master, slave = pty.openpty()
    with os.fdopen(slave, "r") as terminal, TerminalConsole(stdin=terminal, stream=io.StringIO()) as console:
        os.write(master, b"sxYfaq")
        events = []
        for _ in range(50):  # the bytes cross the pty asynchronously
            events += console.poll()
            if len(events) == 5:
                break
    os.close(master)
    assert events == [HumanEvent.START, HumanEvent.SUCCESS, HumanEvent.FAILURE, HumanEvent.ABORT, HumanEvent.STOP]


def test_the_panel_shows_the_figures_an_operator_needs() -> None:
    master, slave = pty.openpty()
    drawn = io.StringIO()
    with os.fdopen(slave, "r") as terminal, TerminalConsole(stdin=terminal, stream=drawn) as console:
        console.show(VIEW)
    os.close(master)
    text = drawn.getvalue()
    for expected in ("3 / 50", "0.412", "failures so far", "-4.50", "-8.25", "s start", "f failure"):
        assert expected in text, expected


def test_without_a_terminal_it_prints_one_line_per_episode_and_reads_no_keys() -> None:
    drawn = io.StringIO()
    console = TerminalConsole(stdin=io.StringIO("s"), stream=drawn)
    with console:
        console.show(VIEW.__class__(**{**VIEW.__dict__, "step": 0}))
        console.show(VIEW.__class__(**{**VIEW.__dict__, "step": 0}))
        assert console.poll() == []
    assert drawn.getvalue().count("episode 2/50") == 1


def test_a_script_delivers_its_events_at_their_tick() -> None:
    operator = ScriptedOperator([ScriptedEvent(2, 17, HumanEvent.FAILURE), ScriptedEvent(3, 0, HumanEvent.START)])
    assert operator.poll() == []
    operator.show(VIEW.__class__(**{**VIEW.__dict__, "step": 16}))
    assert operator.poll() == []
    operator.show(VIEW)
    assert operator.poll() == [HumanEvent.FAILURE] and operator.poll() == []
