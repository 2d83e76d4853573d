"""The publisher's own lead destination. The folders are the layers (docs/development.md): triggers and cli ->
manage -> runtime.py (the composition root) -> services -> storage | destinations | telemetry -> core."""
