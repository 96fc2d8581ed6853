"""ament_python build script for farl_teleop; metadata of record is package.xml."""

from setuptools import find_packages, setup

setup(
    name="farl_teleop",
    version="0.1.0",
    packages=find_packages(exclude=["test"]),
    data_files=[
        ("share/ament_index/resource_index/packages", ["resource/farl_teleop"]),
        ("share/farl_teleop", ["package.xml"]),
    ],
    install_requires=["setuptools"],
    zip_safe=True,
    entry_points={"console_scripts": ["recorder_node = farl_teleop.recorder_node:main"]},
)
