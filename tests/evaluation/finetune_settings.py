"""`FineTune` built directly, every field passed, for tests that do not compose the config.

`PLAIN` is the plainest fine-tuning: conf/eval/finetune.yaml's numbers (a test checks that they
agree), with no augmentation, no linear probe to start from, no CAM-refined head and no MC
dropout. Each test changes what it is about.
"""

from __future__ import annotations

from medssl.evaluation.finetune import FineTune

PLAIN = dict(
    epochs=20,
    batch_size=128,
    lr=1e-3,
    encoder_lr_scale=0.1,
    weight_decay=1e-4,
    warmup_epochs=1.0,
    head_only_epochs=2,
    patience=5,
    monitor="auroc",
    seed=0,
    label_smoothing=0.0,
    class_weight="balanced",
    head="linear",
    mlp_hidden=256,
    link="auto",
    probe=None,
    augmentation=None,
    cam_refine=None,
    mc_dropout=None,
)


def finetune(**changes) -> FineTune:
    """`PLAIN` with `changes`."""
    return FineTune(**{**PLAIN, **changes})
