"""CloudWatch Logs filter patterns, the term-matching subset: ``ERROR``, ``"exact phrase"``,
``ERROR -DEBUG`` (all terms, none of the excluded), ``?ERROR ?WARN`` (any of them).

Terms are case-sensitive and match anywhere in the message, as in CloudWatch. JSON (``{ $.x = 1 }``)
and space-delimited (``[ip, user, ...]``) patterns are refused as invalid rather than matched wrongly.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable

from squall.errors import SquallError


class InvalidParameter(SquallError, ValueError):
    code = "InvalidParameterException"
    status = 400
    error_type = "User"


Matcher = Callable[[str], bool]


def compile_pattern(pattern: str | None) -> Matcher:
    """A predicate over messages for ``pattern`` (None or blank: every message matches)."""
    text = (pattern or "").strip()
    if not text:
        return lambda message: True
    if text[0] in "{[" or (text.startswith("%") and text.endswith("%")):
        raise InvalidParameter("Invalid filter pattern: only term patterns are supported by Squall")
    try:
        terms = shlex.split(text, posix=True)
    except ValueError:
        raise InvalidParameter(f"Invalid character(s) in term '{text}'") from None
    required: list[str] = []
    excluded: list[str] = []
    optional: list[str] = []
    for term in terms:
        if term.startswith("?") and len(term) > 1:
            optional.append(term[1:])
        elif term.startswith("-") and len(term) > 1:
            excluded.append(term[1:])
        else:
            required.append(term)

    def matches(message: str) -> bool:
        if optional and not any(term in message for term in optional):
            return False
        if any(term in message for term in excluded):
            return False
        return all(term in message for term in required)

    return matches
