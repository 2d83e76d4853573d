"""`azd up` from a clone: azure.yaml's shape (as Azure-Samples/functions-quickstart-python-http-azd has it, and as
azd's schema https://raw.githubusercontent.com/Azure/azure-dev/main/schemas/v1.0/azure.yaml.json names the keys),
and the links azd follows from it to the template: infra/main.bicep, the service tag on the function app."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from tests.infra.test_bicep_policy import INFRA, ROOT, body, parse, resources_of_type


def azure_yaml() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((ROOT / "azure.yaml").read_text(encoding="utf-8"))
    return loaded


def test_one_python_function_service_built_from_the_repository_root() -> None:
    config = azure_yaml()
    assert set(config) <= {"name", "metadata", "services", "infra", "hooks", "pipeline"}
    assert config["services"] == {"api": {"project": ".", "language": "python", "host": "function"}}
    assert (ROOT / config["services"]["api"]["project"] / "function_app.py").is_file()
    assert (ROOT / "requirements.txt").is_file(), "the remote build installs requirements.txt"


def test_azd_finds_the_template_and_the_app() -> None:
    infra = azure_yaml().get("infra", {})
    # azd's defaults: infra/ and module main, with main.parameters.json beside it.
    assert Path(infra.get("path", "infra")) == INFRA.relative_to(ROOT)
    assert infra.get("module", "main") == "main" and (INFRA / "main.parameters.json").is_file()
    site = body(next(iter(resources_of_type(parse("modules/functionapp.bicep"), "Microsoft.Web/sites").values())))[1]
    tagged = [value for value in site["tags"]["function"]["parameters"].values() if isinstance(value, dict)]
    assert {"'azd-service-name'": "api"} in tagged and "api" in azure_yaml()["services"]
