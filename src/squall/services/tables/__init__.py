"""Tables: a DynamoDB-compatible table service on SQLite (the embedded tier)."""
