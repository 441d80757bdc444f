"""The API Gateway v2 management API (HTTP APIs) on the AWS API port; the gateway port serves them."""
