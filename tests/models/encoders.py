"""A small encoder for tests that build methods in Python: `SmallCNN` with every argument the
runner and `conf/backbone/smallcnn.yaml` give it."""

from __future__ import annotations

from medssl.models.small_cnn import SmallCNN


def small_cnn(in_chans: int = 1, *, width: int = 8) -> SmallCNN:
    """`width` 8 (the config's is 32) keeps a test's steps fast; any input size works."""
    return SmallCNN(in_chans, width=width, name="smallcnn", input_size=28)
