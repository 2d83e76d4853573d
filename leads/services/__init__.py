"""Layer: services. The use cases (ingest, delivery, sweeper, recovery, importer, replay, status, privacy, notices,
doctor), written against the ports in leads/core; they may import the adapters and the core, never the composition
root or an entry point."""
