"""Weighted cosine k-NN on frozen features (Wu et al. 2018; the DINO / solo-learn k-NN monitor).

Each test image takes its k most cosine-similar labelled training images; neighbour i votes for
its label with weight exp(s_i / temperature). Class scores are the normalised vote shares;
multi-label scores are the weighted mean of the neighbours' label vectors.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from medssl.data.task import Task
from medssl.evaluation.calibration import probs_to_logits
from medssl.evaluation.protocol import EvalInputs, ProtocolOutput

# Queries scored per similarity matrix against the bank: bounds memory, changes no vote.
QUERY_CHUNK = 1024


class KNNClassifier:
    """Config `eval.knn` (conf/eval/knn.yaml); also a probe of `trainer.eval_every`."""

    def __init__(self, *, k: int, temperature: float) -> None:
        if k < 1:
            raise ValueError(f"k must be at least 1, got {k}")
        if temperature <= 0:
            raise ValueError(f"temperature must be positive, got {temperature}")
        self.k, self.temperature = k, temperature

    def evaluate(self, inputs: EvalInputs) -> ProtocolOutput:
        bank, bank_labels = inputs.features("train"), inputs.labels["train"]

        def logits(features: np.ndarray) -> np.ndarray:
            probs = self.predict_proba(inputs.task, inputs.n_outputs, bank, bank_labels, features)
            return probs_to_logits(inputs.task, probs)

        return ProtocolOutput(
            val=logits(inputs.features("val")),
            test=logits(inputs.features("test")),
            predict=lambda images: logits(inputs.features_of(images)),
            params={"k": min(self.k, len(bank)), "temperature": self.temperature},
        )

    def predict_proba(
        self,
        task: str,
        n_outputs: int,
        bank: np.ndarray,
        bank_labels: np.ndarray,
        queries: np.ndarray,
    ) -> np.ndarray:
        """`(N, n_outputs)` vote shares of each query's k nearest bank features."""
        bank_t = F.normalize(torch.as_tensor(bank, dtype=torch.float32), dim=1)
        if task == Task.MULTILABEL:
            targets = torch.as_tensor(bank_labels, dtype=torch.float32)
        else:
            targets = F.one_hot(torch.as_tensor(bank_labels, dtype=torch.long), n_outputs).float()
        k = min(self.k, len(bank_t))
        chunks = []
        for start in range(0, len(queries), QUERY_CHUNK):
            q = F.normalize(
                torch.as_tensor(queries[start : start + QUERY_CHUNK], dtype=torch.float32),
                dim=1,
            )
            similarity, index = (q @ bank_t.T).topk(k, dim=1)
            # Softmax over the k neighbours = exp(s / T) normalised, without overflow.
            weights = torch.softmax(similarity / self.temperature, dim=1)
            chunks.append(torch.einsum("nk,nkc->nc", weights, targets[index]))
        return torch.cat(chunks).double().numpy()
