"""Run a script (its source is the first argument, its own arguments follow) with https verified
against the stack's CA.

The script reads its parameters as JSON on standard input; this reads them first, makes urllib
trust `ca_bundle` (PEM text) and nothing else, and hands the same parameters on. A certificate
those CAs do not vouch for fails the script with a message naming the key they come from.
"""

from __future__ import annotations

import io
import json
import ssl
import sys
import urllib.request

CA_KEY = "glance:tlsCaBundle"


def trust(bundle: str) -> None:
    """Every urllib request of this process verifies https against `bundle` only."""
    context = ssl.create_default_context(cadata=bundle)
    urllib.request.install_opener(urllib.request.build_opener(urllib.request.HTTPSHandler(context=context)))


def explained(code: object) -> object:
    """The script's exit message, saying which CAs refused the certificate when that is why it failed."""
    if isinstance(code, str) and "CERTIFICATE_VERIFY_FAILED" in code:
        return f"{code} (the TLS certificate is not trusted by the CAs of {CA_KEY})"
    return code


def main() -> None:
    source = sys.argv[1]
    text = sys.stdin.read()
    trust(json.loads(text)["ca_bundle"])
    sys.stdin = io.StringIO(text)
    sys.argv = [sys.argv[0], *sys.argv[2:]]
    try:
        exec(compile(source, "script", "exec"), {"__name__": "__main__"})
    except SystemExit as exit_:
        raise SystemExit(explained(exit_.code)) from None


if __name__ == "__main__":
    main()
