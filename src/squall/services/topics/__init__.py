"""SNS-compatible topics: topics, subscriptions, publishing and durable fan-out."""
