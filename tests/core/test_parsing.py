"""The lead model and parser, with every sample in samples/."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from leads.core.errors import LeadValidationError
from leads.core.parsing import MAX_BODY_BYTES, parse_lead
from tests.support.samples import SAMPLES


def sample(name: str) -> bytes:
    return (SAMPLES / name).read_bytes()


def test_documented_pascal_case_sample() -> None:
    lead = parse_lead(sample("partner-center-doc-sample.json"))
    assert lead.customer.first_name == "Some"
    assert lead.customer.email == "someone@contoso.com"
    assert lead.customer.company == "Contoso"
    assert lead.action == "INS"
    assert lead.action_meaning.startswith("Install")
    assert lead.offer_title == "Test Microsoft"
    assert lead.lead_source.source == "AzureMarketplace"
    assert not lead.is_test
    assert not lead.is_edu


def test_camel_case_as_sent_in_practice() -> None:
    lead = parse_lead(sample("camelcase-wire.json"))
    assert (lead.customer.first_name, lead.customer.last_name) == ("Ana", "Lopez")
    assert lead.customer.phone == "+34 600 000 000"
    assert lead.lead_source.source == "AppSource (SPZA)"
    assert lead.lead_source.action == "PLT"
    assert lead.lead_source.offer == "fabrikamsoft.lead-router"
    assert lead.lead_source.publisher_id == "fabrikamsoft"
    assert lead.lead_source.offer_id == "lead-router"
    assert lead.lead_source.raw == "AppSource (SPZA)-PLT|fabrikamsoft.lead-router"
    assert "Contact me" in lead.action_meaning


def test_faq_test_lead_is_flagged_as_test() -> None:
    lead = parse_lead(sample("faq-test-lead.json"))
    assert lead.is_test
    assert lead.customer.email == "msft_test_636573304831318844@test.com"  # lower-cased
    assert lead.offer_title == "Contoso Test"


def test_faq_sample_as_printed_is_rejected_with_line_and_column() -> None:
    with pytest.raises(LeadValidationError) as caught:
        parse_lead(sample("faq-test-lead-as-printed.txt"))
    assert caught.value.status == 400
    assert caught.value.where == "line 14, column 5"
    assert "line 14, column 5" in caught.value.explanation
    assert "comma" in caught.value.explanation


def test_azure_table_destination_row_with_customer_info_as_json_text() -> None:
    lead = parse_lead(sample("azure-table-destination-row.json"))
    assert lead.customer.first_name == "Jo"
    assert lead.customer.title == "IT Manager"
    assert lead.offer_title == "Widget SaaS"  # from OfferDisplayName
    assert lead.lead_source.offer == "contoso.widget-saas"
    assert lead.extra["PublisherDisplayName"] == "Contoso"  # unknown fields are kept


def test_same_lead_in_both_casings_has_the_same_fingerprint() -> None:
    pascal = {"UserDetails": {"FirstName": " Ana ", "Email": "ANA@x.example"}, "LeadSource": "AzureMarketplace",
              "ActionCode": "INS"}
    camel = {"userDetails": {"firstName": "Ana", "email": "ana@x.example"}, "leadSource": "AzureMarketplace",
             "actionCode": "INS"}
    assert parse_lead(json.dumps(pascal).encode()).fingerprint() == parse_lead(json.dumps(camel).encode()).fingerprint()
    other = dict(camel, actionCode="PLT")
    assert parse_lead(json.dumps(other).encode()).fingerprint() != parse_lead(json.dumps(camel).encode()).fingerprint()


def test_unknown_fields_keys_are_compared_case_insensitively_in_the_fingerprint() -> None:
    pascal = {"UserDetails": {"Email": "ana@x.example", "Department": "IT"}, "CustomField": {"Inner": [1, {"A": 2}]}}
    camel = {"userDetails": {"email": "ana@x.example", "department": "IT"}, "customField": {"inner": [1, {"a": 2}]}}
    assert parse_lead(json.dumps(pascal).encode()).fingerprint() == parse_lead(json.dumps(camel).encode()).fingerprint()
    changed = {**camel, "customField": {"inner": [1, {"a": 3}]}}
    assert parse_lead(json.dumps(changed).encode()).fingerprint() != parse_lead(
        json.dumps(camel).encode()).fingerprint()
    both = {**camel, "CUSTOMFIELD": 1}  # two keys that differ only in casing still give one stable fingerprint
    assert parse_lead(json.dumps(both).encode()).fingerprint() == parse_lead(
        json.dumps(dict(reversed(list(both.items())))).encode()).fingerprint()


@pytest.mark.parametrize("details", [{}, {"Country": "US", "Phone": "", "Title": "Teacher"}, None])
def test_a_lead_that_identifies_no_customer_has_no_fingerprint(details: object) -> None:
    """The `.edu` shape: Microsoft withholds the personal data, so two such leads look alike but are not one."""
    lead = parse_lead(json.dumps({"UserDetails": details, "OfferTitle": "Lead Router", "ActionCode": "INS"}).encode())
    assert not lead.identifies_customer and lead.fingerprint() is None
    for named in ({"Email": "a@b.example"}, {"FirstName": "Ana"}, {"LastName": "Lopez"}, {"Company": "Contoso"}):
        assert parse_lead(json.dumps({"UserDetails": named}).encode()).fingerprint() is not None


def test_lone_surrogates_become_replacement_characters_in_keys_and_values() -> None:
    lead = parse_lead(b'{"UserDetails": {"FirstName": "Jo\\ud800e"}, "Note\\udc00": ["\\udfff", {"k\\ud83d": 1}],'
                      b' "Description": "\\ud83d\\ude00"}')
    assert lead.customer.first_name == "Jo\ufffde"
    assert lead.extra == {"Note\ufffd": ["\ufffd", {"k\ufffd": 1}]}
    assert lead.description == "\U0001F600"  # a valid pair is one character, kept
    json.dumps(lead.to_dict(), ensure_ascii=False).encode("utf-8")  # encodable everywhere now


def test_unknown_action_code_is_kept_not_rejected() -> None:
    lead = parse_lead(b'{"ActionCode": "XYZ"}')
    assert lead.action == "XYZ"
    assert "Unknown action code" in lead.action_meaning


def test_unknown_fields_are_kept() -> None:
    lead = parse_lead(b'{"OfferTitle": "A", "Region": "EU", "UserDetails": {"Email": "a@b.c", "Department": "IT"}}')
    assert lead.extra == {"Region": "EU", "UserDetails.Department": "IT"}


@pytest.mark.parametrize(("description", "campaign"), [
    ('{"mktcmpid": "spring-24", "partnerid": "123"}', {"mktcmpid": "spring-24", "partnerid": "123"}),
    ("Campaigns: mktcmpid=abc&src=mail", {"mktcmpid": "abc", "src": "mail"}),
    ("Campaigns: ", {}),
    ("Please call me tomorrow", {}),
])
def test_campaign_parameters_are_read_from_description(description: str, campaign: dict[str, str]) -> None:
    lead = parse_lead(json.dumps({"Description": description}).encode())
    assert lead.campaign == campaign
    assert lead.description == description.strip()


def test_edu_leads_are_flagged() -> None:
    assert parse_lead(b'{"UserDetails": {"Email": "prof@uni.edu"}}').is_edu
    assert parse_lead(b'{"UserDetails": {"Email": "prof@uni.edu.au"}}').is_edu
    assert not parse_lead(b'{"UserDetails": {"Email": "prof@education.com"}}').is_edu


def test_edu_lead_without_personal_data_is_accepted() -> None:
    lead = parse_lead(b'{"UserDetails": {}, "LeadSource": "AzureMarketplace", "ActionCode": "INS"}')
    assert not lead.customer.has_personal_data
    assert parse_lead(b'{"UserDetails": null}').customer == lead.customer


def test_test_marker_anywhere_flags_a_test_lead() -> None:
    assert parse_lead(b'{"Description": "xx msft_test_1 yy"}').is_test
    assert parse_lead(b'{"Other": {"deep": ["MSFT_TEST_9"]}}').is_test


@pytest.mark.parametrize(("body", "field"), [
    (b'{"UserDetails": "Ana"}', "UserDetails"),
    (b'{"UserDetails": {"Email": ["a@b.c"]}}', "UserDetails.Email"),
    (b'{"OfferTitle": 5}', "OfferTitle"),
    (b'{"leadSource": {"a": 1}}', "leadSource"),
    (b'{"UserDetails": {"FirstName": true}}', "UserDetails.FirstName"),
    (b'{"CustomerInfo": "{not json"}', "CustomerInfo"),
])
def test_wrong_field_type_names_the_field(body: bytes, field: str) -> None:
    with pytest.raises(LeadValidationError) as caught:
        parse_lead(body)
    assert caught.value.status == 400
    assert caught.value.where == field
    assert repr(field) in caught.value.explanation


def test_phone_sent_as_a_number_is_kept() -> None:
    assert parse_lead(b'{"UserDetails": {"Phone": 16175555555}}').customer.phone == "16175555555"


@pytest.mark.parametrize(("body", "words"), [
    (b"[1, 2]", "not an array"),
    (b'"lead"', "not a string"),
    (b"", "empty"),
    (b"\xff\xfe{}", "not UTF-8"),
    (b'{"a": NaN}', "not valid JSON"),
    (b"[" * 50 + b"]" * 50, "not an array"),
])
def test_bodies_that_are_not_leads_get_a_clear_error(body: bytes, words: str) -> None:
    with pytest.raises(LeadValidationError) as caught:
        parse_lead(body)
    assert caught.value.status == 400
    assert words in caught.value.explanation


def test_too_deep_object_is_rejected() -> None:
    body = b'{"a":' * 40 + b"1" + b"}" * 40
    with pytest.raises(LeadValidationError, match="nested"):
        parse_lead(body)


def test_body_over_64_kib_is_413() -> None:
    body = json.dumps({"Description": "x" * MAX_BODY_BYTES}).encode()
    with pytest.raises(LeadValidationError) as caught:
        parse_lead(body)
    assert caught.value.status == 413


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=20,
)
lead_keys = st.sampled_from(["UserDetails", "userDetails", "LeadSource", "ActionCode", "OfferTitle", "Description",
                             "CustomerInfo", "OfferDisplayName", "Email", "x"])


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_any_bytes_parse_or_raise_only_the_validation_error(body: bytes) -> None:
    try:
        parse_lead(body)
    except LeadValidationError as error:
        assert error.status in (400, 413)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(lead_keys, json_values | st.dictionaries(lead_keys, json_values, max_size=5), max_size=8))
def test_any_json_object_parses_or_raises_only_the_validation_error(document: dict[str, object]) -> None:
    try:
        lead = parse_lead(json.dumps(document).encode())
    except LeadValidationError as error:
        assert error.status == 400
    else:
        fingerprint = lead.fingerprint()
        assert fingerprint is None if not lead.identifies_customer else len(fingerprint or "") == 64


@pytest.mark.parametrize("path", sorted(SAMPLES.iterdir()), ids=lambda p: p.name)
def test_every_sample_parses_or_is_the_known_invalid_one(path: Path) -> None:
    if path.name == "faq-test-lead-as-printed.txt":
        with pytest.raises(LeadValidationError):
            parse_lead(path.read_bytes())
    else:
        assert parse_lead(path.read_bytes()).lead_source.source
