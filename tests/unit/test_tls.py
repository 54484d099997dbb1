"""The sandbox's certificates pass the strict verification current clients apply (mnist_deploy/tls.py)."""

from __future__ import annotations

import datetime
import socket
import ssl
import threading

import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import NameOID

from mnist_deploy import tls


def handshake(ca_pem, cert_file, key_file, name):
    """A TLS handshake over a socket pair, the client verifying as Python 3.13's default context does
    (VERIFY_X509_STRICT on top of the usual chain and host name checks). Returns the client's error or None."""
    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_context.load_cert_chain(cert_file, key_file)
    client_context = ssl.create_default_context(cafile=str(ca_pem))
    client_context.verify_flags |= ssl.VERIFY_X509_STRICT
    left, right = socket.socketpair()
    server = threading.Thread(target=lambda: _serve(server_context, right))
    server.start()
    try:
        with client_context.wrap_socket(left, server_hostname=name):
            return None
    except ssl.SSLError as exc:
        return exc
    finally:
        left.close()
        server.join(timeout=10)


def _serve(context, sock):
    try:
        with context.wrap_socket(sock, server_side=True):
            pass
    except (ssl.SSLError, OSError):
        sock.close()


def test_the_sandbox_certificate_verifies_strictly_for_each_host_name(tmp_path):
    vars_file = tmp_path / "tls.yml"
    ca_pem = tls.sandbox_certificates(["target-1", "target-2"], tmp_path / "tls", vars_file)
    values = yaml.safe_load(vars_file.read_text())
    cert_file, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_file.write_text(values["mnist_stack_tls_certificate"])
    key_file.write_text(values["mnist_stack_tls_private_key"])
    for name in ("target-1", "target-2", "localhost"):
        assert handshake(ca_pem, cert_file, key_file, name) is None, name
    refused = handshake(ca_pem, cert_file, key_file, "elsewhere")
    assert isinstance(refused, ssl.SSLCertVerificationError) and "mismatch" in str(refused)


def test_a_valid_ca_is_kept_and_one_without_key_identifiers_is_made_again(tmp_path):
    out, vars_file = tmp_path / "tls", tmp_path / "tls.yml"
    ca_pem = tls.sandbox_certificates(["target-1"], out, vars_file)
    first = ca_pem.read_bytes()
    tls.sandbox_certificates(["target-1"], out, vars_file)
    assert ca_pem.read_bytes() == first  # kept across sandbox runs: clients that trust it go on trusting it
    # What an earlier version wrote: a CA with the same key but no Subject Key Identifier.
    key = serialization.load_pem_private_key((out / "ca.key").read_bytes(), None)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "mnist sandbox CA")])
    now = datetime.datetime.now(datetime.UTC)
    old = (
        x509.CertificateBuilder(name, name, key.public_key(), 1, now, now + datetime.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    ca_pem.write_bytes(old.public_bytes(serialization.Encoding.PEM))
    tls.sandbox_certificates(["target-1"], out, vars_file)
    renewed = x509.load_pem_x509_certificate(ca_pem.read_bytes())
    assert renewed.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
