"""`python -m tests.bench_idle`: what the app costs in storage transactions while no lead arrives, and how
long a lead then takes to reach e-mail. Prints figures; asserts nothing.

The app runs on the local host (devhost, which polls queues as the Functions host does: back-off from 100 ms
to maxPollingInterval) against Azurite with the repository's host.json and default settings; every storage
HTTP request of the process (host and app) is counted by kind over an idle window. The sweeper runs on a
shortened schedule (LEADS_SWEEP_SCHEDULE) so that the window sees several runs; its calls are scaled per
run to the app's default schedule, read from the code under test. Polling is scaled per second.

    python -m tests.bench_idle                    # 120 s idle window, then 5 leads timed to the inbox
    python -m tests.bench_idle --idle-seconds 300 --leads 0

What the local stack cannot show (the Functions host's own blob leases, the Flex scale controller's queue
checks, instances scaled to zero) is printed apart, as estimates, and explained in docs/deploy.md.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
import urllib.parse
import urllib.request
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from tests.support.counting import watch_storage_requests

ROOT = Path(__file__).resolve().parents[1]
HOURS_PER_MONTH = 730  # Azure's pricing convention
# Pay-as-you-go list prices, US dollars per 10,000 operations, GPv2 LRS (sources: docs/deploy.md, cost).
PRICE_PER_10K = {"queue": 0.004, "table": 0.00036, "blob": 0.0044}
SHORT_SWEEP = "*/10 * * * * *"
SETTLE_SECONDS = 30  # an idle listener reaches maxPollingInterval (10 s) after about 20 s of empty reads


@contextmanager
def storage_requests(endpoints: dict[str, str]) -> Iterator[Counter[tuple[str, str]]]:
    """Every storage request this process sends, as (service, kind): `receive <queue>`, `metadata <queue>`,
    `query <table>`, ... The query string is kept (tests.support.counting drops it)."""
    seen: Counter[tuple[str, str]] = Counter()
    services = {url.rstrip("/"): name for name, url in endpoints.items()}

    def classify(request: Any) -> None:
        url = urllib.parse.urlsplit(request.url)
        service = services.get(f"{url.scheme}://{url.netloc}", "other")
        parts = [p for p in url.path.split("/") if p][1:]  # after the account name
        query = urllib.parse.parse_qs(url.query)
        resource = parts[0].split("(")[0] if parts else ""
        if service == "queue":
            if "comp" in query:
                kind = f"{query['comp'][0]} {resource}"
            elif len(parts) >= 2:
                kind = {"GET": "receive", "POST": "send", "DELETE": "delete", "PUT": "update"}.get(
                    request.method, request.method) + f" {resource}"
            else:
                kind = f"{request.method} {resource}"
        elif service == "table":
            kind = {"GET": "query", "POST": "insert"}.get(request.method, request.method) + f" {resource}"
        else:
            kind = f"{request.method} {resource}"
        seen[(service, kind)] += 1

    with watch_storage_requests(classify):
        yield seen

def runs_per_hour(expression: str) -> int:
    from devhost.ncrontab import parse_schedule

    schedule = parse_schedule(expression)
    start = moment = datetime(2026, 1, 5, tzinfo=UTC)
    runs = 0
    while (moment := schedule.next_after(moment)) <= start + timedelta(hours=1):
        runs += 1
    return runs


def default_sweep_schedule(app: Any) -> str:
    """The sweeper's schedule as the code under test binds it with no setting given."""
    from devhost.invoke import index_functions

    [timer] = [f for f in index_functions(app) if f.name == "sweep_outbox"]
    return str(timer.trigger["schedule"])


def post(url: str, body: bytes) -> None:
    request = urllib.request.Request(url, data=body, method="POST", headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        response.read()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--idle-seconds", type=float, default=120)
    parser.add_argument("--leads", type=int, default=5, help="leads timed to the inbox after an idle spell each")
    args = parser.parse_args()

    from devhost.azurite import start_azurite
    from devhost.host import LocalHost
    from tests.conftest import import_app_afresh
    from tests.support.smtp import SmtpServer

    work = Path(tempfile.mkdtemp(prefix="leads-bench-idle-"))
    azurite = start_azurite(ROOT, work / "azurite", free_ports=True, in_memory=True)
    smtp = SmtpServer().start()
    host_json = json.loads((ROOT / "host.json").read_text(encoding="utf-8"))
    suffix = uuid.uuid4().hex[:8]
    for name in [n for n in os.environ if n.startswith(("LEADS_", "AzureFunctionsJobHost__"))]:
        del os.environ[name]  # the defaults of the code under test, nothing from this shell
    os.environ.update({
        "AzureWebJobsStorage": azurite.connection_string, "LEADS_TABLE": f"idle{suffix}",
        "LEADS_QUARANTINE_TABLE": f"idleq{suffix}", "LEADS_QUEUE": f"idle-{suffix}",
        "LEADS_DESTINATIONS": "email", "LEADS_EMAIL_TO": "sales@contoso.example",
        "LEADS_EMAIL_FROM": "leads@contoso.example", "LEADS_SMTP_HOST": smtp.host, "LEADS_SMTP_PORT": str(smtp.port),
        "LEADS_SMTP_SECURITY": "none", "LEADS_SPOOL_DIR": str(work / "spool")})
    default_app = import_app_afresh("function_app")
    default_schedule = default_sweep_schedule(default_app)
    timers = timer_functions(default_app)
    os.environ["LEADS_SWEEP_SCHEDULE"] = SHORT_SWEEP
    host = LocalHost(import_app_afresh("function_app"), host_json, os.environ, port=0)
    polling = host.options.queues.max_polling_interval
    try:
        host.start()
        time.sleep(SETTLE_SECONDS)
        with storage_requests(azurite.endpoints) as seen:
            started = time.perf_counter()
            time.sleep(args.idle_seconds)
            window = time.perf_counter() - started
            counted = Counter(seen)
        report(counted, window, default_schedule, polling, host_json, timers)
        if args.leads:
            time_leads(host.url("leads"), smtp, args.leads, polling)
    finally:
        host.stop()
        smtp.stop()
        azurite.stop()


def timer_functions(app: Any) -> list[str]:
    """The timer functions the host runs with no setting given: each holds a listener lock (a blob lease)."""
    from devhost.invoke import index_functions

    return [f.name for f in index_functions(app) if f.trigger.get("type") == "timerTrigger"]


def report(counted: Counter[tuple[str, str]], window: float, schedule: str, polling: float,
           host_json: dict[str, Any], timers: list[str]) -> None:
    sweeps = sum(n for (service, kind), n in counted.items() if service == "table" and kind.startswith("query"))
    per_hour_runs = runs_per_hour(schedule)
    print(f"idle window {window:.0f} s; host.json maxPollingInterval "
          f"{host_json['extensions']['queues'].get('maxPollingInterval')} (in effect {polling:g} s); "
          f"sweeper default schedule '{schedule}' = {per_hour_runs} runs/hour, run here on '{SHORT_SWEEP}' "
          f"({sweeps} runs seen: the table queries)")
    print(f"{'service':<7} {'kind':<40} {'seen':>5} {'per hour':>9} {'per month':>10} {'$/month':>8}")
    total_hour = total_cost = 0.0
    for (service, kind), n in sorted(counted.items()):
        by_run = not kind.startswith("receive")  # everything but polling is the sweeper's, once per run
        per_hour = n / max(sweeps, 1) * per_hour_runs if by_run else n * 3600 / window
        cost = per_hour * HOURS_PER_MONTH * PRICE_PER_10K.get(service, 0.0) / 10_000
        total_hour += per_hour
        total_cost += cost
        basis = "per sweep" if by_run else "polling"
        print(f"{service:<7} {kind + ' (' + basis + ')':<40} {n:5d} {per_hour:9.0f} "
              f"{per_hour * HOURS_PER_MONTH:10.0f} {cost:8.3f}")
    print(f"{'':<7} {'measured total':<40} {'':>5} {total_hour:9.0f} {total_hour * HOURS_PER_MONTH:10.0f} "
          f"{total_cost:8.3f}")
    # Not seen locally: the host's blob leases (azure-webjobs-sdk PrimaryHostCoordinator: 15 s lease renewed
    # every 12 s; SingletonOptions.ListenerLockPeriod 60 s for a timer, renewed at half its period).
    leases = {"host id lock, renewed every 12 s": 300,
              f"timer listener locks ({len(timers)}), each every 30 s": 120 * len(timers)}
    for what, per_hour in leases.items():
        cost = per_hour * HOURS_PER_MONTH * PRICE_PER_10K["blob"] / 10_000
        total_cost += cost
        print(f"{'blob':<7} {what + ' (est.)':<40} {'':>5} {per_hour:9d} {per_hour * HOURS_PER_MONTH:10d} "
              f"{cost:8.3f}")
    print(f"idle storage cost with an instance up all month (upper bound): ${total_cost:.2f} a month "
          f"(queue ${PRICE_PER_10K['queue']}, table ${PRICE_PER_10K['table']}, blob other "
          f"${PRICE_PER_10K['blob']} per 10,000; {HOURS_PER_MONTH} h a month)")


def time_leads(url: str, smtp: Any, count: int, polling: float) -> None:
    """Each lead posted after an idle spell long enough for the listener to be at maxPollingInterval, at a
    different moment of its wait: the worst case on a running instance is about maxPollingInterval."""
    latencies = []
    for n in range(count):
        time.sleep(SETTLE_SECONDS + polling * n / max(count, 1))
        before = len(smtp.messages)
        started = time.perf_counter()
        post(url, json.dumps({"OfferTitle": f"idle {n}", "UserDetails": {"Company": "C"}}).encode())
        smtp.wait_for(before + 1, timeout=120)
        latencies.append(time.perf_counter() - started)
    print(f"lead -> e-mail after an idle spell ({count} leads, maxPollingInterval {polling:g} s): "
          f"median {statistics.median(latencies):.1f} s, max {max(latencies):.1f} s "
          f"({', '.join(f'{x:.1f}' for x in latencies)})")


if __name__ == "__main__":
    main()
