"""`farl bench franka` starts an online run again after franky-sim lost its connection, and says so.

The workers are spawned processes; the stand-in worker lives in a module written to tmp_path (spawned
children get the parent's sys.path) and loses the connection the number of times its file says."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from farl.benchmark.franka import LOST_CONNECTIONS, MAX_LOST_CONNECTIONS, METHODS, _lost_connections, _online
from farl_control.bridge import ConnectionLost

WORKER = '''
from pathlib import Path
from farl_control.bridge import ConnectionLost

def run(threads, task_name, method, root, out, episodes):
    out.mkdir(parents=True, exist_ok=True)
    calls = out / "calls"
    calls.write_text(str(int(calls.read_text()) + 1 if calls.exists() else 1))
    done = out / "episodes.csv"
    rows = done.read_text().splitlines()[1:] if done.exists() else []
    losses = int((root / f"{method}.losses").read_text())
    if int(calls.read_text()) <= losses:  # one episode recorded, then franky-sim goes
        done.write_text("\\n".join(["episode,outcome", *rows, f"{len(rows)},timeout"]) + "\\n")
        raise ConnectionLost("lost the connection to the robot at 127.0.0.2 (Net Exception): rerun to resume")
    rest = [f"{k},timeout" for k in range(len(rows), episodes)]
    done.write_text("\\n".join(["episode,outcome", *rows, *rest]) + "\\n")
'''


@pytest.fixture
def worker(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    (tmp_path / "lost_worker.py").write_text(WORKER)
    monkeypatch.syspath_prepend(str(tmp_path))
    import lost_worker

    yield lost_worker.run
    sys.modules.pop("lost_worker", None)


def test_a_run_that_lost_franky_sim_resumes_and_the_losses_are_counted(tmp_path: Path, worker) -> None:
    root, out = tmp_path / "pretrain", tmp_path / "bench"
    root.mkdir()
    (root / "farl.losses").write_text("2")
    (root / "uni-o4.losses").write_text("0")
    _online("bounded-soccer", root, out, episodes=5, jobs=2, progress=False, worker=worker)
    for method, losses in zip(METHODS, (2, 0), strict=True):
        rows = (out / method / "episodes.csv").read_text().splitlines()[1:]
        assert [row.split(",")[0] for row in rows] == [str(k) for k in range(5)]  # resumed, nothing redone
        assert int((out / method / "calls").read_text()) == losses + 1
        assert _lost_connections(out / method) == losses
    lost = json.loads((out / "farl" / LOST_CONNECTIONS).read_text())["lost"]
    assert [entry["episodes_done"] for entry in lost] == [1, 2] and "Net Exception" in lost[0]["error"]


def test_a_run_that_keeps_losing_franky_sim_ends_with_the_error(tmp_path: Path, worker) -> None:
    root, out = tmp_path / "pretrain", tmp_path / "bench"
    root.mkdir()
    (root / "farl.losses").write_text("0")
    (root / "uni-o4.losses").write_text(str(MAX_LOST_CONNECTIONS + 5))
    with pytest.raises(ConnectionLost, match="^lost the connection"):
        _online("bounded-soccer", root, out, episodes=20, jobs=2, progress=False, worker=worker)
    assert _lost_connections(out / "uni-o4") == MAX_LOST_CONNECTIONS + 1  # the last one stands
    assert int((out / "uni-o4" / "calls").read_text()) == MAX_LOST_CONNECTIONS + 1
