"""FARL safety: latent world model, H-step safety critic, recovery shield and safe-RL baselines."""
