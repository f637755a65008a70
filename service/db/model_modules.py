"""Every feature's models module: the one list that makes the whole schema (metadata)."""

from __future__ import annotations

import importlib

from sqlalchemy import MetaData

MODEL_MODULES: tuple[str, ...] = (
    "service.touchpoints.models",
    "service.access.models",
    "service.tryon.models",
    "service.identity.models",
    "service.handoff.models",
    "service.shoppers.models",
    "service.offers.models",
    "service.analytics.models",
)


def load_metadata() -> MetaData:
    """Base.metadata with every feature's tables registered."""
    from service.db.base import Base

    for name in MODEL_MODULES:
        importlib.import_module(name)
    return Base.metadata
