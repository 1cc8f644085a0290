"""``exchange audit``: verify the exchange, prove one message, export a bundle, run witnesses.

``verify`` reads the exchange, receipt and audit topics under ``EXCHANGE_TOPIC_PREFIX`` and
the logs under ``$EXCHANGE_HOME/audit`` (or a bundle with ``--export DIR``, no broker) and
checks them with the trust store alone; it exits 0 when everything holds and 1 with the
findings otherwise. ``prove`` prints a message's inclusion proof and its checkpoint;
``export`` writes a bundle; ``witness --as AGENCY`` cosigns the counterpart country's
checkpoints; ``collect --as AGENCY`` logs the receipts sent to AGENCY.
"""

from __future__ import annotations

import base64
import json
import uuid
from datetime import UTC, datetime
from pathlib import Path

import click
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from exchange.audit import (
    Finding,
    Witness,
    WitnessPolicy,
    decode_entry,
    hash_leaf,
    verify_inclusion,
)
from exchange.audit.agency import locked_log
from exchange.audit.auditor import Evidence, audit_exchange
from exchange.audit.export import read_bundle, write_bundle
from exchange.audit.note import AgencyNoteSigner
from exchange.audit.witnessing import AuditHome, load_witness_policies, witness_logs
from exchange.audit_bus import collect_receipts_from_bus, gather_evidence
from exchange.cli._agency import AGENCY_OPTION, load_agency, open_audit, resolve_bootstrap
from exchange.cli._context import CliContext, pass_cli
from exchange.crypto.pki import PkiLayout, TrustStore
from exchange.errors import ConfigurationError
from exchange.routing import parse_exchange_topic

__all__ = ["audit"]


@click.group()
def audit() -> None:
    """Audit trail: verify the exchange offline, prove inclusion, export, witness."""


def _verify_inputs(
    cli: CliContext, export: Path | None, err: Console
) -> tuple[
    dict[str, Path], Evidence, TrustStore | None, dict[str, WitnessPolicy], str, list[Finding]
]:
    if export is not None:
        bundle, findings = read_bundle(export)
        if bundle is None or findings:
            # A bundle that does not match its manifest is not audited further.
            return {}, Evidence(), None, {}, "", findings
        trust = TrustStore.from_directory(PkiLayout(export).trust_dir)
        policies = load_witness_policies(bundle.policy_path)
        return bundle.logs, bundle.evidence, trust, policies, bundle.topic_prefix, findings
    settings = cli.settings
    home = AuditHome(settings.home / "audit")
    trust = TrustStore.load(settings.home)
    policies = load_witness_policies(home.policy_path)
    bootstrap = resolve_bootstrap(settings)
    with err.status("reading the exchange, receipt and audit topics") as status:
        evidence = gather_evidence(
            bootstrap, topic_prefix=settings.topic_prefix, progress=status.update
        )
    return home.logs(), evidence, trust, policies, settings.topic_prefix, []


@audit.command()
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.option(
    "--export", type=click.Path(file_okay=False, exists=True, path_type=Path), metavar="DIR",
    help="Verify a bundle written by `exchange audit export` (no broker needed).",
)  # fmt: skip
@pass_cli
def verify(cli: CliContext, as_json: bool, export: Path | None) -> None:
    """Check every envelope, log, checkpoint, offset, handling rule and receipt.

    Exits 0 when everything holds, 1 with the list of findings otherwise.
    """
    err = Console(stderr=True)
    logs, evidence, trust, policies, prefix, findings = _verify_inputs(cli, export, err)
    if trust is not None:
        with Progress(console=err, transient=True) as bar:
            task = bar.add_task("verifying envelopes", total=len(evidence.envelopes))
            findings += audit_exchange(
                logs, evidence, trust=trust, policies=policies,
                is_exchange_topic=lambda t: parse_exchange_topic(t, prefix=prefix) is not None,
                progress=lambda n: bar.advance(task, n),
            )  # fmt: skip
    stats = {
        "logs": len(logs),
        "envelopes": len(evidence.envelopes),
        "receipts": sum(len(v) for v in evidence.receipts.values()),
        "partitions": len(evidence.watermarks),
    }
    if as_json:
        out = {"ok": not findings, "stats": stats, "findings": [f.to_dict() for f in findings]}
        click.echo(json.dumps(out, indent=2))
    else:
        _print_findings(findings, stats)
    if findings:
        click.get_current_context().exit(1)


def _print_findings(findings: list[Finding], stats: dict[str, int]) -> None:
    out = Console()
    counts = ", ".join(f"{v} {k}" for k, v in stats.items())
    if not findings:
        out.print(f"audit verified: {counts}; no findings")
        return
    table = Table(title=f"{len(findings)} audit finding(s)")
    for column in ("kind", "where", "message"):
        table.add_column(column, overflow="fold")
    for f in findings:
        table.add_row(f.kind.value, f.where, f.message)
    out.print(table)
    out.print(f"audit FAILED: {len(findings)} finding(s) over {counts}")


@audit.command()
@click.option("--message-id", required=True, type=click.UUID, help="The message to prove.")
@click.option(
    "--export", type=click.Path(file_okay=False, exists=True, path_type=Path), metavar="DIR",
    help="Take the logs from a bundle.",
)  # fmt: skip
@pass_cli
def prove(cli: CliContext, message_id: uuid.UUID, export: Path | None) -> None:
    """Print MESSAGE_ID's publish entry inclusion proof and the checkpoint it is rooted in."""
    logs = (export / "logs") if export else cli.settings.home / "audit" / "logs"
    for directory in sorted(p for p in logs.glob("*") if (p / "ORIGIN").is_file()):
        with locked_log(directory, directory.name) as log:
            for index in range(log.size):
                data = log.entry_bytes(index)
                entry = decode_entry(data)
                if entry.message_id != message_id or entry.kind.value != "publish":
                    continue
                signed = log.latest_checkpoint()
                if signed is None or signed.checkpoint.size <= index:
                    raise ConfigurationError(
                        f"{directory.name} log entry {index} is not under a checkpoint yet"
                    )
                cp = signed.checkpoint
                proof = log.inclusion_proof(index, cp.size)
                # Print only what verifies: a proof that fails here is a corrupt log.
                if not verify_inclusion(hash_leaf(data), index, cp.size, cp.root, proof):
                    raise ConfigurationError(f"{directory.name} log does not prove entry {index}")
                click.echo(json.dumps({
                    "log": directory.name, "index": index, "treeSize": cp.size,
                    "leafHash": base64.b64encode(hash_leaf(data)).decode(),
                    "entry": base64.b64encode(data).decode(),
                    "proof": [base64.b64encode(h).decode() for h in proof],
                    "checkpoint": signed.encode().decode(),
                }, indent=2))  # fmt: skip
                return
    raise ConfigurationError(f"no publish entry for message {message_id} in {logs}")


@audit.command()
@click.option(
    "--out", required=True, type=click.Path(file_okay=False, path_type=Path), metavar="DIR",
    help="Where to write the bundle (a new or empty directory).",
)  # fmt: skip
@pass_cli
def export(cli: CliContext, out: Path) -> None:
    """Write a self-contained bundle that `exchange audit verify --export DIR` checks offline."""
    settings = cli.settings
    home = AuditHome(settings.home / "audit")
    bootstrap = resolve_bootstrap(settings)
    err = Console(stderr=True)
    with err.status("reading the exchange, receipt and audit topics") as status:
        evidence = gather_evidence(
            bootstrap, topic_prefix=settings.topic_prefix, progress=status.update
        )
    try:
        files = write_bundle(
            out, logs=home.logs(), evidence=evidence, trust_dir=PkiLayout(settings.home).trust_dir,
            policy_path=home.policy_path, topic_prefix=settings.topic_prefix,
        )  # fmt: skip
    except FileExistsError as exc:
        raise ConfigurationError(str(exc)) from None
    click.echo(f"wrote {files} files to {out}; check with `exchange audit verify --export {out}`")


@audit.command()
@AGENCY_OPTION
@pass_cli
def witness(cli: CliContext, agency: str) -> None:
    """Cosign, as AGENCY, every checkpoint of the logs its witness policy assigns it."""
    settings = cli.settings
    home = AuditHome(settings.home / "audit")
    policies = load_witness_policies(home.policy_path)
    follows = {a for a in home.logs() if agency in _witnesses_of(policies, a)}
    if not follows:
        raise ConfigurationError(f"{agency} witnesses no log in {home.root}")
    me = load_agency(settings, agency)
    now = datetime.now(UTC)
    w = Witness(
        home.witness_dir(agency), signer=AgencyNoteSigner(me.keys, at=now), trust=me.trust,
        logs=follows,
    )  # fmt: skip
    outcomes = witness_logs(w, {a: home.log_dir(a) for a in follows})
    for o in outcomes:
        click.echo(
            f"{o.log_agency} size {o.size}: {'refused: ' + o.refused if o.refused else 'cosigned'}"
        )
    if any(o.refused for o in outcomes):
        click.get_current_context().exit(1)


def _witnesses_of(policies: dict[str, WitnessPolicy], log_agency: str) -> frozenset[str]:
    policy = policies.get(log_agency.split("-", 1)[0])
    return frozenset() if policy is None else policy.witnesses


@audit.command()
@AGENCY_OPTION
@pass_cli
def collect(cli: CliContext, agency: str) -> None:
    """Verify the receipts on receipts.AGENCY and log the new ones in AGENCY's log."""
    settings = cli.settings
    me = load_agency(settings, agency)
    bootstrap = resolve_bootstrap(settings)
    with open_audit(settings, me, bootstrap) as log:
        tally = collect_receipts_from_bus(
            log, bootstrap=bootstrap, trust=me.trust, topic_prefix=settings.topic_prefix
        )
    click.echo(
        f"{agency}: {tally.logged} receipt(s) logged, {tally.already_logged} already logged, "
        f"{tally.refused} refused"
    )
