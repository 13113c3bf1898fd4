"""A private CA and a Redis server certificate for the compose deployment's TLS variant.

Enough for trusts to *verify* the broker (``ssl_cert_reqs=required`` against ``ca.crt``) without an
organisation's PKI; a production hub may replace ``federation/tls/`` with certificates from its own CA
(same file names). The CA key stays with the hub operator; trusts receive ``ca.crt`` only.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from omop.errors import OmopFedError
from omop.keys import PRIVATE_MODE, PUBLIC_MODE, ensure_dir, write_new_file

CA_LIFETIME = timedelta(days=3650)
SERVER_LIFETIME = timedelta(days=825)


def _general_name(name: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(name))
    except ValueError:
        return x509.DNSName(name)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _cert_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def make_ca(now: datetime) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "omop-federation broker CA")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + CA_LIFETIME)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return key, cert


def make_server_cert(
    ca_key: ec.EllipticCurvePrivateKey, ca_cert: x509.Certificate, names: Sequence[str], now: datetime
) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    """A server certificate for ``names`` (DNS names or IP addresses), signed by the CA."""
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + SERVER_LIFETIME)
        .add_extension(x509.SubjectAlternativeName([_general_name(n) for n in names]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    return key, cert


def certificate_names(cert: x509.Certificate) -> set[str]:
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return set()
    return {str(v) for v in san.get_values_for_type(x509.DNSName)} | {
        str(v) for v in san.get_values_for_type(x509.IPAddress)
    }


def ensure_certificates(
    *, ca_cert: Path, cert: Path, key: Path, names: Sequence[str], now: datetime
) -> list[Path]:
    """Create the CA (once) and a server certificate covering ``names``; returns the files created.

    An existing server certificate is kept while it covers every name and is not expired; the CA is
    never replaced here (trusts have pinned it).
    """
    ensure_dir(ca_cert.parent)
    ca_key_file = ca_cert.parent / "ca.key"
    created: list[Path] = []
    if ca_cert.exists() and ca_key_file.exists():
        ca = x509.load_pem_x509_certificate(ca_cert.read_bytes())
        loaded = serialization.load_pem_private_key(ca_key_file.read_bytes(), password=None)
        if not isinstance(loaded, ec.EllipticCurvePrivateKey):
            raise OmopFedError(f"{ca_key_file} is not an EC private key; move federation/tls away to renew")
        ca_key = loaded
    else:
        ca_key, ca = make_ca(now)
        write_new_file(ca_key_file, _key_pem(ca_key), PRIVATE_MODE, replace=ca_key_file.exists())
        write_new_file(ca_cert, _cert_pem(ca), PUBLIC_MODE, replace=ca_cert.exists())
        created += [ca_key_file, ca_cert]
    wanted = list(dict.fromkeys(names))
    if cert.exists() and key.exists():
        current = x509.load_pem_x509_certificate(cert.read_bytes())
        fresh = current.not_valid_after_utc > now + timedelta(days=30)
        if fresh and set(wanted) <= certificate_names(current) and current.issuer == ca.subject:
            return created
    server_key, server_cert = make_server_cert(ca_key, ca, wanted, now)
    write_new_file(key, _key_pem(server_key), PRIVATE_MODE, replace=key.exists())
    write_new_file(cert, _cert_pem(server_cert), PUBLIC_MODE, replace=cert.exists())
    return [*created, key, cert]
