"""Lead ids and table keys. One partition per table, so that a lead, its de-duplication marker and its
outbox row can be written in one atomic transaction (Azure Tables transactions are per partition).

Row keys sort the way they are read: leads newest first (inverted milliseconds), then markers by hash,
then outbox rows. Listing leads is a range query on the `lead:` prefix; finding a duplicate is a point
read; finding undelivered work is a range query on the small `outbox:` prefix. No scan."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import UTC, datetime

LEADS_PARTITION = "leads"
QUARANTINE_PARTITION = "rejected"
BREAKER_PARTITION = "breakers"
IMPORT_PARTITION = "importer"  # the importer's watermark, one row per source table
AUDIT_PARTITION = "audit"  # the operators' actions (leads/storage/audit_table.py), newest first
_INVERT_FROM = 9_999_999_999_999  # 13 digits of milliseconds: good until the year 2286


def new_lead_id(received_at: datetime) -> str:
    """Readable and unique: `20261121T044355123Z-9f3a1c2e` (UTC time of arrival, 32 random bits)."""
    moment = received_at.astimezone(UTC)
    return f"{moment:%Y%m%dT%H%M%S}{moment.microsecond // 1000:03d}Z-{secrets.token_hex(4)}"


def _inverted_millis(moment: datetime) -> str:
    return f"{_INVERT_FROM - int(moment.timestamp() * 1000):013d}"


def received_at_of(lead_id: str) -> datetime:
    """The arrival time encoded in a lead id. Raises ValueError if it is not one of ours."""
    stamp = lead_id.split("-", 1)[0]
    return datetime.strptime(stamp[:15], "%Y%m%dT%H%M%S").replace(
        microsecond=int(stamp[15:18]) * 1000, tzinfo=UTC
    )


def lead_row_key(lead_id: str) -> str:
    return f"lead:{_inverted_millis(received_at_of(lead_id))}:{lead_id}"


def dedupe_row_key(fingerprint: str) -> str:
    """The bare-hash marker key of versions before keyed markers (anyone who knows the lead could confirm it):
    still deleted with its lead and re-keyed by the retention run (leads/storage/erasure.py)."""
    return f"marker:{fingerprint}"


KEYED_MARKER_PREFIX = "marker:k1:"
LEGACY_MARKER_RANGE = ("marker:0", "marker:g")  # bare SHA-256 hex keys sort here, keyed ones after ("k" > "f")


def keyed_fingerprint(secret: bytes, fingerprint: str) -> str:
    """HMAC-SHA256 of the lead's content digest with the deployment's secret: without the secret, knowing a
    lead (or an address) does not confirm that a key belongs to it. Over the digest, so that a bare-hash
    marker can be re-keyed without the lead it came from."""
    return hmac.new(secret, fingerprint.encode("ascii"), hashlib.sha256).hexdigest()


def marker_row_key(secret: bytes, fingerprint: str) -> str:
    return f"{KEYED_MARKER_PREFIX}{keyed_fingerprint(secret, fingerprint)}"


def outbox_row_key(lead_id: str) -> str:
    return f"outbox:{lead_id}"


def import_row_key(source_key: str) -> str:
    """The marker of a row imported from Partner Center's Azure Table destination (leads/services/importer.py)."""
    return f"source:{source_key}"


def id_stamp(moment: datetime) -> str:
    """The start of the lead ids received at `moment`: ids (and `outbox:<id>` keys) sort by arrival."""
    moment = moment.astimezone(UTC)
    return f"{moment:%Y%m%dT%H%M%S}{moment.microsecond // 1000:03d}Z"


def rejected_older_than(moment: datetime) -> str:
    """The lowest quarantine RowKey of a request received before `moment` (newest first, like leads)."""
    return _inverted_millis(moment)


def rejected_row_key(received_at: datetime) -> str:
    return f"{_inverted_millis(received_at)}:{secrets.token_hex(4)}"


def audit_row_key(at: datetime) -> str:
    """Newest first, like rejected requests: `rejected_older_than(cutoff)` also bounds the audit rows."""
    return rejected_row_key(at)


PREFIX_END = chr(ord(":") + 1)  # "lead:" <= key < "lead;" selects one prefix


def lead_key_range(since: datetime | None = None, until: datetime | None = None) -> tuple[str, str]:
    """[low, high) of the `lead:` row keys received between `since` and `until` (inclusive, to the
    millisecond): newest first, so `until` gives the low bound and `since` the high one."""
    low = "lead:" if until is None else f"lead:{_inverted_millis(until)}"
    high = "lead" + PREFIX_END if since is None else f"lead:{_inverted_millis(since)}{PREFIX_END}"
    return low, high


# --- the person index and the tombstone (leads/storage/subject_index.py) -------------------------------------
# Rows of the leads partition, not a partition of their own: Azure Tables transactions hold one partition
# (https://learn.microsoft.com/rest/api/storageservices/performing-entity-group-transactions), and an index row
# must be written in the lead's own transaction. A RowKey prefix keyed by the hashed address is read as a range.
SUBJECT_PREFIX = "subject:"
TEST_LEAD_PREFIX = "testlead:"
TOMBSTONE_PREFIX = "forgotten:"
INDEX_PARTITION = "index"  # the one-time backfill's progress (one row)


def subject_hash(secret: bytes, email: str) -> str:
    """HMAC-SHA256 of the address (case and surrounding spaces ignored) with the deployment's marker secret: the
    index and the tombstone do not confirm an address to anyone without the secret."""
    text = "email\n" + email.strip().casefold()
    return hmac.new(secret, text.encode("utf-8", "surrogatepass"), hashlib.sha256).hexdigest()


def subject_row_key(hashed: str, lead_id: str) -> str:
    return f"{SUBJECT_PREFIX}{hashed}:{lead_id}"


def subject_range(hashed: str) -> tuple[str, str]:
    """[low, high) of a person's index rows."""
    return f"{SUBJECT_PREFIX}{hashed}:", f"{SUBJECT_PREFIX}{hashed}{PREFIX_END}"


def testlead_row_key(lead_id: str) -> str:
    """Test leads newest first, like the leads: the first row of the range is the last test lead."""
    return f"{TEST_LEAD_PREFIX}{_inverted_millis(received_at_of(lead_id))}:{lead_id}"


def tombstone_row_key(hashed: str) -> str:
    return f"{TOMBSTONE_PREFIX}{hashed}"
