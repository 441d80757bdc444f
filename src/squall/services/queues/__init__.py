"""The SQS-compatible queue service."""
