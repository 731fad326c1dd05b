"""contactcard: expiring, QR-coded business contact links that keep customers on company channels."""

__version__ = "0.1.0"
