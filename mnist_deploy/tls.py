"""The sandbox's TLS: its own certificate authority and a server certificate for its hosts (`cryptography`).

Staging and production take their certificate and key from ansible-vault; the sandbox stands in for that vault with
a git-ignored group_vars file that `invoke sandbox.up` writes (inventories/sandbox/group_vars/all/tls.yml).
"""

from __future__ import annotations

import datetime
import ipaddress
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from mnist_deploy import render

SANDBOX_DIR = render.BUILD / "tls" / "sandbox"
SANDBOX_VARS = render.INVENTORIES / "sandbox" / "group_vars" / "all" / "tls.yml"
VALIDITY = datetime.timedelta(days=30)


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    pem, pkcs8 = serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8
    return key.private_bytes(pem, pkcs8, serialization.NoEncryption())


def _certificate(
    subject: str,
    key: ec.EllipticCurvePrivateKey,
    issuer: tuple[x509.Name, ec.EllipticCurvePrivateKey] | None,
    names: list[str],
) -> x509.Certificate:
    now = datetime.datetime.now(datetime.UTC)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    issuer_name, issuer_key = issuer or (name, key)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + VALIDITY)
        .add_extension(x509.BasicConstraints(ca=issuer is None, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )
    # Key identifiers and key usage: what current clients' strict verification requires (Python 3.13's default
    # context sets VERIFY_X509_STRICT and rejects a certificate without an Authority Key Identifier).
    if issuer is None:
        builder = builder.add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
        )
    else:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()), critical=False
        ).add_extension(x509.KeyUsage(True, False, False, False, False, False, False, False, False), critical=True)
        alt_names: list[x509.GeneralName] = []
        for entry in names:
            try:
                alt_names.append(x509.IPAddress(ipaddress.ip_address(entry)))
            except ValueError:
                alt_names.append(x509.DNSName(entry))
        builder = builder.add_extension(x509.SubjectAlternativeName(alt_names), critical=False).add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
        )
    return builder.sign(issuer_key, hashes.SHA256())


def _has(certificate: x509.Certificate, extension: type[x509.ExtensionType]) -> bool:
    try:
        certificate.extensions.get_extension_for_class(extension)
    except x509.ExtensionNotFound:
        return False
    return True


def sandbox_certificates(hosts: list[str], out_dir: Path = SANDBOX_DIR, vars_file: Path = SANDBOX_VARS) -> Path:
    """Make a CA (kept across sandbox runs while it is valid) and a server certificate for HOSTS, localhost and
    127.0.0.1; write the certificate and key where the sandbox's inventory reads them. Returns the CA's PEM file."""
    out_dir.mkdir(parents=True, exist_ok=True)
    ca_pem, ca_key_pem = out_dir / "ca.pem", out_dir / "ca.key"
    ca_cert: x509.Certificate | None = None
    if ca_pem.is_file() and ca_key_pem.is_file():
        ca_cert = x509.load_pem_x509_certificate(ca_pem.read_bytes())
        expiring = ca_cert.not_valid_after_utc - datetime.datetime.now(datetime.UTC) < datetime.timedelta(days=2)
        if expiring or not _has(ca_cert, x509.SubjectKeyIdentifier):  # an earlier CA made without key identifiers
            ca_cert = None
    if ca_cert is None:
        ca_key = _key()
        ca_cert = _certificate("mnist sandbox CA", ca_key, None, [])
        ca_key_pem.write_bytes(_pem_key(ca_key))
        ca_key_pem.chmod(0o600)
        ca_pem.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    loaded_ca_key = serialization.load_pem_private_key(ca_key_pem.read_bytes(), None)
    assert isinstance(loaded_ca_key, ec.EllipticCurvePrivateKey)  # nosec B101: we wrote it as one
    server_key = _key()
    server = _certificate(hosts[0], server_key, (ca_cert.subject, loaded_ca_key), [*hosts, "localhost", "127.0.0.1"])
    certificate = server.public_bytes(serialization.Encoding.PEM).decode()
    private_key = _pem_key(server_key).decode()
    vars_file.write_text(
        "---\n# Written by `invoke sandbox.up` (mnist_deploy/tls.py), git-ignored: the sandbox's vault.\n"
        "mnist_stack_tls_certificate: |\n"
        + "".join(f"  {line}\n" for line in certificate.splitlines())
        + "mnist_stack_tls_private_key: |\n"
        + "".join(f"  {line}\n" for line in private_key.splitlines())
    )
    vars_file.chmod(0o600)
    return ca_pem
