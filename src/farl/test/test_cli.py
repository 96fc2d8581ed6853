"""The `farl` console script: doctor, config check/show, and the one-line error boundary."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import yaml

from farl import cli, doctor
from farl.config_files import NODE_SCHEMAS
from farl_core.config import load_file

FARL = Path(sys.executable).with_name("farl")


def run_farl(*args: str) -> subprocess.CompletedProcess[str]:
    """Run the installed console script, as a user would."""
    return subprocess.run([str(FARL), *args], capture_output=True, text=True, timeout=300)


def test_doctor_json_reports_every_check_and_passes_here() -> None:
    proc = run_farl("doctor", "--json")
    records = {r["name"]: r for r in json.loads(proc.stdout)}
    assert set(records) == {"python", "torch", "cuda", "mujoco", "franky", "franky-sim",
                            "realsense", "rclpy"}
    # This machine is provisioned by scripts/setup.sh: everything required must work.
    assert proc.returncode == 0, proc.stdout
    assert "osmesa ok" in records["mujoco"]["detail"]
    assert all(r["fix"] for r in records.values() if r["status"] != "ok")


def test_doctor_failure_exits_nonzero_with_fix(capsys, monkeypatch) -> None:
    broken = (lambda: doctor.check_module("franky", "franky_not_installed_here", "pip install franky-control"),
              doctor.check_python)
    monkeypatch.setattr(doctor, "CHECKS", broken)
    assert cli.main(["doctor"]) == 1
    out = capsys.readouterr().out
    assert "FAIL  franky" in out and "fix: pip install franky-control" in out
    assert "1 problem(s)" in out


def test_gl_probe_reports_unknown_backend() -> None:
    ok, why = doctor.probe_mujoco_gl("no_such_backend", timeout_s=60)
    assert not ok and why


def test_config_check_accepts_shipped_file() -> None:
    proc = run_farl("config", "check")
    assert proc.returncode == 0, proc.stderr
    assert "ok (farl_bridge, farl_training)" in proc.stdout


def test_config_check_bad_value_is_one_line_error(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("farl_bridge:\n  ros__parameters:\n    control_rate_hz: -5.0\n")
    proc = run_farl("config", "check", str(path))
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1
    assert proc.stderr.startswith(f"farl: error: {path}: farl_bridge.control_rate_hz: expected a value > 0.0")


def test_config_check_missing_file(tmp_path: Path) -> None:
    proc = run_farl("config", "check", str(tmp_path / "nope.yaml"))
    assert proc.returncode == 2 and "config file not found" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_config_show_is_a_valid_parameter_file(tmp_path: Path, capsys) -> None:
    assert cli.main(["config", "show"]) == 0
    path = tmp_path / "defaults.yaml"
    path.write_text(capsys.readouterr().out)
    configs = load_file(path, NODE_SCHEMAS)
    assert configs == {node: schema() for node, schema in NODE_SCHEMAS.items()}
    assert yaml.safe_load(path.read_text())["farl_bridge"]["ros__parameters"]["robot"] == "sim"
