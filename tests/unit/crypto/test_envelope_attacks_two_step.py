"""The whole envelope attack suite again, through the consumer's two-step path.

The secure consumer verifies an envelope (``Opener.verify_for_opening``), checks the topic
binding and its own addressing, then opens the same verified bytes
(``Opener.open_verified``) instead of decoding and verifying them a second time. Every attack
in ``test_envelope_attacks`` runs here with ``Opener.open`` routed through those two steps,
so the faster path is held to exactly the same rejections and reason codes.
"""

from __future__ import annotations

from datetime import datetime

import pytest

from exchange.crypto import OpenedEnvelope, Opener, SuiteId
from exchange.crypto.open import VerifiedForOpening
from tests.unit.crypto.envelope_world import NOW, PLAINTEXT, Mode, World
from tests.unit.crypto.test_envelope_attacks import *  # noqa: F403  # re-run every attack here

_direct_open = Opener.open
_two_step_calls: list[int] = []


def _open_in_two_steps(
    self: Opener, envelope: bytes, *, now: datetime | None = None
) -> OpenedEnvelope:
    _two_step_calls.append(1)
    return self.open_verified(self.verify_for_opening(envelope, now=now))


@pytest.fixture(autouse=True)
def _two_step_open(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Opener, "open", _open_in_two_steps)


def test_attacks_here_really_take_the_two_step_path(world: World) -> None:
    envelope = world.make(SuiteId.CLASSIC, Mode.BATCH)
    before = len(_two_step_calls)
    opener = Opener(world.trust, recipient=world.usa, clock=lambda: NOW)
    assert opener.open(envelope).plaintext == PLAINTEXT
    assert len(_two_step_calls) == before + 1


def test_two_step_gives_what_open_gives(world: World, envelope: bytes) -> None:
    opener = Opener(world.trust, recipient=world.usa, clock=lambda: NOW)
    checked = opener.verify_for_opening(envelope)
    opened = opener.open_verified(checked)
    direct = _direct_open(Opener(world.trust, recipient=world.usa, clock=lambda: NOW), envelope)
    assert opened.plaintext == direct.plaintext == PLAINTEXT
    assert opened.verified == checked.verified == direct.verified


def test_a_result_of_another_opener_is_refused(world: World, envelope: bytes) -> None:
    # Another opener may trust other keys, accept other suites or keep another clock.
    checked = Opener(world.trust, recipient=world.usa, clock=lambda: NOW).verify_for_opening(
        envelope
    )
    other = Opener(world.trust, recipient=world.usa, clock=lambda: NOW)
    with pytest.raises(TypeError, match="another Opener"):
        other.open_verified(checked)
    with pytest.raises(TypeError, match="another Opener"):
        other.open_verified(checked.verified)  # type: ignore[arg-type]  # the misuse tested


def test_an_auditor_cannot_open_what_it_verified(world: World, envelope: bytes) -> None:
    auditor = Opener(world.trust, clock=lambda: NOW)
    checked = auditor.verify_for_opening(envelope)
    assert isinstance(checked, VerifiedForOpening)
    with pytest.raises(TypeError, match="recipient"):
        auditor.open_verified(checked)
