"""Recording each operator action of the management API in the audit trail (leads/core/audit.py): after the
route has answered, with its outcome, or with its failure. A failure to record is logged (without personal
data) and does not change the answer: the action itself has happened."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from leads.core.audit import ACTIONS, AuditEntry
from leads.core.errors import BadRequestError, LeadsError, NotFoundError
from leads.core.model import utcnow

if TYPE_CHECKING:
    from leads.manage.auth import Caller
    from leads.manage.service import ManageService

log = logging.getLogger("leads.manage")


class Trail:
    def __init__(self) -> None:
        self.answer: dict[str, Any] | None = None
        self.built: ManageService | None = None

    def service(self, factory: Callable[[], ManageService]) -> ManageService:
        self.built = factory()
        return self.built


def _failure_status(failure: LeadsError) -> int:
    return 400 if isinstance(failure, BadRequestError) else 404 if isinstance(failure, NotFoundError) else 503


def _outcome(operation: str, answer: dict[str, Any]) -> tuple[str, tuple[str, ...], int]:
    """(sentence, lead ids, lead count) of a successful action."""
    if operation == "replayLead":
        return str(answer.get("result") or ""), (str(answer.get("id")),), 1
    if operation == "replayMany":
        results = answer.get("results") or []
        ids = tuple(str(r.get("id")) for r in results if r.get("queued"))
        return f"Queued again: {len(ids)} of {len(results)} lead(s) in those states.", ids, len(ids)
    if operation == "reingest":
        inner = answer.get("answer") or {}
        lead = (str(inner["id"]),) if isinstance(inner, dict) and inner.get("id") else ()
        return f"Ingest answered {answer.get('status')}.", lead, len(lead)
    if operation == "sendTestLead":
        return "Test lead stored.", (str(answer.get("id")),), 1
    if operation == "doctor":
        checks = answer.get("checks") or []
        failed = sum(1 for c in checks if not c.get("ok"))
        return (f"{failed} of {len(checks)} check(s) failed." if failed else f"All {len(checks)} checks passed."), (), 0
    if operation == "forgetPerson":
        counts = ", ".join(f"{k} {v}" for k, v in sorted(answer.items()) if isinstance(v, int) and v)
        return f"Erased: {counts or 'nothing was held'}.", (), int(answer.get("leads") or 0)
    if operation == "exportPerson":
        leads = answer.get("leads") or []
        ids = tuple(str(lead.get("id")) for lead in leads if isinstance(lead, dict) and lead.get("id"))
        return f"Exported {len(leads)} lead(s).", ids, len(leads)
    return "Done.", (), 0


@contextmanager
def audited(operation: str, status: int, caller: Caller, path: dict[str, str],
            email: Callable[[], str]) -> Iterator[Trail]:
    trail = Trail()
    if operation not in ACTIONS:
        yield trail
        return
    try:
        yield trail
    except LeadsError as failure:
        failed = _failure_status(failure)
        # A sentence about a person's address may quote it: forget and export keep only the status.
        said = "" if operation in ("forgetPerson", "exportPerson") else f": {failure.explanation}"
        lead = (path["id"],) if operation == "replayLead" and "id" in path else ()
        _record(trail, caller, operation, failed, f"Failed ({failed}){said}", lead, len(lead), path, email)
        raise
    sentence, lead_ids, count = _outcome(operation, trail.answer or {})
    _record(trail, caller, operation, status, sentence, lead_ids, count, path, email)


def _record(trail: Trail, caller: Caller, operation: str, status: int, outcome: str, lead_ids: tuple[str, ...],
            count: int, path: dict[str, str], email: Callable[[], str]) -> None:
    service = trail.built
    if service is None:
        return  # nothing was built, so nothing was done
    try:
        subject = path.get("id", "") if operation == "reingest" else ""
        if operation in ("forgetPerson", "exportPerson"):
            try:
                subject = service.audit_subject(email())
            except BadRequestError:
                subject = ""
        service.record_audit(AuditEntry(at=utcnow(), who=caller.who, how=caller.how, action=ACTIONS[operation],
                                        outcome=outcome, status=status, lead_ids=lead_ids, lead_count=count,
                                        subject=subject, object_id=caller.object_id))
    except LeadsError as error:
        log.error("the audit trail could not record a %s (%s)", ACTIONS[operation], type(error).__name__)
