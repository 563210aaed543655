"""Every kind of value the stack config holds, checked (and normalised) in one place.

Each validator takes the value as the stack file gives it and returns the normalised
value, or raises ValueError with what is allowed (never echoing the value: it may be a
secret). stack_input.py and stores.py attach them to their keys, so the message is prefixed
with the key; the rules that compare several keys stay there.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import os
import posixpath
import re
import unicodedata
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import AfterValidator, Field, SecretStr

# ---- control characters ------------------------------------------------------------------

# C0, DEL and C1: never part of a host, a name, a path or a password; a line break would
# split a config line, a pg_hba rule or a password read with `read -r`.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_CONTROL_NAMES = {"\n": "line feed", "\r": "carriage return", "\t": "tab", "\x00": "NUL"}


def _describe_control(char: str) -> str:
    name = _CONTROL_NAMES.get(char) or unicodedata.name(char, "") or "control character"
    return f"U+{ord(char):04X} {name}"


def control_character(value: str, allow_newline: bool = False) -> str | None:
    """What is wrong with the first control character in `value`, or None."""
    for match in _CONTROL.finditer(value):
        char = match.group()
        if allow_newline and char == "\n":
            continue
        if char == "\r":
            return (
                "contains a carriage return (U+000D), e.g. Windows line endings: "
                "only printable characters are allowed (convert the file with dos2unix)"
            )
        return f"contains a control character ({_describe_control(char)}): only printable characters are allowed"
    return None


def control_characters(key: str, value: Any, allow_newline: frozenset[str] = frozenset()) -> Iterator[str]:
    """`key[index].field problem` for every string inside `value` (lists and objects walked),
    object keys included. Keys in `allow_newline` may hold line feeds (a PEM key)."""
    if isinstance(value, str):
        problem = control_character(value, allow_newline=key in allow_newline)
        if problem:
            yield f"{key} {problem}"
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from control_characters(f"{key}[{index}]", item, allow_newline)
    elif isinstance(value, dict):
        for name, item in value.items():
            if isinstance(name, str) and control_character(name):
                yield f"{key} has an option name with a control character; names are letters and digits"
                continue
            yield from control_characters(f"{key}.{name}", item, allow_newline)


# ---- hosts --------------------------------------------------------------------------------

_LABEL = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?")
HOST_RULE = (
    "must be a host name (RFC 1123: dot-separated labels of letters, digits and '-', each at most 63 "
    "characters, at most 253 in all) or an IPv4/IPv6 address, without scheme, port or path"
)


def ip_address(value: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The address if `value` is an IPv4 or IPv6 literal (IPv6 optionally in brackets)."""
    text = value[1:-1] if value.startswith("[") and value.endswith("]") else value
    if "%" in text:  # a zone id: link-local, and a '%' that URLs would have to escape
        return None
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def host(value: str) -> str:
    """A host name or an IP address; an IPv6 address is returned without brackets."""
    address = ip_address(value)
    if address is not None:
        return str(address) if value.startswith("[") else value
    if value.startswith("[") or value.count(":") >= 2:
        raise ValueError("is not a valid IPv6 address (an IPv6 address, e.g. fd00::11, without a zone id)")
    if not value or len(value) > 253:
        raise ValueError(HOST_RULE)
    labels = value.split(".")
    if not all(_LABEL.fullmatch(label) for label in labels):
        long = [label for label in labels if len(label) > 63]
        detail = f" (a label has {len(long[0])} characters)" if long else ""
        raise ValueError(HOST_RULE + detail)
    if labels[-1].isdigit():
        raise ValueError("is not a valid IPv4 address, nor a host name (the last label of a name is not a number)")
    return value


def url_host(value: str) -> str:
    """`value` as it goes into a URL or host:port: an IPv6 address in brackets."""
    address = ip_address(value)
    return f"[{address}]" if isinstance(address, ipaddress.IPv6Address) else value


def host_port(value: str, what: str = "host:port, e.g. controller:11211 or [fd00::11]:11211") -> tuple[str, int]:
    """`host:port` or `[ipv6]:port` -> (host, port)."""
    bracketed = re.fullmatch(r"\[([^\]]*)\]:(\d{1,5})", value)
    plain = re.fullmatch(r"([^:\[\]]*):(\d{1,5})", value)
    match = bracketed or plain
    if match is None:
        if "://" in value:
            raise ValueError(f"must be {what}, not a URL")
        raise ValueError(f"must be {what}")
    port = int(match.group(2))
    if not 1 <= port <= 65535:
        raise ValueError(f"has port {port}; a port is 1-65535")
    name = host(match.group(1))
    if bracketed and not isinstance(ip_address(name), ipaddress.IPv6Address):
        raise ValueError(f"must be {what} (brackets only around an IPv6 address)")
    return name, port


def memcached_server(value: str) -> str:
    """A memcached_servers item; IPv6 in python-memcached's `inet6:[address]:port` form."""
    text = value.removeprefix("inet6:")
    name, port = host_port(text)
    if isinstance(ip_address(name), ipaddress.IPv6Address):
        return f"inet6:[{name}]:{port}"
    return f"{name}:{port}"


def ceph_monitor(value: str) -> str:
    """A monHosts item: host, host:port or [ipv6]:port (a bare IPv6 address gets brackets)."""
    what = "a monitor as host, host:port or [ipv6]:port, e.g. ceph-mon1 or 10.0.0.21:6789"
    if ":" in value and not isinstance(ip_address(value), ipaddress.IPv6Address):
        name, port = host_port(value, what)
        return f"{url_host(name)}:{port}"
    try:
        return url_host(host(value))
    except ValueError:
        raise ValueError(f"must be {what}") from None


# Link-local addresses, where clouds answer with instance metadata (credentials included).
_METADATA_NETWORKS = (ipaddress.ip_network("169.254.0.0/16"), ipaddress.ip_network("fe80::/10"))
_METADATA_HOSTS = frozenset({"fd00:ec2::254", "metadata.google.internal", "metadata.goog", "metadata"})


def is_metadata_host(value: str) -> bool:
    """A link-local or cloud metadata address, which the machine running Pulumi must not fetch."""
    address = ip_address(value)
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if address is not None:
        return any(address in network for network in _METADATA_NETWORKS) or str(address) in _METADATA_HOSTS
    return value.lower().rstrip(".") in _METADATA_HOSTS


# ---- URLs ----------------------------------------------------------------------------------

URL_RULE = (
    "must be an http:// or https:// URL with a host (IPv6 in brackets) and an optional port 1-65535 and "
    "path, e.g. http://controller:9292"
)


def http_url(value: str) -> str:
    """http(s)://host[:port][/path], without user info, query or fragment; trailing '/' dropped."""
    if any(c.isspace() for c in value):
        raise ValueError(URL_RULE + "; it contains white space")
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(URL_RULE)
    if "@" in parts.netloc:
        raise ValueError(
            "must not carry user info (user:password@): the URL lands in the Keystone catalog and the stack "
            "outputs; credentials go to their own secret keys"
        )
    if parts.query or parts.fragment or "?" in value or "#" in value:
        raise ValueError(URL_RULE + "; no query (?) or fragment (#)")
    netloc = parts.netloc
    if netloc.count(":") >= 2 and not netloc.startswith("["):
        raise ValueError(URL_RULE + "; an IPv6 address goes in brackets, e.g. http://[fd00::11]:9292")
    try:
        port = parts.port
    except ValueError:
        raise ValueError(URL_RULE + "; the port is not a number in 1-65535") from None
    if port == 0 or (netloc.endswith(":") and port is None):
        raise ValueError(URL_RULE + "; the port is not a number in 1-65535")
    hostname = netloc[1 : netloc.index("]")] if netloc.startswith("[") else netloc.rsplit(":", 1)[0]
    try:
        host(f"[{hostname}]" if netloc.startswith("[") else hostname)
    except ValueError as exc:
        raise ValueError(f"has a host that {exc}") from None
    return value.rstrip("/")


_VERSION = re.compile(r"/v(\d+)(\.\d+)?$")


def keystone_base_url(value: str) -> str:
    """A Keystone URL given with or without its /v3 suffix -> without it (http://controller:5000)."""
    url = http_url(value)
    version = _VERSION.search(url)
    if version is None:
        return url
    if version.group() != "/v3":
        raise ValueError(f"names Keystone API {version.group()[1:]}; give the v3 URL (or the URL without a version)")
    return url.removesuffix("/v3")


def keystone_v3_url(value: str) -> str:
    """A Keystone URL given with or without /v3 -> with it (http://controller:5000/v3)."""
    return keystone_base_url(value) + "/v3"


# ---- paths ---------------------------------------------------------------------------------

# Directories the OS, other services or other users own: a store there would be re-owned to
# glance on create and removed on destroy.
SYSTEM_DIRECTORIES = frozenset(
    {
        "/",
        "/home",
        "/media",
        "/mnt",
        "/opt",
        "/srv",
        "/var",
        "/var/lib",
        "/var/local",
        "/var/opt",
        "/data",
        "/export",
        "/nfs",
    }
)
SYSTEM_TREES = (
    "/bin",
    "/boot",
    "/dev",
    "/etc",
    "/home",
    "/lib",
    "/lib32",
    "/lib64",
    "/libx32",
    "/lost+found",
    "/proc",
    "/root",
    "/run",
    "/sbin",
    "/snap",
    "/sys",
    "/tmp",
    "/usr",
    "/var/backups",
    "/var/cache",
    "/var/lib/apt",
    "/var/lib/ceph",
    "/var/lib/dpkg",
    "/var/lib/mysql",
    "/var/lib/pgsql",
    "/var/lib/postgresql",
    "/var/lib/rpm",
    "/var/lib/systemd",
    "/var/lock",
    "/var/log",
    "/var/mail",
    "/var/run",
    "/var/spool",
    "/var/tmp",
)
GLANCE_HOME = "/var/lib/glance"
# Glance's own working directories: multi-store's staging and tasks stores, the image cache.
GLANCE_DIRECTORIES = (
    "/var/lib/glance/staging",
    "/var/lib/glance/tasks_work_dir",
    "/var/lib/glance/image-cache",
)


def within(path: str, directory: str) -> bool:
    """`path` is `directory` or inside it (both normalised)."""
    return path == directory or path.startswith(directory.rstrip("/") + "/")


def absolute_path(value: str) -> str:
    """An absolute path without '..' components, normalised (no trailing or doubled '/')."""
    if not value.startswith("/"):
        raise ValueError("must be an absolute path, e.g. /var/lib/glance/images")
    if ".." in value.split("/"):
        raise ValueError("must not contain '..' components: give the directory itself")
    normalised = posixpath.normpath(value)
    # POSIX keeps a leading '//' as is; it is the root all the same.
    return "/" + normalised.lstrip("/")


def data_directory(value: str) -> str:
    """A directory the program creates, hands to glance and removes on destroy."""
    path = absolute_path(value)
    if path in SYSTEM_DIRECTORIES or any(within(path, tree) for tree in SYSTEM_TREES):
        raise ValueError(
            f"{path} is or is inside a system directory (/, /etc, /usr, /var/lib, /home, /root, /tmp, ...), "
            "which create would hand to glance and destroy would remove: give a directory of its own, "
            "e.g. /var/lib/glance/images or /srv/glance/images"
        )
    if path == GLANCE_HOME:
        raise ValueError(
            f"{GLANCE_HOME} is glance's home, which holds its staging, tasks and cache directories that destroy "
            "would remove: use a directory inside it, e.g. /var/lib/glance/images"
        )
    for own in GLANCE_DIRECTORIES:
        if within(path, own):
            raise ValueError(f"{path} is inside {own}, a directory Glance uses itself; give a directory of its own")
    return path


def ceph_conf(value: str) -> str:
    """An rbd store's cephConf: where earlier versions wrote its ceph.conf (its steps' old names)."""
    path = absolute_path(value)
    if not path.endswith(".conf") or posixpath.basename(path) == ".conf" or within(path, "/etc/glance"):
        raise ValueError("must be the absolute path of a .conf file outside /etc/glance, e.g. /etc/ceph/ceph.conf")
    return path


def pg_hba_path(value: str) -> str:
    """pg_hba.conf itself: the step rewrites this file."""
    path = absolute_path(value)
    if posixpath.basename(path) != "pg_hba.conf":
        raise ValueError("must be the path of a file named pg_hba.conf, e.g. /etc/postgresql/15/main/pg_hba.conf")
    return path


# Where a local image file may not come from: it is uploaded as an image, public by default.
PRIVATE_TREES = ("/etc", "/root", "/home", "/proc", "/sys", "/dev", "/run", "/boot")


def image_file(value: str) -> str:
    """A local image file: absolute, a regular file that exists now, not a private file."""
    path = absolute_path(value)
    real = os.path.realpath(path)
    home = os.path.realpath(os.path.expanduser("~"))
    private = [tree for tree in (*PRIVATE_TREES, home) if tree != "/" and (within(path, tree) or within(real, tree))]
    if private:
        raise ValueError(
            f"is inside {private[0]} (a home directory, /root, /etc or a system tree): the file would be uploaded "
            "as an image; copy the image file to a directory of its own, e.g. /srv/images"
        )
    if not os.path.isfile(real):
        raise ValueError(f"names no regular file on this machine ({path}); give the image file's absolute path")
    return path


# ---- identifiers and names -----------------------------------------------------------------

SQL_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")
SQL_IDENTIFIER_RULE = "must be a letter or '_' followed by letters, digits or '_', at most 63 characters"
# pg_hba.conf keywords: as a database or user field they match far more than one name.
PG_HBA_KEYWORDS = frozenset({"all", "sameuser", "samerole", "samegroup", "replication"})
SYSTEM_DATABASES = frozenset(
    {"mysql", "information_schema", "performance_schema", "sys", "postgres", "template0", "template1"}
)
ADMIN_ACCOUNTS = frozenset({"root", "postgres", "mysql", "admin", "mariadb", "public", "current_user", "session_user"})


def _sql_identifier(value: str) -> str:
    if not SQL_IDENTIFIER.fullmatch(value):
        raise ValueError(SQL_IDENTIFIER_RULE)
    if value.lower() in PG_HBA_KEYWORDS:
        raise ValueError(f"{value!r} is a pg_hba.conf keyword ({', '.join(sorted(PG_HBA_KEYWORDS))}); choose a name")
    return value


def database_name(value: str) -> str:
    _sql_identifier(value)
    if value.lower() in SYSTEM_DATABASES:
        raise ValueError(f"{value!r} is a database of the server itself; choose a name of Glance's own, e.g. glance")
    return value


def database_user(value: str) -> str:
    _sql_identifier(value)
    if value.lower() in ADMIN_ACCOUNTS or value.lower().startswith("pg_"):
        raise ValueError(
            f"{value!r} is an administrator or reserved account, whose password the program would set and "
            "which destroy would drop: choose an account of Glance's own, e.g. glance"
        )
    return value


def admin_user(value: str) -> str:
    """The database administrator (passed to the client and the providers, never into SQL)."""
    if not re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_.@-]{0,79}", value):
        raise ValueError("must be letters, digits, '_', '.', '@' or '-', at most 80 characters, e.g. root")
    return value


def login_name(value: str) -> str:
    """An SSH login (a POSIX user name)."""
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.-]{0,31}", value):
        raise ValueError("must be a user name: a letter or '_' then letters, digits, '_', '.' or '-' (at most 32)")
    return value


def name(max_length: int = 255) -> Callable[[str], str]:
    """A Keystone name or id: not empty, no leading or trailing white space."""

    def check(value: str) -> str:
        if not value or value != value.strip():
            raise ValueError(f"must not be empty nor start or end with white space (at most {max_length} characters)")
        if len(value) > max_length:
            raise ValueError(f"is longer than {max_length} characters")
        return value

    return check


def project_name(value: str) -> str:
    name()(value)
    if ":" in value:
        raise ValueError("must not contain ':' (Swift names an account project:user)")
    return value


def swift_account(value: str) -> str:
    """A Swift account as glance_store names it: project:user."""
    project, colon, user = value.partition(":")
    if not (project and colon and user) or value != value.strip():
        raise ValueError("must be project:user, e.g. service:glance")
    return value


def cephx_id(value: str) -> str:
    """The cephx user id (client.<id>): part of a file name and a config section."""
    if value.startswith("client."):
        raise ValueError("is the id without `client.`, e.g. glance for client.glance")
    if not re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}", value) or ".." in value:
        raise ValueError("must be letters, digits, '_', '-' or '.' (no '/' or '..'), at most 64, e.g. glance")
    return value


def simple_name(what: str) -> Callable[[str], str]:
    """A pool, bucket or container name: letters, digits, '_', '-', '.'."""

    def check(value: str) -> str:
        if not re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,254}", value) or ".." in value:
            raise ValueError(f"must be letters, digits, '_', '-' or '.' (no '/' or '..'), e.g. {what}")
        return value

    return check


def not_empty(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be empty")
    return value


# ---- secrets -------------------------------------------------------------------------------


def not_empty_secret(value: SecretStr) -> SecretStr:
    if not value.get_secret_value():
        raise ValueError("must not be empty")
    return value


_ARMOUR = re.compile(r"-----BEGIN ((?:OPENSSH |RSA |EC |DSA |ENCRYPTED )?PRIVATE KEY)-----")
_KEY_HOW = "set the key's text: `pulumi config set --secret glance:sshPrivateKey < ~/.ssh/id_ed25519`"


def _ssh_string(blob: bytes, offset: int) -> tuple[bytes, int]:
    if offset + 4 > len(blob):
        raise ValueError("truncated")
    length = int.from_bytes(blob[offset : offset + 4], "big")
    end = offset + 4 + length
    if end > len(blob):
        raise ValueError("truncated")
    return blob[offset + 4 : end], end


def ssh_private_key(value: str) -> str:
    """An unencrypted private key in OpenSSH or PEM armour (checked without a crypto library)."""
    text = value.strip()
    lines = [line.strip() for line in text.split("\n")]
    if len(lines) < 3:
        if text.startswith(("/", "~", "./")) or text.endswith((".pem", ".key")) or "id_" in text:
            raise ValueError(f"holds a file path, not a key: {_KEY_HOW}")
        if re.match(r"(ssh-|ecdsa-|sk-)", text):
            raise ValueError(f"holds a public key; the program needs the private key: {_KEY_HOW}")
        if text.startswith("PuTTY-User-Key-File"):
            raise ValueError("is a PuTTY key: convert it with `puttygen KEY -O private-openssh -o KEY.pem`")
        raise ValueError(
            f"must be a private key in OpenSSH or PEM armour (-----BEGIN ... PRIVATE KEY-----): {_KEY_HOW}"
        )
    armour = _ARMOUR.fullmatch(lines[0])
    if armour is None or lines[-1] != f"-----END {armour.group(1)}-----":
        raise ValueError(
            "must be a private key in OpenSSH or PEM armour: a -----BEGIN ... PRIVATE KEY----- line, the "
            f"base64 body and the matching -----END ... PRIVATE KEY----- line; {_KEY_HOW}"
        )
    kind = armour.group(1)
    body = lines[1:-1]
    encrypted = "is protected by a passphrase, which the SSH steps cannot enter: use a key without one"
    if kind == "ENCRYPTED PRIVATE KEY" or any(line.startswith("Proc-Type:") and "ENCRYPTED" in line for line in body):
        raise ValueError(encrypted)
    try:
        blob = base64.b64decode("".join(line for line in body if ":" not in line), validate=True)
    except binascii.Error:
        raise ValueError("has a body that is not base64; copy the whole key file") from None
    if kind == "OPENSSH PRIVATE KEY":
        magic = b"openssh-key-v1\0"
        try:
            if not blob.startswith(magic):
                raise ValueError("magic")
            cipher, offset = _ssh_string(blob, len(magic))
            _kdf, offset = _ssh_string(blob, offset)
            _kdf_options, offset = _ssh_string(blob, offset)
            count = int.from_bytes(blob[offset : offset + 4], "big")
            offset += 4
            for _ in range(count):
                _public, offset = _ssh_string(blob, offset)
            _private, offset = _ssh_string(blob, offset)
        except ValueError:
            raise ValueError("is not a well-formed OpenSSH private key; copy the whole key file") from None
        if cipher != b"none":
            raise ValueError(encrypted)
        if count < 1:
            raise ValueError("holds no key; copy the whole key file")
    elif not blob.startswith(b"\x30"):
        raise ValueError("is not a well-formed PEM private key; copy the whole key file")
    return value


# ---- checksums -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Checksum:
    algorithm: Literal["sha256", "md5"]
    hex: str


def checksum(value: str) -> Checksum:
    """sha256 (64 hex digits) or md5 (32, as Glance's `checksum` shows it); `sha256:`/`md5:` allowed."""
    algorithm, _, digest = value.rpartition(":")
    digest = digest.lower()
    if re.fullmatch(r"[0-9a-f]{64}", digest) and algorithm in ("", "sha256"):
        return Checksum("sha256", digest)
    if re.fullmatch(r"[0-9a-f]{32}", digest) and algorithm in ("", "md5"):
        return Checksum("md5", digest)
    raise ValueError(
        "must be the image's SHA-256 (64 hex digits, as sha256sum prints it) or MD5 (32 hex digits, "
        "as Glance's checksum shows it)"
    )


# ---- annotated types -----------------------------------------------------------------------

Host = Annotated[str, AfterValidator(host)]
HttpUrl = Annotated[str, AfterValidator(http_url)]
KeystoneBaseUrl = Annotated[str, AfterValidator(keystone_base_url)]
KeystoneV3Url = Annotated[str, AfterValidator(keystone_v3_url)]
AbsolutePath = Annotated[str, AfterValidator(absolute_path)]
DataDirectory = Annotated[str, AfterValidator(data_directory)]
Port = Annotated[int, Field(ge=1, le=65535)]
# Keystone keeps limits in a signed 32-bit column.
INT32_MAX = 2147483647
Limit = Annotated[int, Field(ge=0, le=INT32_MAX)]
Name = Annotated[str, AfterValidator(name())]
NotEmpty = Annotated[str, AfterValidator(not_empty)]
NotEmptySecret = Annotated[SecretStr, AfterValidator(not_empty_secret)]
