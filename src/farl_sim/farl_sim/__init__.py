"""FARL simulation: FailureBench environments and MuJoCo Franka task scenes."""
