"""Service passwords: taken from the stack's secrets, or generated once and kept in state."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_random as random
from pydantic import SecretStr

# Specials include characters that break naive URLs and oslo.config ('@', ':', '$', '%'),
# so every deploy exercises the quoting in components.rendering.
SPECIALS = "!#$%&*-_=+:@"


@dataclass(frozen=True)
class PasswordsArgs:
    db_password: SecretStr | None
    glance_password: SecretStr | None
    limits_password: SecretStr | None
    limits_enabled: bool


class ServicePasswords(pulumi.ComponentResource):
    """The Glance DB password, Keystone password and (with limits) the limits user's password."""

    db: pulumi.Output[str]
    glance: pulumi.Output[str]
    limits: pulumi.Output[str] | None

    def __init__(self, name: str, args: PasswordsArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("glance:passwords:ServicePasswords", name, None, opts)
        self.db = self._password(f"{name}-db-password", args.db_password)
        self.glance = self._password(f"{name}-keystone-password", args.glance_password)
        self.limits = self._password(f"{name}-limits-password", args.limits_password) if args.limits_enabled else None
        self.register_outputs({})

    def _password(self, name: str, given: SecretStr | None) -> pulumi.Output[str]:
        if given is not None:
            return pulumi.Output.secret(given.get_secret_value())
        generated = random.RandomPassword(
            name,
            length=32,
            override_special=SPECIALS,
            opts=pulumi.ResourceOptions(parent=self),
        )
        return generated.result
