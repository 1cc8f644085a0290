"""Keeping database passwords out of repr, logs and error messages.

Unstable module.
"""

from __future__ import annotations

import re
from urllib.parse import unquote, urlsplit

__all__ = ["redact_dsn", "scrub"]

_REDACTED = "***"
# key=value libpq conninfo: password='quoted value' or password=bare
_KV_PASSWORD = re.compile(r"(password\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)", re.IGNORECASE)
# user:password@ in any URL-shaped string
_URL_PASSWORD = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.-]*://[^:/@?#]*:)[^@/?#]*(@)")
_QUERY_PASSWORD = re.compile(r"([?&]password=)[^&#]*", re.IGNORECASE)


def redact_dsn(dsn: str) -> str:
    """``dsn`` with every password replaced by ``***`` (URL, query or key=value form).

    Args:
        dsn: a libpq URL (``postgresql://user:pw@host/db?...``) or conninfo (``password=pw``).

    Returns:
        The same string with passwords masked; safe for repr, logs and errors.
    """
    if "://" in dsn:
        redacted = _URL_PASSWORD.sub(rf"\g<1>{_REDACTED}\g<2>", dsn)
        return _QUERY_PASSWORD.sub(rf"\g<1>{_REDACTED}", redacted)
    return _KV_PASSWORD.sub(rf"\g<1>{_REDACTED}", dsn)


def scrub(text: str, dsn: str) -> str:
    """``text`` with any password that ``dsn`` carries replaced by ``***``.

    For messages from a driver, which may quote the connection string they were given.
    """
    for secret in _passwords(dsn):
        text = text.replace(secret, _REDACTED)
    return redact_dsn(text)


def _passwords(dsn: str) -> list[str]:
    found: list[str] = []
    if "://" in dsn:
        try:
            password = urlsplit(dsn).password
        except ValueError:
            password = None
        if password:
            found += [password, unquote(password)]
    for match in _KV_PASSWORD.finditer(dsn):
        value = match.group(2)
        found += [value, value.strip("'")]
    for match in _QUERY_PASSWORD.finditer(dsn):
        found.append(unquote(dsn[match.end(1) : match.end()]))
    # Longest first, so a password containing a shorter one is replaced whole.
    return sorted({secret for secret in found if secret}, key=len, reverse=True)
