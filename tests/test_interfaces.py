"""Every farl_interfaces .msg/.srv parses with the rosbags type system and round-trips CDR.

This is what `ros2 bag` recordings of our topics will rely on when read back without ROS.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from rosbags.typesys import Stores, get_typestore
from rosbags.typesys.msg import get_types_from_msg

IFACE = Path(__file__).resolve().parent.parent / "src" / "farl_interfaces"
MSGS = sorted((IFACE / "msg").glob("*.msg"))
SRVS = sorted((IFACE / "srv").glob("*.srv"))

def interface_types() -> dict:
    """Type definitions of every message and of each service's request/response halves."""
    types: dict = {}
    for path in MSGS:
        types.update(get_types_from_msg(path.read_text(), f"farl_interfaces/msg/{path.stem}"))
    for path in SRVS:
        request, response = path.read_text().split("\n---\n")
        types.update(get_types_from_msg(request, f"farl_interfaces/srv/{path.stem}_Request"))
        types.update(get_types_from_msg(response, f"farl_interfaces/srv/{path.stem}_Response"))
    return types

@pytest.fixture(scope="module")
def store():
    typestore = get_typestore(Stores.ROS2_HUMBLE)
    typestore.register(interface_types())
    return typestore

def sample(store, typename: str, seed: int):
    """An instance with every field filled with a non-default value."""
    rng = np.random.default_rng(seed)
    msgdef = store.get_msgdef(typename)
    cls = store.types[typename]
    values = {}
    for name, (kind, detail) in msgdef.fields:
        values[name] = sample_field(store, kind, detail, rng)
    return cls(**values)

def sample_field(store, kind, detail, rng):

    kind_name = getattr(kind, "name", str(kind))
    if kind_name == "BASE":
        base = detail[0]
        return sample_base(base, rng)
    if kind_name == "NAME":
        return sample(store, detail, int(rng.integers(1 << 30)))
    if kind_name in ("ARRAY", "SEQUENCE"):
        (sub_kind, sub_detail), length = detail
        count = length if kind_name == "ARRAY" else 2
        items = [sample_field(store, sub_kind, sub_detail, rng) for _ in range(count)]
        sub_name = getattr(sub_kind, "name", str(sub_kind))
        if sub_name == "BASE" and sub_detail[0] not in ("string", "bool"):
            return np.array(items, dtype=NUMPY[sub_detail[0]])
        return items
    raise AssertionError(f"unhandled field kind {kind}")

NUMPY = {"float64": np.float64, "float32": np.float32, "uint8": np.uint8, "int8": np.int8,
         "uint16": np.uint16, "int16": np.int16, "uint32": np.uint32, "int32": np.int32,
         "uint64": np.uint64, "int64": np.int64, "octet": np.uint8, "char": np.uint8}

def sample_base(base: str, rng):
    if base == "string":
        return f"s{int(rng.integers(1000))}"
    if base == "bool":
        return True
    if base.startswith("float"):
        return float(rng.normal())
    return int(rng.integers(1, 100))

def assert_same(a, b) -> None:
    for name in a.__dataclass_fields__:
        x, y = getattr(a, name), getattr(b, name)
        if hasattr(x, "__dataclass_fields__"):
            assert_same(x, y)
        elif isinstance(x, np.ndarray):
            np.testing.assert_array_equal(x, y)
        elif isinstance(x, list) and x and hasattr(x[0], "__dataclass_fields__"):
            assert len(x) == len(y)
            for u, v in zip(x, y, strict=False):
                assert_same(u, v)
        elif isinstance(x, float):
            assert np.float32(x) == np.float32(y) or x == y
        else:
            assert x == y, name

def test_interfaces_exist() -> None:
    names = {p.stem for p in MSGS}
    assert names == {"ObjectState", "ObjectArray", "RobotState", "Action", "SafetyVerdict", "EpisodeEvent"}
    assert {p.stem for p in SRVS} == {"SaveCheckpoint", "LoadCheckpoint"}

@pytest.mark.parametrize("typename", sorted(interface_types()))
def test_cdr_round_trip(store, typename: str) -> None:
    message = sample(store, typename, seed=len(typename))
    raw = store.serialize_cdr(message, typename)
    back = store.deserialize_cdr(raw, typename)
    assert_same(message, back)
    assert bytes(store.serialize_cdr(back, typename)) == bytes(raw)

def test_constants_are_visible(store) -> None:
    event = store.types["farl_interfaces/msg/EpisodeEvent"]
    assert event.IR_FAILURE == 2 and event.LABEL_RECOVERY == 2
    assert store.types["farl_interfaces/msg/RobotState"].ERROR_WATCHDOG == 4
