"""The demo function: greets, counts its warm invocations, and logs like any Lambda function."""

import json
import logging
import time

logger = logging.getLogger()
logger.setLevel(logging.INFO)
STARTED = time.time()
invocations = 0


def handler(event, context):
    global invocations
    invocations += 1
    name = event.get("name", "world")
    logger.info("greeting %s", name)
    print(json.dumps({"invocation": invocations, "remaining_ms": context.get_remaining_time_in_millis()}))
    return {"message": f"Hello, {name}!", "warm_invocations": invocations, "request_id": context.aws_request_id}
