"""Signatures: inferred from frames, and input validation with clear errors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import shipyard as sy
from shipyard.core.errors import InvalidInputError
from shipyard.models.signature import Column, Signature

FRAME = pd.DataFrame({"amount": [1.5, 2.0], "count": np.array([1, 2], dtype=np.int64),
                      "country": ["fr", "de"], "is_new": [True, False],
                      "seen_at": pd.to_datetime(["2026-01-01", "2026-01-02"], utc=True)})


def test_a_signature_is_inferred_from_an_example_frame() -> None:
    sig = Signature.from_frame(FRAME)
    assert [(c.name, c.dtype) for c in sig.inputs] == [
        ("amount", sy.Float64), ("count", sy.Int64), ("country", sy.String),
        ("is_new", sy.Bool), ("seen_at", sy.UnixTimestamp)]
    assert Signature.from_spec(sig.to_spec()) == sig


def test_validate_selects_the_inputs_in_signature_order() -> None:
    sig = Signature((Column("count", sy.Int64), Column("amount", sy.Float64)))
    out = sig.validate(FRAME)
    assert list(out.columns) == ["count", "amount"]


def test_numbers_of_any_width_fit_numeric_inputs() -> None:
    sig = Signature((Column("count", sy.Int64),))
    sig.validate(pd.DataFrame({"count": [1.0, np.nan]}))  # an int feature with a null
    sig.validate(pd.DataFrame({"count": pd.array([1, None], dtype="Int64")}))


def test_a_missing_column_is_named_in_the_error() -> None:
    sig = Signature.from_frame(FRAME)
    with pytest.raises(InvalidInputError, match=r"missing column\(s\) \['country'\]") as info:
        sig.validate(FRAME.drop(columns=["country"]))
    assert "amount" in (info.value.hint or "")


def test_a_wrong_dtype_is_named_with_the_fix() -> None:
    sig = Signature((Column("amount", sy.Float64),))
    with pytest.raises(InvalidInputError,
                       match="'amount' has dtype .+ but the model expects Float64") as info:
        sig.validate(pd.DataFrame({"amount": ["1.5"]}))
    assert info.value.hint == "Convert it, e.g. df['amount'].astype(float)."


def test_predict_input_must_be_a_frame() -> None:
    with pytest.raises(InvalidInputError, match="takes a DataFrame, not dict"):
        Signature.from_frame(FRAME).validate({"amount": [1.0]})  # type: ignore[arg-type]


def test_select_narrows_to_what_the_model_was_trained_on() -> None:
    sig = Signature.from_frame(FRAME)
    assert sig.select(["count", "amount"], source="svc").names == ["count", "amount"]
    with pytest.raises(InvalidInputError, match=r"trained on \['age'\], which svc does not"):
        sig.select(["age"], source="svc")


def test_duplicate_or_empty_inputs_are_refused() -> None:
    with pytest.raises(InvalidInputError, match="empty or repeat"):
        Signature((Column("a", sy.Int64), Column("a", sy.Int64)))
    with pytest.raises(InvalidInputError, match="empty or repeat"):
        Signature(())
