"""Helpers the command-line tests share."""

from __future__ import annotations

import torch

from medssl.models.small_cnn import SmallCNN


def save_encoder(path, size=28):
    """An `encoder.pt` as a run writes it: a seeded width-8 SmallCNN for `size` px grey images."""
    torch.manual_seed(123)
    encoder = SmallCNN(in_chans=1, width=8, name="smallcnn", input_size=size)
    torch.save(
        {
            "backbone": {
                "_target_": "medssl.models.small_cnn.SmallCNN",
                "name": "smallcnn",
                "width": 8,
            },
            "in_chans": 1,
            "input_size": size,
            "state_dict": encoder.state_dict(),
        },
        path,
    )
    return encoder
