"""Policy checks on the Bicep templates, read with pycep-parser (the Bicep compiler cannot run here).

Everything the app reads comes from `leads.core.settings.SETTINGS`, never from a copy in this file: a setting added
to the code without its parameter and app setting in infra/main.bicep fails here.
"""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path
from typing import Any, cast

import pytest
from pycep import BicepParser

from leads.core.settings import SETTINGS, Setting, Settings, StorageSettings, fallback_storage
from leads.storage.fallback_table import FALLBACK_TABLE

ROOT = Path(__file__).resolve().parents[2]
INFRA = ROOT / "infra"
DEFAULTS = {s.name: s.default for s in SETTINGS}

# The data roles the app needs, by the resource type they are granted on (built-in role ids).
STORAGE_ACCOUNT = "Microsoft.Storage/storageAccounts"
KEY_VAULT = "Microsoft.KeyVault/vaults"
APP_INSIGHTS = "Microsoft.Insights/components"
NEEDED_ROLES = {
    (STORAGE_ACCOUNT, "b7e6dc6d-f1e8-4753-8033-0f276bb0955b"),  # Storage Blob Data Owner
    (STORAGE_ACCOUNT, "974c5e8b-45b9-4653-ba55-5f855dd0fb88"),  # Storage Queue Data Contributor
    (STORAGE_ACCOUNT, "0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3"),  # Storage Table Data Contributor
    (KEY_VAULT, "4633458b-17de-408a-b874-0445c86b69e6"),  # Key Vault Secrets User
    (APP_INSIGHTS, "3913510d-42f4-4e42-8a64-420c390055eb"),  # Monitoring Metrics Publisher
}
TABLE_DATA_CONTRIBUTOR = "0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3"
# The fallback storage account (LEADS_FALLBACK_STORAGE): table data only, in a module of its own.
FALLBACK_ROLES = {(STORAGE_ACCOUNT, TABLE_DATA_CONTRIBUTOR)}
# Azure Communication Services Email (parameter emailService): its sender role, in a module of its own.
COMMUNICATION_SERVICE = "Microsoft.Communication/communicationServices"
EMAIL_ROLES = {(COMMUNICATION_SERVICE, "09976791-48a7-449e-bb21-39d1a415f350")}  # Communication and Email Service Owner
# App settings that take a created resource's value when emailService is on, else their parameter.
EMAIL_SERVICE_SETTINGS = {
    "LEADS_EMAIL_TRANSPORT": "acs",
    "LEADS_ACS_ENDPOINT": "email.outputs.endpoint",
    "LEADS_EMAIL_FROM": "email.outputs.senderAddress",
}
# Storage Table Data Reader: read only, on the one table the importer reads (a table-scoped assignment).
STORAGE_TABLE = "Microsoft.Storage/storageAccounts/tableServices/tables"
IMPORT_ROLES = {(STORAGE_TABLE, "76199698-9eea-4c19-bc75-cec21354c6b6")}
FALLBACK_CONDITION = "fallbackStorage"
KEY_VAULT_REFERENCE = re.compile(
    r"^@Microsoft\.KeyVault\(SecretUri=\$\{keyVault\.outputs\.uri\}secrets/(?P<secret>[A-Za-z0-9-]+)/\)$"
)


@cache
def parse(relative: str) -> dict[str, Any]:
    # pycep types its result as a TypedDict of its own; the tests index it freely.
    return cast("dict[str, Any]", BicepParser().parse(file_path=INFRA / relative))


def main() -> dict[str, Any]:
    return parse("main.bicep")


def bicep_files() -> list[str]:
    return sorted(str(p.relative_to(INFRA)) for p in INFRA.rglob("*.bicep"))


def accessor(expression: Any) -> str:
    """`a.b.c` for pycep's nested property accessors; other values as they are."""
    if isinstance(expression, dict) and expression.get("operator", {}).get("type") == "property_accessor":
        operands = expression["operator"]["operands"]
        return f"{accessor(operands['operand_1'])}.{accessor(operands['operand_2'])}"
    return str(expression)


def body(declaration: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
    """(condition or None, body) of a resource or module declaration."""
    config: dict[str, Any] = declaration["config"]
    if "condition" in config and "config" in config:
        return config["condition"], config["config"]
    return None, config


def module(name: str) -> dict[str, Any]:
    return body(main()["modules"][name])[1]


def module_path(name: str) -> str:
    return str(main()["modules"][name]["detail"]["path"])


def resources_of_type(tree: dict[str, Any], resource_type: str) -> dict[str, dict[str, Any]]:
    return {name: r for name, r in tree["resources"].items() if r["type"] == resource_type}


def only_resource(relative: str, resource_type: str) -> dict[str, Any]:
    found = resources_of_type(parse(relative), resource_type)
    assert len(found) == 1, f"{relative}: expected one {resource_type}, found {sorted(found)}"
    return body(next(iter(found.values())))[1]


def app_settings() -> dict[str, Any]:
    settings: dict[str, Any] = main()["variables"]["appSettings"]["value"]
    return settings


def raw_app_setting(key: str) -> str:
    """The value exactly as written in main.bicep (pycep turns `'x'` and the identifier `x` into the same str)."""
    text = (INFRA / "main.bicep").read_text(encoding="utf-8")
    block = text[text.index("var appSettings = {"):]
    match = re.search(rf"^\s*{re.escape(key)}:\s*(.+?)\s*$", block, re.MULTILINE)
    assert match, f"{key} not found in var appSettings"
    return match.group(1)


def parameter_reference(key: str) -> str | None:
    """The main.bicep parameter an app setting is set to, when it is set to a bare parameter (or, for the
    settings emailService may set, the parameter used when it is off)."""
    value = app_settings()[key]
    if key in EMAIL_SERVICE_SETTINGS:
        false_value = value["operator"]["operands"]["false_value"]
        return false_value if false_value in main()["parameters"] else None
    if isinstance(value, str) and value in main()["parameters"] and raw_app_setting(key) == value:
        return value
    return None


def is_secure(parameter: dict[str, Any]) -> bool:
    return any(d["type"] == "secure" for d in parameter["decorators"])


def expand_variables(value: str) -> str:
    """Substitute `${var}` with main.bicep string variables (one level, enough for the secret prefix)."""
    variables = main()["variables"]

    def substitute(match: re.Match[str]) -> str:
        name = match.group(1)
        if name in variables and isinstance(variables[name]["value"], str):
            return str(variables[name]["value"])
        return match.group(0)

    return re.sub(r"\$\{(\w+)\}", substitute, value)


def resolve(expression: Any) -> Any:
    """Parameter names to their defaults, `${param}` interpolations to text: for module arguments."""
    parameters = main()["parameters"]
    if isinstance(expression, list):
        return [resolve(item) for item in expression]
    if isinstance(expression, str):
        if expression in parameters:
            return parameters[expression]["default"]
        return re.sub(r"\$\{(\w+)\}", lambda m: str(parameters[m.group(1)]["default"]), expression)
    return expression


def secret_modules() -> dict[str, tuple[Any, dict[str, Any]]]:
    """Key Vault secret name -> (condition, module body) of every keyvault-secret.bicep call."""
    found: dict[str, tuple[Any, dict[str, Any]]] = {}
    for name, declaration in main()["modules"].items():
        if module_path(name) == "modules/keyvault-secret.bicep":
            condition, config = body(declaration)
            found[config["params"]["name"]] = (condition, config)
    return found


def host_setting_names() -> list[Setting]:
    return [s for s in SETTINGS if s.group == "storage" and s.name != "AzureWebJobsStorage"]


# ---------------------------------------------------------------- app settings


def test_every_setting_the_app_reads_is_provisioned() -> None:
    missing = [s.name for s in SETTINGS if s.name != "AzureWebJobsStorage" and s.name not in app_settings()]
    assert not missing, f"settings the app reads but main.bicep does not set: {missing}"


@pytest.mark.parametrize("setting", [s for s in SETTINGS if s.group != "storage" and not s.secret],
                         ids=lambda s: s.name)
def test_plain_settings_come_from_a_parameter_with_the_code_default(setting: Setting) -> None:
    parameter = parameter_reference(setting.name)
    assert parameter, f"{setting.name} is not set to a main.bicep parameter: {raw_app_setting(setting.name)}"
    declared = main()["parameters"][parameter]
    assert not is_secure(declared)
    assert declared["type"] == "string"
    assert declared["default"] == setting.default, f"{parameter} default differs from the code's"


@pytest.mark.parametrize("setting", [s for s in SETTINGS if s.secret and s.group != "storage"],
                         ids=lambda s: s.name)
def test_secret_settings_are_key_vault_references_fed_by_secure_parameters(setting: Setting) -> None:
    reference = KEY_VAULT_REFERENCE.match(expand_variables(raw_app_setting(setting.name).strip("'")))
    assert reference, f"{setting.name} is not a Key Vault reference: {raw_app_setting(setting.name)}"
    assert module_path("keyVault") == "modules/keyvault.bicep"
    assert accessor(parse("modules/keyvault.bicep")["outputs"]["uri"]["value"]) == "vault.properties.vaultUri"

    secret = reference.group("secret")
    assert secret in secret_modules(), f"nothing writes Key Vault secret {secret}"
    condition, config = secret_modules()[secret]
    source = config["params"]["value"]
    parameter = main()["parameters"][source]
    assert is_secure(parameter), f"{source} must be @secure()"
    assert parameter["default"] == ""
    assert parameter["decorators"][0]["argument"].startswith(f"{setting.name}:")
    # Written only when given: a redeploy without the value must not overwrite a rotated secret.
    assert condition == {"operator": {"type": "not", "operands": {"bool_value": {
        "function": {"type": "empty", "parameters": {"item_to_test": source}}}}}}
    assert accessor(config["params"]["vaultName"]) == "keyVault.outputs.name"


def test_secure_parameters_are_exactly_the_secret_settings() -> None:
    secure = {name for name, p in main()["parameters"].items() if is_secure(p)}
    fed = {config["params"]["value"] for _, config in secret_modules().values()}
    assert secure == fed
    assert len(fed) == len([s for s in SETTINGS if s.secret and s.group != "storage"])


def test_key_vault_secret_module_writes_the_named_secret_into_the_named_vault() -> None:
    tree = parse("modules/keyvault-secret.bicep")
    assert is_secure(tree["parameters"]["value"])
    vault = only_resource("modules/keyvault-secret.bicep", KEY_VAULT)
    secret = only_resource("modules/keyvault-secret.bicep", "Microsoft.KeyVault/vaults/secrets")
    assert vault["name"] == "vaultName"
    assert (secret["name"], secret["properties"]["value"]) == ("name", "value")
    assert tree["resources"][secret["parent"]]["type"] == KEY_VAULT
    assert not tree.get("outputs"), "a secret module must not output anything (it could leak the value)"


def test_host_storage_is_the_managed_identity_not_a_connection_string() -> None:
    settings = app_settings()
    assert "AzureWebJobsStorage" not in settings, "a connection string needs the account key"
    assert settings["AzureWebJobsStorage__credential"] == "managedidentity"
    assert raw_app_setting("AzureWebJobsStorage__credential") == "'managedidentity'"
    assert accessor(settings["AzureWebJobsStorage__clientId"]) == "identity.outputs.clientId"
    for service in ("blob", "queue", "table"):
        assert accessor(settings[f"AzureWebJobsStorage__{service}ServiceUri"]) == f"storage.outputs.{service}Endpoint"
    # Every identity-based host setting the app reads is among those set above.
    assert {s.name for s in host_setting_names()} <= set(settings)


def test_no_storage_key_or_connection_string_anywhere() -> None:
    for key, value in app_settings().items():
        text = json.dumps(value)
        assert "AccountKey=" not in text and "SharedAccessSignature" not in text, key
        assert "DefaultEndpointsProtocol" not in text, key
    assert "WEBSITE_CONTENTAZUREFILECONNECTIONSTRING" not in app_settings()
    for relative in bicep_files():
        text = (INFRA / relative).read_text(encoding="utf-8")
        for reader in ("listKeys(", "listAccountSas(", "listServiceSas(", "listConnectionStrings("):
            assert reader not in text, f"{relative} reads storage secrets with {reader}"
    account = only_resource("modules/storage.bicep", STORAGE_ACCOUNT)
    assert account["properties"]["allowSharedKeyAccess"] is False


def test_nothing_overrides_host_json_or_breaks_flex_consumption() -> None:
    overrides = {s.name for s in SETTINGS if s.group == "host"}  # documented trade-offs, with host.json's value
    for key in app_settings():
        assert not key.startswith("AzureFunctionsJobHost__") or key in overrides, f"{key} overrides host.json"
        assert key not in ("FUNCTIONS_WORKER_RUNTIME", "FUNCTIONS_EXTENSION_VERSION"), f"{key} is rejected on Flex"
        assert not key.startswith("WEBSITE_CONTENT"), f"{key} is a Consumption-plan setting"


def test_the_function_app_gets_exactly_main_bicep_app_settings() -> None:
    assert module_path("functionApp") == "modules/functionapp.bicep"
    assert module("functionApp")["params"]["appSettings"] == "appSettings"
    site = only_resource("modules/functionapp.bicep", "Microsoft.Web/sites")
    loop = site["properties"]["siteConfig"]["appSettings"]
    assert loop["loop_type"]["detail"]["array_name"] == {"function": {"type": "items",
                                                                      "parameters": {"arg_1": "appSettings"}}}
    assert loop["condition"] is None
    item = loop["loop_type"]["detail"]["item_name"]
    assert {k: accessor(v) for k, v in loop["config"].items()} == {"name": f"{item}.key", "value": f"{item}.value"}
    for relative in bicep_files():
        for name, config in resources_of_type(parse(relative), "Microsoft.Web/sites/config").items():
            assert body(config)[1]["name"] != "appsettings", f"{relative}:{name} would replace the app settings"


def test_application_insights_is_reached_with_the_identity() -> None:
    settings = app_settings()
    assert settings["APPLICATIONINSIGHTS_AUTHENTICATION_STRING"] == \
        "ClientId=${identity.outputs.clientId};Authorization=AAD"
    assert accessor(settings["APPLICATIONINSIGHTS_CONNECTION_STRING"]) == "monitoring.outputs.connectionString"
    component = only_resource("modules/monitoring.bicep", APP_INSIGHTS)
    assert component["properties"]["DisableLocalAuth"] is True
    workspace = only_resource("modules/monitoring.bicep", "Microsoft.OperationalInsights/workspaces")
    assert workspace["properties"]["features"]["disableLocalAuth"] is True


def test_functions_opentelemetry_mode_with_the_app_exporting_its_own_telemetry() -> None:
    # The host in OpenTelemetry mode; the worker passes its invocation span to the app and leaves the app's logs
    # to it (leads/telemetry/otel.py). Never both worker switches: Azure Monitor would be configured twice.
    host = json.loads((ROOT / "host.json").read_text(encoding="utf-8"))
    assert host["telemetryMode"] == "OpenTelemetry"
    settings = app_settings()
    assert settings["PYTHON_ENABLE_OPENTELEMETRY"] == "true"
    assert "PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY" not in settings
    requirements = (ROOT / "requirements.txt").read_text(encoding="utf-8")
    assert re.search(r"^azure-monitor-opentelemetry==\S+$", requirements, flags=re.MULTILINE)


# ---------------------------------------------------------------- identity and roles


def test_the_app_runs_as_the_identity_whose_client_id_the_settings_name() -> None:
    assert module_path("identity") == "modules/identity.bicep"
    assert accessor(module("functionApp")["params"]["identityId"]) == "identity.outputs.id"
    site = only_resource("modules/functionapp.bicep", "Microsoft.Web/sites")
    assert site["identity"]["type"] == "UserAssigned"
    assert list(site["identity"]["userAssignedIdentities"]) == ["'${identityId}'"]
    assert site["properties"]["keyVaultReferenceIdentity"] == "identityId"
    deployment = site["properties"]["functionAppConfig"]["deployment"]["storage"]["authentication"]
    assert deployment == {"type": "UserAssignedIdentity", "userAssignedIdentityResourceId": "identityId"}


def test_role_assignments_are_exactly_the_needed_ones() -> None:
    granted: dict[str, list[tuple[str, str]]] = {}
    for relative in bicep_files():
        tree = parse(relative)
        for name, declaration in resources_of_type(tree, "Microsoft.Authorization/roleAssignments").items():
            condition, assignment = body(declaration)
            where = f"{relative}:{name}"
            assert condition is None, f"{where}: a role must not depend on a condition"
            scope = tree["resources"][assignment["scope"]]
            assert scope["existing"] is True, f"{where}: scope must be one of the app's resources"
            role_function = assignment["properties"]["roleDefinitionId"]["function"]
            assert role_function["type"] == "subscription_resource_id"
            role_variable = role_function["parameters"]["resource_name_1"]
            role_id = tree["variables"][role_variable]["value"]
            properties = assignment["properties"]
            assert (properties["principalId"], properties["principalType"]) == ("principalId", "ServicePrincipal")
            # Deterministic name: the same assignment on a redeploy, never a duplicate.
            assert assignment["name"] == {"function": {"type": "guid", "parameters": {
                "base_string": {"operator": {"type": "property_accessor", "operands": {
                    "operand_1": assignment["scope"], "operand_2": "id"}}},
                "extra_string_1": "principalId", "extra_string_2": role_variable}}}, where
            granted.setdefault(relative, []).append((scope["type"], role_id))
    assert sorted(granted.pop("modules/rbac.bicep")) == sorted(NEEDED_ROLES), "role assignments differ"
    assert sorted(granted.pop("modules/fallback-rbac.bicep")) == sorted(FALLBACK_ROLES)
    assert sorted(granted.pop("modules/email-rbac.bicep")) == sorted(EMAIL_ROLES)
    assert sorted(granted.pop("modules/import-rbac.bicep")) == sorted(IMPORT_ROLES)
    assert not granted, f"role assignments in unexpected places: {granted}"


def test_roles_are_granted_to_the_app_identity_on_the_app_resources() -> None:
    params = module("rbac")["params"]
    assert module_path("rbac") == "modules/rbac.bicep"
    assert {k: accessor(v) for k, v in params.items()} == {
        "principalId": "identity.outputs.principalId",
        "storageAccountName": "storage.outputs.name",
        "keyVaultName": "keyVault.outputs.name",
        "applicationInsightsName": "monitoring.outputs.applicationInsightsName",
    }
    existing = {r["type"]: body(r)[1]["name"] for r in parse("modules/rbac.bicep")["resources"].values()
                if r["existing"]}
    assert existing == {STORAGE_ACCOUNT: "storageAccountName", KEY_VAULT: "keyVaultName",
                        APP_INSIGHTS: "applicationInsightsName"}


def test_email_service_is_off_by_default_and_otherwise_a_linked_managed_domain_the_identity_may_send_from() -> None:
    assert main()["parameters"]["emailService"]["default"] is False
    assert (module_path("email"), module_path("emailRbac")) == ("modules/email.bicep", "modules/email-rbac.bicep")
    for name in ("email", "emailRbac"):
        assert body(main()["modules"][name])[0] == "emailService", f"{name} must depend on emailService"
    rbac = module("emailRbac")["params"]
    assert {k: accessor(v) for k, v in rbac.items()} == {"principalId": "identity.outputs.principalId",
                                                         "communicationServiceName": "communicationServiceName"}
    assert module("email")["params"]["communicationServiceName"] == "communicationServiceName"
    existing = [body(r)[1]["name"] for r in parse("modules/email-rbac.bicep")["resources"].values() if r["existing"]]
    assert existing == ["communicationServiceName"]
    # The resources: an Azure-managed domain (no DNS to publish), linked, so a send is not DomainNotLinked.
    domain = only_resource("modules/email.bicep", "Microsoft.Communication/emailServices/domains")
    assert domain["properties"]["domainManagement"] == "AzureManaged"
    assert domain["properties"]["userEngagementTracking"] == "Disabled"
    service = only_resource("modules/email.bicep", COMMUNICATION_SERVICE)
    domain_name = next(n for n, r in parse("modules/email.bicep")["resources"].items()
                       if r["type"] == "Microsoft.Communication/emailServices/domains")
    assert [accessor(d) for d in service["properties"]["linkedDomains"]] == [f"{domain_name}.id"]
    outputs = parse("modules/email.bicep")["outputs"]
    assert outputs["senderAddress"]["value"] == f"DoNotReply@${{{domain_name}.properties.mailFromSenderDomain}}"
    # The app settings: the created endpoint and sender when on, the parameters (code defaults) when off.
    for key, when_on in EMAIL_SERVICE_SETTINGS.items():
        operands = app_settings()[key]["operator"]["operands"]
        assert accessor(operands["true_value"]) == when_on, key
        condition = operands["condition"]
        assert condition == "emailService" or condition["operator"]["operands"]["operand_1"] == "emailService"
    assert app_settings()["LEADS_EMAIL_FROM"]["operator"]["operands"]["condition"]["operator"]["operands"][
        "operand_2"] == {"function": {"type": "empty", "parameters": {"item_to_test": "leadsEmailFrom"}}}


# ---------------------------------------------------------------- storage


def test_fallback_storage_is_on_by_default_in_another_region_a_locked_down_account_the_app_may_use() -> None:
    # On by default (issue 17): a lead spooled to an instance's disk vanishes when Flex scales that instance in.
    assert main()["parameters"]["fallbackStorage"]["default"] is True
    assert main()["parameters"]["fallbackStorageLocation"]["default"] == ""
    assert main()["variables"]["fallbackRegion"]["value"] == {"operator": {"type": "conditional", "operands": {
        "condition": {"function": {"type": "empty", "parameters": {"item_to_test": "fallbackStorageLocation"}}},
        "true_value": {"operator": {"type": "conditional", "operands": {
            "condition": {"function": {"type": "contains", "parameters": {
                "container": "regionPairs", "item_to_find": "location"}}},
            "true_value": {"operator": {"type": "index_accessor", "operands": {
                "operand_1": "regionPairs", "operand_2": "location"}}},
            "false_value": "location"}}},
        "false_value": "fallbackStorageLocation"}}}
    pairs = main()["variables"]["regionPairs"]["value"]
    assert all(region != pair for region, pair in pairs.items()), "a pair is another region"
    assert module_path("fallbackStorageAccount") == "modules/fallback-storage.bicep"
    assert module_path("fallbackRbac") == "modules/fallback-rbac.bicep"
    for name in ("fallbackStorageAccount", "fallbackRbac"):
        assert body(main()["modules"][name])[0] == FALLBACK_CONDITION, f"{name} must depend on fallbackStorage"
    storage, rbac = module("fallbackStorageAccount")["params"], module("fallbackRbac")["params"]
    assert (storage["name"], storage["location"]) == ("fallbackStorageName", "fallbackRegion")
    assert storage["tableName"] == FALLBACK_TABLE
    assert {k: accessor(v) for k, v in rbac.items()} == {"principalId": "identity.outputs.principalId",
                                                         "storageAccountName": "fallbackStorageName"}
    assert main()["variables"]["fallbackStorageName"]["value"] != main()["modules"]["storage"]["config"][
        "params"]["name"], "the fallback must be another account than the main one"
    # The app setting: the fallback account's table endpoint (identity, no key) when on, else empty.
    endpoint = "https://${fallbackStorageName}.table.${environment().suffixes.storage}"
    assert app_settings()["LEADS_FALLBACK_STORAGE"] == {"operator": {"type": "conditional", "operands": {
        "condition": "fallbackStorage", "true_value": endpoint, "false_value": ""}}}
    # ...which the app reads as an identity-based table endpoint, not a connection string.
    identity = StorageSettings(table_service_uri="https://stmain.table.core.windows.net",
                       client_id="00000000-0000-0000-0000-000000000001")
    read = fallback_storage(endpoint.replace("${fallbackStorageName}", "stfbabc").replace(
        "${environment().suffixes.storage}", "core.windows.net"), identity)
    assert read is not None and read.table_service_uri == "https://stfbabc.table.core.windows.net"
    assert read.uses_identity and read.client_id == identity.client_id
    account = only_resource("modules/fallback-storage.bicep", STORAGE_ACCOUNT)["properties"]
    assert account["allowSharedKeyAccess"] is False and account["defaultToOAuthAuthentication"] is True
    assert account["allowBlobPublicAccess"] is False and account["minimumTlsVersion"] == "TLS1_2"
    table = only_resource("modules/fallback-storage.bicep", "Microsoft.Storage/storageAccounts/tableServices/tables")
    assert table["name"] == "tableName"
    existing = [body(r)[1]["name"] for r in parse("modules/fallback-rbac.bicep")["resources"].values()
                if r["existing"]]
    assert existing == ["storageAccountName"]


def test_queue_and_table_names_match_the_code() -> None:
    code = Settings(storage=StorageSettings(), table=DEFAULTS["LEADS_TABLE"],
                    quarantine_table=DEFAULTS["LEADS_QUARANTINE_TABLE"], queue=DEFAULTS["LEADS_QUEUE"])
    params = module("storage")["params"]
    assert resolve(params["tableNames"]) == [code.table, code.quarantine_table]
    assert resolve(params["queueNames"]) == [code.queue, code.poison_queue]
    # ...and the module creates one table/queue per name it is given.
    storage = parse("modules/storage.bicep")
    tables = resources_of_type(storage, "Microsoft.Storage/storageAccounts/tableServices/tables")
    queues = resources_of_type(storage, "Microsoft.Storage/storageAccounts/queueServices/queues")
    assert [t["config"]["loop_type"]["detail"]["array_name"] for t in tables.values()] == ["tableNames"]
    assert [q["config"]["loop_type"]["detail"]["array_name"] for q in queues.values()] == ["queueNames"]
    for loop in (*tables.values(), *queues.values()):
        assert loop["config"]["config"]["name"] == loop["config"]["loop_type"]["detail"]["item_name"]


def test_storage_account_is_locked_down() -> None:
    properties = only_resource("modules/storage.bicep", STORAGE_ACCOUNT)["properties"]
    assert properties["allowSharedKeyAccess"] is False
    assert properties["allowBlobPublicAccess"] is False
    assert properties["minimumTlsVersion"] == "TLS1_2"
    assert properties["supportsHttpsTrafficOnly"] is True


# ---------------------------------------------------------------- the rest


def test_key_vault_uses_rbac_not_access_policies() -> None:
    properties = only_resource("modules/keyvault.bicep", KEY_VAULT)["properties"]
    assert properties["enableRbacAuthorization"] is True
    assert "accessPolicies" not in properties


def test_flex_consumption_python_311() -> None:
    plan = only_resource("modules/functionapp.bicep", "Microsoft.Web/serverfarms")
    assert plan["sku"] == {"name": "FC1", "tier": "FlexConsumption"}
    assert plan["properties"]["reserved"] is True
    site = only_resource("modules/functionapp.bicep", "Microsoft.Web/sites")
    assert site["kind"] == "functionapp,linux"
    assert site["properties"]["httpsOnly"] is True
    assert site["properties"]["functionAppConfig"]["runtime"] == {"name": "python", "version": "3.11"}
    assert "linuxFxVersion" not in site["properties"]["siteConfig"]  # rejected on Flex


def test_operator_sign_in_is_off_by_default() -> None:
    assert main()["parameters"]["enableOperatorSignIn"]["default"] is False
    condition, config = body(main()["modules"]["operatorSignIn"])
    assert condition == "enableOperatorSignIn"
    assert config["params"]["clientId"] == "operatorSignInClientId"


def test_operator_sign_in_excludes_exactly_ingest_and_health_and_protects_the_rest() -> None:
    prefix = json.loads((ROOT / "host.json").read_text(encoding="utf-8"))["extensions"]["http"]["routePrefix"]
    signin = parse("modules/operator-signin.bicep")
    assert "excludedPaths" not in signin["parameters"], "the exclusions are fixed, not widened by a parameter"
    excluded = signin["variables"]["excludedPaths"]["value"]
    # Partner Center cannot sign in (function key in the URL); the health probe is anonymous. Nothing else.
    assert sorted(excluded) == sorted([f"/{prefix}/leads", f"/{prefix}/health"])
    protected = [f"/{prefix}/console", f"/{prefix}/console/app.js", f"/{prefix}/manage/leads",
                 f"/{prefix}/manage/replay", f"/{prefix}/status", f"/{prefix}/openapi.json"]
    for path in protected:
        assert not any(path == e or "*" in e or path.startswith(e.rstrip("/") + "/") for e in excluded), path

    auth = only_resource("modules/operator-signin.bicep", "Microsoft.Web/sites/config")
    assert auth["name"] == "authsettingsV2"
    properties = auth["properties"]
    assert properties["platform"]["enabled"] is True
    validation = properties["globalValidation"]
    assert validation["requireAuthentication"] is True
    assert validation["unauthenticatedClientAction"] == "RedirectToLoginPage"
    assert validation["redirectToProvider"] == "azureactivedirectory"
    assert validation["excludedPaths"] == "excludedPaths"
    assert properties["httpSettings"]["requireHttps"] is True
    entra = properties["identityProviders"]["azureActiveDirectory"]
    assert entra["enabled"] is True
    assert entra["registration"]["clientId"] == "clientId"
    assert "clientSecretSettingName" not in entra["registration"], "no secret: ID tokens are enough"
    assert entra["registration"]["openIdIssuer"].endswith("${tenantId}/v2.0")
    assert sorted(entra["validation"]["allowedAudiences"]) == sorted(["api://${clientId}", "clientId"])
    assert properties["login"]["tokenStore"]["enabled"] is False  # the app reads the principal header only


def test_outputs_name_the_app_and_the_ingest_url_without_a_key() -> None:
    outputs = main()["outputs"]
    prefix = json.loads((ROOT / "host.json").read_text(encoding="utf-8"))["extensions"]["http"]["routePrefix"]
    assert accessor(outputs["functionAppName"]["value"]) == "functionApp.outputs.name"
    assert outputs["ingestUrl"]["value"] == f"https://${{functionApp.outputs.defaultHostName}}/{prefix}/leads"
    for name, output in outputs.items():
        assert "code=" not in json.dumps(output["value"]), f"output {name} must not carry a key"


def test_no_resource_is_conditional() -> None:
    """checkov does not look inside a conditional resource's body: its checks would pass vacuously.
    Conditions belong on module calls (whose resources checkov then reads in the module file)."""
    for relative in bicep_files():
        for name, declaration in parse(relative)["resources"].items():
            condition, _ = body(declaration)
            assert condition is None, f"{relative}:{name} is conditional; put the condition on a module call"


AZD_VARIABLE = re.compile(r"^\$\{(?P<name>[A-Z][A-Z0-9_]*)(?:=(?P<default>[^}]*))?\}$")


def test_parameter_file_sets_only_declared_non_secret_parameters() -> None:
    values = json.loads((INFRA / "main.parameters.json").read_text(encoding="utf-8"))["parameters"]
    declared = main()["parameters"]
    python_type = {"string": str, "int": int, "bool": bool}
    for name, entry in values.items():
        assert name in declared, f"main.parameters.json sets {name}, which main.bicep does not declare"
        assert not is_secure(declared[name]), f"{name} is a secret: pass it on the command line, not in a file"
        value = entry["value"]
        variable = AZD_VARIABLE.match(value) if isinstance(value, str) else None
        if variable and variable["default"] is not None and declared[name]["type"] == "bool":
            assert variable["default"] in ("true", "false"), name
        elif not variable:
            assert type(value) is python_type[declared[name]["type"]], name


def test_parameter_file_takes_azds_environment_as_the_quickstart_does() -> None:
    # Azure-Samples/functions-quickstart-python-http-azd infra/main.parameters.json: these three from azd.
    values = json.loads((INFRA / "main.parameters.json").read_text(encoding="utf-8"))["parameters"]
    assert values["environmentName"]["value"] == "${AZURE_ENV_NAME}"
    assert values["location"]["value"] == "${AZURE_LOCATION}"
    assert values["principalId"]["value"] == "${AZURE_PRINCIPAL_ID}"
    assert main()["parameters"]["principalId"]["default"] == ""
    # Every value comes from the azd environment (a literal here would override the user's choice silently).
    assert all(AZD_VARIABLE.match(str(entry["value"])) for entry in values.values())
    assert main()["variables"]["tags"]["value"]["'azd-env-name'"] == "environmentName"
    outputs = main()["outputs"]
    assert outputs["SERVICE_API_URI"]["value"] == "https://${functionApp.outputs.defaultHostName}"
    required = {n for n, p in main()["parameters"].items() if "default" not in p}
    assert required <= set(values), f"parameters without a default missing from the file: {required - set(values)}"
