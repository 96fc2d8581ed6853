"""Each process that starts ROS nodes gets a domain nobody else on the machine holds."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

CLAIM = ("import os, sys; from pathlib import Path; from farl_core.ros_domain import claim_isolated_domain; "
         "d = claim_isolated_domain(Path(sys.argv[1])); print(d, os.environ['ROS_AUTOMATIC_DISCOVERY_RANGE'], "
         "flush=True); sys.stdin.read()")


def test_concurrent_processes_get_distinct_domains_and_a_freed_one_is_reused(tmp_path: Path) -> None:
    holders = [subprocess.Popen([sys.executable, "-c", CLAIM, str(tmp_path)], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, text=True) for _ in range(3)]
    claimed = [holder.stdout.readline().split() for holder in holders]
    domains = [int(domain) for domain, _ in claimed]
    assert len(set(domains)) == 3 and all(120 <= d < 230 for d in domains)
    assert all(scope == "LOCALHOST" for _, scope in claimed)
    holders[0].communicate("")  # the first holder exits: its domain is free again
    again = subprocess.Popen([sys.executable, "-c", CLAIM, str(tmp_path)], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True)
    assert int(again.stdout.readline().split()[0]) == domains[0]
    for holder in (*holders[1:], again):
        holder.communicate("")
