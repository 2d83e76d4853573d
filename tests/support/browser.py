"""Debian's Chromium driven by Playwright for Python (Playwright's own browser download cannot work here).

`open_console(base_url, user_data_dir)` starts a fresh headless Chromium and yields a `BrowserSession` that
records every request URL, every console error, uncaught page error and dialog, so a test can assert that
the page asked no other host, logged no error and opened no alert.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from playwright.sync_api import Page, Request

CHROMIUM = Path("/usr/bin/chromium")
# As the machine notes say: without the background-networking flags Chromium calls Google's hosts at start.
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]
HOW_TO_GET_CHROMIUM = ("Debian's Chromium is not installed at /usr/bin/chromium: `sudo apt-get install -y chromium` "
                       "(.ci/run does it in CI).")


def chromium_missing() -> bool:
    return not (CHROMIUM.exists() and shutil.which(str(CHROMIUM)))


@dataclass
class BrowserSession:
    page: Page
    requests: list[Request] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)

    @property
    def urls(self) -> list[str]:
        return [request.url for request in self.requests]

    def problems(self) -> list[str]:
        return self.console_errors + self.page_errors + [f"dialog: {text}" for text in self.dialogs]


@contextmanager
def open_console(user_data_dir: Path, viewport: dict[str, int] | None = None) -> Iterator[BrowserSession]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        # A persistent context is how Playwright takes a user data directory: a fresh one per test.
        context = playwright.chromium.launch_persistent_context(
            str(user_data_dir), executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_FLAGS,
            timezone_id="UTC", locale="en-GB", viewport=viewport or {"width": 1200, "height": 800})  # type: ignore[arg-type]
        try:
            page = context.pages[0] if context.pages else context.new_page()
            session = BrowserSession(page)
            context.on("request", lambda request: session.requests.append(request))  # noqa: PLW0108 - Playwright tags its handler: a builtin method cannot be
            page.on("console", lambda message: _console(session, message))
            page.on("pageerror", lambda error: session.page_errors.append(str(error)))
            page.on("dialog", lambda dialog: _dialog(session, dialog))
            page.set_default_timeout(20_000)
            yield session
        finally:
            context.close()


def _console(session: BrowserSession, message: Any) -> None:
    if message.type in ("error", "warning"):
        session.console_errors.append(f"{message.type}: {message.text}")


def _dialog(session: BrowserSession, dialog: Any) -> None:
    session.dialogs.append(dialog.message)
    dialog.dismiss()
