"""FARL perception: camera sources, detectors and 3-D object states in the robot base frame."""
