"""Domain errors: what the service layer raises. Each message says what to do about it."""

from __future__ import annotations


class DomainError(Exception):
    """Base class; `str(err)` is a sentence fit to show a user."""


class NotFound(DomainError):
    pass


class PermissionDenied(DomainError):
    pass


class ValidationError(DomainError):
    pass


class Conflict(DomainError):
    """The thing changed under you (optimistic lock) or already exists."""


class DatabaseUnavailable(DomainError):
    pass


class SchemaOutOfDate(DomainError):
    pass


class AuthenticationFailed(DomainError):
    pass
