"""STS: who signed a request."""
