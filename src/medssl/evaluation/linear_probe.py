"""Linear probe: logistic regression on frozen, standardised features.

The inverse regularisation strength C is picked on val AUROC from a log grid; test is
predicted once with the chosen C. Multi-label tasks fit one classifier per label.
`class_weight: balanced` weighs each class by n / (K n_k) in the loss (per label, positives
against negatives, for multi-label tasks), so that a minority class is not traded for accuracy
on the majority; `null` weighs every image alike. The fitted
scaler and classifier are folded into one `nn.Linear`, which gives the logits and lets Grad-CAM
differentiate the probe's class score through the encoder.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Sequence

import numpy as np
import torch
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.multiclass import OneVsRestClassifier
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler
from torch import nn

from medssl.data.task import Task
from medssl.errors import MedsslError
from medssl.evaluation.calibration import logits_to_probs
from medssl.evaluation.metrics import auroc
from medssl.evaluation.protocol import EvalInputs, ProtocolOutput
from medssl.losses.class_weight import CLASS_WEIGHTS

log = logging.getLogger(__name__)

# A class missing from the labelled subset gets this logit: a probability of about e^-30.
MISSING_CLASS_LOGIT = -30.0


class LinearProbe:
    """Config `eval.linear` (conf/eval/linear.yaml); also fine-tuning's start
    (`eval.finetune.probe`) and a probe of `trainer.eval_every`."""

    def __init__(self, *, Cs: Sequence[float], max_iter: int, class_weight: str | None) -> None:
        if not Cs:
            raise ValueError("LinearProbe needs at least one C")
        if class_weight not in CLASS_WEIGHTS:
            raise MedsslError(f"class_weight must be one of {CLASS_WEIGHTS}, got {class_weight!r}.")
        self.Cs = tuple(float(c) for c in Cs)
        self.max_iter, self.class_weight = max_iter, class_weight

    def select(self, inputs: EvalInputs) -> tuple[float, float, nn.Linear]:
        """`(C, val AUROC, head)` of the C with the best val AUROC; the head is folded."""
        task, k = inputs.task, inputs.n_outputs
        x_tr, y_tr = inputs.features("train"), inputs.labels["train"]
        x_val, y_val = inputs.features("val"), inputs.labels["val"]
        best = None
        for C in self.Cs:
            head = self.fit(task, k, C, x_tr, y_tr)
            score = auroc(task, y_val, logits_to_probs(task, _apply(head, x_val)))
            log.info("linear probe C=%g: val AUROC %.4f", C, score)
            if best is None or np.nan_to_num(score, nan=-1) > np.nan_to_num(best[1], nan=-1):
                best = (C, score, head)
        return best

    def evaluate(self, inputs: EvalInputs) -> ProtocolOutput:
        C, _, head = self.select(inputs)
        model = nn.Sequential(inputs.encoder, head).eval()
        return ProtocolOutput(
            val=_apply(head, inputs.features("val")),
            test=_apply(head, inputs.features("test")),
            predict=lambda images: _apply(head, inputs.features_of(images)),
            params={"C": C},
            model=model,
        )

    def fit(self, task: str, n_outputs: int, C: float, x: np.ndarray, y: np.ndarray) -> nn.Linear:
        classifier = LogisticRegression(C=C, max_iter=self.max_iter, class_weight=self.class_weight)
        if task == Task.MULTILABEL:
            classifier = OneVsRestClassifier(classifier)
        pipeline = make_pipeline(StandardScaler(), classifier)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            pipeline.fit(x, y)
        return fold_into_linear(pipeline, task, n_outputs)


def _apply(head: nn.Linear, x: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return head(torch.as_tensor(x, dtype=torch.float32)).double().numpy()


def fold_into_linear(pipeline: Pipeline, task: str, n_outputs: int) -> nn.Linear:
    """`StandardScaler` + logistic regression as one linear map from features to logits:
    W' = W / scale, b' = b - W' mean. The softmax (sigmoid) of its logits is sklearn's predict_proba."""
    scaler, classifier = pipeline[0], pipeline[-1]
    if task == Task.MULTILABEL:
        coef = np.concatenate([_coef(est) for est in classifier.estimators_])
        bias = np.concatenate([_bias(est) for est in classifier.estimators_])
    else:
        coef_present, bias_present = classifier.coef_, classifier.intercept_
        if len(classifier.classes_) == 2:
            # One decision function d; logits (-d/2, d/2) have sklearn's softmax, and give each
            # class a score whose gradient Grad-CAM can follow (with (0, d) class 0 has none).
            coef_present = np.concatenate([-coef_present, coef_present]) / 2
            bias_present = np.concatenate([-bias_present, bias_present]) / 2
        coef = np.zeros((n_outputs, coef_present.shape[1]))
        bias = np.full(n_outputs, MISSING_CLASS_LOGIT)
        coef[classifier.classes_], bias[classifier.classes_] = coef_present, bias_present
    scale = scaler.scale_
    weight = coef / scale
    linear = nn.Linear(weight.shape[1], weight.shape[0])
    with torch.no_grad():
        linear.weight.copy_(torch.as_tensor(weight))
        linear.bias.copy_(torch.as_tensor(bias - weight @ scaler.mean_))
    return linear


def _coef(estimator) -> np.ndarray:
    # OneVsRest keeps a constant predictor for a label with one class in the labelled subset.
    return (
        estimator.coef_ if hasattr(estimator, "coef_") else np.zeros((1, estimator.n_features_in_))
    )


def _bias(estimator) -> np.ndarray:
    if hasattr(estimator, "intercept_"):
        return estimator.intercept_
    only_label = np.asarray(estimator.y_).ravel()[0]
    return np.array([MISSING_CLASS_LOGIT if only_label == 0 else -MISSING_CLASS_LOGIT])
