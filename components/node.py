"""Glance on one API host, driven over SSH.

Steps, in the order the engine runs them (one GlanceNode per API host; db_sync runs on
the first only, and the other hosts start once it is done):
1. install the profile's packages (and the DB driver), recording on the host which ones
   were not there before;                            delete: uninstall only those, and
                                                     of them only what nothing else needs
2. the image store directory (protected unless the stack opts out); delete: remove it
3. each config file, written from standard input; a file the distro's packages ship is
   saved first, once;                                delete: put that back, else remove
                                                     the file (and directories it made)
4. ownership: root:glance 0640, or Clear Linux's update-triggers;  re-run on config change
5. Clear Linux only: OS_IMAGE_API_VERSION=2 in the openrc files
6. `glance-manage db_sync` as user glance, with retries, once the database and the
   Keystone identity exist
7. enable and start the profile's units;                         delete: stop and disable
8. restart the units, replaced (so re-run) exactly when a config file changes, and only
   once the previous host's readiness gate has passed: a config change restarts the hosts
   one after another, so the load balancer always has a host to send requests to
9. with tlsCertificate: HAProxy's files, its unit, and a reload on any change of them
   (components/terminator.py), once the restart has moved glance-api to loopback
10. readiness of this host itself: /healthcheck, then one Keystone-authenticated image list,
   verifying https with tlsCaBundle when the stack trusts a CA of its own (remote/with_ca.py)
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
from pulumi_command import remote

from components import rendering, scripts, terminator
from components.remote import run_script
from components.settings import ApiHost, Settings
from components.ssh import SECRET_OUTPUTS, connection
from components.stores import FileStore

READINESS_TIMEOUT_SECONDS = 300
# Config files the distros' Glance packages ship (or their scripts make): the stack saves
# what it found there and puts that back on delete. The others are the program's own.
PACKAGE_FILES = frozenset({rendering.API_CONF, rendering.REGISTRY_CONF})


@dataclass(frozen=True)
class NodeArgs:
    settings: Settings
    db_password: pulumi.Output[str]
    glance_password: pulumi.Output[str]
    limits_password: pulumi.Output[str] | None
    limits_endpoint_id: pulumi.Output[str] | None
    # Resources db_sync and the restart must wait for: the database and the identity.
    prerequisites: Sequence[pulumi.Resource]
    host: ApiHost
    # The first host's db_sync, which the others start after; None: this host runs it.
    schema: remote.Command | None = None
    # The previous host's readiness gate, which this host's restart waits for.
    after: pulumi.Resource | None = None


class GlanceNode(pulumi.ComponentResource):
    ready: remote.Command
    db_sync: remote.Command

    def __init__(self, name: str, args: NodeArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("glance:node:GlanceNode", name, None, opts)
        settings = args.settings
        profile = settings.profile
        self._connection = connection(args.host.ssh)
        files = rendering.config_files(settings, args.host)
        tls_files = terminator.config_files(settings)
        image_import = settings.glance.image_import
        converter = profile.conversion_packages if image_import is not None and image_import.converts else ()

        install = self._command(
            f"{name}-install",
            create=scripts.install(
                profile,
                settings.database.engine,
                [s.type for s in settings.glance.stores],
                extra_packages=[*converter, *([terminator.PACKAGE] if tls_files else [])],
            ),
            delete=scripts.uninstall(profile),
        )
        directories = [
            self._command(
                f"{name}-image-store-{store.id}",
                create=scripts.ensure_store(store.path),
                delete=scripts.remove_store(store.path),
                depends_on=[install],
                # The store holds the image bytes: keep it unless the stack opts out.
                protect=settings.protect_data,
                # Stacks deployed before stores could be declared named their one file store so.
                aliases=[pulumi.Alias(name=f"{name}-image-store")] if not settings.glance.multi_store else None,
            )
            for store in settings.glance.stores
            if isinstance(store, FileStore)
        ]
        if settings.glance.multi_store or image_import is not None:
            # Glance's own staging and task directories, never the upstream default /tmp/staging.
            directories.append(
                self._command(
                    f"{name}-work-dirs",
                    create=scripts.ensure_store(*rendering.RESERVED_STORES.values()),
                    delete=scripts.remove_store(*rendering.RESERVED_STORES.values()),
                    depends_on=[install],
                )
            )
        configs, fingerprint = self._config_steps(name, files, args, [install])
        paths = [file.path for file in files]
        ownership = self._command(
            f"{name}-ownership",
            create=scripts.fix_ownership(profile, paths, rendering.config_dirs(settings)),
            triggers=[fingerprint],
            depends_on=configs,
        )
        if profile.image_api_env_files:
            self._command(
                f"{name}-image-api-version",
                create=scripts.add_image_api_version(profile.image_api_env_files),
                delete=scripts.remove_image_api_version(profile.image_api_env_files),
            )
        self.db_sync = args.schema or self._command(
            f"{name}-db-sync",
            create=scripts.db_sync(),
            depends_on=[ownership, *args.prerequisites],
            secret_outputs=True,
        )
        units = self._command(
            f"{name}-units",
            create=scripts.enable_units(profile.units),
            delete=scripts.disable_units(profile.units),
            depends_on=[self.db_sync, ownership, *directories],
        )
        restart = self._command(
            f"{name}-restart",
            create=scripts.restart_units(profile.units),
            triggers=[fingerprint],
            depends_on=[units, *args.prerequisites, *([args.after] if args.after else [])],
        )
        # The terminator starts once glance-api has left Glance's port for loopback.
        served = [self._terminator(name, tls_files, args, [install, restart])] if tls_files else []
        self.ready = self._command(
            f"{name}-ready",
            create=run_script("readiness", ca_bundle=settings.keystone.ca_bundle),
            stdin=_readiness_params(args),
            triggers=[restart.id, *(step.id for step in served)],
            depends_on=[restart, *served],
            secret_outputs=True,
        )
        self.register_outputs({"ready": self.ready.stdout})

    def _config_steps(
        self, name: str, files: Sequence[rendering.ConfigFile], args: NodeArgs, after: Sequence[pulumi.Resource]
    ) -> tuple[list[remote.Command], pulumi.Output[str]]:
        """A step per file, and the files' fingerprint: secret, as it is derived from the credentials
        too, so a password change restarts what reads them."""
        texts = [_text(file, args) for file in files]
        steps = [
            self._command(
                f"{name}-config-{file.step_name}",
                create=scripts.write_file(file.path, keep_original=file.path in PACKAGE_FILES),
                delete=scripts.remove_file(file.path),
                stdin=text,
                depends_on=after,
                secret_outputs=file.secret,
                aliases=[pulumi.Alias(name=f"{name}-config-{old}") for old in file.aliases] or None,
            )
            for file, text in zip(files, texts, strict=True)
        ]
        paths = [file.path for file in files]
        fingerprint: pulumi.Output[str] = pulumi.Output.secret(
            pulumi.Output.all(*texts).apply(lambda rendered: _fingerprint(dict(zip(paths, rendered, strict=True))))
        )
        return steps, fingerprint

    def _terminator(
        self, name: str, files: Sequence[rendering.ConfigFile], args: NodeArgs, after: Sequence[pulumi.Resource]
    ) -> remote.Command:
        """HAProxy's files (left root-only: systemd and HAProxy read them as root), its unit, and
        a reload whenever a file changes: a new certificate is served without a failed request."""
        configs, fingerprint = self._config_steps(name, files, args, after)
        unit = self._command(
            f"{name}-tls-unit",
            create=scripts.enable_units([terminator.UNIT], daemon_reload=True),
            delete=scripts.disable_units([terminator.UNIT]),
            depends_on=configs,
        )
        return self._command(
            f"{name}-tls-reload",
            create=scripts.reload_units([terminator.UNIT]),
            triggers=[fingerprint],
            depends_on=[unit],
        )

    def _command(
        self,
        name: str,
        create: str,
        delete: str | None = None,
        stdin: pulumi.Output[str] | None = None,
        triggers: Sequence[pulumi.Input[str]] | None = None,
        depends_on: Sequence[pulumi.Resource] = (),
        protect: bool = False,
        secret_outputs: bool = False,
        aliases: Sequence[pulumi.Alias] | None = None,
    ) -> remote.Command:
        return remote.Command(
            name,
            connection=self._connection,
            create=create,
            delete=delete,
            stdin=stdin,
            triggers=list(triggers) if triggers else None,
            # The provider would otherwise send the last stdout back as an environment
            # variable, which sshd refuses with a warning on every update.
            add_previous_output_in_env=False,
            logging=remote.Logging.NONE if secret_outputs else None,
            opts=pulumi.ResourceOptions(
                parent=self,
                depends_on=list(depends_on),
                protect=protect,
                aliases=list(aliases) if aliases else None,
                additional_secret_outputs=SECRET_OUTPUTS if secret_outputs else None,
            ),
        )


def _text(file: rendering.ConfigFile, args: NodeArgs) -> pulumi.Output[str]:
    """The file's text: a file with secrets is rendered inside the credentials' secret Output."""
    if not file.secret:
        return pulumi.Output.from_input(args.limits_endpoint_id).apply(
            lambda endpoint_id: file.render(None, endpoint_id)
        )

    def render(values: list[str | None]) -> str:
        db_password, glance_password, limits_password, endpoint_id = values
        assert db_password is not None and glance_password is not None
        return file.render(rendering.Credentials(db_password, glance_password, limits_password), endpoint_id)

    return pulumi.Output.secret(
        pulumi.Output.all(args.db_password, args.glance_password, args.limits_password, args.limits_endpoint_id).apply(
            render
        )
    )


def _fingerprint(files: dict[str, str]) -> str:
    digest = hashlib.sha256()
    for path in sorted(files):
        digest.update(path.encode() + b"\0" + files[path].encode() + b"\0")
    return digest.hexdigest()


def _readiness_params(args: NodeArgs) -> pulumi.Output[str]:
    keystone = args.settings.keystone
    return pulumi.Output.secret(
        args.glance_password.apply(
            lambda password: json.dumps(
                {
                    "glance_url": args.host.api_url,
                    "auth_url": keystone.auth_url,
                    "user": keystone.glance_user,
                    "password": password,
                    "domain_id": keystone.domain_id,
                    "project": keystone.service_project,
                    "timeout": READINESS_TIMEOUT_SECONDS,
                    "settle_seconds": args.host.settle_seconds,
                    **({"ca_bundle": keystone.ca_bundle} if keystone.ca_bundle is not None else {}),
                }
            )
        )
    )
