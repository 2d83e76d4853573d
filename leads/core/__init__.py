"""Layer: core. The lead, its parsing, delivery decisions, keys, errors, queue-message format, Azure's size arithmetic,
the notification's content, webhook signing, the settings object and the ports: plain Python that imports nothing
else of the app and no Azure, HTTP or telemetry package."""
