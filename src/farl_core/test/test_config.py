"""The config loader turns every user mistake into one line naming file, key and expected form."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pytest

from farl_core.config import from_mapping, load_file, load_section, nest_parameters, param, to_mapping
from farl_core.errors import ConfigError


@dataclass(frozen=True)
class Inner:
    gains: tuple[float, float] = (1.0, 2.0)
    mode: str = "a"


@dataclass(frozen=True)
class Outer:
    rate_hz: float = param(5.0, gt=0.0)
    horizon: int = param(5, ge=1, le=50)
    enabled: bool = True
    inner: Inner = field(default_factory=Inner)
    low: float = 0.0
    high: float = 1.0

    def __post_init__(self) -> None:
        if self.low >= self.high:
            raise ValueError(f"low ({self.low}) must be below high ({self.high})")


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "node.yaml"
    path.write_text(text)
    return path


def load_error(tmp_path: Path, params: str) -> str:
    path = write(tmp_path, "node:\n  ros__parameters:\n" + params)
    with pytest.raises(ConfigError) as info:
        load_section(path, "node", Outer)
    message = str(info.value)
    assert "\n" not in message
    assert str(path) in message
    return message


def test_values_are_loaded_and_typed(tmp_path: Path) -> None:
    path = write(tmp_path, "node:\n  ros__parameters:\n    rate_hz: 10\n    inner: {gains: [3, 4.5]}\n")
    cfg = load_section(path, "node", Outer)
    assert cfg.rate_hz == 10.0 and isinstance(cfg.rate_hz, float)
    assert cfg.inner.gains == (3.0, 4.5)
    assert cfg.horizon == 5  # omitted keys keep their defaults


def test_unknown_key_names_key_and_choices(tmp_path: Path) -> None:
    message = load_error(tmp_path, "    rate_hzz: 5.0\n")
    assert "node.rate_hzz: unknown key" in message
    assert "rate_hz" in message.split("expected one of")[1]


def test_unknown_nested_key(tmp_path: Path) -> None:
    assert "node.inner.gain: unknown key" in load_error(tmp_path, "    inner: {gain: [1.0, 2.0]}\n")


def test_wrong_type(tmp_path: Path) -> None:
    message = load_error(tmp_path, "    horizon: five\n")
    assert "node.horizon: expected an integer, got 'five'" in message


def test_bool_is_not_a_number(tmp_path: Path) -> None:
    assert "node.rate_hz: expected a number" in load_error(tmp_path, "    rate_hz: true\n")


def test_out_of_range(tmp_path: Path) -> None:
    message = load_error(tmp_path, "    horizon: 80\n")
    assert "node.horizon: expected a value >= 1 and <= 50, got 80" in message
    assert "expected a value > 0.0" in load_error(tmp_path, "    rate_hz: -1.0\n")


def test_wrong_tuple_length(tmp_path: Path) -> None:
    assert "node.inner.gains: expected a list of 2 numbers" in load_error(
        tmp_path, "    inner: {gains: [1.0, 2.0, 3.0]}\n")


def test_cross_field_rule_reports_section(tmp_path: Path) -> None:
    message = load_error(tmp_path, "    low: 2.0\n    high: 1.0\n")
    assert "node: low (2.0) must be below high (1.0)" in message


def test_missing_file_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"config file not found: .*missing\.yaml"):
        load_section(tmp_path / "missing.yaml", "node", Outer)


def test_invalid_yaml_gives_line(tmp_path: Path) -> None:
    path = write(tmp_path, "node:\n  ros__parameters:\n    rate_hz: [1.0\n")
    with pytest.raises(ConfigError, match=r"invalid YAML at line \d+"):
        load_section(path, "node", Outer)


def test_missing_section_and_bad_layout(tmp_path: Path) -> None:
    path = write(tmp_path, "other:\n  ros__parameters: {}\n")
    with pytest.raises(ConfigError, match="no section 'node'"):
        load_section(path, "node", Outer)
    path = write(tmp_path, "node:\n  rate_hz: 5.0\n")
    with pytest.raises(ConfigError, match="expected exactly one key 'ros__parameters'"):
        load_section(path, "node", Outer)


def test_load_file_rejects_unknown_section(tmp_path: Path) -> None:
    path = write(tmp_path, "node:\n  ros__parameters: {}\nnoed:\n  ros__parameters: {}\n")
    with pytest.raises(ConfigError, match="unknown section 'noed'"):
        load_file(path, {"node": Outer})


def test_to_mapping_round_trips() -> None:
    cfg = Outer(rate_hz=7.0, inner=Inner(gains=(0.5, 0.25), mode="b"))
    assert from_mapping(Outer, to_mapping(cfg), where="x") == cfg


@dataclass(frozen=True)
class Named:
    """Entries keyed by name, the layout ROS 2 parameter files can hold (no lists of mappings)."""

    entries: dict[str, Inner] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)


def test_named_entries_load_check_and_round_trip(tmp_path: Path) -> None:
    path = write(tmp_path, "node:\n  ros__parameters:\n    entries:\n      ball: {gains: [1, 2], mode: b}\n"
                           "      cup: {}\n    labels: {sports ball: ball}\n")
    cfg = load_section(path, "node", Named)
    assert cfg.entries == {"ball": Inner(gains=(1.0, 2.0), mode="b"), "cup": Inner()}
    assert cfg.labels == {"sports ball": "ball"}
    assert from_mapping(Named, to_mapping(cfg), where="x") == cfg
    bad = write(tmp_path, "node:\n  ros__parameters:\n    entries:\n      ball: {gains: [1]}\n")
    with pytest.raises(ConfigError, match=r"node\.entries\.ball\.gains: expected a list of 2 numbers"):
        load_section(bad, "node", Named)
    with pytest.raises(ConfigError, match=r"node\.labels: expected a mapping of names to values"):
        load_section(write(tmp_path, "node:\n  ros__parameters:\n    labels: [a, b]\n"), "node", Named)


def test_dotted_ros_parameter_names_nest_back_into_the_file_layout() -> None:
    flat = {"rate_hz": 10.0, "inner.gains": [3.0, 4.0], "inner.mode": "b"}
    assert from_mapping(Outer, nest_parameters(flat), where="node") == Outer(rate_hz=10.0, inner=Inner((3.0, 4.0), "b"))
    with pytest.raises(ConfigError, match="parameter inner.mode.x: 'mode' is both a value and a group"):
        nest_parameters({"inner.mode": "a", "inner.mode.x": 1})
