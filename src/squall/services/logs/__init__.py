"""CloudWatch Logs over the log lines Squall writes (``/aws/lambda/<function>``)."""
