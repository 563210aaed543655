"""SSH connection arguments for remote commands, with the private key kept secret."""

from __future__ import annotations

import pulumi
from pulumi_command import remote

from components.settings import SshTarget

# Commands whose stdout or stderr may echo a secret keep them out of logs and plaintext state.
SECRET_OUTPUTS = ["stdout", "stderr"]


def connection(target: SshTarget) -> remote.ConnectionArgsDict:
    args: remote.ConnectionArgsDict = {
        "host": target.host,
        "port": target.port,
        "user": target.user,
        "private_key": pulumi.Output.secret(target.private_key.get_secret_value()),
        # A controller that is still booting refuses a few dials; keep trying for a minute.
        "dial_error_limit": 30,
        "per_dial_timeout": 10,
    }
    if target.host_key is not None:
        # The provider then offers only this key's type and refuses any other key (no key:
        # it would send the secrets on standard input to whoever answers).
        args["host_key"] = target.host_key
    return args
