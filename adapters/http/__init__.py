"""HTTP clients for the registries: one per registry, all behind the ports."""
