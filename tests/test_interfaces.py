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

def registered(distro: Stores):
    """rosbags' type system of a distro with farl_interfaces registered from the .msg/.srv files."""
    typestore = get_typestore(distro)
    typestore.register(interface_types())
    return typestore


@pytest.fixture(scope="module")
def store():
    return registered(Stores.ROS2_HUMBLE)

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


# --- against the real serializer: rclpy's CDR (Fast DDS) and rosbags' must agree byte for byte ----

def rclpy_interfaces() -> dict[str, type]:
    """Every rosidl-generated class of farl_interfaces by rosbags type name (services: both halves)."""
    import farl_interfaces.msg as msgs
    import farl_interfaces.srv as srvs

    classes = {f"farl_interfaces/msg/{p.stem}": getattr(msgs, p.stem) for p in MSGS}
    for path in SRVS:  # rosbags files service halves as farl_interfaces/srv/msg/<Name>_Request
        service = getattr(srvs, path.stem)
        classes[f"farl_interfaces/srv/msg/{path.stem}_Request"] = service.Request
        classes[f"farl_interfaces/srv/msg/{path.stem}_Response"] = service.Response
    return classes


INTEGER_RANGES = {"octet": (0, 255), "uint8": (0, 255), "char": (0, 255), "int8": (-128, 127),
                  "uint16": (0, 65535), "int16": (-32768, 32767), "uint32": (0, 2**32 - 1),
                  "int32": (-2**31, 2**31 - 1), "uint64": (0, 2**63), "int64": (-2**63, 2**63 - 1)}


def fill_rclpy(cls: type, rng: np.random.Generator):
    """An rclpy message with every field set to a random non-default value, through its rosidl slot types."""
    message = cls()
    for name, slot in zip(cls.get_fields_and_field_types(), cls.SLOT_TYPES, strict=True):
        setattr(message, name, rclpy_value(slot, rng))
    return message


def rclpy_value(slot, rng: np.random.Generator):
    import importlib

    from rosidl_parser import definition as d

    if isinstance(slot, d.Array):
        return [rclpy_value(slot.value_type, rng) for _ in range(slot.size)]
    if isinstance(slot, d.AbstractSequence):
        return [rclpy_value(slot.value_type, rng) for _ in range(int(rng.integers(1, 4)))]
    if isinstance(slot, d.AbstractString):
        return f"text-{int(rng.integers(10_000))}"
    if isinstance(slot, d.NamespacedType):
        return fill_rclpy(getattr(importlib.import_module(".".join(slot.namespaces)), slot.name), rng)
    if slot.typename == "boolean":
        return bool(rng.integers(2)) or True
    if slot.typename in ("float", "double"):  # float32-exact values, so both sides hold the same number
        return float(np.float32(rng.normal(scale=10.0)))
    low, high = INTEGER_RANGES[slot.typename]
    return int(rng.integers(low, high, endpoint=True))


def assert_rclpy_equals_rosbags(ours, theirs, where: str) -> None:
    """Field by field: an rclpy message and the rosbags message decoded from its bytes hold the same values."""
    for name in type(ours).get_fields_and_field_types():
        a, b = getattr(ours, name), getattr(theirs, name)
        if hasattr(a, "get_fields_and_field_types"):
            assert_rclpy_equals_rosbags(a, b, f"{where}.{name}")
        elif isinstance(b, list) and b and hasattr(b[0], "__dataclass_fields__"):
            assert len(a) == len(b), f"{where}.{name}"
            for i, (x, y) in enumerate(zip(a, b, strict=True)):
                assert_rclpy_equals_rosbags(x, y, f"{where}.{name}[{i}]")
        elif isinstance(b, np.ndarray):
            np.testing.assert_array_equal(np.asarray(a, dtype=b.dtype), b, err_msg=f"{where}.{name}")
        else:
            assert a == b, f"{where}.{name}: rclpy {a!r} vs rosbags {b!r}"


PRIMITIVE_SIZES = {"bool": 1, "byte": 1, "char": 1, "int8": 1, "uint8": 1, "octet": 1, "int16": 2, "uint16": 2,
                   "int32": 4, "uint32": 4, "float32": 4, "int64": 8, "uint64": 8, "float64": 8}
CDR_HEADER = 4  # encapsulation header; CDR aligns every field relative to the byte after it


def padding_bytes(store, typename: str, raw: bytes) -> set[int]:
    """Offsets of the alignment padding in a CDR (XCDR1, little-endian) message, found by walking its fields.

    Why: Fast DDS leaves padding bytes uninitialised (whatever its buffer held) where rosbags writes
    zeros, so the two encodings are compared byte for byte everywhere else, and rosbags' padding is
    checked to be zero.
    """
    padding: set[int] = set()
    position = CDR_HEADER

    def align(size: int) -> None:
        nonlocal position
        while (position - CDR_HEADER) % size:
            padding.add(position)
            position += 1

    def uint32() -> int:
        nonlocal position
        align(4)
        value = int.from_bytes(raw[position:position + 4], "little")
        position += 4
        return value

    def walk(kind, detail) -> None:
        nonlocal position
        name = kind.name
        if name == "BASE":
            if detail[0] == "string":
                length = uint32()  # includes the terminating NUL; no alignment after
                position += length
            else:
                align(PRIMITIVE_SIZES[detail[0]])
                position += PRIMITIVE_SIZES[detail[0]]
        elif name == "NAME":
            for _, (sub_kind, sub_detail) in store.get_msgdef(detail).fields:
                walk(sub_kind, sub_detail)
        elif name in ("ARRAY", "SEQUENCE"):
            (sub_kind, sub_detail), length = detail
            for _ in range(length if name == "ARRAY" else uint32()):
                walk(sub_kind, sub_detail)
        else:
            raise AssertionError(f"unhandled field kind {kind}")

    walk(type("Kind", (), {"name": "NAME"}), typename)
    assert position == len(raw), f"{typename}: walked {position} of {len(raw)} bytes"
    return padding


@pytest.fixture(scope="module")
def kilted_store():
    """Kilted: the distro of the ROS 2 wheels rclpy comes from here."""
    return registered(Stores.ROS2_KILTED)


def test_every_interface_is_generated_by_rosidl() -> None:
    assert sorted(rclpy_interfaces()) == sorted(interface_types())


@pytest.mark.parametrize("typename", sorted(interface_types()))
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_rclpy_serialised_bytes_decode_with_rosbags_and_reencode_identically(kilted_store, typename: str,
                                                                             seed: int) -> None:
    from rclpy.serialization import deserialize_message, serialize_message

    cls = rclpy_interfaces()[typename]
    message = fill_rclpy(cls, np.random.default_rng(seed))
    raw = serialize_message(message)
    decoded = kilted_store.deserialize_cdr(raw, typename)
    assert_rclpy_equals_rosbags(message, decoded, typename)
    ours = bytes(kilted_store.serialize_cdr(decoded, typename))
    assert len(ours) == len(raw)
    padding = padding_bytes(kilted_store, typename, raw)
    differ = [i for i, (a, b) in enumerate(zip(ours, raw, strict=True)) if a != b and i not in padding]
    assert not differ, f"{typename}: rosbags and rclpy differ at data bytes {differ}"
    assert all(ours[i] == 0 for i in padding)
    assert deserialize_message(ours, cls) == message  # and rclpy reads rosbags' bytes back


def test_constants_match_between_rosidl_and_rosbags(kilted_store) -> None:
    for typename, cls in rclpy_interfaces().items():
        theirs = kilted_store.types[typename]
        assert constants_of(cls) == constants_of(theirs), typename


def constants_of(cls: type) -> dict:
    """The message's constants: upper-case class attributes holding a value (not rclpy's SLOT_TYPES)."""
    return {name: getattr(cls, name) for name in dir(cls)
            if name.isupper() and not name.startswith("_") and isinstance(getattr(cls, name), int | float | str)}
