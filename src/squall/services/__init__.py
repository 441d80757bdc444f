"""AWS-compatible services served on the API port next to Lambda, one package per service."""
