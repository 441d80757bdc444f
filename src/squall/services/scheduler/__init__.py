"""EventBridge Scheduler: schedules (rate, cron, at) with one Lambda target each, in ``schedules.db``."""
