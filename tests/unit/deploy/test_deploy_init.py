"""``init_deployment``: files, permissions, certificates and rendered configurations."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from exchange.deploy import DeployLayout, client_settings, init_deployment
from exchange.deploy.config import parse_properties
from exchange.errors import ConfigurationError
from exchange.routing import RoutingRule, RoutingTable

AGENCIES = ("MEX-FGR", "MEX-SSPC", "USA-ATF", "USA-CBP")
ROUTING = RoutingTable(rules=[RoutingRule(senders=["*"], recipients=list(AGENCIES))])
TYPES = ("seizure",)


@pytest.fixture
def home(tmp_path: Path) -> Path:
    init_deployment(
        tmp_path, agencies=AGENCIES, routing=ROUTING, record_types=TYPES, base_port=40000
    )
    return tmp_path


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_every_secret_file_is_0600(home: Path) -> None:
    layout = DeployLayout(home)
    for country in ("MEX", "USA"):
        here = layout.country(country)
        secrets = [
            here.ca_key,
            here.broker_keystore,
            here.admin.key,
            here.mirror_local_keystore,
            here.mirror_remote_keystore,
        ]
        for agency in (a for a in AGENCIES if a.startswith(country)):
            secrets += [here.client(agency).key, here.scram_password(agency)]
        for path in secrets:
            assert _mode(path) == 0o600, path
    private = [
        p for p in layout.root.rglob("*") if p.is_file() and b"PRIVATE KEY" in p.read_bytes()
    ]
    assert private
    assert all(_mode(p) == 0o600 for p in private)


def test_broker_certificate_has_the_loopback_san_and_keystore_holds_chain_and_pkcs8_key(
    home: Path,
) -> None:
    data = DeployLayout(home).country("MEX").broker_keystore.read_bytes()
    assert data.count(b"BEGIN CERTIFICATE") == 2
    assert b"BEGIN PRIVATE KEY" in data  # unencrypted PKCS#8, as Kafka's PEM keystore reads it
    cert = x509.load_pem_x509_certificates(data)[0]
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert [str(ip) for ip in san.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]
    assert san.get_values_for_type(x509.DNSName) == ["localhost"]


def test_client_certificate_cn_is_the_agency_and_chains_to_its_country_ca(home: Path) -> None:
    here = DeployLayout(home).country("USA")
    leaf, ca = x509.load_pem_x509_certificates(here.client("USA-ATF").cert.read_bytes())
    assert leaf.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "USA-ATF"
    assert (
        leaf.issuer
        == ca.subject
        == x509.load_pem_x509_certificate(here.ca_cert.read_bytes()).subject
    )
    leaf.verify_directly_issued_by(ca)
    eku = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.CLIENT_AUTH]


def test_broker_properties_have_only_tls_listeners_and_deny_by_default(home: Path) -> None:
    props = parse_properties(DeployLayout(home).country("USA").broker_properties.read_text())
    assert "PLAINTEXT" not in props["listeners"] + props["listener.security.protocol.map"]
    assert props["allow.everyone.if.no.acl.found"] == "false"
    assert props["authorizer.class.name"].endswith("StandardAuthorizer")
    assert props["ssl.client.auth"] == "required"
    assert props["super.users"] == "User:broker.USA;User:admin.USA"
    assert props["listeners"].startswith("SSL://127.0.0.1:40003,")


def test_no_password_or_key_appears_in_any_rendered_configuration(home: Path) -> None:
    layout = DeployLayout(home)
    texts = [layout.plan_file.read_text()]
    for country in ("MEX", "USA"):
        here = layout.country(country)
        texts += [here.broker_properties.read_text(), here.mirror_properties.read_text()]
    passwords = [layout.country(a[:3]).scram_password(a).read_text().strip() for a in AGENCIES]
    for text in texts:
        assert "PRIVATE KEY" not in text
        assert not [p for p in passwords if p in text]


def test_mirror_replicates_only_crossborder_audit_and_receipts(home: Path) -> None:
    props = parse_properties(DeployLayout(home).country("USA").mirror_properties.read_text())
    assert props["MEX->USA.topics"] == (
        r"xchg\.MEX-.*\.crossborder\..*,audit\.MEX-.*,receipts\.USA-.*"
    )
    assert props["USA->MEX.enabled"] == "false"
    assert props["replication.policy.class"].endswith("IdentityReplicationPolicy")
    assert props["MEX.ssl.keystore.location"].endswith("USA/mirror/remote.pem")


def test_rerun_keeps_existing_material_and_adds_a_new_agency(home: Path) -> None:
    layout = DeployLayout(home)
    before = layout.country("MEX").client("MEX-FGR").cert.read_bytes()
    init_deployment(home, agencies=(*AGENCIES, "MEX-FGJ-SON"), routing=ROUTING, record_types=TYPES)
    assert layout.country("MEX").client("MEX-FGR").cert.read_bytes() == before
    assert layout.country("MEX").client("MEX-FGJ-SON").key.exists()
    assert client_settings(home, "MEX-FGJ-SON").bootstrap == "127.0.0.1:40000"


def test_client_settings_scram_keeps_the_password_out_of_repr(home: Path) -> None:
    conn = client_settings(home, "USA-ATF", mechanism="scram")
    password = DeployLayout(home).country("USA").scram_password("USA-ATF").read_text().strip()
    assert conn.config["sasl.password"] == password
    assert conn.bootstrap == "127.0.0.1:40005"
    assert password not in repr(conn)


def test_unknown_agency_and_foreign_country_are_refused(home: Path) -> None:
    with pytest.raises(ConfigurationError, match="USA-DEA has no transport credentials"):
        client_settings(home, "USA-DEA")
    with pytest.raises(ConfigurationError, match="CAN-RCMP"):
        init_deployment(home, agencies=("CAN-RCMP",), routing=ROUTING, record_types=TYPES)
