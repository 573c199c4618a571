"""Feature definitions of the fraud demo: customer and merchant statistics, and
transaction features computed from the request by the same code in training and serving."""

from __future__ import annotations

import math
from datetime import timedelta

import shipyard as sy

customer = sy.Entity("customer", join_keys=["customer_id"], description="A card holder.")
merchant = sy.Entity("merchant", join_keys=["merchant_id"], description="A card acceptor.")

customer_stats = sy.FeatureView(
    name="customer_stats",
    entities=[customer],
    ttl=timedelta(days=2),
    schema=[
        sy.Field("txn_count_24h", sy.Int64),
        sy.Field("amount_sum_24h", sy.Float64),
        sy.Field("amount_mean_7d", sy.Float64),
        sy.Field("amount_std_7d", sy.Float64),
        sy.Field("distinct_merchants_7d", sy.Int64),
    ],
    source=sy.PushSource(  # hourly batches, plus live updates pushed by the stream job
        "customer_stats_push",
        batch_source=sy.FileSource("data/customer_stats.parquet", timestamp_field="event_timestamp",
                                   created_timestamp_field="created_at")),
    owner="risk-data@example.com",
    description="Hourly spending statistics per customer, updated live by pushes.",
)

merchant_stats = sy.FeatureView(
    name="merchant_stats",
    entities=[merchant],
    ttl=timedelta(days=3),
    schema=[
        sy.Field("merchant_txn_count_24h", sy.Int64),
        sy.Field("fraud_rate_30d", sy.Float64),
        sy.Field("merchant_amount_mean_30d", sy.Float64),
        sy.Field("category", sy.String),
    ],
    source=sy.FileSource(
        "data/merchant_stats.parquet", timestamp_field="event_timestamp",
        created_timestamp_field="created_at",
        field_mapping={"txn_count_24h": "merchant_txn_count_24h",
                       "amount_mean_30d": "merchant_amount_mean_30d"},
    ),
    owner="risk-data@example.com",
    description="Daily statistics per merchant; fraud rate only from labels known by then.",
)

transaction = sy.RequestSource("transaction", schema=[sy.Field("amount", sy.Float64)])


@sy.on_demand_feature_view(
    sources=[customer_stats[["amount_mean_7d", "amount_std_7d"]],
             merchant_stats[["merchant_amount_mean_30d"]], transaction],
    schema=[sy.Field("amount_vs_customer_mean", sy.Float64),
            sy.Field("amount_zscore", sy.Float64),
            sy.Field("amount_vs_merchant_mean", sy.Float64),
            sy.Field("log_amount", sy.Float64)],
    mode="python",
)
def transaction_features(inputs: dict[str, list]) -> dict[str, list]:
    """How unusual the amount is for this customer and merchant."""

    def ratio(a: float | None, b: float | None) -> float | None:
        ok = a is not None and b is not None and b == b and a == a and b > 0
        return a / b if ok else None

    amounts = inputs["amount"]
    means, stds = inputs["amount_mean_7d"], inputs["amount_std_7d"]
    return {
        "amount_vs_customer_mean": [ratio(a, m) for a, m in zip(amounts, means, strict=True)],
        "amount_zscore": [ratio(a - m, s) if m is not None and m == m else None
                          for a, m, s in zip(amounts, means, stds, strict=True)],
        "amount_vs_merchant_mean": [ratio(a, m) for a, m in
                                    zip(amounts, inputs["merchant_amount_mean_30d"], strict=True)],
        "log_amount": [math.log1p(a) for a in amounts],
    }


fraud_v1 = sy.FeatureService(
    "fraud_v1",
    features=[customer_stats[["txn_count_24h", "amount_mean_7d"]],
              transaction_features[["amount_vs_customer_mean", "log_amount"]]],
    description="The first fraud model: customer history and the amount.",
)

fraud_v2 = sy.FeatureService(
    "fraud_v2",
    features=[customer_stats, merchant_stats, transaction_features],
    description="Adds merchant risk and more amount features.",
)
