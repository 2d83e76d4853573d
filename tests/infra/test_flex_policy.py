"""What Azure itself refuses or ignores, checked in the templates (read with pycep; the Bicep compiler cannot run
here): Flex Consumption's deprecated site properties and app settings, the alert windows Azure Monitor accepts,
the network default and the importer's table-scoped role.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import pytest

from tests.infra.test_bicep_policy import (
    INFRA,
    STORAGE_TABLE,
    app_settings,
    bicep_files,
    body,
    main,
    module,
    parse,
    resources_of_type,
)

# Learn, "Flex Consumption plan deprecations" (functions-app-settings), linked from flex-consumption-plan.md
# "Deprecated properties and settings":
# https://learn.microsoft.com/azure/azure-functions/functions-app-settings#flex-consumption-plan-deprecations
# Site properties (siteConfig and properties) Flex Consumption rejects or replaces with functionAppConfig:
FLEX_DEPRECATED_PROPERTIES = frozenset({
    "ftpsState", "alwaysOn", "use32BitWorkerProcess", "linuxFxVersion", "netFrameworkVersion", "javaVersion",
    "powerShellVersion", "containerSize", "functionAppScaleLimit", "preWarmedInstanceCount", "isXenon",
    "windowsFxVersion",
})
# App settings Flex Consumption rejects, sets itself, or replaces with functionAppConfig:
FLEX_DEPRECATED_APP_SETTINGS = frozenset({
    "FUNCTIONS_WORKER_RUNTIME", "FUNCTIONS_EXTENSION_VERSION", "FUNCTIONS_WORKER_RUNTIME_VERSION",
    "FUNCTIONS_MAX_HTTP_CONCURRENCY", "FUNCTIONS_WORKER_PROCESS_COUNT", "FUNCTIONS_WORKER_DYNAMIC_CONCURRENCY_ENABLED",
    "WEBSITE_CONTENTAZUREFILECONNECTIONSTRING", "WEBSITE_CONTENTSHARE", "WEBSITE_NODE_DEFAULT_VERSION",
    "WEBSITE_RUN_FROM_PACKAGE",
})

# Azure Monitor scheduled query rules (Microsoft.Insights/scheduledQueryRules@2023-12-01): the durations the service
# accepts. evaluationFrequency: PT1M..PT6H and P1D; windowSize: PT5M..P2D (PT1M only with a PT1M frequency). There
# is no PT12H. Source: Learn, "Create or edit a log search alert rule" (Aggregation granularity / Frequency of
# evaluation lists) https://learn.microsoft.com/azure/azure-monitor/alerts/alerts-create-log-alert-rule, mirrored
# by the azurerm provider's validation of monitor_scheduled_query_rules_alert_v2 (window_duration,
# evaluation_frequency).
EVALUATION_FREQUENCIES = ("PT1M", "PT5M", "PT10M", "PT15M", "PT30M", "PT45M", "PT1H", "PT2H", "PT3H", "PT4H",
                          "PT5H", "PT6H", "P1D")
WINDOW_SIZES = ("PT5M", "PT10M", "PT15M", "PT30M", "PT45M", "PT1H", "PT2H", "PT3H", "PT4H", "PT5H", "PT6H",
                "P1D", "P2D")


def keys_in(tree: Any) -> Iterator[str]:
    """Every object key anywhere in a pycep value (property names, however deeply nested or looped)."""
    if isinstance(tree, dict):
        for key, value in tree.items():
            yield str(key)
            yield from keys_in(value)
    elif isinstance(tree, list):
        for item in tree:
            yield from keys_in(item)


def deprecated_in(tree: dict[str, Any], settings: dict[str, Any]) -> list[str]:
    found = []
    for name, site in resources_of_type(tree, "Microsoft.Web/sites").items():
        found += [f"site {name}: {key}" for key in keys_in(body(site)[1]) if key in FLEX_DEPRECATED_PROPERTIES]
    for name, config in resources_of_type(tree, "Microsoft.Web/sites/config").items():
        found += [f"config {name}: {key}" for key in keys_in(body(config)[1])
                  if key in FLEX_DEPRECATED_PROPERTIES | FLEX_DEPRECATED_APP_SETTINGS]
    found += [f"app setting {key}" for key in settings if key in FLEX_DEPRECATED_APP_SETTINGS]
    return found


def test_no_site_property_or_app_setting_that_flex_consumption_rejects() -> None:
    found = []
    for relative in bicep_files():
        found += [f"{relative}: {item}" for item in deprecated_in(parse(relative), {})]
    found += deprecated_in({"resources": {}}, app_settings())
    assert not found, f"Flex Consumption rejects these (Learn, Flex Consumption plan deprecations): {found}"
    # The app setting names written as text anywhere in infra/ too (a loop, a union(), a module parameter).
    for path in INFRA.rglob("*.bicep"):
        text = path.read_text(encoding="utf-8")
        assert not [s for s in FLEX_DEPRECATED_APP_SETTINGS if f"{s}:" in text or f"'{s}'" in text], path


@pytest.mark.parametrize("intruder", ["ftpsState", "alwaysOn", "linuxFxVersion"])
def test_the_check_fails_if_a_deprecated_property_comes_back(intruder: str) -> None:
    tree = copy.deepcopy(parse("modules/functionapp.bicep"))
    [site] = resources_of_type(tree, "Microsoft.Web/sites").values()
    body(site)[1]["properties"]["siteConfig"][intruder] = "Disabled"
    assert deprecated_in(tree, {}) != []
    assert deprecated_in(tree, {"WEBSITE_RUN_FROM_PACKAGE": "1"})[-1] == "app setting WEBSITE_RUN_FROM_PACKAGE"


def test_the_function_app_carries_the_azd_service_tag() -> None:
    site = body(next(iter(resources_of_type(parse("modules/functionapp.bicep"), "Microsoft.Web/sites").values())))[1]
    operands = site["tags"]["function"]
    assert operands["type"] == "union"
    assert {"'azd-service-name'": "api"} in operands["parameters"].values()


def rules() -> dict[str, dict[str, Any]]:
    tree = parse("modules/alerts.bicep")
    return {name: body(declaration)[1]["params"] for name, declaration in tree["modules"].items()}


def test_alert_windows_and_frequencies_are_values_azure_accepts() -> None:
    allowed_periods = next(d["argument"] for d in parse("modules/alerts.bicep")["parameters"]["noDeliveryPeriod"][
        "decorators"] if d["type"] == "allowed")
    assert set(allowed_periods) <= set(WINDOW_SIZES), set(allowed_periods) - set(WINDOW_SIZES)
    assert "PT12H" not in allowed_periods
    for name, params in rules().items():
        window = params["windowSize"]
        windows = allowed_periods if window == "noDeliveryPeriod" else [window]
        assert set(windows) <= set(WINDOW_SIZES), name
        assert params["evaluationFrequency"] in EVALUATION_FREQUENCIES, name
    main_default = main()["parameters"]["alertNoDeliveryPeriod"]["default"]
    assert main_default in allowed_periods


def test_network_access_is_a_parameter_allow_by_default_passed_to_every_account_and_the_vault() -> None:
    declared = main()["parameters"]["networkDefaultAction"]
    assert declared["default"] == "Allow"  # Flex without VNet integration reaches them over public endpoints
    allowed = next(d["argument"] for d in declared["decorators"] if d["type"] == "allowed")
    assert sorted(allowed) == ["Allow", "Deny"]
    for name in ("storage", "keyVault", "fallbackStorageAccount"):
        assert module(name)["params"]["networkDefaultAction"] == "networkDefaultAction", name
    for relative, resource_type in (("modules/storage.bicep", "Microsoft.Storage/storageAccounts"),
                                    ("modules/fallback-storage.bicep", "Microsoft.Storage/storageAccounts"),
                                    ("modules/keyvault.bicep", "Microsoft.KeyVault/vaults")):
        [resource] = resources_of_type(parse(relative), resource_type).values()
        acls = body(resource)[1]["properties"]["networkAcls"]
        assert acls == {"bypass": "AzureServices", "defaultAction": "networkDefaultAction"}, relative


def test_the_importer_reads_only_its_one_table() -> None:
    tree = parse("modules/import-rbac.bicep")
    [assignment] = resources_of_type(tree, "Microsoft.Authorization/roleAssignments").values()
    scope = tree["resources"][body(assignment)[1]["scope"]]
    assert scope["type"] == STORAGE_TABLE and scope["existing"] is True
    assert body(scope)[1]["name"] == "tableName"
    assert module("importRbac")["params"]["tableName"] == "leadsImportTable"


def test_the_email_role_is_the_only_one_acs_honours_and_only_on_the_one_resource() -> None:
    # Justified, not narrowed: no narrower built-in role sends e-mail, and whether Communication Services honours a
    # custom role is contested (Microsoft Q&A https://learn.microsoft.com/answers/a/8269455 reports one working;
    # https://blakedrumm.com/blog/acs-custom-iam-roles-not-supported reports Microsoft support saying it is not
    # supported). Narrowed by scope instead: the one Communication Services resource, never the resource group.
    tree = parse("modules/email-rbac.bicep")
    [assignment] = resources_of_type(tree, "Microsoft.Authorization/roleAssignments").values()
    scope = tree["resources"][body(assignment)[1]["scope"]]
    assert scope["type"] == "Microsoft.Communication/communicationServices" and scope["existing"] is True
