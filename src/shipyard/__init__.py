"""Shipyard: from data to production and back, in one package."""

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

__all__ = [
    "Array", "BackendUnavailable", "Bool", "ConfigError", "ConflictError", "DefinitionError",
    "Entity", "FeatureService", "FeatureView", "Field", "FileSource", "Float32", "Float64",
    "Int32", "Int64", "InvalidInputError", "NotFoundError", "OnDemandFeatureView", "Project",
    "PushSource", "RequestSource", "ShipyardError", "String", "UnixTimestamp",
    "on_demand_feature_view",
]
