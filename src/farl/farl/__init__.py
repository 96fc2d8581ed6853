"""FARL: failure-aware offline-to-online RL for real-world manipulation (the product face)."""

__version__ = "0.1.0"
