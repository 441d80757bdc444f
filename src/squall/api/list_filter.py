"""ListFunctions' ``MasterRegion`` and ``FunctionVersion`` query members: validation and meaning."""

from __future__ import annotations

import re

from squall.api import lambda_wire as wire
from squall.errors import InvalidParameterValue

MASTER_REGION_PATTERN = r"ALL|(eusc-)?[a-z]{2}((-gov)|(-iso([a-z]?)))?-[a-z]+-\d{1}"
_MASTER_REGION_RE = re.compile(MASTER_REGION_PATTERN)


def list_filter(master_region: str | None, function_version: str | None) -> bool | None:
    """Whether to list every version (True) or ``$LATEST`` only (False); None: nothing matches.

    ``MasterRegion`` selects Lambda@Edge replicas of functions from that region, and Squall has
    none; Lambda refuses it without ``FunctionVersion=ALL``.
    """
    v = wire.Violations()
    v.length(master_region, "masterRegion", 50, 1)
    v.pattern(master_region, "masterRegion", _MASTER_REGION_RE, MASTER_REGION_PATTERN)
    v.enum(function_version, "functionVersion", ["ALL"])
    v.raise_if_any()
    if master_region is not None and function_version is None:
        # Lambda's own message names MasterArn (aws/aws-cli issue 2911).
        raise InvalidParameterValue(
            f"The combination MasterArn={master_region} and FunctionVersion=NULL is not supported. "
            "Please see our documentation for valid combinations of ListFunctions options."
        )
    if master_region is not None:
        return None
    return function_version == "ALL"
