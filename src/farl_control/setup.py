"""ament_python build script for farl_control; metadata of record is package.xml."""

from setuptools import find_packages, setup

setup(
    name="farl_control",
    version="0.1.0",
    packages=find_packages(exclude=["test"]),
    data_files=[
        ("share/ament_index/resource_index/packages", ["resource/farl_control"]),
        ("share/farl_control", ["package.xml"]),
    ],
    install_requires=["setuptools"],
    zip_safe=True,
    entry_points={"console_scripts": ["bridge_node = farl_control.bridge_node:main"]},
)
