"""Latent world model with a constraint head: the predictor behind the FARL safety critic.

Paper section III-A: the world model is pre-trained on task and failure demonstrations "to
predict future failures over a limited number of near-future steps", with a constraint
prediction head added to a TD-MPC2-style latent model and the H-step objective of Eq. 4.
Components, each one method below:

  encode(s)            z        latent state of an observation
  next(z, a)           z'       action-conditioned latent dynamics
  reward(z, a)         r        reward of taking a in z
  constraint_logit(z, a)        logit of P(C(s, a) = 1), the per-step term of Eq. 1
  decode(z)            s        observation, so that imagined rollouts can query the task
                                policy, which consumes raw observations

Eq. 4 is `h_step_loss`; `train_world_model` fits the model, `save`/`load` keep it in a
checkpoint directory of kind "world_model" together with its config and task spec.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from farl_core.checkpoint import load_checkpoint, save_checkpoint
from farl_core.config import from_mapping, param, to_mapping
from farl_core.spec import TaskSpec
from farl_core.transitions import DataError, Transitions
from farl_policy.layers import Normalizer, mlp

KIND = "world_model"


@dataclass(frozen=True)
class WorldModelConfig:
    """Sizes, Eq. 4 weights and optimiser settings of the world model, with their sources."""

    # Latent size and hidden widths of every component MLP.  TD-MPC2's default model uses
    # latent 512 and MLP width 512 for up to 100+ tasks; FARL's observations are a few dozen
    # proprioceptive/object numbers for one task, and the critic runs every 200 ms on a CPU, so
    # both are scaled down.
    latent_dim: int = param(32, ge=1)
    hidden: tuple[int, ...] = (128, 128)
    # H of Eq. 4: the paper predicts failures over "a limited number of near-future steps";
    # TD-MPC2 trains on H = 3.  5 steps = 1 s at the 200 ms control period.
    horizon: int = param(5, ge=1, le=100)
    # lambda of Eq. 4, the per-step decay of the H-step loss; TD-MPC2's rho = 0.5.
    lam: float = param(0.5, gt=0.0, le=1.0)
    # Weight of failure samples (C = 1) in the constraint BCE: failures are rare, and both
    # SafeDreamer and SPOWL up-weight them x10.
    failure_weight: float = param(10.0, ge=1.0)
    # Per-term coefficients of the Eq. 4 step loss L.  consistency 20 and reward 0.1 are
    # TD-MPC2's; constraint and decoder at 1: the constraint head is what the critic reads, and
    # the decoder feeds the task policy in imagined rollouts (TD-MPC2 has no decoder).
    consistency_coef: float = param(20.0, ge=0.0)
    reward_coef: float = param(0.1, ge=0.0)
    constraint_coef: float = param(1.0, ge=0.0)
    decoder_coef: float = param(1.0, ge=0.0)
    # Optimiser: Adam with TD-MPC2's lr 3e-4, batch 256 and gradient-norm clip 20; 3000 steps
    # fit the point-mass benchmark (200k transitions of paper-scale data want more).
    lr: float = param(3e-4, gt=0.0)
    batch_size: int = param(256, ge=1)
    steps: int = param(3000, ge=1)
    grad_clip_norm: float = param(20.0, gt=0.0)


class WorldModel(nn.Module):
    """TD-MPC2-style latent model (no Q/pi heads) plus constraint head and observation decoder."""

    def __init__(self, spec: TaskSpec, config: WorldModelConfig = WorldModelConfig()) -> None:
        super().__init__()
        self.spec = spec
        self.config = config
        z, a, h = config.latent_dim, spec.act_dim, config.hidden
        self.normalizer = Normalizer(spec.obs_dim)
        self.encoder = mlp(spec.obs_dim, h, z, nn.Mish)
        self.dynamics = mlp(z + a, h, z, nn.Mish)
        self.reward_head = mlp(z + a, h, 1, nn.Mish)
        self.constraint_head = mlp(z + a, h, 1, nn.Mish)
        self.decoder = mlp(z, h, spec.obs_dim, nn.Mish)
        low = torch.tensor(spec.action_low, dtype=torch.float32)
        high = torch.tensor(spec.action_high, dtype=torch.float32)
        self.register_buffer("action_centre", (high + low) / 2)
        self.register_buffer("action_scale", (high - low) / 2)

    def _za(self, z: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        """Latent and action scaled to [-1, 1], concatenated: the input of every (z, a) head."""
        return torch.cat([z, (a - self.action_centre) / self.action_scale], dim=-1)

    def encode(self, obs: torch.Tensor) -> torch.Tensor:
        """Latent state z of a raw observation."""
        return self.encoder(self.normalizer(obs))

    def next(self, z: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        """Next latent state z' after taking action a in z."""
        return self.dynamics(self._za(z, a))

    def reward(self, z: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        """Reward r(s, a) of taking action a in z, shape [...]."""
        return self.reward_head(self._za(z, a)).squeeze(-1)

    def constraint_logit(self, z: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        """Logit of P(C(s, a) = 1): that taking a in z causes an IR failure, shape [...]."""
        return self.constraint_head(self._za(z, a)).squeeze(-1)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Raw observation s that latent z stands for (the task policy's input in rollouts)."""
        return self.normalizer.unnormalize(self.decoder(z))

    def save(self, path: str | Path, overwrite: bool = False) -> Path:
        """Write weights (normaliser included), config and task spec as a "world_model" checkpoint."""
        return save_checkpoint(path, kind=KIND, tensors=dict(self.state_dict()), spec=self.spec,
                               config={"world_model": to_mapping(self.config)}, overwrite=overwrite)

    @classmethod
    def load(cls, path: str | Path, spec: TaskSpec | None = None) -> WorldModel:
        """Load a checkpoint; with `spec`, refuse one trained for a different task (SpecError)."""
        checkpoint = load_checkpoint(path, kind=KIND, spec=spec)
        config = from_mapping(WorldModelConfig, checkpoint.config["world_model"], where=f"checkpoint {path}")
        model = cls(checkpoint.spec, config)
        model.load_state_dict(checkpoint.tensors)
        return model.eval()


@dataclass
class SubSequences:
    """A batch of H-step windows of consecutive transitions, [B, H, ...].

    `mask[b, i]` is False once the window has left its episode (after a terminal or truncated
    step, or past the end of the data): those steps belong to another episode or to nothing,
    and contribute nothing to the loss.
    """

    obs: torch.Tensor        # [B, H, obs_dim]
    act: torch.Tensor        # [B, H, act_dim]
    rew: torch.Tensor        # [B, H]
    next_obs: torch.Tensor   # [B, H, obs_dim]
    cost: torch.Tensor       # [B, H]
    mask: torch.Tensor       # [B, H] bool

    @classmethod
    def from_transitions(cls, data: Transitions, horizon: int, starts: np.ndarray | None = None) -> SubSequences:
        """Windows of `data` starting at rows `starts` (default: every row)."""
        index, mask = window_index(data, horizon)
        if starts is not None:
            index, mask = index[starts], mask[starts]
        return cls(obs=torch.as_tensor(data.obs[index], dtype=torch.float32),
                   act=torch.as_tensor(data.act[index], dtype=torch.float32),
                   rew=torch.as_tensor(data.rew[index], dtype=torch.float32),
                   next_obs=torch.as_tensor(data.next_obs[index], dtype=torch.float32),
                   cost=torch.as_tensor(data.cost[index], dtype=torch.float32),
                   mask=torch.as_tensor(mask))


def window_index(data: Transitions, horizon: int) -> tuple[np.ndarray, np.ndarray]:
    """Row index [N, H] of the window starting at each row, and its in-episode mask [N, H].

    A step is valid when it lies in the same episode as the window's first row; episodes are
    contiguous and end at `done`, so this is "no terminal/truncated step before it".
    """
    n = len(data)
    episode = np.concatenate([[0], np.cumsum(data.done[:-1])]) if n else np.zeros(0, dtype=int)
    index = np.arange(n)[:, None] + np.arange(horizon)[None, :]
    inside = index < n
    index = np.minimum(index, n - 1)
    mask = inside & (episode[index] == episode[:, None])
    return index, mask


def h_step_loss(model: WorldModel, batch: SubSequences) -> tuple[torch.Tensor, dict[str, float]]:
    """Paper Eq. 4: J(theta; Gamma) = sum_{i=t}^{t+H} lambda^(i-t) L(theta; Gamma_i).

    The model encodes the window's first observation and rolls its own latent z_i forward with
    the recorded actions (TD-MPC2), so every head is trained on the latents it will see in an
    imagined rollout.  The step loss L(theta; Gamma_i) is the coefficient-weighted sum of
      consistency  ||next(z_i, a_i) - sg(encode(s'_i))||^2  (stop-gradient target, TD-MPC2),
      reward       (reward(z_i, a_i) - r_i)^2,
      constraint   BCE(constraint_logit(z_i, a_i), C_i), failure samples x failure_weight,
      decoder      ||decode(z_i) - s_i||^2 in normalised units,
    each averaged over the batch.  Steps outside the window's episode (mask False) add zero:
    their inputs are zeroed before use and their losses selected away with `where`, so whatever
    data follows an episode's end (even NaN) reaches neither the loss nor the gradients.
    Returns the loss and its per-term values (lambda-weighted and summed over i).
    """
    cfg = model.config
    size, horizon = batch.mask.shape
    mask = batch.mask
    keep = {name: torch.where(mask.reshape(mask.shape + (1,) * (value.dim() - 2)), value, 0.0)
            for name, value in (("obs", batch.obs), ("act", batch.act), ("rew", batch.rew),
                                ("next_obs", batch.next_obs), ("cost", batch.cost))}
    z = model.encode(keep["obs"][:, 0])
    latents, predictions = [], []
    for i in range(horizon):
        latents.append(z)
        z = model.next(z, keep["act"][:, i])
        predictions.append(z)
    z_i, z_next = torch.stack(latents, 1), torch.stack(predictions, 1)  # [B, H, latent]
    with torch.no_grad():
        target = model.encode(keep["next_obs"])
    weight = 1.0 + (cfg.failure_weight - 1.0) * (keep["cost"] > 0.5).float()
    step = {
        "consistency": ((z_next - target) ** 2).mean(-1),
        "reward": (model.reward(z_i, keep["act"]) - keep["rew"]) ** 2,
        "constraint": weight * F.binary_cross_entropy_with_logits(
            model.constraint_logit(z_i, keep["act"]), keep["cost"], reduction="none"),
        "decoder": ((model.decoder(z_i) - model.normalizer(keep["obs"])) ** 2).mean(-1),
    }  # each [B, H]
    decay = cfg.lam ** torch.arange(horizon, dtype=torch.float32)
    terms = {name: (decay * torch.where(mask, value, 0.0)).sum() / size for name, value in step.items()}
    coefs = {"consistency": cfg.consistency_coef, "reward": cfg.reward_coef,
             "constraint": cfg.constraint_coef, "decoder": cfg.decoder_coef}
    loss = sum(coefs[name] * value for name, value in terms.items())
    return loss, {"loss": loss.item(), **{name: value.item() for name, value in terms.items()}}


def train_world_model(data: Transitions, spec: TaskSpec, config: WorldModelConfig = WorldModelConfig(),
                      seed: int = 0, progress: bool = False) -> tuple[WorldModel, list[dict[str, float]]]:
    """Fit a world model to task + failure demonstrations by minimising Eq. 4 with Adam.

    The normaliser is fitted once on `data` and frozen.  Windows start at every row, so the
    short windows at episode ends (where the failures are) are sampled as often as any other.
    Seeding is local: the global torch RNG is left as it was.  Returns the model in eval mode
    and one dict of losses per step.
    """
    data = data.validate(spec, "world-model training data")
    if len(data) == 0:
        raise DataError("world-model training data is empty (pass task and failure demonstrations)")
    if not np.any(data.cost > 0.5):
        raise DataError("world-model training data holds no failure (cost = 1) step, so the constraint "
                        "head cannot learn what a failure is (add failure demonstrations)")
    windows = SubSequences.from_transitions(data, config.horizon)
    history: list[dict[str, float]] = []
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = WorldModel(spec, config)
        model.normalizer.fit(torch.as_tensor(np.concatenate([data.obs, data.next_obs])))
        optimiser = torch.optim.Adam(model.parameters(), lr=config.lr)
        generator = torch.Generator().manual_seed(seed)
        model.train()
        bar = tqdm(range(config.steps), desc="world model", disable=not progress)
        for _ in bar:
            rows = torch.randint(len(data), (config.batch_size,), generator=generator)
            batch = SubSequences(**{f.name: getattr(windows, f.name)[rows] for f in fields(SubSequences)})
            loss, info = h_step_loss(model, batch)
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip_norm)
            optimiser.step()
            history.append(info)
            if progress:
                bar.set_postfix(loss=f"{info['loss']:.4f}", constraint=f"{info['constraint']:.4f}", refresh=False)
    return model.eval(), history

