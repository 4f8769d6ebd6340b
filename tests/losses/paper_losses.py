"""Each loss built with every argument its paper gives, for tests that build losses in Python.

The losses have no Python defaults (their values live in `conf/method/`), so a test states them;
`changes` replaces any of them. `gather` is on as in the configs: in one process it is a no-op.
"""

from __future__ import annotations

from medssl.losses.barlow import BarlowTwinsLoss
from medssl.losses.dino import DINOLoss
from medssl.losses.infonce import InfoNCELoss
from medssl.losses.nt_xent import NTXentLoss
from medssl.losses.sicova import SiCoVaLoss
from medssl.losses.supcon import SupConLoss
from medssl.losses.triplet import TripletLoss
from medssl.losses.vicreg import VICRegLoss

VICREG = {
    "invariance_weight": 25.0,  # lambda, mu, nu of Bardes et al. 2022
    "variance_weight": 25.0,
    "covariance_weight": 1.0,
    "gamma": 1.0,
    "eps": 1e-4,
    "gather": True,
}


def nt_xent(**changes) -> NTXentLoss:
    return NTXentLoss(**{"temperature": 0.2, "gather": True, **changes})


def infonce(**changes) -> InfoNCELoss:
    return InfoNCELoss(**{"temperature": 0.2, "gather": True, **changes})


def vicreg(**changes) -> VICRegLoss:
    return VICRegLoss(**{**VICREG, **changes})


def barlow(**changes) -> BarlowTwinsLoss:
    return BarlowTwinsLoss(**{"off_diagonal_weight": 5e-3, "eps": 1e-5, "gather": True, **changes})


def sicova(**changes) -> SiCoVaLoss:
    options = {"correlation_weight": 1.0, "off_diagonal_weight": 5e-3}
    return SiCoVaLoss(**{**VICREG, **options, **changes})


def supcon(**changes) -> SupConLoss:
    return SupConLoss(**{"temperature": 0.1, "gather": True, **changes})


def triplet(**changes) -> TripletLoss:
    return TripletLoss(**{"margin": 0.2, "gamma": 1.0, "gather": True, **changes})


def dino(**changes) -> DINOLoss:
    """DINO's loss with the paper's student temperature and centre momentum; the teacher
    temperatures, its warm-up and `out_dim` differ per test, so they are given each time."""
    return DINOLoss(**{"student_temp": 0.1, "center_momentum": 0.9, **changes})
