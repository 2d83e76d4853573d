"""The console in a real browser (Debian's Chromium, driven by Playwright) against the app on the local host,
real Azurite, real SMTP and a webhook receiver that fails until told otherwise.

Screenshots go to a temporary folder; `LEADS_SAVE_SCREENSHOTS=1` writes them to docs/screenshots/ (the README's).
"""

from __future__ import annotations

import json
import os
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.end_to_end.test_end_to_end import app_env
from tests.support.browser import HOW_TO_GET_CHROMIUM, BrowserSession, chromium_missing, open_console
from tests.support.fake_http import FakeServer, Recorded, Reply
from tests.support.http_json import post
from tests.support.samples import SAMPLES
from tests.support.smtp import SmtpServer
from tests.support.waiting import wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.azurite, pytest.mark.timeout(180),
              pytest.mark.skipif(chromium_missing(), reason=HOW_TO_GET_CHROMIUM)]
ROOT = Path(__file__).resolve().parents[2]
XSS = '<img src=x onerror="window.__xss=1;alert(1)"><script>window.__xss=1</script>'


class Receiver:
    """A webhook receiver that answers 500 (a transient failure, so the app retries) until `heal()`."""

    def __init__(self, server: FakeServer) -> None:
        self.server = server
        self.failing: set[str] = set()  # companies whose leads it refuses; "*" refuses every lead
        self._lock = threading.Lock()
        server.on("POST", "/hook", self.answer)

    def answer(self, request: Recorded) -> Reply:
        with self._lock:
            refuse = "*" in self.failing or any(name in request.body.decode() for name in self.failing)
        # A receiver that is down: any 5xx is transient for the app's webhook, which retries (docs/destinations.md).
        return Reply(500, {"error": "down"}) if refuse else Reply(200, {"received": True})

    def heal(self) -> None:
        with self._lock:
            self.failing.clear()


@dataclass
class Console:
    base: str  # http://127.0.0.1:port/api/
    receiver: Receiver

    def url(self, fragment: str = "") -> str:
        return f"{self.base}console{fragment}"

    def api(self, path: str) -> Any:
        with urllib.request.urlopen(f"{self.base}manage/{path}", timeout=10) as response:
            return json.loads(response.read())

    def post_lead(self, company: str, **fields: Any) -> str:
        body = {"UserDetails": {"FirstName": fields.pop("first", "Adele"), "LastName": fields.pop("last", "Vance"),
                                "Email": fields.pop("email", f"buyer@{company.split(maxsplit=1)[0].lower()}.example"),
                                "Company": company, "Country": "US"},
                "LeadSource": "AzureMarketplace", "ActionCode": "INS", "OfferTitle": "Widget Pro", **fields}
        status, answer = post(f"{self.base}leads", json.dumps(body).encode())
        assert status == 202, answer
        return str(answer["id"])

    def api_error(self, path: str) -> str:
        try:
            urllib.request.urlopen(f"{self.base}manage/{path}", timeout=10)
        except urllib.error.HTTPError as error:
            return str(json.loads(error.read())["message"])
        raise AssertionError(f"{path} answered 2xx")

    def wait_status(self, lead_id: str, *statuses: str) -> None:
        wait_until(lambda: self.api(f"leads/{lead_id}")["status"] in statuses, timeout=60)


@pytest.fixture
def console(local_host_factory, smtp_server: SmtpServer, tmp_path: Path) -> Iterator[Console]:
    with FakeServer() as server:
        receiver = Receiver(server)
        env = app_env(smtp_server, tmp_path, LEADS_DESTINATIONS="email,webhook",
                      LEADS_WEBHOOK_URL=f"{server.url}/hook", LEADS_WEBHOOK_SECRET="whsec_" + "c2VjcmV0" * 5,
                      LEADS_RETRY_DELAYS="1")
        host = local_host_factory(env, check_keys=False)  # posts to base + "leads"; keys: tests/devhost/test_keys.py
        yield Console(host.url(""), receiver)


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[BrowserSession]:
    with open_console(tmp_path / "chromium") as session:
        yield session


@pytest.fixture
def screenshots(tmp_path: Path) -> Path:
    folder = ROOT / "docs" / "screenshots" if os.environ.get("LEADS_SAVE_SCREENSHOTS") == "1" else tmp_path
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def lead_companies(browser: BrowserSession) -> list[str]:
    return browser.page.locator("#lead-table tbody th a").all_text_contents()


def show_companies(browser: BrowserSession, expected: set[str]) -> None:
    """Wait until the list shows exactly these leads (the page fetches after each change)."""
    page = browser.page
    page.wait_for_function("() => document.querySelector('#lead-count')?.textContent !== ''")
    wait_until(lambda: set(lead_companies(browser)) == expected, timeout=15)


def apply_filter(browser: BrowserSession, **values: str) -> None:
    page = browser.page
    page.click("#clear-filters")
    page.wait_for_function("() => location.hash === '#/leads'")
    for name, value in values.items():
        field = page.locator(f"#filter-{name}")
        if field.evaluate("node => node.tagName") == "SELECT":
            field.select_option(value)
        else:
            field.fill(value)
    page.evaluate("document.querySelector('#lead-count').textContent = ''")
    page.click("#apply-filters")


def only_this_host(browser: BrowserSession, base: str) -> None:
    own = urlsplit(base).netloc
    elsewhere = [url for url in browser.urls if urlsplit(url).netloc != own]
    assert elsewhere == [], f"the console asked other hosts: {elsewhere}"


def test_the_page_lists_the_leads_and_each_filter_narrows_the_list(
        console: Console, browser: BrowserSession, screenshots: Path) -> None:
    console.receiver.failing.add("Northwind")
    early = console.post_lead("Contoso Ltd", OfferTitle="Widget Pro")
    console.wait_status(early, "delivered")
    mark = datetime.now(UTC) + timedelta(seconds=1)
    wait_until(lambda: datetime.now(UTC) > mark + timedelta(seconds=1))
    console.post_lead("Fabrikam", first="Megan", last="Bowen", OfferTitle="Gadget Cloud",
                      ActionCode="STARTTESTDRIVE")
    failed = console.post_lead("Northwind Traders", first="Alex", last="Wilber")
    test_lead = post(f"{console.base}leads", (SAMPLES / "faq-test-lead.json").read_bytes())[1]["id"]
    console.wait_status(failed, "failed")
    console.wait_status(test_lead, "delivered")
    everyone = {"Contoso Ltd", "Fabrikam", "Northwind Traders", "MSFT_TEST_636573304831318844"}

    page = browser.page
    page.goto(console.url())
    show_companies(browser, everyone)
    page.screenshot(path=str(screenshots / "console-leads.png"))
    checks: list[tuple[dict[str, str], set[str]]] = [
        ({"q": "fabrikam"}, {"Fabrikam"}),
        ({"q": "alex wilber"}, {"Northwind Traders"}),
        ({"status": "failed"}, {"Northwind Traders"}),
        ({"test": "true"}, {"MSFT_TEST_636573304831318844"}),
        ({"test": "false"}, everyone - {"MSFT_TEST_636573304831318844"}),
        ({"destination": "webhook", "destination_state": "failed"}, {"Northwind Traders"}),
        ({"destination": "webhook", "destination_state": "delivered"}, everyone - {"Northwind Traders"}),
        ({"offer": "gadget"}, {"Fabrikam"}),
        ({"action": "STARTTESTDRIVE"}, {"Fabrikam"}),
        ({"from": f"{mark:%Y-%m-%dT%H:%M:%S}"}, everyone - {"Contoso Ltd"}),
        ({"to": f"{mark:%Y-%m-%dT%H:%M:%S}"}, {"Contoso Ltd"}),
    ]
    for values, expected in checks:
        apply_filter(browser, **values)
        show_companies(browser, expected)
        for name, value in values.items():  # the filter stays in the form (and in the address)
            assert page.locator(f"#filter-{name}").input_value() == value
    # Paging: two at a time, then the rest with "Load more".
    page.goto(console.url("#/leads?limit=2"))
    wait_until(lambda: len(lead_companies(browser)) == 2, timeout=15)
    page.click("#more-leads")
    wait_until(lambda: set(lead_companies(browser)) == everyone, timeout=15)
    assert page.locator("#more-leads").is_hidden()

    assert browser.problems() == []
    only_this_host(browser, console.base)
    assert f"{console.base}console/app.js" in browser.urls


def test_a_failed_lead_shows_its_attempts_and_is_delivered_after_replay_on_screen(
        console: Console, browser: BrowserSession, screenshots: Path) -> None:
    console.receiver.failing.add("*")
    lead_id = console.post_lead("Northwind Traders")
    console.wait_status(lead_id, "failed")
    page = browser.page
    page.goto(console.url(f"#/leads/{lead_id}"))  # the notification e-mail's link
    card = page.locator("section.card", has=page.locator("#dest-webhook"))
    card.locator("tbody tr").first.wait_for()
    assert card.locator("h3 .badge").text_content() == "failed"
    outcomes = card.locator("tbody tr td:nth-child(2)").all_text_contents()
    assert outcomes[-1] == "failed" and len(outcomes) >= 2, outcomes  # each attempt, the last one failing
    assert "500" in " ".join(card.locator("tbody tr td:nth-child(3)").all_text_contents())
    email = page.locator("section.card", has=page.locator("#dest-email"))
    assert email.locator("h3 .badge").text_content() == "delivered"
    page.screenshot(path=str(screenshots / "console-lead-failed.png"))

    console.receiver.heal()
    page.click("#replay-webhook")
    page.wait_for_function("() => document.querySelector('#lead-notice')?.textContent.startsWith('Queued')")
    wait_until(lambda: card.locator("h3 .badge").text_content() == "delivered", timeout=60)
    assert card.locator("tbody tr td:nth-child(2)").all_text_contents()[-1] == "delivered"
    assert page.locator("#summary-title + dl .badge").first.text_content() == "delivered"
    card.scroll_into_view_if_needed()
    page.screenshot(path=str(screenshots / "console-lead-delivered.png"))
    # The replay is in the audit trail: who (this machine: "local"), what, which lead, the outcome.
    page.goto(console.url("#/audit"))
    page.locator("#audit-table tbody tr").first.wait_for()
    first = page.locator("#audit-table tbody tr").first
    assert first.locator("th").text_content() == "replay"
    assert first.locator("td:nth-child(2)").text_content() == "local"
    assert lead_id in str(first.text_content()) and "Queued again for webhook" in str(first.text_content())
    page.goto(console.url("#/status"))
    page.locator("#api-mode").wait_for()
    assert str(page.locator("#api-mode").text_content()).startswith("local-open")
    assert browser.problems() == []
    only_this_host(browser, console.base)


def test_a_lead_whose_every_field_is_markup_shows_as_text_and_runs_nothing(
        console: Console, browser: BrowserSession) -> None:
    fields = dict.fromkeys(("OfferTitle", "Description", "ActionCode", "LeadSource"), XSS)
    lead_id = console.post_lead(XSS, first=XSS, last=XSS, email=XSS, **fields)
    console.wait_status(lead_id, "delivered", "failed", "retrying", "blocked", "skipped")
    page = browser.page
    page.goto(console.url())
    page.locator("#lead-table tbody th a").first.wait_for()
    assert page.locator("#lead-table tbody th a").first.text_content() == XSS
    page.locator("#lead-table tbody th a").first.click()
    page.locator("#raw-title").wait_for()
    assert json.dumps(XSS)[1:-1] in str(page.locator("pre.raw").text_content())  # the body as sent, as text
    assert page.locator("#view-title").text_content() == f"Lead: {XSS} — {XSS} {XSS}"
    for view in ("", f"#/leads/{lead_id}"):
        page.goto(console.url(view))
        page.locator("#view-title").wait_for()
        page.wait_for_timeout(300)  # an onerror handler would have run by now (the image fails at once)
        # No element was made from the data: only text. And nothing ran.
        assert page.evaluate("document.querySelectorAll('main img, main script, main svg').length") == 0
        assert page.evaluate("window.__xss") is None
    assert browser.dialogs == []
    assert browser.problems() == []


def tab_to(browser: BrowserSession, selector: str, most: int = 60) -> None:
    """Press Tab until the element matching `selector` has the focus (as a keyboard user would)."""
    page = browser.page
    for _ in range(most):
        if page.evaluate("s => document.activeElement?.matches(s) ?? false", selector):
            return
        page.keyboard.press("Tab")
    raise AssertionError(f"{selector} cannot be reached with Tab")


def focused(browser: BrowserSession) -> dict[str, str]:
    state: dict[str, str] = browser.page.evaluate("""() => { const e = document.activeElement;
        return {id: e.id, tag: e.tagName, text: e.textContent, outline: getComputedStyle(e).outlineStyle}; }""")
    return state


def test_the_whole_flow_works_with_the_keyboard_alone(
        console: Console, browser: BrowserSession, screenshots: Path) -> None:
    console.receiver.failing.add("Northwind")
    console.post_lead("Contoso Ltd")
    lead_id = console.post_lead("Northwind Traders")
    console.wait_status(lead_id, "failed")
    page = browser.page
    page.goto(console.url())
    page.locator("#lead-table tbody th a").first.wait_for()
    assert focused(browser)["id"] == "view-title"  # the view's heading, for screen readers too

    tab_to(browser, "#filter-q")
    page.keyboard.type("northwind")
    page.keyboard.press("Enter")
    wait_until(lambda: lead_companies(browser) == ["Northwind Traders"], timeout=15)
    wait_until(lambda: page.locator("#announcer").text_content() == "1 lead shown.")  # said to screen readers
    tab_to(browser, "#lead-table tbody th a")
    assert focused(browser)["outline"] != "none"  # the focus is visible
    page.keyboard.press("Enter")
    page.locator("#replay-all").wait_for()
    assert focused(browser) | {"outline": ""} == {"id": "view-title", "tag": "H1", "outline": "",
                                                  "text": "Lead: Northwind Traders — Adele Vance"}
    console.receiver.heal()
    tab_to(browser, "#replay-all")
    assert focused(browser)["outline"] != "none"
    page.keyboard.press("Enter")
    webhook = page.locator("#dest-webhook .badge")
    wait_until(lambda: webhook.text_content() == "delivered", timeout=60)

    tab_to(browser, "nav a[data-section=status]")
    page.keyboard.press("Enter")
    page.locator("#why-title").wait_for()
    assert focused(browser)["id"] == "view-title"
    # Each destination by its name, with the leads it takes (no LEADS_ROUTES here: the defaults).
    destinations = page.locator("[aria-label=Destinations] tbody tr")
    assert {row.locator("th").text_content(): row.locator("td").first.text_content()
            for row in destinations.all()} == {"email": "every lead", "webhook": "no DNC leads"}
    assert "null" not in str(page.locator("main").text_content())
    page.screenshot(path=str(screenshots / "console-status.png"))
    tab_to(browser, "nav a[data-section=test-lead]")
    page.keyboard.press("Enter")
    tab_to(browser, "#send-test-lead")
    page.keyboard.press("Enter")
    page.locator("#test-lead-result a").wait_for()
    assert page.locator("#test-lead-result p").first.text_content().endswith(" accepted.")  # type: ignore[union-attr]
    assert browser.problems() == []


def test_on_a_phone_the_page_fits_the_screen(console: Console, tmp_path: Path, screenshots: Path) -> None:
    console.post_lead("Contoso Ltd")
    with open_console(tmp_path / "phone", viewport={"width": 390, "height": 844}) as phone:
        phone.page.goto(console.url())
        phone.page.locator("#lead-table tbody th a").first.wait_for()
        # Only the table scrolls sideways, inside its own region; the page itself does not.
        assert phone.page.evaluate("document.documentElement.scrollWidth") <= 390
        # The filters are folded so the leads come first, and open from the keyboard.
        assert phone.page.locator("#filter-q").is_hidden()
        phone.page.locator("summary").focus()
        phone.page.keyboard.press("Enter")
        assert phone.page.locator("#filter-q").is_visible()
        phone.page.keyboard.press("Enter")
        phone.page.screenshot(path=str(screenshots / "console-phone.png"))
        assert phone.problems() == []


def test_page_weight_on_first_load(console: Console, browser: BrowserSession) -> None:
    """Prints the bytes transferred on the first load (the page, its two files and the first list)."""
    for n in range(3):
        console.post_lead(f"Company {n}")
    page = browser.page
    page.goto(console.url(), wait_until="networkidle")
    page.locator("#lead-table tbody th a").first.wait_for()
    sizes = {}
    for request in browser.requests:
        size = request.sizes()
        sizes[urlsplit(request.url).path] = size["responseBodySize"] + size["responseHeadersSize"]
    static = sum(v for k, v in sizes.items() if "/console" in k)
    print(f"\nconsole first load: {sum(sizes.values())} bytes in {len(sizes)} requests "
          f"(page, script and style: {static} bytes, uncompressed): {sizes}")
    assert set(sizes) >= {"/api/console", "/api/console/app.js", "/api/console/app.css",
                          "/api/manage/leads/search"}


def test_quarantine_doctor_and_errors_show_what_the_api_answered(console: Console, browser: BrowserSession) -> None:
    status, refused = post(f"{console.base}leads", b'{"UserDetails": {"Company": "Contoso"},}')
    assert status == 400
    page = browser.page
    page.goto(console.url("#/quarantine"))
    request = page.locator("main tbody th a").first
    request.wait_for()
    assert page.locator("main tbody td:nth-child(3)").first.text_content() == "invalid_json"
    request.click()
    page.locator("#body-title").wait_for()
    assert page.locator("pre.raw").text_content() == '{"UserDetails": {"Company": "Contoso"},}'
    page.click("#reingest")  # the cause is not fixed: refused again, with the ingest's own sentence
    page.locator("#reingest-result p").wait_for()
    assert page.locator("#reingest-result p").text_content() == f"Refused again (400). {refused['message']}"

    page.goto(console.url("#/doctor"))
    page.click("#run-doctor")
    page.locator("#doctor-result table").wait_for()
    checks = page.locator("#doctor-result tbody tr").all_text_contents()
    assert any(row.startswith("email") for row in checks), checks

    page.goto(console.url("#/leads/20261130T000000000Z-00000000"))  # well formed, not stored
    page.locator("main .error").wait_for()
    assert page.locator("main .error").text_content() == console.api_error("leads/20261130T000000000Z-00000000")
    assert page.locator("main .error").get_attribute("role") == "alert"
    problems = browser.problems()  # the browser reports the 404 itself; the page logs nothing else
    assert all("status of 404" in problem for problem in problems), problems


def test_an_operator_forgets_a_person_from_the_console(console: Console, browser: BrowserSession) -> None:
    lead_id = console.post_lead("Forgetme Ltd", email="Erase.Me@forgetme.example")
    kept = console.post_lead("Keepme Ltd")
    page = browser.page
    page.goto(console.url("#/forget"))
    page.fill("#forget-email", "erase.me@forgetme.example")
    page.click("#forget")  # the box is not ticked: the browser keeps the form
    assert page.locator("#forget-result").text_content() == ""
    page.check("#forget-sure")
    page.click("#forget")
    page.locator("#forget-result table").wait_for()
    counts = dict(zip(page.locator("#forget-result tbody th").all_text_contents(),
                      page.locator("#forget-result tbody td").all_text_contents(), strict=True))
    assert counts["leads"] == "1" and counts["markers"] == "1"
    assert "No lead" in console.api_error(f"leads/{lead_id}") and console.api(f"leads/{kept}")["id"] == kept
    assert not [url for url in browser.urls if "forgetme" in url.lower()]  # the address travels in the body only
