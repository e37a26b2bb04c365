"""The HTTP layer: one ASGI callable, no framework."""
