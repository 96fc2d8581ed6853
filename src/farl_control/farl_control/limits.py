"""The hard-limit layer: per-command step clip, workspace box, NaN/inf rejection.

Applied by the bridge to every command, whatever produced it (task policy, shield, teleop),
so a misconfigured or diverged learned layer can never command motion outside these bounds.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from farl_control.config import HardLimits


@dataclass(frozen=True)
class LimitedCommand:
    """What the bridge will execute for one requested end-effector delta."""

    target: np.ndarray        # absolute EE position to move to, m (equals current when rejected)
    yaw: float                # rad, clipped yaw delta (0 when rejected)
    clipped: bool             # true when the step or box clip changed the request
    rejected: bool            # true when the request held NaN/inf and the arm must hold
    reason: str = ""


def limit_command(limits: HardLimits, ee_position: np.ndarray, delta: np.ndarray,
                  yaw: float = 0.0) -> LimitedCommand:
    """Clip a translation delta to `max_translation` (by norm, keeping direction), the yaw to
    `max_yaw`, and the resulting target into the workspace box; reject non-finite input.

    The step cap holds after the box clip too: from outside the box (after a reset or a manual
    move) the arm returns at most `max_translation` per command instead of jumping in.
    """
    current = np.asarray(ee_position, dtype=float)
    delta = np.asarray(delta, dtype=float)
    if delta.shape != (3,) or current.shape != (3,):
        raise ValueError(f"expected 3-vectors for position and delta, got {current.shape} and {delta.shape}")
    if not (np.all(np.isfinite(delta)) and np.isfinite(yaw)):
        return LimitedCommand(current.copy(), 0.0, clipped=False, rejected=True,
                              reason=f"non-finite command {delta.tolist()} yaw={yaw}")
    norm = float(np.linalg.norm(delta))
    step = delta * (limits.max_translation / norm) if norm > limits.max_translation else delta
    target = np.clip(current + step, limits.workspace_min, limits.workspace_max)
    moved = float(np.linalg.norm(target - current))
    if moved > limits.max_translation:
        target = current + (target - current) * (limits.max_translation / moved)
    limited_yaw = float(np.clip(yaw, -limits.max_yaw, limits.max_yaw))
    clipped = bool(not np.allclose(target, current + delta) or limited_yaw != yaw)
    return LimitedCommand(target, limited_yaw, clipped=clipped, rejected=False)
