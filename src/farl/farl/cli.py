"""The `farl` command: one verb per user job.

Errors a user can cause (`FarlError`) are caught here, once, and printed as a single line;
anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

import yaml
from farl_core.config import ROS_PARAMS_KEY, load_file, to_mapping
from farl_core.errors import FarlError

from farl import __version__
from farl.config_files import NODE_SCHEMAS, default_config_path


def cmd_doctor(args: argparse.Namespace) -> int:
    from farl.doctor import as_records, format_report, run_checks

    checks = run_checks()
    if args.json:
        print(json.dumps(as_records(checks), indent=2))
    else:
        print(format_report(checks))
    return 1 if any(c.status == "fail" for c in checks) else 0


def cmd_config_check(args: argparse.Namespace) -> int:
    path = Path(args.path) if args.path else default_config_path()
    configs = load_file(path, NODE_SCHEMAS)
    print(f"{path}: ok ({', '.join(configs) or 'no sections'})")
    return 0


def cmd_config_show(args: argparse.Namespace) -> int:
    """Print the defaults of every node as a parameter file, a starting point to edit."""
    document = {node: {ROS_PARAMS_KEY: to_mapping(schema())} for node, schema in NODE_SCHEMAS.items()}
    print(yaml.safe_dump(document, sort_keys=False, default_flow_style=None), end="")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="farl", description="Failure-aware offline-to-online RL "
                                     "for manipulation: simulation, training and the Franka stack.")
    parser.add_argument("--version", action="version", version=f"farl {__version__}")
    verbs = parser.add_subparsers(dest="verb", required=True, metavar="COMMAND")

    doctor = verbs.add_parser("doctor", help="report what this machine can run, with fixes")
    doctor.add_argument("--json", action="store_true", help="machine-readable output")
    doctor.set_defaults(func=cmd_doctor)

    config = verbs.add_parser("config", help="validate or print configuration files")
    config_verbs = config.add_subparsers(dest="config_verb", required=True, metavar="ACTION")
    check = config_verbs.add_parser("check", help="validate every section of a YAML file")
    check.add_argument("path", nargs="?", help="YAML file (default: the shipped config/farl.yaml)")
    check.set_defaults(func=cmd_config_check)
    show = config_verbs.add_parser("show", help="print every node's defaults as a parameter file")
    show.set_defaults(func=cmd_config_show)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except FarlError as exc:
        print(f"farl: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
