"""Errors a user can cause.

Each is raised with a one-line message naming the problem and the fix; the CLI and the ROS
nodes catch `FarlError` once at their boundary and print that line instead of a traceback.
"""


class FarlError(Exception):
    """Base class of every user-facing FARL error."""


class ConfigError(FarlError, ValueError):
    """A configuration file is missing, malformed, or holds an unknown key or a bad value."""
