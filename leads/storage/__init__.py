"""Layer: adapters (storage). Azure Tables and Queues and the local disk: the leads table, the fallback table,
Partner Center's source table, the work queue, the disk spool, the marker secret; they may import only the core."""
