"""Storage down at ingest, run as Flex Consumption runs the app (devhost Flex mode: two HTTP instances behind a
round-robin front end, the delivery queue and the sweeper timer on instances of their own, each with its own
disk, function keys checked), with a scale-in between the storage outage and the next lead: the platform
removes an HTTP instance, and its disk with it.

The main table is reached through a TCP proxy the test switches off; queues stay up. Each test prints its
figures (run with `-s` to see them)."""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from azure.data.tables import TableClient

from devhost.azurite import Azurite, connection_string
from leads.core.model import DELIVERED
from leads.storage.fallback_table import FALLBACK_TABLE
from tests.devhost.http_client import call
from tests.end_to_end.test_end_to_end import app_env, lead_table
from tests.support.azurite import start_test_azurite
from tests.support.http_json import post
from tests.support.smtp import SmtpServer
from tests.support.tcp_proxy import SwitchableProxy
from tests.support.waiting import wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.azurite, pytest.mark.timeout(180)]
LEADS = 5


@pytest.fixture
def table_proxy(azurite: Azurite) -> Iterator[SwitchableProxy]:
    host, port = azurite.endpoints["table"].removeprefix("http://").split(":")
    proxy = SwitchableProxy(host, int(port)).start()
    yield proxy
    proxy.stop()


@pytest.fixture
def second_azurite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Azurite]:
    emulator = start_test_azurite(tmp_path_factory.mktemp("fallback-azurite"))
    yield emulator
    emulator.stop()


def lead_body(n: int) -> bytes:
    return json.dumps({"UserDetails": {"FirstName": f"Buyer{n}", "Company": f"Company {n}",
                                       "Email": f"buyer{n}@contoso.example"},
                       "LeadSource": "AzureMarketplace", "ActionCode": "INS", "OfferTitle": "Widget"}).encode()


def start_app(flex_host_factory: Any, azurite: Azurite, proxy: SwitchableProxy, smtp: SmtpServer, tmp_path: Path,
              **extra: str) -> tuple[Any, dict[str, str]]:
    env = app_env(smtp, tmp_path, **extra)
    lead_table(env, azurite).create_tables()  # the proxy will be down when the app first tries
    through_proxy = connection_string({**azurite.endpoints, "table": f"http://127.0.0.1:{proxy.port}"})
    host = flex_host_factory({**env, "AzureWebJobsStorage": through_proxy})
    return host, env


def run_sweeper(host: Any) -> None:
    """The sweeper timer, now, on whichever HTTP instance receives the call (the host's admin API; it also runs
    every minute on its own instance)."""
    answer = call("POST", f"{host.base_url}/admin/functions/sweep_outbox", b'{"input": ""}', host.admin_headers)
    assert answer.status == 202


def settle_and_count(smtp: SmtpServer, expected: int) -> Counter[str]:
    smtp.wait_for(expected, timeout=60)
    time.sleep(3)  # longer than the queue's polling interval: a second e-mail would have arrived
    return Counter(str(m["X-Lead-Id"]) for m in smtp.messages)


def test_main_table_down_with_a_fallback_every_lead_is_accepted_then_stored_and_mailed_once(
        flex_host_factory, azurite, second_azurite, table_proxy, smtp_server, tmp_path) -> None:
    host, env = start_app(flex_host_factory, azurite, table_proxy, smtp_server, tmp_path,
                          LEADS_FALLBACK_STORAGE=second_azurite.connection_string)
    table_proxy.down()
    answers = [post(host.url("leads"), lead_body(n)) for n in range(LEADS)]
    assert [status for status, _ in answers] == [202] * LEADS, answers
    ids = [answer["id"] for _, answer in answers]
    repeat_status, repeat = post(host.url("leads"), lead_body(0))  # Partner Center sending it again
    assert (repeat_status, repeat["id"], repeat["duplicate"]) == (202, ids[0], True)
    fallback = TableClient.from_connection_string(second_azurite.connection_string, FALLBACK_TABLE)
    held = "PartitionKey eq 'held'"  # beside the table's own `config` row (the key of its row keys)
    assert sorted(row["LeadId"] for row in fallback.query_entities(held)) == sorted(ids)
    assert smtp_server.messages == []
    host.flex_host.scale_in("http-1")  # nothing the fallback holds is on an instance's disk

    table_proxy.up()
    run_sweeper(host)
    table = lead_table(env, azurite)
    wait_until(lambda: all((found := table.load(i)) is not None and found.stored.status == DELIVERED
                           for i in ids), timeout=60)
    mailed = settle_and_count(smtp_server, LEADS)
    stored = [lead.id for lead in table.recent(50)]
    print(f"\n[fallback] leads sent={LEADS + 1} (one repeated) accepted={len(answers) + 1} "
          f"stored={len(stored)} delivered={len(mailed)} duplicate e-mails={sum(mailed.values()) - len(mailed)} "
          f"left in fallback={len(list(fallback.query_entities(held)))}")
    assert sorted(stored) == sorted(ids)  # each under the id it was answered with
    assert mailed == Counter(ids)  # each e-mailed exactly once
    assert list(fallback.query_entities(held)) == []


def test_main_table_down_without_a_fallback_answers_503_saying_the_disk_copy_can_vanish_with_its_instance(
        flex_host_factory, azurite, table_proxy, smtp_server, tmp_path) -> None:
    host, env = start_app(flex_host_factory, azurite, table_proxy, smtp_server, tmp_path)
    flex = host.flex_host
    table_proxy.down()
    bodies = [lead_body(n) for n in range(LEADS)]
    refused = [post(host.url("leads"), body) for body in bodies]
    assert [status for status, _ in refused] == [503] * LEADS
    assert all(answer["error"] == "storage_unavailable" for _, answer in refused)
    assert all("instance" in answer["message"] and "retry" in answer["message"] for _, answer in refused)
    on_disk = {w.name: sorted(p.read_bytes() for p in w.spool.glob("*.json")) for w in flex.http_workers}
    assert sorted(b for held in on_disk.values() for b in held) == sorted(bodies)  # each kept once, by one instance
    assert all(on_disk.values())  # round robin: both instances hold some
    assert not list(flex.workers["function:sweep_outbox"].spool.glob("*"))  # the timer's disk is another one

    gone = max(on_disk, key=lambda name: len(on_disk[name]))  # the platform scales in; that disk goes with it
    kept = next(name for name in on_disk if name != gone)
    flex.scale_in(gone)
    table_proxy.up()
    status, fresh = post(host.url("leads"), lead_body(LEADS))  # the next lead: answered by the app itself
    assert status == 202, fresh
    table = lead_table(env, azurite)
    spool = flex.workers[kept].spool
    wait_until(lambda: not list(spool.glob("*.json")) and len(table.recent(50)) == len(on_disk[kept]) + 1,
               timeout=60, what="the remaining instance to store its disk copies")
    from_disk = len(table.recent(50)) - 1
    lost_with_the_disk = LEADS - from_disk

    retried = [post(host.url("leads"), body) for body in bodies]  # Partner Center sends the refused leads again
    assert [status for status, _ in retried] == [202] * LEADS, retried
    duplicates = sum(1 for _, answer in retried if answer["duplicate"])
    assert duplicates == from_disk  # the ones the remaining instance stored are recognised, the others are new
    stored = table.recent(50)
    wait_until(lambda: all((found := table.load(lead.id)) is not None and found.stored.status == DELIVERED
                           for lead in stored), timeout=60)
    mailed = settle_and_count(smtp_server, LEADS + 1)
    emails = Counter(lead.lead.customer.email for lead in stored)
    print(f"\n[no fallback, 2 HTTP instances, scale-in] leads sent={LEADS + 1} answered 503={len(refused)} "
          f"kept on disk={len(bodies)} (on the removed instance {lost_with_the_disk}) stored from disk={from_disk} "
          f"lost with the disk until the caller's retry={lost_with_the_disk} retried={len(retried)} "
          f"(recognised {duplicates}) stored={len(stored)} delivered={len(mailed)} "
          f"duplicate e-mails={sum(mailed.values()) - len(mailed)} duplicate rows={sum(emails.values()) - len(emails)}")
    assert lost_with_the_disk == len(on_disk[gone]) > 0  # the risk the 503 states happened
    assert emails == Counter(f"buyer{n}@contoso.example" for n in range(LEADS + 1))  # each stored once
    assert mailed == Counter(lead.id for lead in stored)  # each delivered once
    assert fresh["id"] in mailed
    assert not list(spool.glob("*"))  # no .failed, no copy
