"""Model references: NAME, NAME/VERSION, NAME@ALIAS."""

from __future__ import annotations

import pytest

from shipyard.core.errors import InvalidInputError
from shipyard.models.refs import ModelRef, parse_ref


@pytest.mark.parametrize(("text", "expected"), [
    ("fraud", ModelRef("fraud")),
    ("fraud/3", ModelRef("fraud", version=3)),
    ("fraud@champion", ModelRef("fraud", alias="champion")),
    ("fraud-v2.lgbm@shadow-1", ModelRef("fraud-v2.lgbm", alias="shadow-1")),
])
def test_references_parse_and_print_back(text: str, expected: ModelRef) -> None:
    assert parse_ref(text) == expected
    assert str(parse_ref(text)) == text


@pytest.mark.parametrize("text", ["", "fraud/0", "fraud/x", "fraud/-1", "fraud@", "fraud@3",
                                  "@champion", "../fraud", "fraud/1/2", "fr aud"])
def test_malformed_references_are_refused(text: str) -> None:
    with pytest.raises(InvalidInputError) as info:
        parse_ref(text)
    assert info.value.hint
