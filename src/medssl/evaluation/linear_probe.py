"""Linear probe: logistic regression on frozen, standardised features.

The inverse regularisation strength C is picked on val AUROC from a log grid; test is
predicted once with the chosen C. Multi-label tasks fit one classifier per label.
"""

from __future__ import annotations

import logging
import warnings

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.multiclass import OneVsRestClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from medssl.evaluation.metrics import auroc

log = logging.getLogger(__name__)


class LinearProbe:
    def __init__(self, Cs: tuple[float, ...] = (1e-3, 1e-2, 1e-1, 1.0, 10.0), max_iter: int = 1000) -> None:
        if not Cs:
            raise ValueError("LinearProbe needs at least one C")
        self.Cs = tuple(float(c) for c in Cs)
        self.max_iter = max_iter

    def _model(self, task: str, C: float):
        classifier = LogisticRegression(C=C, max_iter=self.max_iter)
        if task == "multilabel":
            classifier = OneVsRestClassifier(classifier)
        return make_pipeline(StandardScaler(), classifier)

    def fit_predict(self, task: str, train: tuple, val: tuple, test_x: np.ndarray) -> dict:
        """`train`/`val`: (features, labels). Returns val/test probabilities and the chosen C."""
        (x_tr, y_tr), (x_val, y_val) = train, val
        n_classes = None if task == "multilabel" else int(max(y_tr.max(), y_val.max()) + 1)
        best = None
        for C in self.Cs:
            model = self._fit(task, C, x_tr, y_tr)
            probs = self._probs(model, x_val, n_classes)
            score = auroc(task, y_val, probs)
            log.info("linear probe C=%g: val AUROC %.4f", C, score)
            if best is None or (np.nan_to_num(score, nan=-1) > np.nan_to_num(best[1], nan=-1)):
                best = (C, score, model, probs)
        C, score, model, val_probs = best
        return {"val": val_probs, "test": self._probs(model, test_x, n_classes), "params": {"C": C}}

    def _fit(self, task, C, x, y):
        model = self._model(task, C)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            model.fit(x, y)
        return model

    @staticmethod
    def _probs(model, x, n_classes):
        probs = model.predict_proba(x)
        if n_classes is None:
            return probs
        # A labelled subset may miss a class; give it zero probability in its own column.
        full = np.zeros((len(x), n_classes))
        full[:, model.classes_] = probs
        return full
