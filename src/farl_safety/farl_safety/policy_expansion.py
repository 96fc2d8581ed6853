"""FOSP's safe policy expansion: the frozen offline policy and the online policy, side by side.

Online, FOSP keeps its offline policy frozen and adds an online policy next to it (policy expansion,
PEX: Zhang et al., ICLR 2023).  Each step both propose an action; the pretrained critics score
them, and the executed action is sampled from a softmax over the scores, so the online policy acts
only where its action looks at least as good as the offline one, and a poor online policy early
in fine-tuning cannot drag the agent below the offline one.  FOSP adds the constraint: an action
whose REF value Q_ref(s, a) exceeds the feasibility threshold is not a candidate while a feasible
one exists (feasible: Q_ref at most the REF's threshold, `ReachabilityConfig.feasible`); when
neither is feasible the one less likely to reach a failure is executed.

Scores are the reward critic's pessimistic Q_r(s, a) (IQL twin minimum) times the inverse
temperature; FOSP's code samples with inverse temperature 5 (PEX's own default is 10).  FOSP's code
scores Q_r - 0.1 Q_c with its cost critic instead of gating; with FailureBench's terminal failures the
REF is that cost value, and the gate states the hard constraint the paper describes.  The
offline candidate is the offline policy's mean action, as in PEX's code.

`PolicyExpansion.filter` has the shield's signature (obs, proposed) -> (executed, verdicts), so the
online fine-tuner, the robot loop's agent and `farl bench shielded` drive it in the shield's place;
a verdict's `overridden` means the offline policy's action was executed, and `risk` is Q_ref of
the online policy's proposal.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch

from farl_core.config import param
from farl_policy.critics import TwinQ
from farl_policy.gaussian import GaussianPolicy
from farl_safety.reachability import ReachabilityCritic
from farl_safety.shield import Verdict


@dataclass(frozen=True)
class PolicyExpansionConfig:
    """Action selection between the online and the frozen offline policy."""

    inverse_temperature: float = param(5.0, gt=0.0)  # FOSP's code (PEX: 10)
    # How PPO learns from a step where the offline action ran (online.py, OnlineFinetuner.record).
    # Ours: "own", the online policy's gradient only from the steps its own action ran; the others
    # train the value function.  With "executed" (FARL's action correction) the online copy learned
    # from ~60% deterministic offline actions, whose negative advantages push its mean away from
    # the offline mean in no useful direction: on Bounded Push its own return fell from 82.8 to
    # 1.4-9.6 in 50k steps while the expansion kept acting well (BENCHMARKS.md).
    update_with: Literal["executed", "proposed", "own"] = "own"


class PolicyExpansion:
    """Chooses, per stream, between the online policy's proposal and the frozen offline policy's action."""

    def __init__(self, offline: GaussianPolicy, reward_q: TwinQ, ref: ReachabilityCritic,
                 config: PolicyExpansionConfig = PolicyExpansionConfig(), seed: int = 0) -> None:
        offline.spec.require_same(reward_q.spec, "the reward critic given to policy expansion")
        offline.spec.require_same(ref.spec, "the REF given to policy expansion")
        self.offline = offline.requires_grad_(False).eval()
        self.reward_q = reward_q.requires_grad_(False).eval()
        self.ref = ref.requires_grad_(False).eval()
        self.config = config
        self.generator = torch.Generator().manual_seed(seed)

    @property
    def update_with(self) -> str:
        return self.config.update_with

    @torch.inference_mode()
    def choose(self, obs: torch.Tensor, online: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(executed actions [B, act_dim], offline chosen [B] bool, Q_ref of the online actions [B])."""
        candidates = torch.stack([online, self.offline.mean(obs)], dim=1)           # [B, 2, act_dim]
        rows = obs.unsqueeze(1).expand(-1, 2, -1)
        q_reward = self.reward_q(rows, candidates)                                  # [B, 2]
        q_ref = self.ref.q_value(rows, candidates)                                  # [B, 2]
        feasible = q_ref <= self.ref.config.feasible
        logits = self.config.inverse_temperature * q_reward
        logits = torch.where(feasible, logits, torch.full_like(logits, -torch.inf))
        # Neither feasible: the one less likely to reach a failure.
        none = ~feasible.any(dim=1)
        logits[none] = torch.where(q_ref[none] == q_ref[none].min(dim=1, keepdim=True).values, 0.0, -torch.inf)
        logits = logits - logits.max(dim=1, keepdim=True).values
        index = torch.multinomial(logits.softmax(dim=1), 1, generator=self.generator).squeeze(1)
        executed = candidates[torch.arange(len(obs)), index]
        return executed, index == 1, q_ref[:, 0]

    def filter(self, obs: np.ndarray, proposed: np.ndarray) -> tuple[np.ndarray, list[Verdict]]:
        """Executed actions [N, act_dim] and one verdict per row of obs [N, obs_dim] (module docstring)."""
        start = time.perf_counter()
        spec = self.offline.spec
        obs_t = torch.as_tensor(spec.check_observation(obs, "policy expansion observation"))
        act_t = torch.as_tensor(spec.check_action(proposed, "proposed action"))
        executed, offline, risk = self.choose(obs_t, act_t)
        latency = time.perf_counter() - start
        verdicts = [Verdict(float(r), self.ref.config.feasible, bool(o), "offline" if o else "task", latency)
                    for r, o in zip(risk.tolist(), offline.tolist(), strict=True)]
        return executed.numpy(), verdicts
