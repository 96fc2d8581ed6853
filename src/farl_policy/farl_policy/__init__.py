"""FARL policies: Gaussian task/recovery policies, BC ensemble, Uni-O4 and PPO fine-tuning."""
