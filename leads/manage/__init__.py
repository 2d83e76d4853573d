"""Layer: entry points (management API). The operator's view: list, show, replay leads and rejected requests,
status and checks (plain Python; the HTTP routes in leads/triggers/manage.py and the CLI call the same service);
it may import the composition root and everything below it."""
