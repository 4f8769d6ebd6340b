"""Building a run's components from their config blocks with `hydra.utils.instantiate`."""

from __future__ import annotations

import logging

from hydra.errors import InstantiationException
from hydra.utils import instantiate
from omegaconf import DictConfig

from medssl.errors import MedsslError

log = logging.getLogger(__name__)


def build(cfg: DictConfig, key: str, **kwargs):
    log.info("Instantiating %s <%s>", key, cfg[key]._target_)
    try:
        return instantiate(cfg[key], **kwargs)
    except InstantiationException as error:
        # Hydra wraps what the target raised; a user error should reach the user unwrapped.
        if isinstance(error.__cause__, MedsslError):
            raise error.__cause__ from None
        raise
