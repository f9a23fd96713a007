"""Errors the application layer raises when a request cannot be served."""

from domain.errors import InvsyncError


class ApplicationError(InvsyncError):
    """Base class of errors raised by use cases rather than by domain rules."""


class UnknownSku(ApplicationError):
    """Raised when a SKU has no stock record (at all, or at the time asked about)."""


class StorageNotConfigured(ApplicationError):
    """Raised when the ledger is given storage it cannot use: a recorder that keeps no
    receipts, or at start-up anything but the invsync PostgreSQL recorder."""


class LedgerBusy(ApplicationError):
    """Raised when a write kept conflicting with concurrent writers after every retry."""
