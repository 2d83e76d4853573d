"""`python -m devhost` (`make run`): the app on http://127.0.0.1:7071 with Azurite and a mail catcher.

Settings: local.settings.json `Values` (else local.settings.sample.json), overridden by the environment,
put into os.environ before the app is imported (the app reads its settings from the environment, as in
Azure). AzureWebJobsStorage set in the environment: that storage, no Azurite. LEADS_SMTP_HOST set in the
environment: that server, no mail catcher. PORT: the HTTP port. DEVHOST_APP: the app module
(default function_app). DEVHOST_FLEX=true (or `--flex`): Flex mode (devhost/flex.py), the Azure-like mode:
two HTTP instances behind a round-robin front end, each queue function and each timer function in separate
processes with separate temporary folders, function keys checked, as Flex Consumption runs them.
DEVHOST_CHECK_KEYS=true: function keys checked in the plain mode too (devhost/keys.py). In every mode
host.json functionTimeout is enforced and `code` reaches the app with the other query parameters.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
import threading
from collections.abc import Mapping
from contextlib import ExitStack
from pathlib import Path
from types import FrameType

from devhost.azurite import start_azurite
from devhost.flex import FlexHost
from devhost.host import LocalHost
from devhost.invoke import index_functions, load_app
from devhost.keys import HostKeys
from devhost.mailcatcher import MailCatcher, port_is_free
from leads.cli.local_settings import apply_local_settings

log = logging.getLogger("devhost")
MAIL_PORT = 1025


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for noisy in ("azure", "mail.log"):  # the SDKs' HTTP lines and aiosmtpd's per-connection lines
        logging.getLogger(noisy).setLevel(logging.WARNING)
    root = Path.cwd()
    from_environment = dict(os.environ)
    apply_local_settings(root)
    stopping = threading.Event()

    def on_signal(_number: int, _frame: FrameType | None) -> None:
        stopping.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    with ExitStack() as cleanup:
        if not from_environment.get("AzureWebJobsStorage"):
            azurite = start_azurite(root, root / ".local" / "azurite")
            cleanup.callback(azurite.stop)
            os.environ.update({"AzureWebJobsStorage": azurite.connection_string})
            storage = f"Azurite (data in {root / '.local' / 'azurite'})"
        else:
            storage = "AzureWebJobsStorage from the environment"
        mail_folder = root / ".local" / "mail"
        if not from_environment.get("LEADS_SMTP_HOST"):
            catcher = MailCatcher(mail_folder, port=MAIL_PORT if port_is_free(MAIL_PORT) else 0)
            catcher.start()
            cleanup.callback(catcher.stop)
            os.environ.update(LEADS_SMTP_HOST=catcher.host, LEADS_SMTP_PORT=str(catcher.port),
                              LEADS_SMTP_SECURITY="none")
            mail = f"{mail_folder}/ (one .eml file per message; SMTP on {catcher.host}:{catcher.port})"
        else:
            mail = f"SMTP server {os.environ['LEADS_SMTP_HOST']} (from the environment)"
        host_json_path = root / "host.json"
        host_json = json.loads(host_json_path.read_text(encoding="utf-8")) if host_json_path.exists() else {}
        app = load_app(os.environ.get("DEVHOST_APP", "function_app"))
        keys = (HostKeys.from_settings(os.environ, [f.name for f in index_functions(app)])
                if os.environ.get("DEVHOST_CHECK_KEYS", "").strip().lower() in ("true", "1") else None)
        host = LocalHost(app, host_json, os.environ, port=int(os.environ.get("PORT", "7071")), keys=keys)
        if flex_mode(sys.argv[1:], os.environ):
            port = host.port
            host.close()  # only for the banner: the instances serve, behind the front end
            flex = FlexHost(os.environ.get("DEVHOST_APP", "function_app"), host_json, os.environ, port=port)
            flex.start()
            cleanup.callback(flex.stop)
            print_banner(host, storage, mail, ["  Flex mode: instances with a disk of their own, HTTP round robin",
                                               *flex.describe()], keys_checked=True)
        else:
            host.start()
            cleanup.callback(host.stop)
            print_banner(host, storage, mail, keys.describe([r.function.name for r in host.routes]) if keys else [],
                         keys_checked=keys is not None)
        stopping.wait()
        log.info("devhost: stopping")


def flex_mode(arguments: list[str], env: Mapping[str, str]) -> bool:
    return "--flex" in arguments or env.get("DEVHOST_FLEX", "").strip().lower() in ("true", "1")


def print_banner(host: LocalHost, storage: str, mail: str, extra: list[str] | None = None,
                 keys_checked: bool = False) -> None:
    lines = ["", "devhost is running (a local stand-in for `func start`).", "", *(extra or [])]
    for route in host.routes:
        methods = ", ".join(sorted(route.methods)) if route.methods else "any method"
        lines.append(f"  {route.function.name}: {host.url(route.template)}  [{methods}]")
    from leads.core.hosting import AZURE_SIGNS, LOCAL_OPEN, api_mode

    if api_mode(os.environ) == LOCAL_OPEN:
        access = ("  The console and the management API (/api/manage) are open here without sign-in (loopback only; "
                  "in Azure they need Entra sign-in or the function key).")
    else:
        signs = [name for name in AZURE_SIGNS if os.environ.get(name, "").strip()]
        access = ("  The console and the management API (/api/manage) are CLOSED here: "
                  + (f"{', '.join(signs)} is set, a sign of Azure hosting to the Functions host (unset it to open "
                     "them locally)." if signs else "DEVHOST_LOCAL_MODE is not true."))
    lines += ["", f"  Storage: {storage}", f"  E-mails: {mail}",
              ("  Function keys are checked, as in Azure (`?code=<key>` or the x-functions-key header)."
               if keys_checked else "  Function keys are not checked locally (like Core Tools); "
               "`?code=` reaches the app as in Azure."),
              access, "  Stop: Ctrl-C", ""]
    print("\n".join(lines), flush=True)


if __name__ == "__main__":
    main()
