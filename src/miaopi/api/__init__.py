"""Request and respond: the HTTP API."""
