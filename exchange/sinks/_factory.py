"""``open_sink(url)``: one place that turns a sink URL into a backend.

Unstable module; import :func:`open_sink` from :mod:`exchange.sinks`.
"""

from __future__ import annotations

from exchange.errors import ConfigurationError
from exchange.sinks._dsn import redact_dsn
from exchange.sinks._model import Sink

__all__ = ["DEFAULT_SINK_URL", "open_sink"]

#: The embedded default, relative to the working directory.
DEFAULT_SINK_URL = "sqlite:sink.db"


def open_sink(url: str) -> Sink:
    """Open the sink that ``url`` names, creating its store when missing.

    Args:
        url: ``sqlite:PATH`` (the embedded default), ``postgresql://...`` (``postgres://``
            also works; any libpq URL) or ``jsonl:DIR``.

    Returns:
        An open sink; close it (or use it as a context manager) when done.

    Raises:
        ConfigurationError: the URL names no known sink or no path; or the store holds a
            newer schema version.
        SinkError: the store cannot be opened.
    """
    if not isinstance(url, str):
        raise TypeError(f"url: got {type(url).__name__}, expected str")
    scheme, sep, rest = url.partition(":")
    # Imported lazily so that a SQLite user never needs psycopg importable.
    if sep and scheme == "sqlite":
        from exchange.sinks._sqlite import SqliteSink  # noqa: PLC0415

        return SqliteSink(_path(url, rest))
    if sep and scheme == "jsonl":
        from exchange.sinks._jsonl import JsonlSink  # noqa: PLC0415

        return JsonlSink(_path(url, rest))
    if sep and scheme in {"postgresql", "postgres"} and rest.startswith("//"):
        from exchange.sinks._postgres import PostgresSink  # noqa: PLC0415

        return PostgresSink(url)
    raise ConfigurationError(
        f"unknown sink {redact_dsn(url)!r}; use sqlite:PATH, postgresql://... or jsonl:DIR"
    )


def _path(url: str, rest: str) -> str:
    if not rest.strip():
        raise ConfigurationError(
            f"sink {url!r} names no path; use sqlite:PATH, postgresql://... or jsonl:DIR"
        )
    return rest
