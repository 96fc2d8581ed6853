"""ament_python build script for farl_sim; metadata of record is package.xml."""

from setuptools import find_packages, setup

setup(
    name="farl_sim",
    version="0.1.0",
    packages=find_packages(exclude=["test"]),
    data_files=[
        ("share/ament_index/resource_index/packages", ["resource/farl_sim"]),
        ("share/farl_sim", ["package.xml"]),
    ],
    install_requires=["setuptools"],
    zip_safe=True,
    entry_points={"console_scripts": ["sim_world_node = farl_sim.franka_scenes.sim_world_node:main"]},
)
