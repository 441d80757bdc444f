"""EventBridge rules: scheduled rules and their Lambda targets, kept in ``schedules.db``."""
