"""DINO's self-distillation loss (Caron et al., ICCV 2021), Algorithm 1 and eq. (1)-(3).

The teacher's outputs are centred (minus an EMA `c` of their batch mean) and sharpened by a low
temperature; the student's by a higher one:
    P_t = softmax((g_t - c) / t_t),   log P_s = log_softmax(g_s / t_s),
    L = mean over pairs (teacher view v, student view v' != v) of  -sum_k P_t[k] log P_s[k].
The teacher sees only the global views, the student every view. After each forward
    c <- m c + (1 - m) mean(g_t)  (over all teacher outputs of all processes).
The teacher temperature rises linearly from `warmup_teacher_temp` to `teacher_temp` over the
first `warmup_fraction` of training (the paper's schedule, as a fraction instead of epochs).
The schedule has no default: the paper's 0.04 -> 0.07 suits a ViT, while a CNN's codes need a
lower, fixed temperature (`conf/method/dino.yaml`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from medssl.losses.gather import mean_over_processes


class DINOLoss(nn.Module):
    def __init__(
        self,
        out_dim: int,
        *,
        teacher_temp: float,
        warmup_teacher_temp: float,
        warmup_fraction: float,
        student_temp: float,
        center_momentum: float,
    ) -> None:
        super().__init__()
        if min(teacher_temp, student_temp, warmup_teacher_temp) <= 0:
            raise ValueError("DINO temperatures must be positive")
        self.teacher_temp = teacher_temp
        self.student_temp = student_temp
        self.center_momentum = center_momentum
        self.warmup_teacher_temp = warmup_teacher_temp
        self.warmup_fraction = warmup_fraction
        self.register_buffer("center", torch.zeros(1, out_dim))
        # Kept as a buffer so that a resumed run continues the temperature schedule.
        self.register_buffer("progress", torch.zeros(()))

    def current_teacher_temp(self) -> float:
        if self.warmup_fraction <= 0:
            return self.teacher_temp
        ramp = min(1.0, float(self.progress) / self.warmup_fraction)
        return self.warmup_teacher_temp + ramp * (self.teacher_temp - self.warmup_teacher_temp)

    def forward(self, student: list[torch.Tensor], teacher: list[torch.Tensor]) -> torch.Tensor:
        """`student`: one `(batch, out_dim)` output per view, global views first;
        `teacher`: one per global view. Updates the centre when in training mode."""
        if len(teacher) < 1 or len(student) < 2 or len(student) < len(teacher):
            raise ValueError(
                f"need >= 1 teacher and >= 2 student views with at least as many student "
                f"views as teacher ones, got {len(teacher)} and {len(student)}"
            )
        shapes = {tuple(t.shape) for t in [*student, *teacher]}
        if (
            len(shapes) != 1
            or len(next(iter(shapes))) != 2
            or next(iter(shapes))[1] != self.center.shape[1]
        ):
            raise ValueError(
                f"expected every view's output to be (batch, {self.center.shape[1]}), got {sorted(shapes)}"
            )
        teacher_f = torch.stack([t.detach().float() for t in teacher])
        targets = F.softmax((teacher_f - self.center) / self.current_teacher_temp(), dim=-1)
        total, pairs = 0.0, 0
        for j, s in enumerate(student):
            log_p = F.log_softmax(s.float() / self.student_temp, dim=-1)
            for i in range(len(teacher)):
                if i == j:  # a view is not distilled into itself
                    continue
                total = total + (-(targets[i] * log_p).sum(dim=-1)).mean()
                pairs += 1
        if self.training:
            self.update_center(teacher_f)
        return total / pairs

    @torch.no_grad()
    def update_center(self, teacher: torch.Tensor) -> None:
        batch_mean = mean_over_processes(
            teacher.reshape(-1, teacher.shape[-1]).mean(dim=0, keepdim=True)
        )
        self.center.mul_(self.center_momentum).add_(batch_mean, alpha=1 - self.center_momentum)
