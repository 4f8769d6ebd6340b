"""Linear probe: logistic regression on frozen, standardised features.

The inverse regularisation strength C is picked on val AUROC from a log grid; test is
predicted once with the chosen C. Multi-label tasks fit one classifier per label.
`class_weight: balanced` weighs each class by n / (K n_k) in the loss (per label, positives
against negatives, for multi-label tasks), so that a minority class is not traded for accuracy
on the majority; `null` weighs every image alike. The fitted
scaler and classifier are folded into one `nn.Linear`, which gives the logits and lets Grad-CAM
differentiate the probe's class score through the encoder.

`link: ordinal` fits CORAL's cumulative link instead (ordinal.py: one weight vector, K-1
biases), with the same C grid, penalty and class weights; `auto` fits both on graded (ordinal)
tasks and keeps the one with the better val quadratic kappa, recorded as `linear/link` with
`linear/val_kappa_softmax` and `linear/val_kappa_ordinal`; on other tasks `auto` is softmax.
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
from medssl.evaluation.ordinal import candidate_links, check_link, fit_ordinal_probe, pick_link
from medssl.evaluation.protocol import EvalInputs, ProtocolOutput
from medssl.losses.class_weight import CLASS_WEIGHTS, balanced_weights

log = logging.getLogger(__name__)

# A class missing from the labelled subset gets this logit: a probability of about e^-30.
MISSING_CLASS_LOGIT = -30.0


class LinearProbe:
    """Config `eval.linear` (conf/eval/linear.yaml); also fine-tuning's start
    (`eval.finetune.probe`) and a probe of `trainer.eval_every`."""

    def __init__(
        self, *, Cs: Sequence[float], max_iter: int, class_weight: str | None, link: str
    ) -> None:
        if not Cs:
            raise ValueError("LinearProbe needs at least one C")
        if class_weight not in CLASS_WEIGHTS:
            raise MedsslError(f"class_weight must be one of {CLASS_WEIGHTS}, got {class_weight!r}.")
        self.Cs = tuple(float(c) for c in Cs)
        self.max_iter, self.class_weight = max_iter, class_weight
        check_link(link, "link")
        self.link = link

    def select(self, inputs: EvalInputs, link: str = "softmax") -> tuple[float, float, nn.Module]:
        """`(C, val AUROC, head)` of the C with the best val AUROC; the head is folded (an
        `nn.Linear`, or an `OrdinalHead` for `link="ordinal"`)."""
        task, k = inputs.task, inputs.n_outputs
        x_tr, y_tr = inputs.features("train"), inputs.labels["train"]
        x_val, y_val = inputs.features("val"), inputs.labels["val"]
        best = None
        for C in self.Cs:
            head = (
                self.fit(task, k, C, x_tr, y_tr)
                if link == "softmax"
                else self.fit_ordinal(k, C, x_tr, y_tr)
            )
            score = auroc(task, y_val, logits_to_probs(task, _apply(head, x_val)))
            log.info("linear probe (%s) C=%g: val AUROC %.4f", link, C, score)
            if best is None or np.nan_to_num(score, nan=-1) > np.nan_to_num(best[1], nan=-1):
                best = (C, score, head)
        return best

    def evaluate(self, inputs: EvalInputs) -> ProtocolOutput:
        links = candidate_links(self.link, inputs.task, "eval.linear.link")
        fits = {link: self.select(inputs, link) for link in links}
        link, record = links[0], {}
        if inputs.task == Task.ORDINAL:  # the choice, and each candidate's val kappa
            val = {
                name: _apply(head, inputs.features("val")) for name, (_, _, head) in fits.items()
            }
            link, record = pick_link(inputs.labels["val"], val)
            log.info("linear probe: the %s head, %s", link, record)
        C, _, head = fits[link]
        model = nn.Sequential(inputs.encoder, head).eval()
        return ProtocolOutput(
            val=_apply(head, inputs.features("val")),
            test=_apply(head, inputs.features("test")),
            predict=lambda images: _apply(head, inputs.features_of(images)),
            params={"C": C, **record},
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

    def fit_ordinal(self, n_classes: int, C: float, x: np.ndarray, y: np.ndarray) -> nn.Module:
        weight = None
        if self.class_weight == "balanced":
            weight = balanced_weights(Task.ORDINAL, y, n_classes)
        return fit_ordinal_probe(
            x, y, n_classes, C=C, class_weight=weight, max_iter=self.max_iter
        ).eval()


def _apply(head: nn.Module, x: np.ndarray) -> np.ndarray:
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
