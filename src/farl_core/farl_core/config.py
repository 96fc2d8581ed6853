"""Typed configuration: YAML in ROS 2 parameter-file layout -> validated frozen dataclasses.

One YAML file serves both drivers: `ros2 run ... --params-file config/farl.yaml` reads the
`<node>: ros__parameters:` sections natively, and the ROS-free runner, CLI and tests load the
same sections here into the component's config dataclass.  Validation happens once, at load
time, so a typo surfaces as one line naming the file, the key and the expected form instead
of as a wrong robot motion later.

Schemas are ordinary dataclasses.  Numeric bounds are attached with `param(default, gt=...)`;
cross-field rules go in `__post_init__` and raise `ValueError`, which is reported with the
file and section it came from.
"""

from __future__ import annotations

import array
import dataclasses
import math
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

import yaml

from farl_core.errors import ConfigError

T = TypeVar("T")

ROS_PARAMS_KEY = "ros__parameters"


def param(default: Any, *, gt: float | None = None, ge: float | None = None,
          lt: float | None = None, le: float | None = None) -> Any:
    """A dataclass field whose numeric value (or each element of a tuple) must lie in bounds."""
    bounds = {k: v for k, v in (("gt", gt), ("ge", ge), ("lt", lt), ("le", le)) if v is not None}
    return dataclasses.field(default=default, metadata={"bounds": bounds})


def load_section(path: str | Path, node: str, schema: type[T]) -> T:
    """Load `<node>: ros__parameters:` from a YAML file into `schema`, validated."""
    path = Path(path)
    document = read_yaml(path)
    if node not in document:
        known = ", ".join(sorted(document)) or "none"
        raise ConfigError(f"{path}: no section '{node}' (sections present: {known}); "
                          f"add '{node}: {{{ROS_PARAMS_KEY}: {{...}}}}'")
    return from_mapping(schema, section_parameters(path, node, document[node]), where=f"{path}: {node}")


def load_file(path: str | Path, schemas: Mapping[str, type]) -> dict[str, Any]:
    """Validate every section of a file against `schemas` (node name -> dataclass)."""
    path = Path(path)
    document = read_yaml(path)
    configs = {}
    for node, section in document.items():
        if node not in schemas:
            raise ConfigError(f"{path}: unknown section '{node}' "
                              f"(expected one of: {', '.join(sorted(schemas))})")
        configs[node] = from_mapping(schemas[node], section_parameters(path, node, section),
                                     where=f"{path}: {node}")
    return configs


def read_yaml(path: Path) -> dict[str, Any]:
    """Parse a YAML file whose top level is a mapping of node names."""
    if not path.is_file():
        raise ConfigError(f"config file not found: {path} (pass the path of an existing YAML file, "
                          "e.g. config/farl.yaml)")
    try:
        document = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"{path}: invalid YAML{where}: {problem}") from None
    if document is None:
        return {}
    if not isinstance(document, dict):
        raise ConfigError(f"{path}: top level must map node names to "
                          f"'{{{ROS_PARAMS_KEY}: ...}}', got {type(document).__name__}")
    return document


def section_parameters(path: Path, node: str, section: Any) -> dict[str, Any]:
    """The `ros__parameters` mapping of one node section."""
    if not isinstance(section, dict) or set(section) != {ROS_PARAMS_KEY}:
        raise ConfigError(f"{path}: {node}: expected exactly one key '{ROS_PARAMS_KEY}' "
                          "(ROS 2 parameter-file layout)")
    params = section[ROS_PARAMS_KEY]
    if params is None:
        return {}
    if not isinstance(params, dict):
        raise ConfigError(f"{path}: {node}.{ROS_PARAMS_KEY}: expected a mapping of parameters")
    return params


def from_mapping(schema: type[T], data: Mapping[str, Any], *, where: str) -> T:
    """Build dataclass `schema` from `data`, rejecting unknown keys, wrong types and bad ranges."""
    hints = typing.get_type_hints(schema)
    fields = {f.name: f for f in dataclasses.fields(schema)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ConfigError(f"{where}.{unknown[0]}: unknown key (expected one of: "
                          f"{', '.join(fields)})")
    values = {}
    for name, value in data.items():
        key = f"{where}.{name}"
        values[name] = _coerce(hints[name], value, key)
        _check_bounds(fields[name].metadata.get("bounds", {}), values[name], key)
    try:
        return schema(**values)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{where}: {exc}") from None


def nest_parameters(flat: Mapping[str, Any]) -> dict[str, Any]:
    """ROS 2 parameters as a node sees them ("colour.ranges.ball.lower": [...]) back into the nested
    mapping of the parameter file, so a node builds its config with `from_mapping` like the CLI."""
    nested: dict[str, Any] = {}
    for name, value in flat.items():
        *parents, leaf = name.split(".")
        level = nested
        for part in parents:
            level = level.setdefault(part, {})
            if not isinstance(level, dict):
                raise ConfigError(f"parameter {name}: '{part}' is both a value and a group")
        level[leaf] = value
    return nested


# Parameters rclpy declares on every node by itself: Humble `use_sim_time`; Jazzy and later also
# `start_type_description_service`; `qos_overrides.<topic>.*` where a publisher or subscription
# accepts QoS overrides. A node checks its own section of the parameter file with the CLI's
# one-line errors (an unknown key is a mistake), so these are set aside first, never validated.
ROS_BUILTIN_PARAMETERS = frozenset({"use_sim_time", "start_type_description_service"})
ROS_BUILTIN_PREFIXES = ("qos_overrides.",)


def node_parameters(flat: Mapping[str, Any]) -> dict[str, Any]:
    """A ROS node's own parameters (name -> value, as rclpy reports them) as the parameter file's
    nested mapping: rclpy's built-ins dropped, arrays (rclpy may hand out `array.array`) as lists."""
    own = {name: list(value) if isinstance(value, array.array) else value for name, value in flat.items()
           if name not in ROS_BUILTIN_PARAMETERS and not name.startswith(ROS_BUILTIN_PREFIXES)}
    return nest_parameters(own)


def to_mapping(config: Any) -> dict[str, Any]:
    """Plain dict of a config dataclass (tuples as lists), e.g. to write a parameter file."""
    return {f.name: _plain(getattr(config, f.name)) for f in dataclasses.fields(config)}


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value):
        return to_mapping(value)
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def _coerce(tp: Any, value: Any, key: str) -> Any:
    """Check `value` against annotation `tp`; return it in the schema's Python type."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        options = [a for a in args if a is not type(None)]
        errors = []
        for option in options:
            try:
                return _coerce(option, value, key)
            except ConfigError as exc:
                errors.append(exc)
        raise errors[0]
    if origin is typing.Literal:
        if value not in args:
            raise _expected(key, "one of " + ", ".join(repr(a) for a in args), value)
        return value
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise _expected(key, f"a mapping of {tp.__name__} parameters", value)
        return from_mapping(tp, value, where=key)
    if origin is dict:
        # Named entries (e.g. one HSV range per object) as a nested mapping: ROS 2 parameter files
        # hold these as dotted names (colour.ranges.ball.lower); a list of mappings they cannot.
        if args[0] is not str:
            raise ConfigError(f"{key}: schema type {tp!r} is not supported by the config loader (string keys only)")
        if not isinstance(value, dict):
            raise _expected(key, "a mapping of names to values", value)
        return {str(name): _coerce(args[1], item, f"{key}.{name}") for name, item in value.items()}
    if origin is tuple:
        if not isinstance(value, list | tuple):
            raise _expected(key, _describe(tp), value)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_coerce(args[0], v, f"{key}[{i}]") for i, v in enumerate(value))
        if len(value) != len(args):
            raise _expected(key, _describe(tp), value)
        return tuple(_coerce(a, v, f"{key}[{i}]") for i, (a, v) in enumerate(zip(args, value, strict=False)))
    if tp is bool:
        if not isinstance(value, bool):
            raise _expected(key, "true or false", value)
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise _expected(key, "an integer", value)
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
            raise _expected(key, "a number", value)
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise _expected(key, "a string", value)
        return value
    raise ConfigError(f"{key}: schema type {tp!r} is not supported by the config loader")


def _check_bounds(bounds: Mapping[str, float], value: Any, key: str) -> None:
    if not bounds or value is None:
        return
    items = value if isinstance(value, tuple) else (value,)
    tests = {"gt": (lambda v, b: v > b, ">"), "ge": (lambda v, b: v >= b, ">="),
             "lt": (lambda v, b: v < b, "<"), "le": (lambda v, b: v <= b, "<=")}
    for item in items:
        for name, bound in bounds.items():
            ok, symbol = tests[name]
            if not ok(item, bound):
                rule = " and ".join(f"{tests[n][1]} {b}" for n, b in bounds.items())
                raise _expected(key, f"a value {rule}", value)


def _describe(tp: Any) -> str:
    args = typing.get_args(tp)
    if len(args) == 2 and args[1] is Ellipsis:
        return f"a list of {args[0].__name__}"
    return f"a list of {len(args)} numbers" if all(a in (int, float) for a in args) else f"{tp}"


def _expected(key: str, expected: str, value: Any) -> ConfigError:
    shown = list(value) if isinstance(value, tuple) else value
    return ConfigError(f"{key}: expected {expected}, got {shown!r}")
