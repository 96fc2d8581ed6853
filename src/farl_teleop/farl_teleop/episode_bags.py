"""One rosbag2 (MCAP storage) per episode, labelled with its task, role and outcome: the recorder's file layer.

The paper's demonstrations and every online session become training data through bags (issue 15).
This is the ROS-free part of the recorder: it takes serialised messages as the recorder node's raw
subscriptions deliver them (topic, type, receive time, CDR bytes) and writes them with `rosbags`,
so a bag opens with `ros2 bag`, `rosbags` and the `mcap` reader alike.

    ROOT/episode_0007/            a finished episode: metadata.yaml (custom_data: task, role,
                                  outcome, episode), episode_0007.mcap
    ROOT/.episode_0008.partial/   the episode being recorded; renamed when it is finished

A crash (or `kill -9`) therefore leaves every finished episode intact and the one in progress
under a name no reader lists as finished.  Nothing is overwritten: an existing episode is refused,
and a new episode starts only with `min_free_gib` of disk free.  Message definitions of FARL's
own types come from farl_interfaces' .msg files, so the bags describe themselves.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import yaml
from rosbags.rosbag2 import StoragePlugin, Writer
from rosbags.typesys import Stores, get_types_from_msg, get_typestore
from rosbags.typesys.store import Typestore

from farl_core.errors import FarlError

BAG_VERSION = 8
ROLES = ("task", "recovery", "failure", "online")
START_EVENT = 0
OUTCOME_EVENTS = {"success": 1, "ir_failure": 2, "timeout": 3, "aborted": 6}
DISCARD_EVENT = 8
HANDOVER_EVENT = 9
"""EpisodeEvent.msg's START, outcome, DISCARD and HANDOVER constants (for rosbags-typed messages, which carry
no constants)."""
SOURCE_MSG = Path(__file__).resolve().parents[2] / "farl_interfaces" / "msg"


class BagError(FarlError):
    """A bag that cannot be written or read as an episode (exists, no space, damaged, unlabelled)."""


@dataclass(frozen=True)
class EpisodeLabel:
    """What a finished bag says about its episode (its metadata's custom_data)."""

    task: str
    role: str
    outcome: str
    episode: int


def interfaces_msg_dir() -> Path:
    """farl_interfaces' installed .msg files (ament index), else the source tree's (a checkout without a build)."""
    try:
        from ament_index_python.packages import PackageNotFoundError, get_package_share_directory
    except ImportError:
        return SOURCE_MSG
    try:
        return Path(get_package_share_directory("farl_interfaces")) / "msg"
    except PackageNotFoundError:
        return SOURCE_MSG


def farl_typestore(msg_dir: Path | None = None) -> Typestore:
    """ROS 2 Kilted's types plus farl_interfaces' messages (from their .msg files)."""
    msg_dir = msg_dir or interfaces_msg_dir()
    typestore = get_typestore(Stores.ROS2_KILTED)
    types = {}
    for path in sorted(msg_dir.glob("*.msg")):
        types |= get_types_from_msg(path.read_text(), f"farl_interfaces/msg/{path.stem}")
    typestore.register(types)
    return typestore


def episode_name(episode: int) -> str:
    return f"episode_{episode:04d}"


class EpisodeBagWriter:
    """Episodes of one task into bags under `root`, one at a time: begin, write..., finish (or abandon)."""

    def __init__(self, root: Path, task: str, min_free_gib: float = 1.0, typestore: Typestore | None = None) -> None:
        self.root = Path(root)
        self.task = task
        self.min_free_gib = min_free_gib
        self.typestore = typestore or farl_typestore()
        self._writer: Writer | None = None
        self._partial: Path | None = None
        self._connections: dict[str, object] = {}
        self._label: tuple[int, str] | None = None

    def begin(self, episode: int, role: str) -> None:
        """Open the bag of a new episode (refused when it exists, or when the disk is nearly full)."""
        if role not in ROLES:
            raise BagError(f"role '{role}': choose one of {', '.join(ROLES)}")
        if self._writer is not None:
            raise BagError("an episode is being recorded: finish or abandon it first")
        final = self.root / episode_name(episode)
        if final.exists():
            raise BagError(f"{final} exists: a recorded episode is never overwritten (choose another output)")
        self.root.mkdir(parents=True, exist_ok=True)
        free_gib = shutil.disk_usage(self.root).free / 2**30
        if free_gib < self.min_free_gib:
            raise BagError(f"only {free_gib:.1f} GiB free under {self.root} (need {self.min_free_gib:.1f}): free "
                           "disk space or record elsewhere before the next episode")
        partial = self.root / f".{episode_name(episode)}.partial"
        if partial.exists():  # left by a crash: that episode was lost, its recording is garbage
            shutil.rmtree(partial)
        self._writer = Writer(partial, version=BAG_VERSION, storage_plugin=StoragePlugin.MCAP)
        self._writer.open()
        self._partial, self._label, self._connections = partial, (episode, role), {}

    def write(self, topic: str, msgtype: str, stamp_ns: int, data: bytes) -> None:
        """One serialised (CDR) message as received, stamped with its receive time."""
        if self._writer is None:
            raise BagError("no episode is being recorded: begin one first")
        if topic not in self._connections:
            self._connections[topic] = self._writer.add_connection(topic, msgtype, typestore=self.typestore)
        self._writer.write(self._connections[topic], stamp_ns, data)

    def finish(self, outcome: str) -> Path:
        """Label and close the episode's bag, then move it into place; its path."""
        writer, partial, label = self._writer, self._partial, self._label
        if writer is None or partial is None or label is None:
            raise BagError("no episode is being recorded")
        episode, role = label
        for key, value in (("task", self.task), ("role", role), ("outcome", outcome), ("episode", str(episode))):
            writer.set_custom_data(key, value)
        writer.close()
        final = self.root / episode_name(episode)
        partial.rename(final)
        (final / f"{partial.name}.mcap").rename(final / f"{episode_name(episode)}.mcap")
        _rename_in_metadata(final, f"{partial.name}.mcap", f"{episode_name(episode)}.mcap")
        self._writer = self._partial = self._label = None
        return final

    def abandon(self) -> None:
        """Drop the episode being recorded (the operator re-records it)."""
        if self._writer is not None:
            self._writer.close()
        if self._partial is not None and self._partial.exists():
            shutil.rmtree(self._partial)
        self._writer = self._partial = self._label = None


def _rename_in_metadata(bag: Path, old: str, new: str) -> None:
    metadata = bag / "metadata.yaml"
    metadata.write_text(metadata.read_text().replace(old, new))


def read_label(bag: Path) -> EpisodeLabel:
    """The label of a finished episode's bag (one-line BagError for an unlabelled or unreadable one)."""
    metadata = Path(bag) / "metadata.yaml"
    try:
        info = yaml.safe_load(metadata.read_text())["rosbag2_bagfile_information"]
        custom = info["custom_data"]
        return EpisodeLabel(custom["task"], custom["role"], custom["outcome"], int(custom["episode"]))
    except (OSError, KeyError, TypeError, ValueError, yaml.YAMLError) as exc:
        raise BagError(f"{bag}: not a labelled FARL episode bag ({type(exc).__name__}: {exc}); record it with the "
                       "FARL recorder, or pass the episodes' role on the command line") from None


def finished_episodes(root: Path) -> list[Path]:
    """The finished episode bags under `root`, in episode order (partial recordings are not listed)."""
    return sorted(p for p in Path(root).glob("episode_*") if (p / "metadata.yaml").is_file())
