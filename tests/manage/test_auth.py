"""Who may use the management API: each rule, on the dispatcher and through the local host.

The canned principals are shaped as App Service Authentication sends them: base64 of
`{"auth_typ", "claims": [{"typ", "val"}], "name_typ", "role_typ"}` ("Work with user identities in Azure App
Service authentication", section "Decoding the client principal header",
https://learn.microsoft.com/azure/app-service/configure-authentication-user-identities). Entra app roles
arrive as claims of type `roles`."""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from typing import Any

import pytest

from leads.manage.auth import TURN_ON_SIGN_IN
from leads.manage.routes import dispatch

# Flex Consumption as the host recognises it (leads/core/hosting.py cites EnvironmentExtensions): no
# WEBSITE_INSTANCE_ID there.
AZURE = {"WEBSITE_SKU": "FlexConsumption", "CONTAINER_NAME": "c1", "LEGION_SERVICE_HOST": "10.0.0.1"}
LOCAL = {"DEVHOST_LOCAL_MODE": "true"}
LOOPBACK = {"Host": "127.0.0.1:7071", "Content-Type": "application/json"}


def own_tables(**env: str | None) -> dict[str, str | None]:
    """Tables and queue of this test only: the session's Azurite is shared, and other tests read `leads`."""
    suffix = uuid.uuid4().hex[:8]
    return {"LEADS_TABLE": f"auth{suffix}", "LEADS_QUARANTINE_TABLE": f"authq{suffix}",
            "LEADS_QUEUE": f"auth-{suffix}", **env}
SIGNED_IN = {**AZURE, "WEBSITE_AUTH_ENABLED": "True"}


def principal(*roles: str, role_claim: str = "roles") -> str:
    document = {"auth_typ": "aad", "name_typ": "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress",
                "role_typ": "http://schemas.microsoft.com/ws/2008/06/identity/claims/role",
                "claims": [{"typ": "name", "val": "Operator Person"}, *({"typ": role_claim, "val": r} for r in roles)]}
    return base64.b64encode(json.dumps(document).encode()).decode()


class NoService:
    """The routes under test must answer before the service is built (or not at all)."""

    def __getattr__(self, name: str) -> Any:
        return lambda *args: {"called": name}


def answer(method: str, path: str, env: dict[str, str], headers: dict[str, str] | None = None,
           via_key: bool = False) -> tuple[int, dict[str, Any]]:
    sent = {**LOOPBACK, **(headers or {})}
    status, body, _ = dispatch(method, path, {}, b"", sent, env, via_key, NoService)  # type: ignore[arg-type]
    return status, body


def test_locally_open() -> None:
    status, body = answer("GET", "status", LOCAL)
    assert (status, body["called"], body["api_mode"]) == (200, "status", "local-open")
    status, body = answer("POST", "doctor", LOCAL)
    assert (status, body["called"], body["api_mode"]) == (200, "doctor", "local-open")


def test_in_azure_without_sign_in_closed_with_a_sentence() -> None:
    status, body = answer("GET", "status", AZURE)
    assert status == 401 and body == {"error": "unauthorized", "message": TURN_ON_SIGN_IN}
    assert "enableOperatorSignIn=true" in body["message"] and "/api/manage-key/" in body["message"]


def test_forged_principal_ignored_when_sign_in_is_off() -> None:
    forged = {"X-MS-CLIENT-PRINCIPAL": principal("Leads.Operator")}
    assert answer("GET", "status", AZURE, forged)[0] == 401
    assert answer("POST", "doctor", AZURE, forged)[0] == 401


def test_roles_when_sign_in_is_on() -> None:
    reader = {"X-MS-CLIENT-PRINCIPAL": principal("Leads.Reader")}
    operator = {"x-ms-client-principal": principal("Leads.Operator")}
    nobody = {"X-MS-CLIENT-PRINCIPAL": principal()}
    assert answer("GET", "status", SIGNED_IN, reader)[0] == 200
    status, body = answer("POST", "doctor", SIGNED_IN, reader)
    assert status == 403 and body["error"] == "forbidden" and "Leads.Operator" in body["message"]
    assert answer("POST", "doctor", SIGNED_IN, operator)[0] == 200
    assert answer("GET", "leads/x", SIGNED_IN, operator)[0] == 200  # an operator reads too
    assert answer("GET", "status", SIGNED_IN, nobody)[0] == 403
    uri_role = {"X-MS-CLIENT-PRINCIPAL": principal(
        "Leads.Reader", role_claim="http://schemas.microsoft.com/ws/2008/06/identity/claims/role")}
    assert answer("GET", "status", SIGNED_IN, uri_role)[0] == 200


def test_sign_in_on_but_no_or_bad_principal() -> None:
    status, body = answer("GET", "status", SIGNED_IN)
    assert status == 401 and "Sign in" in body["message"]
    assert answer("GET", "status", SIGNED_IN, {"X-MS-CLIENT-PRINCIPAL": "%%%not base64"})[0] == 401
    assert answer("GET", "status", SIGNED_IN, {"X-MS-CLIENT-PRINCIPAL": base64.b64encode(b"[1]").decode()})[0] == 401


def test_function_key_route_is_trusted() -> None:
    status, body = answer("POST", "doctor", AZURE, via_key=True)
    assert (status, body["called"], body["api_mode"]) == (200, "doctor", "key-only")


def test_unknown_route_and_method() -> None:
    assert answer("GET", "nothing", LOCAL)[0] == 404
    status, body = answer("DELETE", "leads", LOCAL)
    assert status == 405 and "GET" in body["message"]


def call(url: str, method: str = "GET", headers: dict[str, str] | None = None) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(url, method=method, headers=headers or {}, data=b"" if method == "POST" else None)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as refused:
        return refused.code, json.loads(refused.read())


def test_through_the_host_in_azure_mode(local_host_factory: Callable[..., Any]) -> None:
    host = local_host_factory(own_tables(**AZURE, WEBSITE_AUTH_ENABLED=None))
    forged = {"X-MS-CLIENT-PRINCIPAL": principal("Leads.Operator")}
    status, body = call(host.url("manage/status"), headers=forged)
    assert status == 401 and body["message"] == TURN_ON_SIGN_IN
    assert call(host.url("manage-key/leads?limit=1"))[0] == 200  # the host checks keys in Azure, not here
    assert call(host.url("health"))[0] == 200  # unchanged


@pytest.mark.parametrize("roles, expected", [(("Leads.Reader",), (200, 403)), (("Leads.Operator",), (200, 202))])
def test_through_the_host_signed_in(local_host_factory: Callable[..., Any], roles: tuple[str, ...],
                                    expected: tuple[int, int]) -> None:
    host = local_host_factory(own_tables(**AZURE, WEBSITE_AUTH_ENABLED="True"))
    headers = {"X-MS-CLIENT-PRINCIPAL": principal(*roles), "Content-Type": "application/json"}
    assert call(host.url("manage/leads"), headers=headers)[0] == expected[0]
    assert call(host.url("manage/test-lead"), "POST", headers)[0] == expected[1]


def test_devhost_says_whether_the_console_and_api_are_open_locally(capsys: pytest.CaptureFixture[str],
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    from types import SimpleNamespace

    from devhost.__main__ import print_banner
    from leads.core.hosting import AZURE_SIGNS

    host: Any = SimpleNamespace(routes=[], url=lambda route: route)
    for name in AZURE_SIGNS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DEVHOST_LOCAL_MODE", "true")
    print_banner(host, "azurite", "mail")
    assert "management API (/api/manage) are open here without sign-in" in capsys.readouterr().out
    monkeypatch.setenv("CONTAINER_NAME", "a-container")
    print_banner(host, "azurite", "mail")
    assert "are CLOSED here: CONTAINER_NAME is set" in capsys.readouterr().out
