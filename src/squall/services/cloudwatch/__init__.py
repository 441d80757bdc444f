"""CloudWatch's metrics API (``AWS/Lambda`` namespace), computed from Squall's own records."""
