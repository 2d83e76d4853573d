"""leads/core/hosting.py decides how open the management API and the console are: open only on proof of local.

`WEBSITE_INSTANCE_ID` is no such proof either way: Flex Consumption leaves it empty (azure-functions-host,
EnvironmentExtensionsTests.IsFlexConsumptionSku_ReturnsExpectedResult; docs/stack.md), so a check built on it
("no instance id, so local") would open the API in Azure. Generated environments try every mix of the variables."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from leads.core.hosting import AZURE_SIGNS, LOCAL_OPEN, LOCAL_SIGNALS, api_mode, hosting, is_local

# What a Flex Consumption instance may show, specialised or in placeholder mode (the host's tests), with
# WEBSITE_INSTANCE_ID empty or absent, plus whatever a local.settings.json copied into app settings adds.
FLEX_SIGNS = {"WEBSITE_SKU": "FlexConsumption", "CONTAINER_NAME": "c0ffee", "WEBSITE_POD_NAME": "pod-1",
              "LEGION_SERVICE_HOST": "10.1.2.3", "WEBSITE_SITE_NAME": "func-leads", "WEBSITE_HOSTNAME": "x.net"}
values = st.sampled_from(["", " ", "true", "True", "false", "0", "1", "FlexConsumption", "x"])
names = st.sampled_from([*AZURE_SIGNS, *LOCAL_SIGNALS, "AZURE_FUNCTIONS_ENVIRONMENT", "WEBSITE_AUTH_ENABLED"])


@given(st.dictionaries(names, values))
def test_open_only_with_a_local_signal_and_no_azure_sign_at_all(env: dict[str, str]) -> None:
    proof = any(env.get(name, "").strip().lower() == "true" for name in LOCAL_SIGNALS)
    signs = any(env.get(name, "").strip() for name in AZURE_SIGNS)
    assert is_local(env) == (proof and not signs)
    assert (api_mode(env) == LOCAL_OPEN) == (proof and not signs)


@given(st.lists(st.sampled_from(sorted(FLEX_SIGNS)), min_size=1, unique=True), st.sampled_from([None, "", " "]),
       st.booleans())
def test_flex_without_an_instance_id_is_never_local(present: list[str], instance_id: str | None,
                                                    local_settings_copied: bool) -> None:
    env = {name: FLEX_SIGNS[name] for name in present}
    if instance_id is not None:
        env["WEBSITE_INSTANCE_ID"] = instance_id
    if local_settings_copied:
        env.update(dict.fromkeys(LOCAL_SIGNALS, "true") | {"AZURE_FUNCTIONS_ENVIRONMENT": "Development"})
    assert hosting(env) is not None
    assert not is_local(env) and api_mode(env) != LOCAL_OPEN
