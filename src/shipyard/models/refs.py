"""Model references: `fraud` (latest), `fraud/3` (a version), `fraud@champion` (an alias)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from shipyard.core.errors import InvalidInputError

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,199}")
_ALIAS = re.compile(r"[A-Za-z_][A-Za-z0-9_\-]{0,199}")
_REF_HINT = "Write NAME (latest), NAME/VERSION such as 'fraud/3', or NAME@ALIAS such as " \
            "'fraud@champion'."


@dataclass(frozen=True)
class ModelRef:
    """A parsed reference: a name and at most one of a version number or an alias."""

    name: str
    version: int | None = None
    alias: str | None = None

    def __str__(self) -> str:
        if self.version is not None:
            return f"{self.name}/{self.version}"
        return f"{self.name}@{self.alias}" if self.alias else self.name


def check_model_name(name: object) -> str:
    """A model name: letters, digits, '_', '.', '-' (starting with a letter or digit)."""
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise InvalidInputError(f"Model name {name!r} is not valid.",
                                hint="Use letters, digits, '_', '.' and '-', e.g. 'fraud'.")
    return name


def check_alias(alias: object) -> str:
    """An alias: an identifier-like word (never a number, so it cannot look like a version)."""
    if not isinstance(alias, str) or not _ALIAS.fullmatch(alias):
        raise InvalidInputError(f"Alias {alias!r} is not valid.",
                                hint="Use a word such as 'champion' or 'challenger-2'.")
    return alias


def check_version(version: object) -> int:
    """A version number: a positive integer."""
    if isinstance(version, bool) or not isinstance(version, int | str):
        raise InvalidInputError(f"Version {version!r} is not a number.", hint=_REF_HINT)
    try:
        number = int(version)
    except ValueError:
        raise InvalidInputError(f"Version {version!r} is not a number.", hint=_REF_HINT) from None
    if number < 1:
        raise InvalidInputError(f"Version {version!r} is not a positive number.", hint=_REF_HINT)
    return number


def parse_ref(ref: str | ModelRef) -> ModelRef:
    """Parse 'fraud', 'fraud/3' or 'fraud@champion'."""
    if isinstance(ref, ModelRef):
        return ref
    if not isinstance(ref, str):
        raise InvalidInputError(f"Model reference {ref!r} is not text.", hint=_REF_HINT)
    if "@" in ref:
        name, _, alias = ref.partition("@")
        return ModelRef(check_model_name(name), alias=check_alias(alias))
    if "/" in ref:
        name, _, version = ref.partition("/")
        return ModelRef(check_model_name(name), version=check_version(version))
    return ModelRef(check_model_name(ref))
