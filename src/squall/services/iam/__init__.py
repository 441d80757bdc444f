"""IAM roles and their policies: stored and returned, not enforced."""
