"""`python -m leads doctor` against the fake Azure AD and Dataverse: one line per check, the FAQ's cause
and fix for each Dynamics error, exit status 0 only when everything passes, and never a secret."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from leads import destinations
from leads.core.destination import Check
from leads.core.settings import load_settings
from leads.services import doctor
from tests.support import azure_ad
from tests.support.azure_ad import (
    APP_USER_ID,
    CLIENT_ID,
    CLIENT_SECRET,
    AzureWorld,
    TlsFiles,
    make_client_certificate,
)
from tests.support.fake_http import Reply

PROJECT_ROOT = Path(__file__).resolve().parents[2]
OTHER_TENANT = "11111111-2222-3333-4444-555555555555"


def run_doctor(env: dict[str, str], *argv: str, extra: list[doctor.ExtraCheck] | None = None) -> tuple[int, str]:
    out = io.StringIO()
    status = doctor.main(list(argv), env=env, out=out, extra_checks=extra or [])
    return status, out.getvalue()


def test_all_checks_pass(world: AzureWorld) -> None:
    status, output = run_doctor(world.env())

    lines = output.splitlines()
    assert status == 0
    assert lines[0] == (f"OK   dynamics  token: Azure AD issued a token for {world.dataverse.url} to the client "
                        f"secret of application {CLIENT_ID}.")
    assert lines[1].startswith("OK   dynamics  instance: ")
    assert APP_USER_ID in lines[1]
    assert lines[2].startswith("OK   dynamics  create privilege: the application user's role grants prvCreateLead")
    assert len(lines) == 3
    assert CLIENT_SECRET not in output
    assert world.dataverse.records == {}  # nothing was created to find out


# Each Dynamics error of the FAQ ("Résolution des erreurs de configuration des prospects"), reproduced by
# the fakes: what to arrange, settings to change, and the line the doctor must print.
Arrange = Callable[[AzureWorld], None]
FAQ_ERRORS: dict[str, tuple[Arrange, dict[str, str], str, list[str]]] = {
    "cannot log in to Dynamics CRM (Microsoft 365 user/password)": (
        lambda w: setattr(w.aad, "token_error", azure_ad.bad_password()),
        {}, "FAIL dynamics  token: ", ["AADSTS50126", "does not sign in as a licensed user", "application user"],
    ),
    "no create permission for leadsourcecode on lead": (
        lambda w: setattr(w.dataverse, "privilege_reply", azure_ad.no_role_privileges()),
        {}, "FAIL dynamics  create privilege: ", ["prvCreateLead", "0x80040220", "Create and Read on Lead"],
    ),
    "tenant not found": (
        lambda w: w.aad.unknown_tenant(OTHER_TENANT, azure_ad.tenant_not_found(OTHER_TENANT)),
        {"LEADS_DYNAMICS_TENANT_ID": OTHER_TENANT}, "FAIL dynamics  token: ",
        ["AADSTS90002", "Directory (tenant) ID", "Microsoft Entra ID > Overview"],
    ),
    "SecLib::RetrievePrivilegeForUser no roles": (
        lambda w: setattr(w.dataverse, "who_am_i_reply", azure_ad.no_roles()),
        {}, "FAIL dynamics  instance: ", ["no security role", "0x80042F09", "assign it a security role"],
    ),
    "application not found in the directory": (
        lambda w: None,
        {"LEADS_DYNAMICS_CLIENT_ID": "99999999-8888-7777-6666-555555555555"}, "FAIL dynamics  token: ",
        ["AADSTS700016", "Application (client) ID", "App registrations"],
    ),
    "tenant identifier not valid": (
        lambda w: w.aad.unknown_tenant("contoso", azure_ad.tenant_malformed("contoso")),
        {"LEADS_DYNAMICS_TENANT_ID": "contoso"}, "FAIL dynamics  token: ",
        ["AADSTS900023", "must be a GUID"],
    ),
    "invalid client secret": (
        lambda w: setattr(w.aad.app, "client_secret", "the-secret-azure-ad-holds"),
        {"LEADS_DYNAMICS_CLIENT_SECRET": CLIENT_SECRET}, "FAIL dynamics  token: ",
        ["AADSTS7000215", "client secret", "Create a new client secret"],
    ),
    "request timed out after 00:02:00": (
        lambda w: setattr(w.dataverse, "who_am_i_reply", Reply(200, {}, delay=2.5)),
        {"LEADS_HTTP_TIMEOUT": "1"}, "FAIL dynamics  instance: ", ["did not answer", "00:02:00", "Environment URL"],
    ),
}


@pytest.mark.parametrize("case", list(FAQ_ERRORS))
def test_each_faq_dynamics_error_prints_its_cause_and_fix(world: AzureWorld, case: str) -> None:
    arrange, env, prefix, words = FAQ_ERRORS[case]
    arrange(world)

    status, output = run_doctor(world.env(**env))

    failing = [line for line in output.splitlines() if line.startswith(prefix)]
    assert status == 1
    assert len(failing) == 1, output
    for word in words:
        assert word in failing[0]
    assert CLIENT_SECRET not in output


@pytest.mark.parametrize(("arrange", "env", "words"), [
    (lambda w: setattr(w.dataverse, "who_am_i_reply", azure_ad.not_application_user()), {},
     ["not an enabled application user", "Application users"]),
    (lambda w: setattr(w.dataverse, "who_am_i_reply", azure_ad.html_page(404)), {},
     ["does not point to a Dynamics 365 instance", "Environment URL"]),
    (lambda w: setattr(w.aad, "resource", "https://contoso.invalid"), {"LEADS_DYNAMICS_URL": "https://contoso.invalid"},
     ["contoso.invalid", "does not exist"]),
    (lambda w: setattr(w.aad, "resource", "https://contoso.crm4.dynamics.com"), {}, ["AADSTS500011", "instance URL"]),
])
def test_other_instance_url_and_application_user_mistakes(world: AzureWorld, arrange: Arrange,
                                                          env: dict[str, str], words: list[str]) -> None:
    arrange(world)

    status, output = run_doctor(world.env(**env))

    assert status == 1
    (failing,) = [line for line in output.splitlines() if line.startswith("FAIL dynamics  ")]
    for word in words:
        assert word in failing


def test_a_certificate_is_named_by_its_thumbprint_never_printed(world: AzureWorld) -> None:
    certificate = make_client_certificate()
    world.aad.app.certificate = certificate

    status, output = run_doctor(world.env(LEADS_DYNAMICS_CLIENT_SECRET="",
                                          LEADS_DYNAMICS_CLIENT_CERTIFICATE=certificate.pem))

    assert status == 0, output
    assert certificate.thumbprint in output.splitlines()[0]
    assert "PRIVATE KEY" not in output
    body_lines = [line for line in certificate.pem.splitlines() if not line.startswith("-----")]
    assert not any(line in output for line in body_lines)


def test_secret_values_are_scrubbed_from_any_line() -> None:
    # Defence in depth: even a message that quoted a secret is printed without it.
    env = {"LEADS_DYNAMICS_CLIENT_SECRET": CLIENT_SECRET, "LEADS_HUBSPOT_TOKEN": "pat-eu1-0123456789"}
    line = doctor.format_check(Check("dynamics", "token", False, f"bad {CLIENT_SECRET} and pat-eu1-0123456789"), 9)

    scrubbed = doctor.scrub(line, doctor.secret_values(env))

    assert scrubbed == "FAIL dynamics  token: bad [redacted] and [redacted]"


def test_each_of_several_webhook_secrets_is_scrubbed() -> None:
    old, new = "whsec_b2xkLXNlY3JldC1vZi0yNC1ieXRlcy1tbg==", "whsec_bmV3LXNlY3JldC1vZi0yNC1ieXRlcy1tbg=="
    line = doctor.scrub(f"quoted {old} alone", doctor.secret_values({"LEADS_WEBHOOK_SECRET": f"{new} {old}"}))
    assert line == "quoted [redacted] alone"


def test_a_destination_setting_error_is_that_destination_s_one_line(world: AzureWorld) -> None:
    status, output = run_doctor(world.env(LEADS_DYNAMICS_URL="http://contoso.crm.dynamics.com"))

    assert status == 1
    assert output.splitlines() == ["FAIL dynamics  settings: LEADS_DYNAMICS_URL must start with https:// (plain http "
                                   "is only allowed to localhost)."]


def test_a_malformed_global_setting_is_named_and_the_destinations_still_checked(world: AzureWorld) -> None:
    status, output = run_doctor(world.env(LEADS_DEDUPE_HOURS="one day"))

    assert status == 1
    lines = output.splitlines()
    assert lines[0] == ("FAIL settings  LEADS_DEDUPE_HOURS: LEADS_DEDUPE_HOURS must be a whole number, not 'one day'. "
                        "Its default (24) is used until it is fixed.")
    assert [line[:13] for line in lines[1:]] == ["OK   dynamics"] * 3


def test_missing_storage_is_one_line_and_exit_2(world: AzureWorld) -> None:
    status, output = run_doctor({**world.env(), "AzureWebJobsStorage": ""})

    assert status == 2
    assert output.splitlines()[0].startswith("FAIL settings: Storage is not configured: set AzureWebJobsStorage")


def test_a_destination_missing_from_this_build_is_a_failed_line(world: AzureWorld,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(destinations._MODULES, "hubspot", "leads.destinations.not_in_this_build")

    status, output = run_doctor(world.env(LEADS_DESTINATIONS="dynamics,hubspot", LEADS_HUBSPOT_TOKEN="pat-x-123"))

    assert status == 1
    assert ("FAIL hubspot   settings: hubspot is not available in this build (its module is missing)."
            in output.splitlines())
    assert sum(line.startswith("OK   dynamics") for line in output.splitlines()) == 3


def test_extra_checks_run_after_the_destinations(world: AzureWorld) -> None:
    def storage(settings: object) -> list[Check]:
        return [Check("storage", "table", False, "Azurite is not running.")]

    status, output = run_doctor(world.env(), extra=[storage])

    assert status == 1
    assert output.splitlines()[-1] == "FAIL storage   table: Azurite is not running."


def test_destination_option_limits_the_checks(world: AzureWorld) -> None:
    status, output = run_doctor(world.env(LEADS_DESTINATIONS="dynamics,email"), "--destination", "dynamics")

    assert status == 0
    assert all(line.startswith("OK   dynamics") for line in output.splitlines())


def test_python_m_leads_doctor(world: AzureWorld, tls: TlsFiles, tmp_path: Path) -> None:
    """The real command, in a process of its own, reading the environment like the app."""
    world.aad.app.client_secret = "the-secret-azure-ad-holds"  # so the configured one is wrong
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LEADS_", "AzureWebJobs"))}
    env.update(world.env(LEADS_DYNAMICS_CLIENT_SECRET=CLIENT_SECRET), REQUESTS_CA_BUNDLE=str(tls.certificate),
               PYTHONPATH=str(PROJECT_ROOT))

    done = subprocess.run([sys.executable, "-m", "leads", "doctor"], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=60, check=False)

    assert done.returncode == 1, done.stderr
    assert done.stdout.startswith("FAIL dynamics  token: Azure AD rejected the client secret of application")
    assert CLIENT_SECRET not in done.stdout + done.stderr


def test_settings_are_read_like_the_app(world: AzureWorld) -> None:
    # The doctor reads what load_settings reads: same destinations, same URL.
    settings = load_settings(world.env())
    assert settings.destinations == ("dynamics",)
    assert settings.dynamics.url == world.dataverse.url
