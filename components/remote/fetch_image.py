"""Fetch the image file into the local cache and check its checksum, before the upload.

Runs beside the engine (a local command), as the guide's download step does. With a URL,
the file is downloaded into a temporary file next to `path`, hashed while it arrives and
moved to `path` only if it has the expected checksum (a cached file that already has it
is kept); without one, the local file at `path` is only checked. A mismatch fails the
step, naming both checksums, so the image resource after it never uploads anything.
Parameters come as JSON on standard input: url (or null), path, algorithm (sha256 or
md5), checksum (hex).
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import os
import socket
import sys
import tempfile
import urllib.parse
import urllib.request
from pathlib import Path
from typing import IO, Any

CHUNK = 1 << 20
TIMEOUT_SECONDS = 60
# Link-local and cloud metadata addresses (the config refuses them too; a name may resolve to
# one, or a redirect lead there).
METADATA_NETWORKS = (ipaddress.ip_network("169.254.0.0/16"), ipaddress.ip_network("fe80::/10"))
METADATA_ADDRESSES = (ipaddress.ip_address("fd00:ec2::254"),)


def refuse_metadata(url: str) -> None:
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise SystemExit(f"refusing to fetch {url}: only http(s) URLs")
    try:
        infos = socket.getaddrinfo(parts.hostname, parts.port or 80, proto=socket.IPPROTO_TCP)
    except OSError as exc:
        raise SystemExit(f"cannot resolve {parts.hostname}: {exc}") from None
    for info in infos:
        address = ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        if any(address in network for network in METADATA_NETWORKS) or address in METADATA_ADDRESSES:
            raise SystemExit(f"refusing to fetch {url}: {parts.hostname} is a link-local/metadata address ({address})")


class GuardedRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req: Any, fp: IO[bytes], code: int, msg: str, headers: Any, newurl: str) -> Any:
        refuse_metadata(newurl)
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def digest_of(stream: IO[bytes], algorithm: str, sink: IO[bytes] | None = None) -> str:
    digest = hashlib.new(algorithm)
    while chunk := stream.read(CHUNK):
        digest.update(chunk)
        if sink is not None:
            sink.write(chunk)
    return digest.hexdigest()


def file_digest(path: Path, algorithm: str) -> str:
    with path.open("rb") as stream:
        return digest_of(stream, algorithm)


def mismatch(source: str, algorithm: str, expected: str, actual: str) -> SystemExit:
    return SystemExit(
        f"checksum mismatch for {source}: glance:cirrosChecksum is {algorithm} {expected}, but the file's "
        f"{algorithm} is {actual}; nothing was uploaded"
    )


def download(url: str, path: Path, algorithm: str, expected: str) -> str:
    refuse_metadata(url)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, partial = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    except OSError as exc:
        raise SystemExit(
            f"cannot write the image cache {path.parent}: {exc}; set GLANCE_PULUMI_CACHE to a writable directory"
        ) from None
    try:
        opener = urllib.request.build_opener(GuardedRedirects)
        with os.fdopen(handle, "wb") as sink, opener.open(url, timeout=TIMEOUT_SECONDS) as response:
            actual = digest_of(response, algorithm, sink)
        if actual != expected:
            raise mismatch(url, algorithm, expected, actual)
        os.chmod(partial, 0o644)
        os.replace(partial, path)
    except OSError as exc:
        raise SystemExit(f"cannot download {url}: {exc}") from None
    finally:
        if os.path.exists(partial):
            os.unlink(partial)
    return f"downloaded {url} to {path} ({algorithm} {expected})"


def main() -> None:
    params = json.load(sys.stdin)
    path = Path(params["path"])
    algorithm, expected = params["algorithm"], params["checksum"]
    url = params.get("url")
    if url is None:
        try:
            actual = file_digest(path, algorithm)
        except OSError as exc:
            raise SystemExit(f"cannot read the image file {path}: {exc}") from None
        if actual != expected:
            raise mismatch(str(path), algorithm, expected, actual)
        print(f"{path}: {algorithm} {expected}")
    elif path.is_file() and file_digest(path, algorithm) == expected:
        print(f"{path}: cached, {algorithm} {expected}")
    else:
        print(download(url, path, algorithm, expected))


if __name__ == "__main__":
    main()
