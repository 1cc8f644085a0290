"""Known-answer vectors (tests/vectors/envelope_v1.json): valid ones open to the published
plaintext and header with keys loaded from the file alone; invalid ones fail with the
published reason; and the file is exactly what tests/vectors/generate.py produces."""

from __future__ import annotations

import importlib.util
import json
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from exchange.crypto import Opener, SuiteId
from exchange.crypto.testing import InMemoryAgency, InMemoryTrust
from exchange.errors import IntegrityError

VECTORS = Path(__file__).resolve().parents[2] / "vectors"


@cache
def _file() -> dict[str, Any]:
    data: dict[str, Any] = json.loads((VECTORS / "envelope_v1.json").read_text())
    return data


@cache
def _world() -> tuple[dict[str, InMemoryAgency], InMemoryTrust]:
    agencies: dict[str, InMemoryAgency] = {}
    for k in _file()["keys"]:
        agency = agencies.setdefault(k["agencyId"], InMemoryAgency(k["agencyId"]))
        agency.add_generation(
            SuiteId(k["suite"]), key_id=k["keyId"], material=k["private"],
            not_before=datetime.fromisoformat(k["notBefore"]),
            not_after=datetime.fromisoformat(k["notAfter"]),
            may_publish=frozenset(k["mayPublish"]),
        )  # fmt: skip
    return agencies, InMemoryTrust.of(*agencies.values())


def vectors(kind: str) -> pytest.MarkDecorator:
    """Parametrize over the ``valid`` or ``invalid`` vectors, one test id per vector name."""
    cases = _file()[kind]
    return pytest.mark.parametrize("vector", cases, ids=[c["name"] for c in cases])


@vectors("valid")
def test_valid_vector(vector: dict[str, Any]) -> None:
    agencies, trust = _world()
    now = datetime.fromisoformat(vector["now"])
    blob = bytes.fromhex(vector["envelope"])
    for agency in vector["openAs"]:
        opened = Opener(trust, recipient=agencies[agency], clock=lambda: now).open(blob)
        assert opened.plaintext.hex() == vector["plaintext"]
        assert opened.salt.hex() == vector["salt"]
        assert opened.verified.to_dict() == vector["header"]
    assert Opener(trust, clock=lambda: now).verify(blob).header.suite.value == vector["suite"]


@vectors("invalid")
def test_invalid_vector(vector: dict[str, Any]) -> None:
    agencies, trust = _world()
    now = datetime.fromisoformat(vector["now"])
    recipient = agencies[vector["openAs"]] if vector["openAs"] else None
    opener = Opener(trust, recipient=recipient, clock=lambda: now)
    with pytest.raises(IntegrityError) as info:
        opener.open(bytes.fromhex(vector["envelope"])) if recipient else opener.verify(
            bytes.fromhex(vector["envelope"])
        )
    assert info.value.reason.value == vector["reason"]


def test_every_suite_and_mode_has_a_vector() -> None:
    names = {v["name"] for v in _file()["valid"]}
    assert names == {f"{s.value}-{m}" for s in SuiteId for m in ("single", "batch", "epoch")}


def test_vectors_are_current() -> None:
    spec = importlib.util.spec_from_file_location("generate_vectors", VECTORS / "generate.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    regenerated = module.render(module.generate(_file()))
    assert regenerated == (VECTORS / "envelope_v1.json").read_text(), (
        "tests/vectors/envelope_v1.json is stale: run python tests/vectors/generate.py"
    )
