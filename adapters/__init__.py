"""Registry adapters: one port per registry, an HTTP client behind it, and mock registries.

Installed as ``miaopi.adapters`` so the name cannot collide with another distribution's
``adapters`` package in site-packages.
"""
