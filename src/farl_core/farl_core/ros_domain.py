"""A ROS 2 domain of this process's own, for tests and benchmarks that start nodes.

Why: DDS discovers every participant on the same domain, so two pytest-xdist workers (or a test
run and a benchmark on a shared machine) that both start a `farl_perception` would receive each
other's `/farl/objects`. Each caller claims a domain id nobody else on the machine holds, by an
exclusive lock on a file per id, held until the process exits; discovery is kept on loopback.
Child processes (the nodes a test starts) inherit the environment and so join the same domain.
ROS-free: it only sets environment variables, which rclpy reads at `rclpy.init()`.
"""

from __future__ import annotations

import fcntl
import os
import tempfile
from pathlib import Path

# Away from 0 (every ROS user's default) and below 233, the last id Fast DDS maps to valid ports.
DOMAIN_IDS = range(120, 230)
_held: list[int] = []  # the lock files' descriptors: closing one releases its domain


def claim_isolated_domain(lock_dir: Path | None = None) -> int:
    """Set ROS_DOMAIN_ID to a free id and keep discovery on loopback; returns the id.

    Idempotent within a process (a second call returns the id already held).
    """
    if _held:
        return int(os.environ["ROS_DOMAIN_ID"])
    lock_dir = lock_dir or Path(tempfile.gettempdir()) / "farl-ros-domains"
    lock_dir.mkdir(parents=True, exist_ok=True)
    for domain in DOMAIN_IDS:
        fd = os.open(lock_dir / f"{domain}.lock", os.O_CREAT | os.O_RDWR, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            continue
        _held.append(fd)
        os.environ["ROS_DOMAIN_ID"] = str(domain)
        # Kilted/Jazzy: discovery range; Humble only knows ROS_LOCALHOST_ONLY.
        os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
        if os.environ.get("ROS_DISTRO") == "humble":
            os.environ["ROS_LOCALHOST_ONLY"] = "1"
        return domain
    raise RuntimeError(f"every ROS domain id in {DOMAIN_IDS.start}..{DOMAIN_IDS.stop - 1} is held by another "
                       f"process (lock files in {lock_dir}); stop other FARL test runs")
