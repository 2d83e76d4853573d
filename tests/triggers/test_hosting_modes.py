"""Closed unless proven local: the management API and the console, invoked as the Python worker invokes them
(the function_app blueprints called with an azure.functions.HttpRequest), in each hosting environment with the
exact variables the Functions host reads to recognise it (github.com/Azure/azure-functions-host,
src/WebJobs.Script/Environment/EnvironmentExtensions.cs, the member named beside each case; variable names from
EnvironmentSettingNames.cs). Each Azure case also carries every local signal and a loopback Host, as a
local.settings.json copied into Azure would: none of them may open anything. Flex Consumption, Linux
Consumption and Container Apps set no WEBSITE_INSTANCE_ID, so these fail if detection goes back to it."""

from __future__ import annotations

import base64
import json
from typing import Any

import azure.functions as func
import pytest

from leads.core import hosting
from leads.manage.auth import NOT_LOOPBACK, TURN_ON_SIGN_IN
from leads.triggers import console, manage

HOSTINGS: dict[str, dict[str, str]] = {
    # IsFlexConsumptionSku: WEBSITE_SKU=FlexConsumption; specialized, also CONTAINER_NAME + LEGION_SERVICE_HOST
    # (EnvironmentExtensionsTests.IsFlexConsumptionSku_ReturnsExpectedResult, "expected state when specialized").
    "Flex Consumption": {"WEBSITE_SKU": "FlexConsumption", "CONTAINER_NAME": "c0ffee",
                         "LEGION_SERVICE_HOST": "10.1.2.3"},
    # IsFlexConsumptionSku in placeholder mode (no SKU yet): IsLinuxConsumptionOnLegion, WEBSITE_POD_NAME variant.
    "Flex Consumption (placeholder)": {"WEBSITE_POD_NAME": "pod-1", "LEGION_SERVICE_HOST": "10.1.2.3"},
    # IsLinuxConsumptionOnAtlas: CONTAINER_NAME, no LEGION_SERVICE_HOST, no WEBSITE_INSTANCE_ID.
    "Linux Consumption": {"CONTAINER_NAME": "c0ffee", "WEBSITE_SKU": "Dynamic"},
    # IsAppService: WEBSITE_INSTANCE_ID (dedicated and Elastic Premium plans, Windows Consumption).
    "App Service": {"WEBSITE_INSTANCE_ID": "0123abcd", "WEBSITE_SKU": "ElasticPremium"},
    # IsManagedAppEnvironment: MANAGED_ENVIRONMENT (Functions on Azure Container Apps).
    "Container Apps": {"MANAGED_ENVIRONMENT": "true"},
    # Container Apps' own built-in variable (Learn: "Manage environment variables on Azure Container Apps").
    "Container Apps (container)": {"CONTAINER_APP_NAME": "leads"},
    # IsKubernetesManagedHosting: KUBERNETES_SERVICE_HOST and POD_NAMESPACE.
    "Kubernetes": {"KUBERNETES_SERVICE_HOST": "10.0.0.1", "POD_NAMESPACE": "leads"},
}
# What a local.settings.json copied into Azure can add: every local signal, and Core Tools' environment name.
COPIED_LOCAL_SETTINGS = {"DEVHOST_LOCAL_MODE": "true", "FUNCTIONS_CORETOOLS_ENVIRONMENT": "true",
                         "AZURE_FUNCTIONS_ENVIRONMENT": "Development"}
ALL_NAMES = (*hosting.AZURE_SIGNS, *hosting.LOCAL_SIGNALS, "WEBSITE_AUTH_ENABLED", "AZURE_FUNCTIONS_ENVIRONMENT")


def environment(monkeypatch: pytest.MonkeyPatch, values: dict[str, str]) -> None:
    for name in ALL_NAMES:
        monkeypatch.delenv(name, raising=False)
    for name, value in values.items():
        monkeypatch.setenv(name, value)


def invoke(function: object, route: str, method: str = "GET", host: str = "127.0.0.1:7071",
           headers: dict[str, str] | None = None, body: bytes = b"") -> func.HttpResponse:
    request = func.HttpRequest(method=method, url=f"http://{host}/api/{route}", body=body,
                               headers={"host": host, "content-type": "application/json", **(headers or {})},
                               route_params={"path": route.split("/", 1)[1]} if route.startswith("manage") else {})
    handler: Any = getattr(function, "get_user_function", lambda: function)()
    response = handler(request)
    assert isinstance(response, func.HttpResponse)
    return response


def body(response: func.HttpResponse) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(response.get_body())
    return document


def forged_operator() -> str:
    claims = [{"typ": "roles", "val": "Leads.Operator"}, {"typ": "name", "val": "Mallory"}]
    return base64.b64encode(json.dumps({"auth_typ": "aad", "claims": claims}).encode()).decode()


@pytest.mark.parametrize("name", sorted(HOSTINGS))
def test_every_azure_hosting_is_closed_whatever_local_settings_say(monkeypatch: pytest.MonkeyPatch,
                                                                   name: str) -> None:
    environment(monkeypatch, {**HOSTINGS[name], **COPIED_LOCAL_SETTINGS})
    assert hosting.hosting(dict(HOSTINGS[name])) is not None
    assert hosting.api_mode(dict(HOSTINGS[name], **COPIED_LOCAL_SETTINGS)) == hosting.KEY_ONLY
    forged = {"x-ms-client-principal": forged_operator()}
    for route, method in (("manage/leads", "GET"), ("manage/forget", "POST"), ("manage/doctor", "POST"),
                          ("manage/status", "GET")):
        answer = invoke(manage.manage, route, method, "localhost:7071", forged, b'{"email": "a@example.com"}')
        assert (answer.status_code, body(answer)["message"]) == (401, TURN_ON_SIGN_IN), (name, route)
        assert answer.headers["Strict-Transport-Security"].startswith("max-age=")
        assert "frame-ancestors 'none'" in answer.headers["Content-Security-Policy"]
        assert answer.headers["X-Content-Type-Options"] == "nosniff"
    page = invoke(console.console_page, "console", host="[::1]:7071")
    assert page.status_code == 401 and body(page)["message"] == TURN_ON_SIGN_IN


@pytest.mark.parametrize("values", [{}, {"AZURE_FUNCTIONS_ENVIRONMENT": "Development"},
                                    {"WEBSITE_AUTH_ENABLED": "True"}, {"DEVHOST_LOCAL_MODE": "false"}],
                         ids=["nothing", "environment-name-only", "sign-in-flag-without-azure", "local-mode-off"])
def test_a_process_that_cannot_tell_is_production(monkeypatch: pytest.MonkeyPatch, values: dict[str, str]) -> None:
    environment(monkeypatch, values)
    answer = invoke(manage.manage, "manage/leads", headers={"x-ms-client-principal": forged_operator()})
    assert answer.status_code == 401 and body(answer)["message"] == TURN_ON_SIGN_IN
    assert "Strict-Transport-Security" in answer.headers


@pytest.mark.parametrize("signal", hosting.LOCAL_SIGNALS)
@pytest.mark.parametrize("host", ["127.0.0.1:7071", "localhost:7071", "[::1]:7071", "127.0.0.1", "LOCALHOST"])
def test_local_mode_opens_to_a_loopback_host_only(monkeypatch: pytest.MonkeyPatch, signal: str, host: str) -> None:
    environment(monkeypatch, {signal: "true"})
    answer = invoke(manage.manage, "manage/no-such-route", host=host)
    assert answer.status_code == 404  # past the door: the route table answered
    assert "Strict-Transport-Security" not in answer.headers
    assert invoke(console.console_page, "console", host=host).status_code == 200


@pytest.mark.parametrize("host", ["evil.example", "evil.example:7071", "127.0.0.1.nip.io:7071",
                                  "localhost.evil.example", "127.0.0.2:7071", "0.0.0.0:7071", "",
                                  "localhost:7071@evil", "::1"])
def test_local_mode_refuses_any_other_host(monkeypatch: pytest.MonkeyPatch, host: str) -> None:
    environment(monkeypatch, {"DEVHOST_LOCAL_MODE": "true"})
    answer = invoke(manage.manage, "manage/leads", host=host or "127.0.0.1:7071", headers={"host": host})
    assert answer.status_code == 401 and body(answer)["message"] == NOT_LOOPBACK
    page = invoke(console.console_page, "console", headers={"host": host})
    assert page.status_code == 401


def test_sign_in_is_believed_only_where_azure_hosts_the_app(monkeypatch: pytest.MonkeyPatch) -> None:
    environment(monkeypatch, {**HOSTINGS["Flex Consumption"], "WEBSITE_AUTH_ENABLED": "True"})
    assert hosting.api_mode(dict(HOSTINGS["Flex Consumption"], WEBSITE_AUTH_ENABLED="True")) == hosting.SIGN_IN
    answer = invoke(manage.manage, "manage/no-such-route", headers={"x-ms-client-principal": forged_operator()})
    assert answer.status_code == 404  # the principal was read (App Service strips a forged one when sign-in is on)
    nobody = invoke(manage.manage, "manage/leads")
    assert nobody.status_code == 401 and "Sign in first" in body(nobody)["message"]


def test_the_function_key_route_is_open_in_every_hosting(monkeypatch: pytest.MonkeyPatch) -> None:
    for values in HOSTINGS.values():
        environment(monkeypatch, values)
        assert invoke(manage.manage_key, "manage-key/no-such-route").status_code == 404
