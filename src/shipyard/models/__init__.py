"""The model registry: packaging (flavors, signatures), versions, aliases, lineage, loading."""

from shipyard.models.flavors import FLAVORS
from shipyard.models.model import Model
from shipyard.models.records import ModelVersion, RegisteredModel, ServiceInputs
from shipyard.models.refs import ModelRef, parse_ref
from shipyard.models.registry import ModelRegistry
from shipyard.models.signature import Column, Signature

__all__ = ["FLAVORS", "Column", "Model", "ModelRef", "ModelRegistry", "ModelVersion",
           "RegisteredModel", "ServiceInputs", "Signature", "parse_ref"]
