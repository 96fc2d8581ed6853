"""ament_python build script for farl; metadata of record is package.xml.

Besides the Python package it installs the repository's top-level launch/ and config/ into
share/farl/, where `ros2 launch farl ...` and the CLI's config lookup find them.
"""

import os
from glob import glob

from setuptools import find_packages, setup

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.join(HERE, "..", "..")  # repository root: launch/ and config/ serve every driver


def top_level(folder: str, pattern: str) -> list[str]:
    """Files under the repository's top-level `folder`, relative to this setup.py."""
    return sorted(os.path.relpath(p, HERE) for p in glob(os.path.join(TOP, folder, pattern)))


setup(
    name="farl",
    version="0.1.0",
    packages=find_packages(exclude=["test"]),
    data_files=[
        ("share/ament_index/resource_index/packages", ["resource/farl"]),
        ("share/farl", ["package.xml"]),
        ("share/farl/launch", top_level("launch", "*.launch.py")),
        ("share/farl/config", top_level("config", "*.yaml") + top_level("config", "*.xml")),
    ],
    install_requires=["setuptools"],
    zip_safe=True,
    entry_points={"console_scripts": ["farl = farl.cli:main", "policy_node = farl.policy_node:main",
                                        "console_node = farl.console_node:main"]},
)
