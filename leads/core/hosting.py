"""Where this process runs, and so how open the management API and the console are.

Closed unless proven local. Any sign of Azure hosting means production, whatever else is set; local mode needs
a local host's own signal AND the absence of every Azure sign; a process that cannot tell is production.
The signs are the variables the Functions host itself reads to recognise each hosting
(github.com/Azure/azure-functions-host, src/WebJobs.Script/Environment/EnvironmentExtensions.cs and
EnvironmentSettingNames.cs):

- App Service (dedicated, Elastic Premium, Windows Consumption): `IsAppService` = `WEBSITE_INSTANCE_ID` set.
- Flex Consumption: `IsFlexConsumptionSku` = `WEBSITE_SKU` is `FlexConsumption`, or (`IsLinuxConsumptionOnLegion`)
  `CONTAINER_NAME` or `WEBSITE_POD_NAME` with `LEGION_SERVICE_HOST` and no `WEBSITE_INSTANCE_ID` (the host's
  tests, EnvironmentExtensionsTests.IsFlexConsumptionSku_ReturnsExpectedResult, leave WEBSITE_INSTANCE_ID empty
  there: the old check missed it).
- Linux Consumption: `IsLinuxConsumptionOnAtlas` = `CONTAINER_NAME` set, no `LEGION_SERVICE_HOST`.
- Container Apps: `IsManagedAppEnvironment` = `MANAGED_ENVIRONMENT` set; Container Apps also sets
  `CONTAINER_APP_NAME` in every container (Learn: "Manage environment variables on Azure Container Apps",
  built-in variables).
- Kubernetes: `IsKubernetesManagedHosting` = `KUBERNETES_SERVICE_HOST` and `POD_NAMESPACE`.
- Also set by App Service on every site: `WEBSITE_SITE_NAME`, `WEBSITE_HOSTNAME` (EnvironmentSettingNames
  AzureWebsiteName, AzureWebsiteHostName; Learn "Environment variables and app settings in Azure App Service").

Local signals, each set by the local host process itself: devhost sets `DEVHOST_LOCAL_MODE=true`
(devhost/host.py); Core Tools' `func` sets `FUNCTIONS_CORETOOLS_ENVIRONMENT=true` at startup
(github.com/Azure/azure-functions-core-tools src/Cli/func/Program.cs SetCoreToolsEnvironmentVariables; the host
reads it in EnvironmentExtensions.IsCoreTools). Either could be copied into Azure as an app setting, so neither
counts while any Azure sign is present. `AZURE_FUNCTIONS_ENVIRONMENT=Development` is not used: it is an
ordinary app setting in Azure too (the host only reads it, EnvironmentSettingNames.EnvironmentNameKey,
Program.cs UseSetting), so it proves nothing.
"""

from __future__ import annotations

from collections.abc import Mapping

LOCAL_SIGNALS = ("DEVHOST_LOCAL_MODE", "FUNCTIONS_CORETOOLS_ENVIRONMENT")
# Each variable whose presence means "hosted": any of them closes local mode.
AZURE_SIGNS = ("WEBSITE_INSTANCE_ID", "WEBSITE_SKU", "CONTAINER_NAME", "WEBSITE_POD_NAME", "LEGION_SERVICE_HOST",
               "MANAGED_ENVIRONMENT", "CONTAINER_APP_NAME", "KUBERNETES_SERVICE_HOST", "POD_NAMESPACE",
               "WEBSITE_SITE_NAME", "WEBSITE_HOSTNAME")

LOCAL_OPEN = "local-open"
SIGN_IN = "sign-in"
KEY_ONLY = "key-only"
CLOSED = "closed"
MODE_SENTENCES = {
    LOCAL_OPEN: "local-open: open without credentials, to requests addressed to 127.0.0.1, localhost or [::1] "
                "only (a local host's own signal, no Azure hosting sign)",
    SIGN_IN: "sign-in: Microsoft Entra sign-in with the Leads.Reader or Leads.Operator app role on /api/manage, "
             "the function key on /api/manage-key",
    KEY_ONLY: "key only: /api/manage and the console are closed (sign-in is off); scripts use the function key "
              "on /api/manage-key",
    CLOSED: "closed: this local app answers only requests addressed to 127.0.0.1, localhost or [::1]",
}


def _set(env: Mapping[str, str], name: str) -> bool:
    return bool((env.get(name) or "").strip())


def hosting(env: Mapping[str, str]) -> str | None:
    """The Azure hosting the host would recognise, None when no sign of one (EnvironmentExtensions members)."""
    if _set(env, "MANAGED_ENVIRONMENT") or _set(env, "CONTAINER_APP_NAME"):
        return "Container Apps"
    if _set(env, "WEBSITE_INSTANCE_ID"):
        return "App Service"
    legion = _set(env, "LEGION_SERVICE_HOST") and (_set(env, "CONTAINER_NAME") or _set(env, "WEBSITE_POD_NAME"))
    if (env.get("WEBSITE_SKU") or "").strip().lower() == "flexconsumption" or legion:
        return "Flex Consumption"
    if _set(env, "CONTAINER_NAME"):
        return "Linux Consumption"
    if _set(env, "KUBERNETES_SERVICE_HOST"):
        return "Kubernetes"
    if any(_set(env, name) for name in AZURE_SIGNS):
        return "Azure (unrecognised hosting)"
    return None


def is_local(env: Mapping[str, str]) -> bool:
    """A local host's own signal and no sign of any hosting at all."""
    return (any((env.get(name) or "").strip().lower() == "true" for name in LOCAL_SIGNALS)
            and not any(_set(env, name) for name in AZURE_SIGNS))


def sign_in_on(env: Mapping[str, str]) -> bool:
    """App Service Authentication is on (it sets WEBSITE_AUTH_ENABLED, and then strips X-MS-CLIENT-PRINCIPAL
    from incoming requests). Only believed where Azure hosts the app: elsewhere anyone can send that header."""
    return (env.get("WEBSITE_AUTH_ENABLED") or "").strip().lower() == "true" and hosting(env) is not None


def api_mode(env: Mapping[str, str]) -> str:
    """local-open, sign-in or key-only (the per-request answer also needs the Host: see is_loopback_host)."""
    if sign_in_on(env):
        return SIGN_IN
    if is_local(env):
        return LOCAL_OPEN
    return KEY_ONLY


def host_name(host: str) -> str:
    """The name part of a Host header value (`[::1]:7071` -> `::1`, `localhost:7071` -> `localhost`)."""
    value = host.strip().lower()
    if value.startswith("["):
        return value[1:value.find("]")] if "]" in value else ""
    return value.rsplit(":", 1)[0] if value.count(":") == 1 else value


def is_loopback_host(host: str | None) -> bool:
    """Whether a request's Host names this machine by a loopback name: a DNS-rebinding page's Host names the
    attacker's domain, however its DNS answers."""
    if not host:
        return False
    value = host.strip().lower()
    if value.count(":") > 1 and not value.startswith("["):
        return False  # a bare IPv6 address is not a valid Host (RFC 7230 section 5.4 brackets it)
    port = value.rsplit("]", 1)[-1] if value.startswith("[") else (value.split(":", 1)[1:] or [""])[0]
    port = port.lstrip(":")
    if port and not port.isdigit():
        return False
    return host_name(value) in ("127.0.0.1", "localhost", "::1")
