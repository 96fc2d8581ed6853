"""Calibrating eps_safe on held-out data, and measuring how well C_H foresees failures.

The label of a pair (s_t, a_t) is whether the recorded episode hits cost = 1 at any step
t..t+H, the same window Eq. 1 sums over.  The data's behaviour (e.g. noisy exploration) is what
the label reflects, while C_H imagines the task policy after a_t; on exploration-like data that
gap is the critic's real operating condition, so it is measured, not hidden.

Any `RiskCritic` can be calibrated: the world-model C_H, or Recovery-RL's Q-risk critic, which
has no horizon of its own, so its label window must be given.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from farl_core.transitions import DataError, Transitions
from farl_safety.shield import RiskCritic


@dataclass(frozen=True)
class CalibrationReport:
    """The chosen eps_safe and the detection quality of C_H > eps_safe on the calibration data."""

    eps_safe: float
    precision: float
    recall: float
    auroc: float
    n_pos: int
    n_neg: int
    false_alarm: float  # share of the pairs not followed by a failure that C_H > eps_safe still flags
    limited_by: str     # "recall" or "false_alarm": which of the two constraints set eps_safe
    # How early the alarm goes off (`alarm_lead_times`): the recall above counts an alarm in the last
    # H + 1 steps as a catch, but a recovery that needs 15-25 steps (the Bounded Soccer carry) is too
    # late there, so two critics of equal recall can protect very differently.
    median_lead: float = -1.0       # steps from the first alarm to the failure, median over alarmed failing episodes
    early_alarm_share: float = 0.0  # failing episodes alarmed at least EARLY_ALARM_STEPS before the failure


EARLY_ALARM_STEPS = 10  # 2 s at the robot's 5 Hz: about what the scripted recoveries need to act


def failure_within_horizon(data: Transitions, horizon: int) -> np.ndarray:
    """Bool [N]: a cost = 1 step occurs at t..t+H within the episode of row t."""
    n = len(data)
    failed = np.asarray(data.cost) > 0.5
    episode = np.concatenate([[0], np.cumsum(data.done[:-1])]) if n else np.zeros(0, dtype=int)
    label = np.zeros(n, dtype=bool)
    for offset in range(horizon + 1):
        ahead = np.arange(offset, n)
        label[: n - offset] |= failed[ahead] & (episode[ahead] == episode[: n - offset])
    return label


def alarm_lead_times(scores: np.ndarray, data: Transitions, eps_safe: float) -> np.ndarray:
    """For every episode of `data` that fails: the steps from the first alarm (score > eps_safe) at or
    before its first cost = 1 step to that step, or -1 where no alarm came before it.  int [n_failing]."""
    failed = np.asarray(data.cost) > 0.5
    episode = np.concatenate([[0], np.cumsum(data.done[:-1])]) if len(data) else np.zeros(0, dtype=int)
    alarm = np.asarray(scores) > eps_safe
    leads = []
    for e in np.unique(episode[failed]):
        rows = np.flatnonzero(episode == e)
        first_failure = rows[np.argmax(failed[rows])]
        raised = rows[(rows <= first_failure) & alarm[rows]]
        leads.append(int(first_failure - raised[0]) if len(raised) else -1)
    return np.asarray(leads, dtype=int)


def auroc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Area under the ROC curve: P(score of a positive > score of a negative), ties count half.

    Mann-Whitney U from average ranks, so tied scores get their mean rank.
    """
    scores = np.asarray(scores, dtype=np.float64)
    labels = np.asarray(labels, dtype=bool)
    n_pos, n_neg = int(labels.sum()), int((~labels).sum())
    if n_pos == 0 or n_neg == 0:
        raise ValueError(f"AUROC needs positives and negatives, got {n_pos} and {n_neg}")
    order = np.argsort(scores, kind="mergesort")
    sorted_scores = scores[order]
    ranks = np.empty(len(scores))
    starts = np.flatnonzero(np.r_[True, sorted_scores[1:] != sorted_scores[:-1]])
    ends = np.r_[starts[1:], len(scores)]
    for start, end in zip(starts, ends, strict=True):
        ranks[order[start:end]] = (start + end + 1) / 2  # mean of 1-based ranks start+1..end
    u = ranks[labels].sum() - n_pos * (n_pos + 1) / 2
    return float(u / (n_pos * n_neg))


def critic_scores(critic: RiskCritic, data: Transitions, batch_size: int = 4096) -> np.ndarray:
    """C_H of every (obs, act) row of `data`, float32 [N]."""
    data = data.validate(critic.spec, "calibration data")
    out = [critic.risk(torch.as_tensor(data.obs[i:i + batch_size]), torch.as_tensor(data.act[i:i + batch_size]))
           for i in range(0, len(data), batch_size)]
    return torch.cat(out).numpy() if out else np.zeros(0, dtype=np.float32)


def calibrate(critic: RiskCritic, data: Transitions, target_recall: float = 0.9,
              horizon: int | None = None, max_false_alarm: float = 1.0) -> CalibrationReport:
    """Largest eps_safe whose alarm C_H > eps_safe catches >= target_recall of the failures, unless
    that alarm would also flag more than `max_false_alarm` of the pairs not followed by a failure.

    Positives are `failure_within_horizon(data, horizon)` (default: the critic's H,
    `critic.config.horizon`; a critic without one, such as QRiskCritic, needs `horizon`).  The
    recall threshold sits one float32 step below the score of the k-th highest-scoring positive,
    k = ceil(target_recall * n_pos): every pair scoring at least that much is flagged, nothing
    else, which is the highest precision any threshold reaching the recall can have here.

    Why the false-alarm cap: a weak critic (AUROC well below 1) reaches a high recall only by
    flagging nearly everything, and a shield that hands most steps to the recovery policy stops
    the task policy from learning at all.  With the cap, eps_safe rises to the score below which
    at least 1 - max_false_alarm of the negatives fall; the report says which constraint won and
    the recall actually reached.  The default 1.0 is no cap.
    """
    if not 0.0 < target_recall <= 1.0:
        raise ValueError(f"target_recall must be in (0, 1], got {target_recall}")
    if not 0.0 <= max_false_alarm <= 1.0:
        raise ValueError(f"max_false_alarm must be in [0, 1], got {max_false_alarm}")
    if horizon is None:
        horizon = getattr(getattr(critic, "config", None), "horizon", None)
        if horizon is None:
            raise ValueError(f"{type(critic).__name__} has no horizon of its own: pass the label window `horizon`")
    labels = failure_within_horizon(data, horizon)
    n_pos, n_neg = int(labels.sum()), int((~labels).sum())
    if n_pos == 0 or n_neg == 0:
        raise DataError(f"calibration data has {n_pos} pairs followed by a failure and {n_neg} not: both are "
                        "needed (hold out task and failure demonstrations together)")
    scores = critic_scores(critic, data)
    k = int(np.ceil(target_recall * n_pos - 1e-9))
    kth = np.sort(scores[labels])[::-1][k - 1]
    eps_safe = max(np.nextafter(np.float32(kth), np.float32(-np.inf)), np.float32(0.0))  # C_H >= 0
    allowed = int(np.floor(max_false_alarm * n_neg + 1e-9))  # negatives the alarm may flag
    limited_by = "recall"
    if allowed < n_neg:
        cap = np.float32(np.sort(scores[~labels])[::-1][allowed])  # flagging only scores above it
        if cap > eps_safe:
            eps_safe, limited_by = cap, "false_alarm"
    flagged = scores > eps_safe
    true_pos = int((flagged & labels).sum())
    leads = alarm_lead_times(scores, data, float(eps_safe))
    caught = leads[leads >= 0]
    return CalibrationReport(eps_safe=float(eps_safe), precision=true_pos / max(int(flagged.sum()), 1),
                             recall=true_pos / n_pos, auroc=auroc(scores, labels), n_pos=n_pos, n_neg=n_neg,
                             false_alarm=int((flagged & ~labels).sum()) / n_neg, limited_by=limited_by,
                             median_lead=float(np.median(caught)) if len(caught) else -1.0,
                             early_alarm_share=float((leads >= EARLY_ALARM_STEPS).mean()) if len(leads) else 0.0)
