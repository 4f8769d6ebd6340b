"""An ordinal head for graded labels (RetinaMNIST's 0-4 grades): CORAL's cumulative link.

Cao, Mirjalili, Raschka, "Rank consistent ordinal regression for neural networks with
application to age estimation", Pattern Recognition Letters 140 (2020). For K ordered grades
the head solves K-1 binary tasks "is the grade above k?" that share one weight vector w and
differ only in their biases b_k:

    P(y > k | x) = sigmoid(w . x + b_k),                 k = 0, ..., K-2
    loss = -mean_i  c_i sum_k [ [y_i > k] log P(y_i > k) + [y_i <= k] log(1 - P(y_i > k)) ]
    rank(x) = sum_k [ P(y > k | x) > 0.5 ]

(the paper's task weights lambda_k are all 1; c_i is the image's class weight, 1 without
`class_weight`). With shared weights the fitted biases are non-increasing (the paper's
Theorem 1), so the cumulative probabilities are too, and class probabilities are their
consecutive differences: p_0 = 1 - P(y > 0), p_k = P(y > k-1) - P(y > k), p_{K-1} = P(y > K-2).
Where biases are not yet ordered (early in training) a difference can be negative: each p_k is
clipped at PROB_FLOOR and the row renormalised. The head returns log p_k as its K logits, so
that softmax gives p back and temperature scaling, calibration and every metric downstream
treat it as any head's logits.

`link` (`eval.linear.link`, `eval.finetune.link`) chooses the head: `softmax` (multinomial
cross-entropy, the plain head), `ordinal` (this one) or `auto`: on ordinal tasks both are fitted
on the labelled subset and the one with the better val quadratic kappa is kept; on other tasks
the softmax head.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.metrics import cohen_kappa_score
from torch import nn

from medssl.data.task import Task
from medssl.errors import MedsslError

LINKS = ("softmax", "ordinal", "auto")
PROB_FLOOR = 1e-6


def cumulative_targets(y: torch.Tensor, n_classes: int) -> torch.Tensor:
    """`(N, K-1)` binary targets [y > k] of integer grades `y` `(N,)`."""
    thresholds = torch.arange(n_classes - 1, device=y.device)
    return (y.view(-1, 1) > thresholds).to(torch.float32)


def coral_loss(
    cumulative_logits: torch.Tensor, y: torch.Tensor, class_weight: torch.Tensor | None = None
) -> torch.Tensor:
    """The module docstring's loss for `(N, K-1)` logits w . x + b_k and grades `y` `(N,)`."""
    logits = cumulative_logits.float()
    targets = cumulative_targets(y, logits.shape[1] + 1)
    per_image = F.binary_cross_entropy_with_logits(logits, targets, reduction="none").sum(1)
    if class_weight is not None:
        per_image = per_image * class_weight.to(per_image.device)[y]
    return per_image.mean()


def class_probs(cumulative_logits: torch.Tensor) -> torch.Tensor:
    """`(N, K)` class probabilities from `(N, K-1)` cumulative logits (differences of the
    cumulative probabilities, clipped at PROB_FLOOR and renormalised)."""
    above = torch.sigmoid(cumulative_logits.float())
    ones = torch.ones_like(above[:, :1])
    cumulative = torch.cat([ones, above, torch.zeros_like(ones)], dim=1)  # P(y > k), k=-1..K-1
    probs = (cumulative[:, :-1] - cumulative[:, 1:]).clamp_min(PROB_FLOOR)
    return probs / probs.sum(dim=1, keepdim=True)


def coral_rank(cumulative_logits: torch.Tensor) -> torch.Tensor:
    """`(N,)` predicted grades: how many of the K-1 tasks say "above" (the paper's rank)."""
    return (torch.sigmoid(cumulative_logits.float()) > 0.5).sum(dim=1)


class OrdinalHead(nn.Module):
    """`(B, D) -> (B, K)` log class probabilities of the cumulative link w . x + b_k. `weight`:
    per-class loss weights (balanced class weights), or None."""

    spatial = False

    def __init__(self, in_features: int, n_classes: int, weight: torch.Tensor | None) -> None:
        super().__init__()
        if n_classes < 2:
            raise MedsslError(f"an ordinal head needs at least 2 grades, got {n_classes}.")
        self.linear = nn.Linear(in_features, 1, bias=False)  # w, shared by the K-1 tasks
        # b_k starts where P(y > k) is that of evenly spread grades, (K-1-k) / K: ordered.
        k = torch.arange(n_classes - 1, dtype=torch.float32)
        self.biases = nn.Parameter(torch.log((n_classes - 1 - k) / (k + 1)))
        self.register_buffer("weight", None if weight is None else weight.float())

    def cumulative_logits(self, features: torch.Tensor) -> torch.Tensor:
        return self.linear(features) + self.biases

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return class_probs(self.cumulative_logits(features)).log()

    def training_loss(self, features: torch.Tensor, y: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"loss": coral_loss(self.cumulative_logits(features), y, self.weight)}

    def start_from(self, head: OrdinalHead) -> None:
        """Start as `head` (the fitted ordinal probe)."""
        with torch.no_grad():
            self.linear.weight.copy_(head.linear.weight)
            self.biases.copy_(head.biases)


def check_link(link: str, key: str) -> None:
    """Refuse a link that is none of LINKS, naming the config `key`."""
    if link not in LINKS:
        raise MedsslError(f"{key} must be one of {LINKS}, got {link!r}.")


def candidate_links(link: str, task: str, key: str) -> tuple[str, ...]:
    """The heads to fit for `link` on `task`: both for `auto` on ordinal tasks, else one.
    `key` names the config key in the refusal."""
    check_link(link, key)
    if link == "ordinal" and task == Task.MULTILABEL:
        raise MedsslError(f"{key}=ordinal needs graded labels, not a multi-label task.")
    if link == "auto":
        return ("softmax", "ordinal") if task == Task.ORDINAL else ("softmax",)
    return (link,)


def quadratic_kappa(y_true: np.ndarray, logits: np.ndarray) -> float:
    """Quadratic-weighted kappa of the argmax grade (what the metrics report); -1 if undefined."""
    y_pred = np.asarray(logits).argmax(axis=1)
    if len(np.unique(np.concatenate([y_true, y_pred]))) < 2:
        return -1.0
    labels = np.arange(np.asarray(logits).shape[1])
    return float(cohen_kappa_score(y_true, y_pred, labels=labels, weights="quadratic"))


def pick_link(y_val: np.ndarray, val_logits: dict[str, np.ndarray]) -> tuple[str, dict]:
    """The link whose val logits score the better quadratic kappa (softmax on a tie), and the
    params that record the choice: `link` and `val_kappa_<link>` for each candidate."""
    kappas = {link: quadratic_kappa(y_val, logits) for link, logits in val_logits.items()}
    best = max(kappas, key=lambda link: (kappas[link], link == "softmax"))
    return best, {"link": best, **{f"val_kappa_{link}": k for link, k in kappas.items()}}


def fit_ordinal_probe(
    x: np.ndarray,
    y: np.ndarray,
    n_classes: int,
    *,
    C: float,
    class_weight: np.ndarray | None,
    max_iter: int,
) -> OrdinalHead:
    """The ordinal linear probe: the cumulative link fitted on standardised features `x` by
    L-BFGS, with the penalty of scikit-learn's LogisticRegression at the same C
    (C * sum_i c_i loss_i + |w|^2 / 2, here divided by C * N), the standardisation folded
    into the head: w' = w / scale, b_k' = b_k - w' . mean."""
    x = np.asarray(x, dtype=np.float64)
    mean, scale = x.mean(axis=0), x.std(axis=0)
    scale = np.where(scale > 0, scale, 1.0)  # StandardScaler's rule for constant features
    z = torch.as_tensor((x - mean) / scale, dtype=torch.float64)
    targets = cumulative_targets(torch.as_tensor(y), n_classes).double()
    c = torch.ones(len(y), dtype=torch.float64)
    if class_weight is not None:
        c = torch.as_tensor(class_weight, dtype=torch.float64)[torch.as_tensor(y)]
    w = torch.zeros(x.shape[1], dtype=torch.float64, requires_grad=True)
    start = OrdinalHead(1, n_classes, None).biases.detach().double()
    b = start.clone().requires_grad_(True)
    optimizer = torch.optim.LBFGS(
        [w, b], lr=1.0, max_iter=max_iter, line_search_fn="strong_wolfe", tolerance_grad=1e-9
    )

    def objective():
        optimizer.zero_grad()
        logits = z @ w.view(-1, 1) + b
        bce = F.binary_cross_entropy_with_logits(logits, targets, reduction="none").sum(1)
        loss = (c * bce).mean() + (w @ w) / (2 * C * len(y))
        loss.backward()
        return loss

    optimizer.step(objective)
    head = OrdinalHead(x.shape[1], n_classes, None)
    folded = w.detach() / torch.as_tensor(scale)
    with torch.no_grad():
        head.linear.weight.copy_(folded.view(1, -1))
        head.biases.copy_(b.detach() - folded @ torch.as_tensor(mean))
    return head
