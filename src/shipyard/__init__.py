"""Shipyard: from data to production and back, in one package.

The public names are imported on first use (PEP 562), so `import shipyard` stays cheap and
a process that only loads a model never imports the feature store's engines.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from shipyard.core.errors import (
        BackendUnavailable,
        ConfigError,
        ConflictError,
        DefinitionError,
        InvalidInputError,
        NotFoundError,
        ShipyardError,
    )
    from shipyard.core.types import (
        Array,
        Bool,
        Field,
        Float32,
        Float64,
        Int32,
        Int64,
        String,
        UnixTimestamp,
    )
    from shipyard.features.definitions import (
        Entity,
        FeatureService,
        FeatureView,
        FileSource,
        OnDemandFeatureView,
        PushSource,
        RequestSource,
        on_demand_feature_view,
    )
    from shipyard.project import Project

__version__ = "0.1.0"

_ERRORS = ("BackendUnavailable", "ConfigError", "ConflictError", "DefinitionError",
           "InvalidInputError", "NotFoundError", "ShipyardError")
_TYPES = ("Array", "Bool", "Field", "Float32", "Float64", "Int32", "Int64", "String",
          "UnixTimestamp")
_DEFINITIONS = ("Entity", "FeatureService", "FeatureView", "FileSource", "OnDemandFeatureView",
                "PushSource", "RequestSource", "on_demand_feature_view")
_MODULES = {**dict.fromkeys(_ERRORS, "shipyard.core.errors"),
            **dict.fromkeys(_TYPES, "shipyard.core.types"),
            **dict.fromkeys(_DEFINITIONS, "shipyard.features.definitions"),
            "Project": "shipyard.project"}

__all__ = [
    "Array", "BackendUnavailable", "Bool", "ConfigError", "ConflictError", "DefinitionError",
    "Entity", "FeatureService", "FeatureView", "Field", "FileSource", "Float32", "Float64",
    "Int32", "Int64", "InvalidInputError", "NotFoundError", "OnDemandFeatureView", "Project",
    "PushSource", "RequestSource", "ShipyardError", "String", "UnixTimestamp",
    "on_demand_feature_view",
]


def __getattr__(name: str) -> Any:
    """Import a public name, or a subpackage (`shipyard.models`), on first access."""
    module = _MODULES.get(name)
    if name.startswith("__"):
        raise AttributeError(f"module 'shipyard' has no attribute {name!r}")
    if module is not None:
        value = getattr(importlib.import_module(module), name)
    else:
        try:
            value = importlib.import_module(f"shipyard.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"shipyard.{name}":
                raise
            raise AttributeError(f"module 'shipyard' has no attribute {name!r}") from None
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
