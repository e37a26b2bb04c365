"""The HTTP layer: one RSGI callable (granian's native interface)."""
