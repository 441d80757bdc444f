"""The HTTP gateway: serves the HTTP APIs declared through the API Gateway v2 API (see docs/gateway.md)."""
