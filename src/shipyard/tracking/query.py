"""The run filter and ordering language, parsed by a tokenizer (never eval).

    metrics.auc > 0.8 and params.model = 'lgbm' and tags.team != "risk" and status = 'finished'

Clauses are `<scope>.<key> <op> <literal>` joined by `and`; scopes are `metrics`, `params`,
`tags` and `attributes` (bare names such as `status` are attributes). Keys with unusual
characters go in backticks: metrics.`val auc`. A run without the key fails the clause.
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from shipyard.core.errors import InvalidInputError

SCOPES = ("metrics", "params", "tags", "attributes")
ATTRIBUTES = ("id", "name", "experiment", "status", "start_time", "end_time", "git_commit")
_OPS: dict[str, Callable[[Any, Any], bool]] = {
    "=": operator.eq, "==": operator.eq, "!=": operator.ne, "<": operator.lt,
    "<=": operator.le, ">": operator.gt, ">=": operator.ge}
_TOKEN = re.compile(r"""
    \s*(?:
      (?P<num>[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)(?![\w.])
    | '(?P<sq>(?:[^']|'')*)'
    | "(?P<dq>(?:[^"]|"")*)"
    | (?P<op>==|!=|<=|>=|=|<|>)
    | (?P<ident>[A-Za-z_][\w]*(?:\.(?:`[^`]+`|[\w\-/]+(?:\.[\w\-/]+)*))?)
    )""", re.VERBOSE)
_SYNTAX_HINT = ("Write clauses like metrics.auc > 0.8 and params.model = 'lgbm', joined by "
                "`and`; quote strings with ' or \".")


@dataclass(frozen=True)
class Clause:
    """One comparison: the value at `scope.key` against a literal."""

    scope: str
    key: str
    op: str
    value: str | float


@dataclass(frozen=True)
class Field:
    """A place in a run to compare or sort by, e.g. metrics.auc or start_time."""

    scope: str
    key: str


def _parse_field(text: str) -> Field:
    scope, dot, key = text.partition(".")
    if not dot:
        scope, key = "attributes", text
    key = key[1:-1] if key.startswith("`") and key.endswith("`") else key
    if scope not in SCOPES:
        raise InvalidInputError(f"Unknown scope {scope!r} in {text!r}.",
                                hint=f"Use one of {list(SCOPES)}, e.g. metrics.auc.")
    if scope == "attributes" and key not in ATTRIBUTES:
        raise InvalidInputError(f"Unknown run attribute {key!r}.",
                                hint=f"Attributes are {list(ATTRIBUTES)}.")
    return Field(scope, key)


def _tokens(text: str) -> list[tuple[str, str]]:
    tokens, pos = [], 0
    while pos < len(text):
        if not text[pos:].strip():
            break
        match = _TOKEN.match(text, pos)
        if not match or match.end() == pos:
            raise InvalidInputError(f"Cannot read the filter at {text[pos:].strip()[:20]!r}.",
                                    hint=_SYNTAX_HINT)
        kind = match.lastgroup or ""
        value = match.group(kind)
        if kind in ("sq", "dq"):
            value = value.replace("''", "'") if kind == "sq" else value.replace('""', '"')
            kind = "str"
        tokens.append((kind, value))
        pos = match.end()
    return tokens


def parse_filter(text: str | None) -> list[Clause]:
    """Parse a filter string into clauses (all must hold); empty means no filter."""
    tokens = _tokens(text or "")
    clauses = []
    for i in range(0, len(tokens), 4):
        part = tokens[i:i + 4]
        kinds = [k for k, _ in part] + ["", "", ""]
        if kinds[0] != "ident" or kinds[1] != "op" or kinds[2] not in ("num", "str"):
            raise InvalidInputError(f"Filter {text!r} is not `<field> <op> <value>` "
                                    f"(clause {i // 4 + 1}).", hint=_SYNTAX_HINT)
        if len(part) == 4 and (part[3][1].lower() != "and" or i + 4 >= len(tokens)):
            raise InvalidInputError(f"Filter {text!r} has {part[3][1]!r} where `and` and "
                                    "another clause should be.", hint=_SYNTAX_HINT)
        field = _parse_field(part[0][1])
        raw = part[2][1]
        value: str | float = float(raw) if part[2][0] == "num" else raw
        if field.scope == "metrics" and isinstance(value, str):
            raise InvalidInputError(f"Metric {field.key!r} is compared with text {raw!r}.",
                                    hint="Compare metrics with numbers: metrics.auc > 0.8.")
        clauses.append(Clause(field.scope, field.key, part[1][1], value))
    return clauses


def _lookup(run: Mapping[str, Any], scope: str, key: str) -> Any:
    return (run.get(key) if scope == "attributes" else run.get(scope, {}).get(key))


def matches(run: Mapping[str, Any], clauses: Sequence[Clause]) -> bool:
    """Whether a run (a mapping with metrics/params/tags dicts and attributes) passes."""
    for clause in clauses:
        actual = _lookup(run, clause.scope, clause.key)
        if actual is None:
            return False
        expected = clause.value
        if isinstance(expected, float):
            try:
                actual = float(actual)
            except (TypeError, ValueError):
                return False
            if math.isnan(actual):
                return False
        else:
            actual = str(actual)
        if not _OPS[clause.op](actual, expected):
            return False
    return True


def parse_order(order_by: str | Sequence[str] | None) -> list[tuple[Field, bool]]:
    """Parse 'metrics.auc desc, start_time' into (field, descending) pairs."""
    items = [order_by] if isinstance(order_by, str) else list(order_by or [])
    parsed = []
    for item in (p.strip() for text in items for p in text.split(",")):
        if not item:
            continue
        words = item.rsplit(None, 1)
        descending = len(words) == 2 and words[1].lower() == "desc"
        name = words[0] if len(words) == 2 and words[1].lower() in ("asc", "desc") else item
        parsed.append((_parse_field(name.strip()), descending))
    return parsed


def sort_runs(runs: Sequence[Mapping[str, Any]], order: Sequence[tuple[Field, bool]],
              ) -> list[Mapping[str, Any]]:
    """Runs sorted by each field in turn; runs missing a field go last either way."""
    result = list(runs)
    for field, descending in reversed(order):
        present = [r for r in result if _sortable(_lookup(r, field.scope, field.key))]
        missing = [r for r in result if not _sortable(_lookup(r, field.scope, field.key))]
        present.sort(key=lambda r, f=field: _sort_key(_lookup(r, f.scope, f.key)),
                     reverse=descending)
        result = present + missing
    return result


def _sortable(value: Any) -> bool:
    return value is not None and not (isinstance(value, float) and math.isnan(value))


def _sort_key(value: Any) -> tuple[int, Any]:
    try:  # params are text: sort numbers numerically, before any non-number
        return (0, float(value))
    except (TypeError, ValueError):
        return (1, str(value))
