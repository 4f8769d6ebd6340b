"""What every protocol's evaluation writes besides its fit (config `eval_outputs`): the
calibration bins of its metrics, the class called positive in a binary task, and its figures."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class EvalOutputOptions:
    """Shared by all protocols and analyses; each field is documented in conf/config.yaml."""

    n_bins: int
    figures: bool
    cam: bool
    cam_images: int
    gallery_size: int
    embedding_max_points: int
    tsne_perplexity: float
    tsne_max_iter: int
    positive_class: int | None

    def positive(self, n_classes: int) -> int:
        """The class index called positive in a binary task (1 unless configured)."""
        index = 1 if self.positive_class is None else int(self.positive_class)
        if not 0 <= index < n_classes:
            raise ValueError(
                f"eval_outputs.positive_class must be 0 or 1, got {self.positive_class}"
            )
        return index
