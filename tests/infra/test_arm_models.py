"""Property names, nesting and enum values of every resource in infra/, checked against Azure's own published models:
the azure-mgmt-* packages (generated from the REST API specs in Azure/azure-rest-api-specs) pinned in
requirements-dev.txt, walked over the pycep tree. The Bicep compiler (which would check the same against the same
specs) cannot run here.

The packages ship one API version each, newer than the templates' (web 2025-05-01 for 2024-04-01, storage
2026-09-01 for 2023-05-01, ...): a property the templates use must exist in it. A property that was renamed or
removed between the two would show as unknown here (none is); one added later would pass unnoticed.
"""

from __future__ import annotations

import copy
import enum
import importlib
import types
import typing
from functools import cache
from typing import Any

import pytest

from tests.infra.test_bicep_policy import bicep_files, body, parse

# Resource type -> (models module, class) describing the request body ARM accepts.
MODELS: dict[str, tuple[str, str]] = {
    "Microsoft.Web/sites": ("azure.mgmt.web.models", "Site"),
    "Microsoft.Web/serverfarms": ("azure.mgmt.web.models", "AppServicePlan"),
    "Microsoft.Web/sites/basicPublishingCredentialsPolicies": ("azure.mgmt.web.models",
                                                               "CsmPublishingCredentialsPoliciesEntity"),
    "Microsoft.Web/sites/config": ("azure.mgmt.web.models", "SiteAuthSettingsV2"),
    "Microsoft.Insights/scheduledQueryRules": ("azure.mgmt.monitor.models", "ScheduledQueryRuleResource"),
    "Microsoft.Insights/actionGroups": ("azure.mgmt.monitor.models", "ActionGroupResource"),
    "Microsoft.Storage/storageAccounts": ("azure.mgmt.storage.models", "StorageAccountCreateParameters"),
    "Microsoft.Storage/storageAccounts/blobServices": ("azure.mgmt.storage.models", "BlobServiceProperties"),
    "Microsoft.Storage/storageAccounts/blobServices/containers": ("azure.mgmt.storage.models", "BlobContainer"),
    "Microsoft.Storage/storageAccounts/queueServices": ("azure.mgmt.storage.models", "QueueServiceProperties"),
    "Microsoft.Storage/storageAccounts/queueServices/queues": ("azure.mgmt.storage.models", "StorageQueue"),
    "Microsoft.Storage/storageAccounts/tableServices": ("azure.mgmt.storage.models", "TableServiceProperties"),
    "Microsoft.Storage/storageAccounts/tableServices/tables": ("azure.mgmt.storage.models", "Table"),
    "Microsoft.KeyVault/vaults": ("azure.mgmt.keyvault.models", "VaultCreateOrUpdateParameters"),
    "Microsoft.KeyVault/vaults/secrets": ("azure.mgmt.keyvault.models", "SecretCreateOrUpdateParameters"),
    "Microsoft.ManagedIdentity/userAssignedIdentities": ("azure.mgmt.msi.models", "Identity"),
    "Microsoft.Authorization/roleAssignments": ("azure.mgmt.authorization.v2022_04_01.models",
                                                "RoleAssignmentCreateParameters"),
    "Microsoft.Communication/communicationServices": ("azure.mgmt.communication.models",
                                                      "CommunicationServiceResource"),
    "Microsoft.Communication/emailServices": ("azure.mgmt.communication.models", "EmailServiceResource"),
    "Microsoft.Communication/emailServices/domains": ("azure.mgmt.communication.models", "DomainResource"),
    "Microsoft.Insights/components": ("azure.mgmt.applicationinsights.v2020_02_02.models",
                                      "ApplicationInsightsComponent"),
    "Microsoft.OperationalInsights/workspaces": ("azure.mgmt.loganalytics.models", "Workspace"),
    "Microsoft.Resources/resourceGroups": ("", ""),  # subscription scope: name, location and tags only
}
# Bicep's own keywords in a resource body (not sent as properties), and ARM's envelope that every body may carry.
BICEP_KEYS = {"parent", "scope", "dependsOn", "name"}
ENVELOPE = {"name", "location", "tags"}

# ("model", class) | ("map", value field) | ("list", item field) | ("enum", values) | ("leaf", None)
Field = tuple[str, Any]


def _unwrap(annotation: Any, module: types.ModuleType) -> Field:
    origin = typing.get_origin(annotation)
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    if origin in (typing.Union, types.UnionType):
        enums = [a for a in args if isinstance(a, type) and issubclass(a, enum.Enum)]
        if enums:
            return ("enum", {str(member.value).lower() for e in enums for member in e})
        models = [a for a in args if isinstance(a, type) and getattr(a, "_is_model", False)]
        return _unwrap(models[0], module) if models else ("leaf", None)
    if origin is list:
        return ("list", _unwrap(args[0], module))
    if origin is dict:
        return ("map", _unwrap(args[1], module))
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        return ("enum", {str(member.value).lower() for member in annotation})
    if isinstance(annotation, type) and (getattr(annotation, "_is_model", False) or
                                         hasattr(annotation, "_attribute_map")):
        return ("model", annotation)
    return ("leaf", None)


@cache
def wire_fields(cls: type) -> dict[str, Field]:
    """The JSON names a model accepts, each with what it holds."""
    module = importlib.import_module(cls.__module__)
    if hasattr(cls, "_attribute_map"):  # msrest-generated (azure-mgmt-authorization, -applicationinsights)
        return _msrest_fields(cls, module)
    cls({})  # the TypeSpec-generated models compute their field table on first use
    package = importlib.import_module(cls.__module__.rsplit(".", 1)[0])
    hints = typing.get_type_hints(cls, {**vars(module), "_models": package})
    return {rf._rest_name: _unwrap(hints.get(attr, Any), module)
            for attr, rf in cls._attr_to_rest_field.items()}  # type: ignore[attr-defined]


def _msrest_fields(cls: type, module: types.ModuleType) -> dict[str, Field]:
    def resolve(kind: str) -> Field:
        if kind.startswith("[") and kind.endswith("]"):
            return ("list", resolve(kind[1:-1]))
        if kind.startswith("{") and kind.endswith("}"):
            return ("map", resolve(kind[1:-1]))
        found = getattr(module, kind, None)
        return ("model", found) if isinstance(found, type) and hasattr(found, "_attribute_map") else ("leaf", None)

    tree: dict[str, Any] = {}
    for spec in cls._attribute_map.values():  # type: ignore[attr-defined]
        *parents, last = spec["key"].replace("\\.", "\0").split(".")
        level = tree
        for parent in parents:
            level = level.setdefault(parent, ("nested", {}))[1]
        level[last.replace("\0", ".")] = resolve(spec["type"])
    return tree


def is_expression(value: Any) -> bool:
    return isinstance(value, dict) and ("operator" in value or "function" in value or ("loop_type" in value
                                        and "config" not in value))


def check(value: Any, field: Field, path: str, names: set[str], errors: list[str]) -> None:
    kind, detail = field
    if isinstance(value, dict) and "loop_type" in value and "config" in value:  # [for x in xs: {...}]
        check(value["config"], field[1] if kind == "list" else field, path, names, errors)
        return
    if is_expression(value) or (isinstance(value, str) and (value in names or "${" in value)):
        return  # computed: its shape is the compiler's business, its names are checked where written
    if kind == "list" and isinstance(value, list):
        for index, item in enumerate(value):
            check(item, detail, f"{path}[{index}]", names, errors)
    elif kind == "map" and isinstance(value, dict):
        for key, item in value.items():
            check(item, detail, f"{path}.{key}", names, errors)
    elif kind in ("model", "nested") and isinstance(value, dict):
        fields = wire_fields(detail) if kind == "model" else detail
        for key, item in value.items():
            if key not in fields:
                errors.append(f"{path}.{key}: not a property here (known: {sorted(fields)})")
            else:
                check(item, fields[key], f"{path}.{key}", names, errors)
    elif kind == "enum" and isinstance(value, str) and value.lower() not in detail:
        errors.append(f"{path}: {value!r} is not one of {sorted(detail)}")
    elif kind in ("model", "nested", "list", "map") and not isinstance(value, (dict, list)):
        errors.append(f"{path}: a {kind} is expected, found {value!r}")


def check_tree(tree: dict[str, Any], relative: str) -> list[str]:
    names = set(tree.get("parameters", {})) | set(tree.get("variables", {})) | set(tree.get("resources", {}))
    errors: list[str] = []
    for name, declaration in tree.get("resources", {}).items():
        resource_type = declaration["type"]
        assert resource_type in MODELS, f"{relative}:{name}: no model mapped for {resource_type}"
        module_name, class_name = MODELS[resource_type]
        _, config = body(declaration)
        if "loop_type" in config:
            config = config["config"]
        if not module_name:
            unknown = set(config) - ENVELOPE - BICEP_KEYS
            errors += [f"{relative}:{name}.{key}: not a property here" for key in unknown]
            continue
        cls = getattr(importlib.import_module(module_name), class_name)
        fields = wire_fields(cls)
        loop_names = names | ({config_item for config_item in [declaration["config"].get("loop_type", {}).get(
            "detail", {}).get("item_name")] if config_item})
        for key, value in config.items():
            if key in BICEP_KEYS or (declaration.get("existing") and key == "name"):
                continue
            if key not in fields and key not in ENVELOPE:
                errors.append(f"{relative}:{name}.{key}: not a property of {resource_type}")
            elif key in fields:
                check(value, fields[key], f"{relative}:{name}.{key}", loop_names, errors)
    return errors


@pytest.mark.parametrize("relative", bicep_files())
def test_every_property_is_one_azure_publishes_for_its_resource(relative: str) -> None:
    assert check_tree(parse(relative), relative) == []


MUTATIONS = [
    # (file, path to a dict inside the resource body, key to change, new key or None, new value or None)
    ("modules/functionapp.bicep", ("properties", "siteConfig"), "minTlsVersion", "minTLSVersoin", None),
    ("modules/functionapp.bicep", ("properties",), "functionAppConfig", "functionappconfig", None),
    ("modules/storage.bicep", ("properties",), "networkAcls", None, "Allow"),  # wrong nesting: a leaf, not an object
    ("modules/storage.bicep", ("properties", "encryption"), "keySource", None, "Microsoft.Storge"),  # bad enum
    ("modules/alert-rule.bicep", ("properties",), "autoMitigate", "autoMitigates", None),
    ("modules/keyvault.bicep", ("properties",), "enableRbacAuthorization", "enableRBACAuthorisation", None),
]


@pytest.mark.parametrize(("relative", "path", "key", "renamed", "value"), MUTATIONS,
                         ids=[f"{m[0]}:{m[2]}" for m in MUTATIONS])
def test_a_typo_wrong_nesting_or_bad_value_fails(relative: str, path: tuple[str, ...], key: str,
                                                  renamed: str | None, value: Any) -> None:
    tree = copy.deepcopy(parse(relative))
    resource_type = MODELS_BY_FILE[relative]
    declaration = next(r for r in tree["resources"].values() if r["type"] == resource_type)
    target = body(declaration)[1]
    for step in path:
        target = target[step]
    assert key in target
    if renamed:
        target[renamed] = target.pop(key)
    else:
        target[key] = value
    assert check_tree(tree, relative) != [], f"{relative}: the mutation of {key} went unnoticed"


MODELS_BY_FILE = {
    "modules/functionapp.bicep": "Microsoft.Web/sites",
    "modules/storage.bicep": "Microsoft.Storage/storageAccounts",
    "modules/alert-rule.bicep": "Microsoft.Insights/scheduledQueryRules",
    "modules/keyvault.bicep": "Microsoft.KeyVault/vaults",
}
