"""Resumable training state: optimisers, learning-rate schedules and random generators as tensors + JSON.

An online session on the robot must survive a crash between two episodes and continue as if
nothing happened (README: "a crash loses at most the episode in progress").  Model weights alone
are not enough for that: Adam's moments, the step counters, the learning-rate schedule and the
sampling generators decide the next update and the next action too.  Everything here is split into
tensors (saved with safetensors) and JSON-serialisable metadata, so a session checkpoint is
written like every other FARL checkpoint, never pickled.
"""

from __future__ import annotations

from typing import Any

import torch

Tensors = dict[str, torch.Tensor]


def optimizer_state(optimizer: torch.optim.Optimizer, prefix: str) -> tuple[Tensors, dict[str, Any]]:
    """Per-parameter state tensors under `prefix`, and the parameter groups (lr, betas, ...) as JSON."""
    state = optimizer.state_dict()
    tensors = {f"{prefix}.{index}.{key}": torch.as_tensor(value).clone()
               for index, slots in state["state"].items() for key, value in slots.items()}
    groups = [{k: list(v) if isinstance(v, tuple) else v for k, v in group.items()} for group in state["param_groups"]]
    return tensors, {"param_groups": groups}


def load_optimizer_state(optimizer: torch.optim.Optimizer, prefix: str, tensors: Tensors, meta: dict[str, Any]) -> None:
    """Inverse of `optimizer_state`."""
    slots: dict[int, dict[str, torch.Tensor]] = {}
    for name, value in tensors.items():
        if name.startswith(prefix + "."):
            index, key = name[len(prefix) + 1:].split(".", 1)
            slots.setdefault(int(index), {})[key] = value
    groups = [{k: tuple(v) if k == "betas" else v for k, v in group.items()} for group in meta["param_groups"]]
    optimizer.load_state_dict({"state": slots, "param_groups": groups})


def scheduler_state(scheduler: torch.optim.lr_scheduler.LRScheduler) -> dict[str, Any]:
    """A schedule's counters as JSON (a LambdaLR's lambdas are code, rebuilt from the config on load)."""
    return {k: v for k, v in scheduler.state_dict().items() if k != "lr_lambdas"}


def load_scheduler_state(scheduler: torch.optim.lr_scheduler.LRScheduler, state: dict[str, Any]) -> None:
    scheduler.load_state_dict({**scheduler.state_dict(), **state})


def generator_state(generator: torch.Generator) -> torch.Tensor:
    return generator.get_state().clone()


def load_generator_state(generator: torch.Generator, state: torch.Tensor) -> None:
    generator.set_state(state.to(torch.uint8))


def module_state(module: torch.nn.Module, prefix: str) -> Tensors:
    return {f"{prefix}.{k}": v.detach().clone() for k, v in module.state_dict().items()}


def load_module_state(module: torch.nn.Module, prefix: str, tensors: Tensors) -> None:
    module.load_state_dict({k[len(prefix) + 1:]: v for k, v in tensors.items() if k.startswith(prefix + ".")})
