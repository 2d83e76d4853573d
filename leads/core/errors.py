"""Typed errors. Each carries the sentence a person needs: what is wrong and what to change."""

from __future__ import annotations


class LeadsError(Exception):
    """Base of every error this package raises on purpose."""

    def __init__(self, explanation: str) -> None:
        super().__init__(explanation)
        self.explanation = explanation


class SettingsError(LeadsError):
    """An app setting is missing or malformed."""


class LeadValidationError(LeadsError):
    """The request body is not a lead. `status` is the HTTP status to answer; `where` locates it."""

    def __init__(self, explanation: str, *, status: int = 400, reason: str = "invalid", where: str = "") -> None:
        super().__init__(explanation)
        self.status = status
        self.reason = reason
        self.where = where


class StorageUnavailableError(LeadsError):
    """Table or queue storage did not answer (or answered with a server error)."""


class StorageRefusedError(StorageUnavailableError):
    """Storage answered and refused this row for good (too large, a value it cannot take): trying it again
    fails the same way. A kind of StorageUnavailableError, so that a caller that only knows "not stored" (an
    HTTP request: 503, kept on disk) behaves as before; a recovery sets the lead aside instead of retrying."""


class DestinationError(LeadsError):
    """A destination refused or failed. Subclasses say whether to retry."""

    retryable = False


class TransientDestinationError(DestinationError):
    """Worth retrying later: a timeout, a connection error, 429 or 5xx."""

    retryable = True

    def __init__(self, explanation: str, *, retry_after: float | None = None) -> None:
        super().__init__(explanation)
        self.retry_after = retry_after


class ConfigurationError(DestinationError):
    """The destination's settings or permissions are wrong: every lead would fail the same way until a
    person changes something. Opens the destination's circuit breaker."""


class LeadRejectedError(DestinationError):
    """The destination refused this lead for a reason of its own (a validation rule, a missing field)."""


class ConcurrentUpdateError(LeadsError):
    """Someone else changed the lead since it was read (ETag mismatch): read it again and redo."""


class BadRequestError(LeadsError):
    """A management request names something malformed (a query parameter, a body field): answer 400."""

    def __init__(self, explanation: str, *, parameter: str = "") -> None:
        super().__init__(explanation)
        self.parameter = parameter


class NotFoundError(LeadsError):
    """No lead (or rejected request) with that id: answer 404."""
