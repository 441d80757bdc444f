"""Topic and subscription attributes: which can be set, their defaults, and their validation.

A topic keeps only what a client set (plus ``FifoTopic``/``ContentBasedDeduplication`` of a FIFO
topic); ``GetTopicAttributes`` adds the computed ones (ARN, owner, counts, default policy...).
"""

from __future__ import annotations

import json
from typing import Any

from squall.services.topics.errors import InvalidParameter

#: Topic attributes SetTopicAttributes and CreateTopic accept (botocore's documentation lists them).
TOPIC_SETTABLE = frozenset(
    {
        "DisplayName",
        "Policy",
        "DeliveryPolicy",
        "KmsMasterKeyId",
        "TracingConfig",
        "SignatureVersion",
        "ContentBasedDeduplication",
        "FifoThroughputScope",
        "ArchivePolicy",
        "DataProtectionPolicy",
        *(
            f"{protocol}{kind}"
            for protocol in ("Application", "Firehose", "HTTP", "Lambda", "SQS")
            for kind in ("SuccessFeedbackRoleArn", "SuccessFeedbackSampleRate", "FailureFeedbackRoleArn")
        ),
    }
)
#: Only CreateTopic may set these.
TOPIC_CREATE_ONLY = frozenset({"FifoTopic"})
SUBSCRIPTION_SETTABLE = frozenset(
    {
        "DeliveryPolicy",
        "FilterPolicy",
        "FilterPolicyScope",
        "RawMessageDelivery",
        "RedrivePolicy",
        "SubscriptionRoleArn",
        "ReplayPolicy",
    }
)
RAW_DELIVERY_PROTOCOLS = frozenset({"http", "https", "sqs", "firehose"})
FILTER_SCOPES = ("MessageAttributes", "MessageBody")
MAX_FILTER_KEYS = 5
MAX_FILTER_COMBINATIONS = 150
MAX_FILTER_POLICY_BYTES = 256 * 1024
#: Operators the shared matcher (``sources/filters.py``) evaluates; SNS has more (see the report).
FILTER_OPERATORS = frozenset({"exists", "prefix", "suffix", "equals-ignore-case", "anything-but", "numeric"})

#: SNS's limits on an HTTP/S retry policy: 100 retries, at most an hour in all.
MAX_HTTP_RETRIES = 100
MAX_HTTP_RETRY_S = 3600
#: SNS's default retry policy for HTTP/S subscriptions, as EffectiveDeliveryPolicy reports it.
DEFAULT_HTTP_RETRY: dict[str, Any] = {
    "minDelayTarget": 20,
    "maxDelayTarget": 20,
    "numRetries": 3,
    "numMaxDelayRetries": 0,
    "numNoDelayRetries": 0,
    "numMinDelayRetries": 0,
    "backoffFunction": "linear",
}
#: SNS's documented policy for AWS-managed endpoints (Lambda, SQS): 3 immediate retries, 2 at 1 s,
#: 10 backing off from 1 s to 20 s, then 100,000 at 20 s.
MANAGED_RETRY: dict[str, Any] = {
    "minDelayTarget": 1,
    "maxDelayTarget": 20,
    "numRetries": 100_015,
    "numMaxDelayRetries": 100_000,
    "numNoDelayRetries": 3,
    "numMinDelayRetries": 2,
    "backoffFunction": "exponential",
}


def default_topic_policy(topic_arn: str, account_id: str) -> str:
    """The access policy SNS gives a new topic: the owner account may do everything."""
    return json.dumps(
        {
            "Version": "2008-10-17",
            "Id": "__default_policy_ID",
            "Statement": [
                {
                    "Sid": "__default_statement_ID",
                    "Effect": "Allow",
                    "Principal": {"AWS": "*"},
                    "Action": [
                        "SNS:GetTopicAttributes",
                        "SNS:SetTopicAttributes",
                        "SNS:AddPermission",
                        "SNS:RemovePermission",
                        "SNS:DeleteTopic",
                        "SNS:Subscribe",
                        "SNS:ListSubscriptionsByTopic",
                        "SNS:Publish",
                    ],
                    "Resource": topic_arn,
                    "Condition": {"StringEquals": {"AWS:SourceOwner": account_id}},
                }
            ],
        },
        separators=(",", ":"),
    )


def effective_topic_delivery_policy(given: str | None) -> str:
    base: dict[str, Any] = {
        "http": {
            "defaultHealthyRetryPolicy": dict(DEFAULT_HTTP_RETRY),
            "disableSubscriptionOverrides": False,
            "defaultRequestPolicy": {"headerContentType": "text/plain; charset=UTF-8"},
        }
    }
    if given:
        http = json.loads(given).get("http") or {}
        base["http"]["defaultHealthyRetryPolicy"].update(http.get("defaultHealthyRetryPolicy") or {})
        for key in ("disableSubscriptionOverrides", "defaultRequestPolicy", "defaultThrottlePolicy"):
            if key in http:
                base["http"][key] = http[key]
    return json.dumps(base, separators=(",", ":"))


def retry_policy(protocol: str, subscription_policy: str | None, topic_policy: str | None) -> dict[str, Any]:
    """The healthy retry policy a delivery follows: the subscription's, else the topic's, else SNS's default."""
    if protocol not in ("http", "https"):
        return dict(MANAGED_RETRY)
    policy = dict(DEFAULT_HTTP_RETRY)
    if topic_policy:
        policy.update((json.loads(topic_policy).get("http") or {}).get("defaultHealthyRetryPolicy") or {})
    if subscription_policy:
        policy.update(json.loads(subscription_policy).get("healthyRetryPolicy") or {})
    return policy


def effective_subscription_delivery_policy(policy: dict[str, Any]) -> str:
    return json.dumps(
        {"healthyRetryPolicy": policy, "sicklyRetryPolicy": None, "throttlePolicy": None, "guaranteed": False},
        separators=(",", ":"),
    )


def retry_delay(policy: dict[str, Any], retry: int) -> float | None:
    """Seconds before retry number ``retry`` (1-based) under ``policy``; None when retries are exhausted.

    The phases are SNS's: immediate retries, retries at the minimum delay, a backoff phase from the
    minimum to the maximum delay, then retries at the maximum delay.
    """
    total = int(policy["numRetries"])
    if retry > total:
        return None
    no_delay = int(policy.get("numNoDelayRetries", 0))
    at_min = int(policy.get("numMinDelayRetries", 0))
    at_max = int(policy.get("numMaxDelayRetries", 0))
    low, high = float(policy["minDelayTarget"]), float(policy["maxDelayTarget"])
    if retry <= no_delay:
        return 0.0
    if retry <= no_delay + at_min:
        return low
    backoff = total - no_delay - at_min - at_max
    step = retry - no_delay - at_min
    if step > backoff or backoff <= 0:
        return high
    fraction = step / backoff
    if policy.get("backoffFunction", "linear") in ("linear", "arithmetic") or low <= 0:
        return low + (high - low) * fraction
    return float(low * (high / low) ** fraction)


def check_delivery_policy(name: str, text: str, subscription: bool) -> None:
    """A DeliveryPolicy Squall can follow; InvalidParameter otherwise.

    unverified: SNS's messages name the offending field; these name only the attribute.
    """
    try:
        policy = json.loads(text)
    except ValueError:
        raise InvalidParameter(f"Invalid parameter: {name}: failed to parse JSON.") from None
    if not isinstance(policy, dict):
        raise InvalidParameter(f"Invalid parameter: {name}")
    http = policy if subscription else policy.get("http") or {}
    retry = (
        http.get("healthyRetryPolicy" if subscription else "defaultHealthyRetryPolicy")
        if isinstance(http, dict)
        else None
    )
    if not isinstance(http, dict) or (retry is not None and not isinstance(retry, dict)):
        raise InvalidParameter(f"Invalid parameter: {name}")
    merged = {**DEFAULT_HTTP_RETRY, **(retry or {})}
    try:
        merged.update({key: int(merged[key]) for key in DEFAULT_HTTP_RETRY if key != "backoffFunction"})
    except (TypeError, ValueError):
        raise InvalidParameter(f"Invalid parameter: {name}") from None
    numbers = [merged[key] for key in DEFAULT_HTTP_RETRY if key != "backoffFunction"]
    if any(number < 0 for number in numbers) or not 1 <= merged["minDelayTarget"] <= merged["maxDelayTarget"]:
        raise InvalidParameter(f"Invalid parameter: {name}")
    phases = merged["numNoDelayRetries"] + merged["numMinDelayRetries"] + merged["numMaxDelayRetries"]
    if (
        merged["numRetries"] > MAX_HTTP_RETRIES
        or merged["maxDelayTarget"] > MAX_HTTP_RETRY_S
        or (phases > merged["numRetries"])
    ):
        raise InvalidParameter(f"Invalid parameter: {name}")
    total = sum(retry_delay(merged, number) or 0.0 for number in range(1, merged["numRetries"] + 1))
    if total > MAX_HTTP_RETRY_S:
        raise InvalidParameter(f"Invalid parameter: {name}")
    if merged["backoffFunction"] not in ("linear", "arithmetic", "geometric", "exponential"):
        raise InvalidParameter(f"Invalid parameter: {name}")


def check_filter_policy(text: str, scope: str) -> dict[str, Any]:
    """The parsed policy; InvalidParameter for one SNS (or Squall's matcher) cannot use."""
    if len(text.encode()) > MAX_FILTER_POLICY_BYTES:
        raise InvalidParameter("Invalid parameter: FilterPolicy: Filter policy is too big")  # unverified
    try:
        policy = json.loads(text)
    except ValueError:
        # unverified: SNS adds the parser's position
        raise InvalidParameter("Invalid parameter: FilterPolicy: failed to parse JSON.") from None
    if not isinstance(policy, dict):
        raise InvalidParameter("Invalid parameter: FilterPolicy: Filter policy must be a JSON object")  # unverified
    if scope == "MessageAttributes" and any(isinstance(value, dict) for value in policy.values()):
        # unverified: wording
        raise InvalidParameter(
            "Invalid parameter: Filter policy scope MessageAttributes does not support nested filter policy"
        )
    leaves = list(_leaves(policy))
    if len(leaves) > MAX_FILTER_KEYS:
        # unverified: wording
        raise InvalidParameter("Invalid parameter: FilterPolicy: Filter policy can not have more than 5 keys")
    combinations = 1
    for values in leaves:
        if not isinstance(values, list) or not values:
            # unverified: wording
            raise InvalidParameter(
                "Invalid parameter: FilterPolicy: Match value must be String, number, true, false, or null"
            )
        for value in values:
            _check_rule(value)
        combinations *= len(values)
    if combinations > MAX_FILTER_COMBINATIONS:
        raise InvalidParameter("Invalid parameter: FilterPolicy: Filter policy is too complex")  # unverified
    return policy


def _leaves(policy: dict[str, Any]) -> Any:
    for value in policy.values():
        if isinstance(value, dict):
            yield from _leaves(value)
        else:
            yield value


def _check_rule(rule: Any) -> None:
    if not isinstance(rule, dict):
        if isinstance(rule, list):
            raise InvalidParameter(
                "Invalid parameter: FilterPolicy: Match value must be String, number, true, false, or null"
            )  # unverified
        return
    if len(rule) != 1:
        raise InvalidParameter(
            "Invalid parameter: FilterPolicy: Only one key allowed in match expression"
        )  # unverified
    ((operator, operand),) = rule.items()
    if operator not in FILTER_OPERATORS:
        raise InvalidParameter(f"Invalid parameter: FilterPolicy: Unrecognized match type {operator}")  # unverified
    if operator == "exists" and not isinstance(operand, bool):
        # unverified: wording
        raise InvalidParameter("Invalid parameter: FilterPolicy: exists match pattern must be either true or false.")
    if operator in ("prefix", "suffix", "equals-ignore-case") and not isinstance(operand, str):
        # unverified: wording
        raise InvalidParameter(f"Invalid parameter: FilterPolicy: {operator} match pattern must be a string")
    if operator == "numeric":
        ok = isinstance(operand, list) and len(operand) in (2, 4)
        ok = ok and all(isinstance(op, str) for op in operand[::2])
        ok = ok and all(isinstance(n, int | float) and not isinstance(n, bool) for n in operand[1::2])
        if not ok:
            raise InvalidParameter("Invalid parameter: FilterPolicy: Value of numeric must be an array.")  # unverified
    if operator == "anything-but":
        values = operand if isinstance(operand, list) else [operand]
        if not values or any(isinstance(value, dict | list) for value in values):
            # SNS also accepts {"anything-but": {"prefix": ...}}; the shared matcher does not.
            raise InvalidParameter("Invalid parameter: FilterPolicy: Unsupported anything-but pattern")  # unverified


def check_boolean(name: str, value: str) -> str:
    lowered = value.lower()
    if lowered not in ("true", "false"):
        raise InvalidParameter(f"Invalid parameter: {name}")  # unverified
    return lowered
