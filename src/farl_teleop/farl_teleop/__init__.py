"""FARL teleoperation: input devices, episode labelling and the demonstration recorder."""
