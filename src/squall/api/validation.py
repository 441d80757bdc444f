"""AWS's model-validation errors: "N validation error(s) detected: Value 'x' at 'member' failed ..."

Every service built on an AWS model (Lambda, Kinesis, IAM...) reports range, length, pattern and enum
violations with this same text; services raise the result as their own ValidationException.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

from squall.errors import ValidationError


class Violations:
    """Collects model-constraint violations and raises them as one ValidationException."""

    def __init__(self) -> None:
        self.items: list[str] = []

    def add(self, value: Any, member: str, constraint: str) -> None:
        shown = "null" if value is None else str(value)
        self.items.append(f"Value '{shown}' at '{member}' failed to satisfy constraint: {constraint}")

    def at_least(self, value: int | None, member: str, low: int) -> None:
        if value is not None and value < low:
            self.add(value, member, f"Member must have value greater than or equal to {low}")

    def at_most(self, value: int | None, member: str, high: int) -> None:
        if value is not None and value > high:
            self.add(value, member, f"Member must have value less than or equal to {high}")

    def length(self, value: str | None, member: str, high: int, low: int = 0) -> None:
        if value is None:
            return
        if len(value) > high:
            self.add(value, member, f"Member must have length less than or equal to {high}")
        elif len(value) < low:
            self.add(value, member, f"Member must have length greater than or equal to {low}")

    def pattern(self, value: str | None, member: str, regex: re.Pattern[str], text: str) -> None:
        if value is not None and not regex.fullmatch(value):
            self.add(value, member, f"Member must satisfy regular expression pattern: {text}")

    def enum(self, value: str | None, member: str, allowed: list[str]) -> None:
        if value is not None and value not in allowed:
            self.add(value, member, f"Member must satisfy enum value set: [{', '.join(allowed)}]")

    def raise_if_any(self, error: Callable[[str], Exception] = ValidationError) -> None:
        """Raise the violations as one ``error`` (a service's own ValidationException) if there are any."""
        if self.items:
            count = len(self.items)
            noun = "error" if count == 1 else "errors"
            raise error(f"{count} validation {noun} detected: " + "; ".join(self.items))


def json_object(body: bytes, error: Callable[[str], Exception]) -> dict[str, Any]:
    """A JSON-protocol request's body as an object; anything else raises ``error``."""
    try:
        params = json.loads(body)
    except ValueError:
        params = None
    if not isinstance(params, dict):
        # unverified: the same answer for a JSON non-object as for malformed JSON (not checked against AWS)
        raise error("Start of structure or map found where not expected.")
    return params
