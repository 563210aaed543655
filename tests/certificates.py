"""A throwaway CA for the tests: CA certificates and server certificates it issues, as PEM text.

ECDSA P-256 keys, which take no time to make. Nothing here is kept: every CA lives as long as
the test process. `openssl_chain` makes a CA and a server certificate the way an operator would
with the openssl command line (RSA, the CA without keyUsage).
"""

from __future__ import annotations

import datetime
import ipaddress
import subprocess
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

DAY = datetime.timedelta(days=1)


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def key_pem(key: ec.EllipticCurvePrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


def _pem(certificate: x509.Certificate) -> str:
    return certificate.public_bytes(serialization.Encoding.PEM).decode()


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


@dataclass(frozen=True)
class Server:
    """A server certificate (the chain a server sends) and its key."""

    certificate: str
    key: str


class Authority:
    """A CA that issues server certificates."""

    def __init__(self, name: str = "glance-pulumi test CA") -> None:
        self._key = _key()
        self._name = _name(name)
        now = datetime.datetime.now(datetime.UTC)
        self._certificate = (
            x509.CertificateBuilder()
            .subject_name(self._name)
            .issuer_name(self._name)
            .public_key(self._key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - DAY)
            .not_valid_after(now + 30 * DAY)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(True, False, False, False, False, True, True, False, False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(self._key.public_key()), critical=False)
            .sign(self._key, hashes.SHA256())
        )
        self.pem = _pem(self._certificate)

    def issue(self, *names: str, expired: bool = False) -> Server:
        """A server certificate for `names` (host names or IP addresses) in its subjectAltName."""
        key = _key()
        now = datetime.datetime.now(datetime.UTC)
        start = now - 10 * DAY if expired else now - DAY
        alternatives: list[x509.GeneralName] = []
        for name in names:
            try:
                alternatives.append(x509.IPAddress(ipaddress.ip_address(name)))
            except ValueError:
                alternatives.append(x509.DNSName(name))
        builder = (
            x509.CertificateBuilder()
            .subject_name(_name(names[0] if names else "no-name"))
            .issuer_name(self._name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(start)
            .not_valid_after(now - 5 * DAY if expired else now + 10 * DAY)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(self._key.public_key()), critical=False)
        )
        if alternatives:
            builder = builder.add_extension(x509.SubjectAlternativeName(alternatives), critical=False)
        return Server(_pem(builder.sign(self._key, hashes.SHA256())), key_pem(key))


def other_key() -> str:
    """A private key no certificate here holds."""
    return key_pem(_key())


def openssl_chain(directory: Path, *names: str) -> tuple[str, Server]:
    """(CA certificate, server) made by the openssl command line in `directory`."""

    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=directory, check=True, capture_output=True, timeout=120)

    rsa = ("-newkey", "rsa:2048", "-nodes")
    openssl("req", "-x509", *rsa, "-keyout", "ca.key", "-out", "ca.pem", "-days", "30", "-subj", "/CN=openssl CA")
    openssl("req", *rsa, "-keyout", "server.key", "-out", "server.csr", "-subj", f"/CN={names[0]}")
    alternatives = ",".join(f"IP:{name}" if name[:1].isdigit() else f"DNS:{name}" for name in names)
    (directory / "extensions").write_text(f"subjectAltName={alternatives}\n")
    openssl(
        "x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
        "-out", "server.pem", "-days", "10", "-extfile", "extensions",
    )  # fmt: skip
    server = Server((directory / "server.pem").read_text(), (directory / "server.key").read_text())
    return (directory / "ca.pem").read_text(), server
