"""The label log: durable appends, late and repeated labels (the last one wins), the join."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from shipyard.core.errors import InvalidInputError
from shipyard.predictions import PredictionBatch, PredictionLog
from shipyard.predictions.labels import LabelLog, join_labels

T0 = pd.Timestamp("2026-11-01T10:00:00Z")


def _log_predictions(log: PredictionLog) -> None:
    """Four predictions: r1 (two rows, one request), r2, r3 — customers 1..4."""
    stamps = [int((T0 + pd.Timedelta(minutes=i)).value // 1_000) for i in range(4)]
    writer = log.open_writer()
    writer.append(PredictionBatch("fraud", 1, ["r1", "r1", "r2", "r3"], stamps,
                                  {"customer_id": [1, 2, 3, 4], "amount": [5.0, 6.0, 7.0, 8.0]},
                                  [0, 0, 1, 0], [[0.9, 0.1], [0.8, 0.2], [0.3, 0.7], [0.6, 0.4]]))
    writer.close()


@pytest.fixture
def log(tmp_path: Path) -> PredictionLog:
    log = PredictionLog(tmp_path / "predictions", flush_interval_seconds=0.05)
    _log_predictions(log)
    return log


def test_labels_by_request_id_join_every_row_of_the_request(log: PredictionLog) -> None:
    log.labels.write(pd.DataFrame({"request_id": ["r1", "r3", "unknown"], "label": [1, 0, 1]}))
    joined = log.read_labeled("fraud")
    assert joined["label"].tolist()[:2] == [1.0, 1.0]
    assert np.isnan(joined["label"].iloc[2])
    assert joined["label"].iloc[3] == 0.0
    assert joined["label_logged_at"].notna().tolist() == [True, True, False, True]


def test_a_repeated_label_replaces_the_earlier_one(log: PredictionLog) -> None:
    log.labels.write(pd.DataFrame({"request_id": ["r2"], "label": [0]}))
    time.sleep(0.002)  # the log orders labels by the microsecond they were logged
    log.labels.write(pd.DataFrame({"request_id": ["r2"], "label": [1]}))
    log.labels.write(pd.DataFrame({"request_id": ["r2"], "label": [1]}))  # a plain retry
    assert log.read_labeled("fraud")["label"].iloc[2] == 1.0
    assert len(log.labels.read()) == 1


def test_labels_by_entity_keys_and_timestamp(log: PredictionLog) -> None:
    late = pd.DataFrame({"customer_id": [4.0, 2], "timestamp": [T0 + pd.Timedelta(minutes=3),
                                                                 T0 + pd.Timedelta(minutes=9)],
                         "label": [1, 1]})
    log.labels.write(late, keys=["customer_id"])
    labels = log.read_labeled("fraud")["label"]
    assert labels.iloc[3] == 1.0  # customer 4 at 10:03, given as the float 4.0
    assert labels.iloc[:3].isna().all()  # customer 2's label is for another time


def test_the_later_label_wins_across_request_id_and_keys(log: PredictionLog) -> None:
    log.labels.write(pd.DataFrame({"request_id": ["r3"], "label": [1]}))
    time.sleep(0.002)
    log.labels.write(pd.DataFrame({"customer_id": [4], "timestamp": [T0 + pd.Timedelta(minutes=3)],
                                   "label": [0]}), keys=["customer_id"])
    assert log.read_labeled("fraud")["label"].iloc[3] == 0.0
    time.sleep(0.002)
    log.labels.write(pd.DataFrame({"request_id": ["r3"], "label": [1]}))
    assert log.read_labeled("fraud")["label"].iloc[3] == 1.0


def test_labels_survive_a_new_process_and_compaction(log: PredictionLog, tmp_path: Path) -> None:
    for value in (0, 1, 0):
        log.labels.write(pd.DataFrame({"request_id": ["r2", "r1"], "label": [value, 1]}))
        time.sleep(0.002)
    again = LabelLog(tmp_path / "predictions" / "labels")  # as another process sees the folder
    before = again.read()
    assert again.compact() == 3
    assert len(list((tmp_path / "predictions" / "labels").glob("*.parquet"))) == 1
    pd.testing.assert_frame_equal(again.read(), before)
    joined = join_labels(log.read("fraud"), again.read())["label"].to_numpy()
    np.testing.assert_array_equal(joined, [1.0, 1.0, 0.0, np.nan])


def test_string_labels_are_kept_as_text(log: PredictionLog) -> None:
    log.labels.write(pd.DataFrame({"request_id": ["r2"], "outcome": ["chargeback"]}), label="outcome")
    assert log.read_labeled("fraud")["label"].iloc[2] == "chargeback"


@pytest.mark.parametrize(("frame", "kwargs", "message"), [
    (pd.DataFrame({"request_id": ["r1"]}), {}, "no column 'label'"),
    (pd.DataFrame({"label": [1]}), {}, "neither a request_id"),
    (pd.DataFrame({"request_id": [None], "label": [1]}), {}, "no request_id"),
    (pd.DataFrame({"request_id": ["r1"], "label": [None]}), {}, "labels are missing"),
    (pd.DataFrame({"customer_id": [1], "label": [1]}), {"keys": ["customer_id"]}, "lack columns"),
    (pd.DataFrame({"customer_id": [1], "timestamp": ["soon"], "label": [1]}),
     {"keys": ["customer_id"]}, "could not be read as times"),
])
def test_bad_labels_are_refused_with_a_clear_error(log: PredictionLog, frame: pd.DataFrame,
                                                   kwargs: dict, message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        log.labels.write(frame, **kwargs)
    assert not list((log.root / "labels").glob("*.parquet"))
