"""ament_python build script for farl_policy; metadata of record is package.xml."""

from setuptools import find_packages, setup

setup(
    name="farl_policy",
    version="0.1.0",
    packages=find_packages(exclude=["test"]),
    data_files=[
        ("share/ament_index/resource_index/packages", ["resource/farl_policy"]),
        ("share/farl_policy", ["package.xml"]),
    ],
    install_requires=["setuptools"],
    zip_safe=True,
)
