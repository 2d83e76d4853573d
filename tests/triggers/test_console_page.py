"""The console's three files, as the app serves them: a strict CSP, the right types, nothing from elsewhere."""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from leads.triggers.console import CONSOLE_DIR, CONTENT_SECURITY_POLICY
from tests.infra.test_funcignore import ignored

pytestmark = [pytest.mark.azurite]
ROUTES = {"console": "text/html", "console/app.js": "text/javascript", "console/app.css": "text/css"}


def test_each_file_is_served_with_a_csp_that_forbids_inline_script_and_other_hosts(local_host_factory) -> None:
    host = local_host_factory({"WEBSITE_INSTANCE_ID": None, "WEBSITE_AUTH_ENABLED": None})
    for route, content_type in ROUTES.items():
        with urllib.request.urlopen(host.url(route), timeout=10) as response:
            assert response.status == 200
            assert response.headers["Content-Type"] == f"{content_type}; charset=utf-8"
            assert response.headers["X-Content-Type-Options"] == "nosniff"
            policy = response.headers["Content-Security-Policy"]
            body = response.read()
        assert policy == CONTENT_SECURITY_POLICY
        directives = dict(part.strip().split(" ", 1) for part in policy.split(";"))
        assert directives["default-src"] == "'none'"
        assert directives["script-src"] == "'self'"  # no 'unsafe-inline', no 'unsafe-eval', no other host
        assert directives["frame-ancestors"] == "'none'"
        assert body == (CONSOLE_DIR / ("index.html" if route == "console" else route.split("/")[1])).read_bytes()


def test_in_azure_without_sign_in_the_console_is_closed_with_the_sentence_that_opens_it(local_host_factory) -> None:
    host = local_host_factory({"WEBSITE_INSTANCE_ID": "0123abcd", "WEBSITE_AUTH_ENABLED": None})
    for route in ROUTES:
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(host.url(route), timeout=10)
        assert refused.value.code == 401
        assert "Sign-in is not configured" in json.loads(refused.value.read())["message"]


@pytest.mark.parametrize("name", ["index.html", "app.js", "app.css"])
def test_the_files_name_no_other_host(name: str) -> None:
    text = (CONSOLE_DIR / name).read_text(encoding="utf-8")
    # A URL with a host (`https://x.y`, `//x.y`): comments start `// ` with a space, so they never match.
    assert not re.search(r"(?i)(?:https?:)?//[a-z0-9-]+(?:\.[a-z0-9-]+)+", text)


def test_the_script_never_parses_data_as_markup() -> None:
    script = (CONSOLE_DIR / "app.js").read_text(encoding="utf-8")
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function"):
        assert sink not in script, f"app.js uses {sink}: every value must be set as text"


@pytest.mark.parametrize("name", ["index.html", "app.js", "app.css"])
def test_the_files_are_published_with_the_app(name: str) -> None:
    path = (CONSOLE_DIR / name).relative_to(Path(__file__).resolve().parents[2])
    assert not ignored(path.as_posix()), f"{path} would be left out of the package by .funcignore"
