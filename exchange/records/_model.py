"""The pydantic configuration every record model shares. Unstable: not public API."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel

__all__ = ["RecordModel"]


class RecordModel(BaseModel):
    """Base of every record model and nested type.

    Python attributes are snake_case; aliases are the Avro (camelCase) field names. Models are
    frozen because a record, once validated, is what gets encoded and signed: mutating it
    afterwards would separate the object from its signature. Unknown fields are rejected
    because peers are untrusted, and every string has a default upper bound.
    """

    model_config = ConfigDict(
        alias_generator=to_camel,
        validate_by_name=True,
        validate_by_alias=True,
        serialize_by_alias=True,
        extra="forbid",
        frozen=True,
        str_max_length=4096,
    )
