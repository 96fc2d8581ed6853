"""Probe (issue 16): does rolling resistance between the Bounded Soccer ball and the table keep the task?

MetaWorld's soccer ball has no rolling resistance (its contact is condim 3), so a kick rolls until
something stops it.  This adds a contact pair ball-table with condim 6 and rolling friction MU (metres;
MU / ball radius is the rolling-resistance coefficient), then runs MetaWorld's own soccer expert
(FailureBench's normalisation reference) and the noisy expert on fixed seeds, and rolls a free ball.

    MUJOCO_GL=egl python docs/benchmarks/soccer-rolling-resistance/probe.py 0 0.001 0.003
"""

from __future__ import annotations

import sys

import mujoco
import numpy as np
from metaworld.envs.sawyer_soccer_v3 import SawyerSoccerEnvV3

from farl_sim.failurebench.env import FailureBenchEnv
from farl_sim.failurebench.experts import expert_action, noisy_expert_action
from farl_sim.failurebench.mjspec import compile_for


def with_rolling_resistance(mu: float):
    """SawyerSoccerEnvV3._initialize_simulation with a ball-table contact pair of rolling friction mu."""
    def initialize(self: SawyerSoccerEnvV3) -> tuple[mujoco.MjModel, mujoco.MjData]:
        spec = mujoco.MjSpec.from_file(self.fullpath)
        for i, geom in enumerate(spec.body("tablelink").geoms):
            if geom.contype or geom.conaffinity:
                geom.name = geom.name or f"table_geom_{i}"
                spec.add_pair(geomname1="objGeom", geomname2=geom.name, condim=6, friction=[1.0, 1.0, 0.005, mu, mu])
        return compile_for(self, spec)
    return initialize


def episodes(env: FailureBenchEnv, std: float, seeds: range) -> tuple[int, int]:
    """(successes, IR failures) of the expert with action noise std on the seeds."""
    rng = np.random.default_rng(0)
    successes = failures = 0
    for seed in seeds:
        obs, _ = env.reset(seed=seed)
        succeeded = False
        for _ in range(200):
            action = expert_action(env, obs) if std == 0 else noisy_expert_action(env, obs, std, rng)
            obs, _, terminated, truncated, info = env.step(action)
            succeeded |= bool(info["success"])
            if terminated or truncated:
                break
        successes += succeeded
        failures += bool(info["ir_failure"])
    return successes, failures


def free_roll(env: FailureBenchEnv, speed: float) -> tuple[float, float]:
    """Distance (m) and speed (m/s) of the ball 1 s after it is set rolling along x at `speed`."""
    model, data = env.metaworld.model, env.metaworld.data
    joint = model.body_jntadr[model.body("soccer_ball").id]
    qpos, qvel = model.jnt_qposadr[joint], model.jnt_dofadr[joint]
    env.reset(seed=0)
    data.qpos[qpos:qpos + 3] = [0.0, 0.7, 0.026]
    data.qvel[qvel:qvel + 6] = [speed, 0, 0, 0, 0, 0]
    mujoco.mj_forward(model, data)
    start = data.qpos[qpos]
    for _ in range(int(1.0 / model.opt.timestep)):
        mujoco.mj_step(model, data)
    return float(data.qpos[qpos] - start), float(data.qvel[qvel])


def main() -> None:
    original = SawyerSoccerEnvV3._initialize_simulation
    print("mu | expert succ/fail (50) | noise 0.3 succ/fail (50) | noise 0.6 succ/fail (50) | "
          "free roll 1 s after 0.3 / 0.6 / 1.0 m/s (m)")
    for mu in map(float, sys.argv[1:] or ["0", "0.001", "0.003"]):
        SawyerSoccerEnvV3._initialize_simulation = with_rolling_resistance(mu) if mu > 0 else original
        env = FailureBenchEnv("bounded-soccer")
        runs = [episodes(env, std, range(first, first + 50)) for std, first in ((0.0, 0), (0.3, 100), (0.6, 100))]
        rolls = [free_roll(env, speed)[0] for speed in (0.3, 0.6, 1.0)]
        print(f"{mu} | " + " | ".join(f"{s}/{f}" for s, f in runs)
              + " | " + " / ".join(f"{r:.3f}" for r in rolls))
        env.close()


if __name__ == "__main__":
    main()
