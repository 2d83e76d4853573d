"""Layer: entry points (triggers). The Functions blueprints: thin HTTP, queue and timer functions over the
composition root (leads/runtime.py) and the management API; nothing imports them but function_app.py."""
