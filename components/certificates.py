"""TLS material from the stack config, checked before anything is deployed.

The certificate chain and the CA bundle are plain PEM text; the private key is a secret, and
no message here ever quotes it. The checks are those a TLS client would make later, when it
is too late to name the key at fault: the key belongs to the certificate, the certificate
names the host a client asks for, and it chains to the CA bundle the clients trust.
"""

from __future__ import annotations

import datetime
import ipaddress
import re

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509 import verification
from pydantic import SecretStr

_BLOCK = re.compile(r"-----BEGIN ([A-Z0-9 ]+)-----\r?\n(.*?)-----END \1-----", re.DOTALL)
CHAIN_RULE = (
    "must be PEM certificates (`-----BEGIN CERTIFICATE-----` to `-----END CERTIFICATE-----`), the server's "
    "own first, then its intermediates"
)
KEY_RULE = (
    "must be an unencrypted PEM private key (`-----BEGIN PRIVATE KEY-----`, `RSA PRIVATE KEY` or `EC PRIVATE "
    "KEY`), RSA or ECDSA, the file's whole text"
)
# The key types a certificate may hold here: those HAProxy and every client serve and verify.
ServerKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey


def _blocks(value: str) -> list[tuple[str, str]]:
    """(label, text) of each PEM block; ValueError if anything but blocks and blank space is left."""
    blocks = [(match.group(1), match.group(0)) for match in _BLOCK.finditer(value)]
    if not blocks or _BLOCK.sub("", value).strip():
        raise ValueError("is not PEM text")
    return blocks


def certificates(value: str) -> list[x509.Certificate]:
    """Every certificate of PEM text that holds certificates only."""
    try:
        blocks = _blocks(value)
    except ValueError:
        raise ValueError(CHAIN_RULE) from None
    if any(label != "CERTIFICATE" for label, _ in blocks):
        raise ValueError(f"{CHAIN_RULE}; it holds a {next(label for label, _ in blocks if label != 'CERTIFICATE')}")
    try:
        return [x509.load_pem_x509_certificate(text.encode()) for _, text in blocks]
    except ValueError:
        raise ValueError(f"{CHAIN_RULE}; a block is not a well-formed certificate") from None


def certificate_chain(value: str) -> str:
    """A server's certificate chain: PEM certificates, the first the server's own."""
    certificates(value)
    return value.strip() + "\n"


def ca_bundle(value: str) -> str:
    """The CA certificates the clients trust: PEM certificates, each a CA."""
    for index, certificate in enumerate(certificates(value)):
        try:
            constraints = certificate.extensions.get_extension_for_class(x509.BasicConstraints).value
        except x509.ExtensionNotFound:
            constraints = None
        if constraints is None or not constraints.ca:
            raise ValueError(f"certificate {index + 1} is not a CA certificate (basicConstraints CA:TRUE)")
    return value.strip() + "\n"


def load_private_key(value: str) -> ServerKey:
    try:
        blocks = _blocks(value)
    except ValueError:
        raise ValueError(KEY_RULE) from None
    keys = [text for label, text in blocks if label.endswith("PRIVATE KEY")]
    if len(blocks) != 1 or not keys:
        raise ValueError(f"{KEY_RULE}; give the key alone, without certificates")
    if "ENCRYPTED" in blocks[0][0] or "Proc-Type: 4,ENCRYPTED" in keys[0]:
        raise ValueError("is encrypted; HAProxy loads it unattended: give it without a passphrase")
    try:
        key = serialization.load_pem_private_key(keys[0].encode(), password=None)
    except (ValueError, TypeError):
        raise ValueError(KEY_RULE) from None
    if not isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
        raise ValueError(f"{KEY_RULE}; browsers and HAProxy do not serve this key type")
    return key


def private_key(value: SecretStr) -> SecretStr:
    """The certificate's private key; its text is never part of a message."""
    load_private_key(value.get_secret_value())
    return SecretStr(value.get_secret_value().strip() + "\n")


def key_matches(chain: str, key: SecretStr) -> bool:
    """The key is the private half of the chain's first certificate."""
    public = load_private_key(key.get_secret_value()).public_key()
    leaf = certificates(chain)[0].public_key()
    encoding, form = serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    return bool(public.public_bytes(encoding, form) == leaf.public_bytes(encoding, form))


def names(chain: str) -> list[str]:
    """The DNS names and IP addresses of the server certificate's subjectAltName."""
    try:
        san = certificates(chain)[0].extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    return [*san.get_values_for_type(x509.DNSName), *(str(ip) for ip in san.get_values_for_type(x509.IPAddress))]


def covers(chain: str, host: str) -> bool:
    """A client asking for `host` accepts the certificate's names (RFC 6125: a wildcard stands for
    one whole left-most label; an IP address only matches an IP entry). No SAN: no name, as
    clients no longer read the common name."""
    bare = host[1:-1] if host.startswith("[") else host
    try:
        address = ipaddress.ip_address(bare)
    except ValueError:
        address = None
    for name in names(chain):
        if address is not None:
            if _ip(name) == address:
                return True
        elif _name_matches(name.lower(), bare.lower().rstrip(".")):
            return True
    return False


def _ip(name: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(name)
    except ValueError:
        return None


def _name_matches(pattern: str, host: str) -> bool:
    if pattern.startswith("*."):
        label, _, rest = host.partition(".")
        return bool(label) and rest == pattern[2:]
    return pattern == host


def untrusted(chain: str, bundle: str, host: str, now: datetime.datetime | None = None) -> str | None:
    """Why a client trusting `bundle` would refuse the chain for `host` (expired, another CA,
    ...), or None when it accepts it."""
    leaf, *intermediates = certificates(chain)
    address = _ip(host[1:-1] if host.startswith("[") else host)
    subject: verification.Subject = x509.IPAddress(address) if address is not None else x509.DNSName(host)
    # OpenSSL's own CA recipe (`req -x509`) makes CA certificates without keyUsage, which every TLS
    # client here accepts (RFC 5280 says SHOULD): the Web PKI's stricter rule would refuse them.
    ca_policy = verification.ExtensionPolicy.webpki_defaults_ca().may_be_present(
        x509.KeyUsage, verification.Criticality.AGNOSTIC, None
    )
    builder = (
        verification.PolicyBuilder()
        .store(verification.Store(certificates(bundle)))
        .extension_policies(ca_policy=ca_policy, ee_policy=verification.ExtensionPolicy.webpki_defaults_ee())
    )
    if now is not None:
        builder = builder.time(now)
    try:
        builder.build_server_verifier(subject).verify(leaf, intermediates)
    except verification.VerificationError as exc:
        return str(exc)
    return None
