"""ament_python build script for farl_safety; metadata of record is package.xml."""

from setuptools import find_packages, setup

setup(
    name="farl_safety",
    version="0.1.0",
    packages=find_packages(exclude=["test"]),
    data_files=[
        ("share/ament_index/resource_index/packages", ["resource/farl_safety"]),
        ("share/farl_safety", ["package.xml"]),
    ],
    install_requires=["setuptools"],
    zip_safe=True,
    entry_points={"console_scripts": ["shield_node = farl_safety.shield_node:main"]},
)
