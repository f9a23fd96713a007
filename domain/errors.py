"""Errors raised when a stock command breaks a rule of the domain."""


class InvsyncError(Exception):
    """Base class of every error invsync raises on purpose."""


class DomainError(InvsyncError):
    """Raised when a stock change breaks a rule of the stock domain."""


class InvalidQuantity(DomainError):
    """Raised when a quantity is negative, zero where a change is needed, or not whole."""


class InvalidChange(DomainError):
    """Raised when a stock change lacks a field its kind needs or carries one it must not."""


class UnknownLocation(DomainError):
    """Raised when a change names a location the SKU holds no stock record for."""


class SameLocationTransfer(DomainError):
    """Raised when a transfer names the same location as its source and its destination."""


class InsufficientStock(DomainError):
    """Raised when a physical move asks for more units than the location holds."""


class UnknownReservation(DomainError):
    """Raised when a release names a reservation that is not open on the SKU."""


class DuplicateReservation(DomainError):
    """Raised when a reservation id is already open on the SKU."""
