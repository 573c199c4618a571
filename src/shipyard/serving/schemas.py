"""The request and response documents of the feature routes, for the OpenAPI document.

The handlers do not validate through these models (that costs more than the read itself);
they check each field by hand, with the same shapes.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class OnlineFeaturesRequest(BaseModel):
    """Features to read for some entities, as columns."""

    features: list[str] | None = Field(None, examples=[["customer_stats:txn_count_24h"]],
                                       description="'view:feature' references; or use "
                                                   "feature_service.")
    feature_service: str | None = Field(None, description="A feature service name.")
    entities: dict[str, list[int | str | None]] = Field(
        examples=[{"customer_id": [1, 2]}], description="Join key name to one value per row.")
    request: dict[str, list[Any]] | None = Field(
        None, description="Request data of on-demand features, one value per row.")
    full_feature_names: bool = Field(False, description="Name columns 'view__feature'.")


class OnlineFeaturesMetadata(BaseModel):
    join_keys: list[str]
    feature_names: list[str]


class OnlineFeaturesResponse(BaseModel):
    """Column name to one value per entity row, in row order: join keys, then features."""

    metadata: OnlineFeaturesMetadata
    results: dict[str, list[Any]]


class PushRequest(BaseModel):
    """Rows for the feature views fed by a push source: `rows` or `columns`."""

    push_source_name: str
    rows: list[dict[str, Any]] | None = Field(
        None, examples=[[{"customer_id": 1, "event_timestamp": "2024-05-01T12:00:00Z",
                          "txn_count_24h": 3}]],
        description="One object per row; timestamps as ISO 8601 strings or epoch seconds.")
    columns: dict[str, list[Any]] | None = Field(None, description="Column name to values.")


class PushResponse(BaseModel):
    push_source_name: str
    rows: int


class ErrorBody(BaseModel):
    """Every error: its class, what went wrong and what to do."""

    error: str
    message: str
    hint: str | None = None
    request_id: str | None = None
