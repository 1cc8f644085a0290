"""Secure envelope recipes and trust for the exchange (see docs/envelope.md)."""
