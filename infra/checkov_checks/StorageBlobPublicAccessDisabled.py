"""CKV_LEADS_1: storage accounts must say `allowBlobPublicAccess: false`.

checkov's Bicep rules have no check for anonymous blob access (its ARM rule does not run on Bicep), so this
one fills the gap. Absent counts as failed: the default has changed between API versions, so it must be
written down. Loaded by `checkov --external-checks-dir infra/checkov_checks` (see infra/check.sh).
"""

from __future__ import annotations

from typing import Any

from checkov.bicep.checks.resource.base_resource_check import BaseResourceCheck
from checkov.common.models.enums import CheckCategories, CheckResult


class StorageBlobPublicAccessDisabled(BaseResourceCheck):  # type: ignore[misc]
    def __init__(self) -> None:
        super().__init__(
            name="Ensure storage accounts disallow anonymous blob access (allowBlobPublicAccess: false)",
            id="CKV_LEADS_1",
            categories=(CheckCategories.GENERAL_SECURITY,),
            supported_resources=("Microsoft.Storage/storageAccounts",),
        )

    def scan_resource_conf(self, conf: dict[str, Any]) -> CheckResult:
        self.evaluated_keys = ["properties/allowBlobPublicAccess"]
        properties = conf.get("properties")
        if not isinstance(properties, dict):
            return CheckResult.FAILED
        # Only the literal false passes: a parameter or expression could be true at deploy time.
        return CheckResult.PASSED if properties.get("allowBlobPublicAccess") is False else CheckResult.FAILED


check = StorageBlobPublicAccessDisabled()
