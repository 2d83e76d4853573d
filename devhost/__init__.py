"""A small local Azure Functions host for this app: HTTP, queue and timer triggers against Azurite.

Azure Functions Core Tools cannot be installed here, so `python -m devhost` (`make run`) serves the same
function_app.py with the host semantics it relies on (see host.py and docs/stack.md).
"""

from devhost.host import LocalHost

__all__ = ["LocalHost"]
