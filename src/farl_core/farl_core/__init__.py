"""FARL core: task specs, typed configuration, datasets and shared maths.

Nothing in this package imports ROS; ROS nodes elsewhere translate to and from it.
"""

__version__ = "0.1.0"
