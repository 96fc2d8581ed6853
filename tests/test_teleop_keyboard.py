"""`farl teleop --device keyboard` in a terminal (a pseudo-terminal here, as over SSH): the session keys start and
save the episode, held motion keys move the arm through the bridge, and no key means no motion (the deadman)."""

from __future__ import annotations

import os
import pty
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

from farl.data_build import bag_paths, read_bag
from farl_control.state_messages import robot_state_from_msg


def test_keyboard_teleop_moves_only_while_a_key_is_held_and_saves_on_y(tmp_path: Path) -> None:
    main, terminal = pty.openpty()
    out = tmp_path / "bags"
    command = ["teleop", "--task", "bounded-soccer", "--role", "task", "--device", "keyboard", "--camera",
               "ground-truth", "--episodes", "1", "--out", str(out)]
    teleop = subprocess.Popen([sys.executable, "-m", "farl.cli", *command], stdin=terminal, stdout=terminal,
                              stderr=terminal)
    screen = bytearray()

    def read_screen() -> None:  # the panel, drawn on the terminal (the pty must be drained or the process blocks)
        while True:
            try:
                chunk = os.read(main, 65536)
            except OSError:
                return
            if not chunk:
                return
            screen.extend(chunk)

    reader = threading.Thread(target=read_screen, daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + 120.0
        while b"press s to start" not in screen and time.monotonic() < deadline:
            assert teleop.poll() is None, screen[-2000:].decode(errors="replace")
            time.sleep(0.2)
        assert b"press s to start" in screen, screen[-2000:].decode(errors="replace")
        os.write(main, b"s")
        time.sleep(2.0)                       # idle: the deadman holds the arm
        for _ in range(80):                   # hold i (+x) for 4 s, as a terminal repeats a held key: at least 5
            os.write(main, b"i")              # ticks of the 5 Hz loop on a loaded machine too (2 s gave 4 beside
            time.sleep(0.05)                  # a benchmark on 2 cores)
        time.sleep(2.0)                       # released
        os.write(main, b"y")                  # save as a success
        assert teleop.wait(120) == 0, screen[-2000:].decode(errors="replace")
    finally:
        if teleop.poll() is None:
            teleop.kill()
        os.close(terminal)
        os.close(main)
    [bag] = bag_paths([out])
    label, messages = read_bag(bag)
    assert (label.role, label.outcome) == ("task", "success")
    pushes = np.array([command.delta[0] for _, command in messages["/farl/action/command"]])
    assert set(np.round(pushes, 3)) <= {0.0, 0.5} and (pushes == 0.5).sum() >= 5 and (pushes == 0.0).sum() >= 5
    first_push = int(np.argmax(pushes == 0.5))
    assert (pushes[:first_push] == 0.0).all() and pushes[-1] == 0.0   # idle before, released after
    x = [robot_state_from_msg(m)[1].ee_position[0] for _, m in messages["/farl/robot_state"]]
    assert x[-1] - x[0] > 0.03                                         # the arm went forward, and only then
