"""One Flex mode worker process (started by devhost/flex.py): a LocalHost serving one group of functions.

`python -m devhost.flex_worker --list <app module>` prints the app's functions as JSON (name, trigger);
with DEVHOST_FLEX_SPEC set it serves that group, prints `DEVHOST-READY <pid>` once listening, enforces
host.json functionTimeout, and exits with RESTART_EXIT_CODE after a timed-out invocation was handled, so
that its supervisor restarts it (devhost/invoke.py).
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
import threading
from types import FrameType

from devhost.host import LocalHost
from devhost.invoke import index_functions, load_app
from devhost.keys import HostKeys, auth_level

SPEC_ENV = "DEVHOST_FLEX_SPEC"
READY = "DEVHOST-READY"
RESTART_EXIT_CODE = 75
log = logging.getLogger("devhost.flex")


def list_functions(app_module: str) -> None:
    functions = index_functions(load_app(app_module))
    print(json.dumps([{"name": f.name, "trigger": f.trigger.get("type"), "route": f.trigger.get("route") or f.name,
                       "authLevel": auth_level(f.trigger)} for f in functions]), flush=True)


def serve(spec: dict[str, object]) -> None:
    group = str(spec["group"])
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format=f"%(asctime)s %(levelname)s [{group} pid {os.getpid()}] %(name)s: %(message)s")
    for noisy in ("azure", "mail.log"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    stopping = threading.Event()

    def on_signal(_number: int, _frame: FrameType | None) -> None:
        stopping.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    app = load_app(str(spec["app"]))
    host_json = spec["host_json"]
    assert isinstance(host_json, dict)
    functions = spec["functions"]
    assert isinstance(functions, list)

    def restart() -> None:
        log.error("devhost: a function timed out; this worker process exits and is restarted")
        logging.shutdown()
        os._exit(RESTART_EXIT_CODE)  # abandons the timed-out invocation and every other one, as the host does

    keys = (HostKeys.from_settings(os.environ, [f.name for f in index_functions(app)]) if spec.get("check_keys")
            else None)
    host = LocalHost(app, host_json, os.environ, port=int(str(spec["port"])), only=set(functions), keys=keys,
                     on_timeout=restart)
    host.start()
    print(f"{READY} {os.getpid()}", flush=True)
    stopping.wait()
    host.stop()


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "--list":
        list_functions(sys.argv[2])
        return
    serve(json.loads(os.environ[SPEC_ENV]))


if __name__ == "__main__":
    main()
