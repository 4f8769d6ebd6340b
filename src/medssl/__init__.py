"""medssl: self-supervised pretraining and label-efficient evaluation for medical images."""

from medssl.errors import MedsslError

__all__ = ["MedsslError"]
__version__ = "0.1.0"
