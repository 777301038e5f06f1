"""Mock registries: a deterministic synthetic population served over the registries' HTTP API."""
