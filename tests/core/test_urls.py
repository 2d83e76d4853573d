"""leads/core/urls.py: a URL shown to people keeps only its scheme, host and port."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from leads.core.urls import hide_urls, shown_host, shown_url

SECRET = st.from_regex(r"SECRET[A-Za-z0-9_~-]{4,12}", fullmatch=True)


def test_examples() -> None:
    assert shown_url("https://user:pw@hooks.example:8443/a/b?sig=x#f") == "https://hooks.example:8443"
    assert shown_url("https://prod.westus.logic.azure.com:443/workflows/1/triggers?sig=x") == \
        "https://prod.westus.logic.azure.com"
    assert shown_host("http://[::1]:7071/x") == "[::1]:7071"
    assert shown_host("not a url") == "an unreadable address"
    assert shown_host("https://host:99999999/") == "an unreadable address"
    assert hide_urls("failed: POST https://u:p@h.example/services/T/B/tok?x=1 (500)") == \
        "failed: POST https://h.example (500)"


@settings(max_examples=300, derandomize=True)
@given(secret=SECRET, host=st.sampled_from(["hooks.example", "127.0.0.1", "[::1]", "xn--bcher-kva.example"]),
       port=st.one_of(st.none(), st.integers(1, 65535)), scheme=st.sampled_from(["https", "http"]),
       where=st.sampled_from(["user", "password", "path", "query", "fragment"]))
def test_no_user_info_path_or_query_survives(secret: str, host: str, port: int | None, scheme: str,
                                             where: str) -> None:
    authority = host + (f":{port}" if port else "")
    user = {"user": f"{secret}@", "password": f"u:{secret}@"}.get(where, "")
    url = (f"{scheme}://{user}{authority}" + (f"/services/{secret}" if where == "path" else "/p")
           + (f"?sig={secret}" if where == "query" else "") + (f"#{secret}" if where == "fragment" else ""))
    for shown in (shown_url(url), shown_host(url), hide_urls(f"could not reach {url}: refused")):
        assert secret not in shown
    assert shown_url(url).startswith(f"{scheme}://")


def test_a_bare_scheme_in_a_rule_is_not_an_address() -> None:
    sentence = "LEADS_WEBHOOK_URL must start with https:// (plain http is only allowed to localhost)."
    assert hide_urls(sentence) == sentence
