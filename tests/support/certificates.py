"""Self-signed X.509 certificates for the test servers (SMTP, fake Azure AD) and client credentials.

    files = self_signed(tmp_path)                     # files.certificate, files.key (PEM); a (cert, key) pair
    context = files.server_context()                  # what a TLS server loads
    ssl.create_default_context(cafile=files.certificate)   # what a client trusts (or SSL_CERT_FILE, ...)

The certificate is its own CA (BasicConstraints ca=True), so a client can trust it directly. Key type "ec"
(P-256) unless the caller needs RSA: a client certificate for msal must be RSA, as it signs RS256 assertions.
"""

from __future__ import annotations

import datetime
import ipaddress
import ssl
from pathlib import Path
from typing import Literal, NamedTuple

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

KeyType = Literal["ec", "rsa"]
PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey


class CertificateFiles(NamedTuple):
    certificate: Path  # PEM certificate: also the CA file a client trusts
    key: Path  # PEM private key (PKCS#8, unencrypted)

    def server_context(self) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.certificate, self.key)
        return context


def build(*, names: tuple[str, ...] = ("localhost",), addresses: tuple[str, ...] = ("127.0.0.1",),
          key_type: KeyType = "ec", common_name: str = "", days: int = 1) -> tuple[x509.Certificate, PrivateKey]:
    """A self-signed certificate valid for `names` (DNS) and `addresses` (IP) from five minutes ago for
    `days`, and its key. The common name defaults to the first name or address. With neither names nor
    addresses (a client certificate) it has no extensions: no SANs, and it is not marked as a CA."""
    key: PrivateKey = (rsa.generate_private_key(public_exponent=65537, key_size=2048) if key_type == "rsa"
                       else ec.generate_private_key(ec.SECP256R1()))
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name or (names + addresses + ("test",))[0])])
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=days))
    )
    alternative_names: list[x509.GeneralName] = [x509.DNSName(name) for name in names]
    alternative_names += [x509.IPAddress(ipaddress.ip_address(address)) for address in addresses]
    if alternative_names:
        builder = (builder.add_extension(x509.SubjectAlternativeName(alternative_names), critical=False)
                   .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True))
    return builder.sign(key, hashes.SHA256()), key


def key_pem(key: PrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def self_signed(folder: Path, *, names: tuple[str, ...] = ("localhost",),
                addresses: tuple[str, ...] = ("127.0.0.1",), key_type: KeyType = "ec",
                stem: str = "cert") -> CertificateFiles:
    """`build()` written to `<folder>/<stem>-cert.pem` and `<folder>/<stem>-key.pem` (folder made if need be)."""
    certificate, key = build(names=names, addresses=addresses, key_type=key_type)
    folder.mkdir(parents=True, exist_ok=True)
    files = CertificateFiles(folder / f"{stem}-cert.pem", folder / f"{stem}-key.pem")
    files.certificate.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    files.key.write_bytes(key_pem(key))
    return files
