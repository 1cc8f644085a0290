"""Resolving the runtime jars: Maven runs once per POM content, and fails clearly."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from exchange.broker.jars import MANIFEST_NAME, find_pom, resolve_runtime, runtime_key
from exchange.errors import BrokerError, ToolMissingError
from tests.unit.broker.broker_fakes import install_script

# Copies two "jars" into -DoutputDirectory and counts its runs, like copy-dependencies.
_FAKE_MVN = """
for arg in "$@"; do
  case "$arg" in -DoutputDirectory=*) out="${arg#-DoutputDirectory=}";; esac
done
echo run >> "${0%/mvn}/mvn.runs"
echo "[INFO] Copying kafka_2.13-4.4.0.jar"
printf 'kafka' > "$out/kafka_2.13-4.4.0.jar"
printf 'log4j' > "$out/log4j-slf4j-impl-2.25.5.jar"
"""

_FAILING_MVN = """
echo "[INFO] Scanning for projects..."
echo "[ERROR] Failed to execute goal on project x: Could not resolve dependencies"
echo "[ERROR] -> [Help 1]" >&2
exit 1
"""


@pytest.fixture
def fake_bin(tmp_path: Path) -> Path:
    """An empty directory to use as the whole PATH."""
    path = tmp_path / "bin"
    path.mkdir()
    return path


@pytest.fixture
def pom(tmp_path: Path) -> Path:
    path = tmp_path / "pom.xml"
    path.write_text("<project><version>4.4.0</version></project>\n", encoding="utf-8")
    return path


def _runs(bin_dir: Path) -> int:
    runs = bin_dir / "mvn.runs"
    return len(runs.read_text().splitlines()) if runs.exists() else 0


def test_the_source_checkout_pom_is_found() -> None:
    pom = find_pom()

    assert pom.name == "pom.xml"
    assert "<artifactId>kafka_2.13</artifactId>" in pom.read_text(encoding="utf-8")
    assert "log4j-slf4j-impl" in pom.read_text(encoding="utf-8")


def test_maven_runs_once_then_the_manifest_is_trusted(
    tmp_path: Path, pom: Path, fake_bin: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    install_script(fake_bin, "mvn", _FAKE_MVN)
    monkeypatch.setenv("PATH", str(fake_bin))
    cache = tmp_path / "cache"

    first = resolve_runtime(cache, pom=pom)
    (fake_bin / "mvn").unlink()  # a second resolution must not even need mvn
    second = resolve_runtime(cache, pom=pom)

    assert first == second == cache / runtime_key(pom)
    assert sorted(p.name for p in first.glob("*.jar")) == [
        "kafka_2.13-4.4.0.jar",
        "log4j-slf4j-impl-2.25.5.jar",
    ]
    manifest = json.loads((first / MANIFEST_NAME).read_text(encoding="utf-8"))
    assert {j["name"] for j in manifest["jars"]} == {p.name for p in first.glob("*.jar")}
    assert _runs(fake_bin) == 1


def test_a_changed_pom_or_damaged_jar_resolves_again(
    tmp_path: Path, pom: Path, fake_bin: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    install_script(fake_bin, "mvn", _FAKE_MVN)
    monkeypatch.setenv("PATH", str(fake_bin))
    cache = tmp_path / "cache"
    old = resolve_runtime(cache, pom=pom)

    (old / "kafka_2.13-4.4.0.jar").write_bytes(b"truncated")
    repaired = resolve_runtime(cache, pom=pom)
    pom.write_text("<project><version>4.5.0</version></project>\n", encoding="utf-8")
    newer = resolve_runtime(cache, pom=pom)

    assert repaired == old
    assert (repaired / "kafka_2.13-4.4.0.jar").read_bytes() == b"kafka"
    assert newer != old
    assert _runs(fake_bin) == 3


def test_missing_mvn_is_a_tool_error(
    tmp_path: Path, pom: Path, fake_bin: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(fake_bin))

    with pytest.raises(ToolMissingError, match="mvn not found on PATH"):
        resolve_runtime(tmp_path / "cache", pom=pom)


def test_maven_failure_carries_its_last_lines(
    tmp_path: Path, pom: Path, fake_bin: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    install_script(fake_bin, "mvn", _FAILING_MVN)
    monkeypatch.setenv("PATH", str(fake_bin))
    cache = tmp_path / "cache"

    with pytest.raises(BrokerError) as caught:
        resolve_runtime(cache, pom=pom)

    message = caught.value.diagnostics()
    assert message.startswith("mvn failed (exit 1)")
    assert "Could not resolve dependencies" in message
    assert "[Help 1]" in message
    assert not (cache / runtime_key(pom)).exists()
