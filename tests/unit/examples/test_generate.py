"""The fraud demo generator: deterministic, honest point-in-time features, planted shift."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from shipyard.examples.fraud.generate import generate, main

END = pd.Timestamp("2026-11-01", tz="UTC")
SMALL = {"customers": 200, "merchants": 40, "days": 20}
TS = pa.timestamp("us", tz="UTC")
SCHEMAS = {
    "transactions": [("txn_id", pa.int64()), ("customer_id", pa.int64()),
                     ("merchant_id", pa.int64()), ("amount", pa.float64()),
                     ("event_timestamp", TS), ("is_fraud", pa.int64()), ("label_timestamp", TS)],
    "customer_stats": [("customer_id", pa.int64()), ("event_timestamp", TS), ("created_at", TS),
                       ("txn_count_24h", pa.int64()), ("amount_sum_24h", pa.float64()),
                       ("amount_mean_7d", pa.float64()), ("amount_std_7d", pa.float64()),
                       ("distinct_merchants_7d", pa.int64())],
    "merchant_stats": [("merchant_id", pa.int64()), ("event_timestamp", TS), ("created_at", TS),
                       ("txn_count_24h", pa.int64()), ("fraud_rate_30d", pa.float64()),
                       ("amount_mean_30d", pa.float64()), ("category", pa.string())],
    "labels": [("customer_id", pa.int64()), ("merchant_id", pa.int64()),
               ("amount", pa.float64()), ("event_timestamp", TS), ("is_fraud", pa.int64()),
               ("label_timestamp", TS)],
}


def _read(paths: dict[str, Path]) -> dict[str, pd.DataFrame]:
    return {name: pd.read_parquet(path) for name, path in paths.items()}


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return generate(tmp_path_factory.mktemp("small"), **SMALL)


@pytest.fixture(scope="module")
def data(small: dict[str, Path]) -> dict[str, pd.DataFrame]:
    return _read(small)


@pytest.fixture(scope="module")
def shifted(tmp_path_factory: pytest.TempPathFactory) -> dict[str, pd.DataFrame]:
    # Larger, so that the planted shift stands out from sampling noise.
    return _read(generate(tmp_path_factory.mktemp("shift"), customers=600, merchants=60, days=35))


def _latest(stats: pd.DataFrame) -> pd.DataFrame:
    """One row per (customer, snapshot): the one written last, as a point-in-time join reads."""
    return (stats.sort_values("created_at")
            .drop_duplicates(["customer_id", "event_timestamp"], keep="last"))


def test_same_seed_same_data_and_other_seed_differs(tmp_path: Path,
                                                    data: dict[str, pd.DataFrame]) -> None:
    again = _read(generate(tmp_path / "again", **SMALL))
    for name, frame in data.items():
        pd.testing.assert_frame_equal(frame, again[name])
    other = _read(generate(tmp_path / "other", **SMALL, seed=8))
    assert not other["transactions"].equals(data["transactions"])


def test_files_and_schemas(small: dict[str, Path]) -> None:
    assert set(small) == set(SCHEMAS)
    for name, path in small.items():
        assert path.name == f"{name}.parquet" and path.exists()
        assert pq.read_schema(path).remove_metadata() == pa.schema(SCHEMAS[name])


def test_transactions_span_the_days_before_end(data: dict[str, pd.DataFrame]) -> None:
    tx = data["transactions"]
    assert tx["txn_id"].is_unique and tx["event_timestamp"].is_monotonic_increasing
    assert tx["event_timestamp"].min() >= END - pd.Timedelta(days=SMALL["days"])
    assert tx["event_timestamp"].max() < END
    assert (tx["amount"] > 0).all()
    hours = tx.loc[tx["is_fraud"] == 0, "event_timestamp"].dt.hour
    assert (hours.between(1, 4)).mean() < (hours.between(17, 20)).mean() / 5  # quiet nights


def test_fraud_share_and_profile(data: dict[str, pd.DataFrame]) -> None:
    tx = data["transactions"]
    assert 0.007 <= tx["is_fraud"].mean() <= 0.035
    fraud, legit = tx[tx["is_fraud"] == 1], tx[tx["is_fraud"] == 0]
    assert fraud["amount"].median() > 1.5 * legit["amount"].median()
    night = tx["event_timestamp"].dt.hour < 6
    assert fraud.index.isin(tx.index[night]).mean() > 3 * night[legit.index].mean()


def test_labels_arrive_after_the_transaction(data: dict[str, pd.DataFrame]) -> None:
    tx, labels = data["transactions"], data["labels"]
    pd.testing.assert_frame_equal(labels, tx[list(labels.columns)])
    delay = (tx["label_timestamp"] - tx["event_timestamp"]) / pd.Timedelta(days=1)
    assert (delay >= 0).all()
    assert delay[tx["is_fraud"] == 1].between(1, 10).all()
    assert delay[tx["is_fraud"] == 0].between(1, 10).all()


def _recompute(tx: pd.DataFrame, customer_id: int, at: pd.Timestamp) -> dict[str, float]:
    """Features for one snapshot straight from the transactions (the slow, obvious way)."""
    mine = tx[(tx["customer_id"] == customer_id) & (tx["event_timestamp"] <= at)]
    day = mine[mine["event_timestamp"] > at - pd.Timedelta(hours=24)]
    week = mine[mine["event_timestamp"] > at - pd.Timedelta(days=7)]
    return {"txn_count_24h": len(day), "amount_sum_24h": day["amount"].sum(),
            "amount_mean_7d": week["amount"].mean(), "amount_std_7d": week["amount"].std(),
            "distinct_merchants_7d": week["merchant_id"].nunique()}


def test_customer_stats_use_only_the_past(data: dict[str, pd.DataFrame]) -> None:
    tx, stats = data["transactions"], _latest(data["customer_stats"])
    for row in stats.sample(150, random_state=0).itertuples():
        expected = _recompute(tx, row.customer_id, row.event_timestamp)
        assert row.txn_count_24h == expected["txn_count_24h"]
        assert row.distinct_merchants_7d == expected["distinct_merchants_7d"]
        assert row.amount_sum_24h == pytest.approx(expected["amount_sum_24h"], abs=0.011)
        assert row.amount_mean_7d == pytest.approx(expected["amount_mean_7d"], rel=1e-4)
        if np.isnan(expected["amount_std_7d"]):
            assert np.isnan(row.amount_std_7d)
        else:
            assert row.amount_std_7d == pytest.approx(expected["amount_std_7d"], rel=1e-3,
                                                      abs=1e-3)


def test_customer_snapshots_only_for_recently_active_customers(
        data: dict[str, pd.DataFrame]) -> None:
    stats = data["customer_stats"]
    delay = stats["created_at"] - stats["event_timestamp"]
    assert delay.between(pd.Timedelta(minutes=5), pd.Timedelta(days=3)).all()
    assert (stats["event_timestamp"].dt.minute == 0).all()
    assert (stats["distinct_merchants_7d"] >= 1).all()  # some activity in the last 7 days
    assert stats["amount_mean_7d"].notna().all()


def test_late_corrections_win_on_created_at(data: dict[str, pd.DataFrame]) -> None:
    tx, stats = data["transactions"], data["customer_stats"]
    key = ["customer_id", "event_timestamp"]
    dups = stats[stats.duplicated(key, keep=False)].sort_values([*key, "created_at"])
    assert 0.001 < len(dups) / 2 / len(stats) < 0.02
    first, last = dups.groupby(key).nth(0), dups.groupby(key).nth(-1)
    assert (last["created_at"].to_numpy() > first["created_at"].to_numpy()).all()
    changed = first["amount_sum_24h"].to_numpy() != last["amount_sum_24h"].to_numpy()
    assert changed[last["amount_sum_24h"].to_numpy() > 0].all()
    for row in last.head(20).itertuples():  # the correction carries the honest values
        assert row.txn_count_24h == _recompute(tx, row.customer_id, row.event_timestamp)[
            "txn_count_24h"]


def test_merchant_fraud_rate_uses_known_labels_only(data: dict[str, pd.DataFrame]) -> None:
    tx, stats = data["transactions"], data["merchant_stats"]
    assert (stats["event_timestamp"] == stats["event_timestamp"].dt.normalize()).all()
    assert stats.groupby("merchant_id")["category"].nunique().eq(1).all()
    for row in stats.sample(60, random_state=1).itertuples():
        mine = tx[(tx["merchant_id"] == row.merchant_id)
                  & (tx["event_timestamp"] > row.event_timestamp - pd.Timedelta(days=30))
                  & (tx["event_timestamp"] <= row.event_timestamp)]
        known = mine[mine["label_timestamp"] <= row.event_timestamp]
        day = mine[mine["event_timestamp"] > row.event_timestamp - pd.Timedelta(days=1)]
        assert row.txn_count_24h == len(day)
        assert row.amount_mean_30d == pytest.approx(mine["amount"].mean(), rel=1e-4)
        if known.empty:
            assert np.isnan(row.fraud_rate_30d)
        else:
            assert row.fraud_rate_30d == pytest.approx(known["is_fraud"].mean(), abs=1e-6)


def test_shift_only_in_the_documented_features(shifted: dict[str, pd.DataFrame]) -> None:
    tx, stats = shifted["transactions"], _latest(shifted["customer_stats"])
    cut = END - pd.Timedelta(days=14)
    after = tx["event_timestamp"] >= cut
    assert tx.loc[after, "amount"].mean() > 1.3 * tx.loc[~after, "amount"].mean()
    assert tx.loc[after, "is_fraud"].mean() > 1.3 * tx.loc[~after, "is_fraud"].mean()
    first_seen = tx.groupby("merchant_id")["event_timestamp"].min()
    assert (first_seen >= cut).any()  # new merchants open in the shift window
    # Skip the warm-up week, in which 7-day windows hold partial history.
    warm = stats["event_timestamp"] >= stats["event_timestamp"].min() + pd.Timedelta(days=7)
    before, late = stats[warm & (stats["event_timestamp"] < cut)], stats[
        stats["event_timestamp"] >= cut + pd.Timedelta(days=7)]
    ratio = late.mean(numeric_only=True) / before.mean(numeric_only=True)
    for feature in ("amount_sum_24h", "amount_mean_7d", "amount_std_7d"):
        assert ratio[feature] > 1.25, feature
    for feature in ("txn_count_24h", "distinct_merchants_7d"):
        assert 0.93 < ratio[feature] < 1.07, feature


def test_cli_writes_the_files(tmp_path: Path) -> None:
    main([str(tmp_path / "cli"), "--customers", "30", "--days", "15", "--seed", "3"])
    assert {p.name for p in (tmp_path / "cli").iterdir()} == {f"{n}.parquet" for n in SCHEMAS}


def test_naive_end_means_utc(tmp_path: Path) -> None:
    naive = generate(tmp_path / "naive", customers=20, days=15, end=datetime(2026, 11, 1))
    aware = generate(tmp_path / "aware", customers=20, days=15,
                     end=datetime(2026, 11, 1, tzinfo=UTC))
    pd.testing.assert_frame_equal(pd.read_parquet(naive["transactions"]),
                                  pd.read_parquet(aware["transactions"]))
