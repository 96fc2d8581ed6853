"""ament_python build script for farl_perception; metadata of record is package.xml."""

from setuptools import find_packages, setup

setup(
    name="farl_perception",
    version="0.1.0",
    packages=find_packages(exclude=["test"]),
    data_files=[
        ("share/ament_index/resource_index/packages", ["resource/farl_perception"]),
        ("share/farl_perception", ["package.xml"]),
    ],
    install_requires=["setuptools"],
    zip_safe=True,
    entry_points={"console_scripts": ["perception_node = farl_perception.perception_node:main"]},
)
