"""Glance on one API host, driven over SSH.

Steps, in the order the engine runs them (one GlanceNode per API host; the schema step runs
on the first only, and each host's drain waits for the previous host's undrain):
1. drain: /healthcheck answers 503 (the release's healthcheck_disable file), then wait
   loadBalancerCheckSeconds for the load balancer to stop sending requests; re-run with the
   restart (a config or version change), a no-op where Glance does not run yet
2. install the profile's packages (and the DB driver), at glance:packageVersion when pinned,
   recording on the host which ones were not there before;
                                                     delete: uninstall only those, and
                                                     of them only what nothing else needs
3. the image store directory (protected unless the stack opts out); delete: remove it
4. each config file, written from standard input; a file the distro's packages ship is
   saved first, once;                                delete: put that back, else remove
                                                     the file (and directories it made)
5. ownership: root:glance 0640, or Clear Linux's update-triggers;  re-run on config change
6. Clear Linux only: OS_IMAGE_API_VERSION=2 in the openrc files
7. the schema: `glance-manage db_sync` as user glance, with retries, once the database and
   the Keystone identity exist; on a version change, after the database dump, `db check`
   decides (expand and migrate now, contract once every host runs the new code)
8. enable and start the profile's units;                         delete: stop and disable
9. restart the units, replaced (so re-run) exactly when a config file changes in an option
   glance-api does not reload (components/reload.py) or the pinned version changes, once
   this host is drained; a change glance-api reloads is a SIGHUP instead (the reload step,
   after the readiness gate), which drops no request
10. with tlsCertificate: HAProxy's files, its unit, and a reload on any change of them
   (components/terminator.py), once the restart has moved glance-api to loopback
11. readiness of this host itself: /healthcheck, then one Keystone-authenticated image list,
   verifying https with tlsCaBundle when the stack trusts a CA of its own (remote/with_ca.py)
12. undrain, and wait for the load balancer to see the host again: only then does the next
   host drain, so the load balancer always has a host to send requests to
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
from pulumi_command import remote

from components import reload, rendering, scripts, terminator
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
    # The first host's schema step, which the others start after; None: this host runs it.
    schema: remote.Command | None = None
    # The previous host's undrain, which this host's drain waits for.
    after: pulumi.Resource | None = None
    # The database dump a version change takes before the schema step (pinned stacks).
    dump: pulumi.Resource | None = None
    # Pinned stacks: the version the host holds besides the pin (components/installed_versions.py).
    found_version: str = ""


class GlanceNode(pulumi.ComponentResource):
    ready: remote.Command
    db_sync: remote.Command
    undrain: remote.Command

    def __init__(self, name: str, args: NodeArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("glance:node:GlanceNode", name, None, opts)
        settings = args.settings
        profile = settings.profile
        self._connection = connection(args.host.ssh)
        files = rendering.config_files(settings, args.host)
        tls_files = terminator.config_files(settings)
        image_import = settings.glance.image_import
        converter = profile.conversion_packages if image_import is not None and image_import.converts else ()
        version = settings.package_version
        texts = [_text(file, args) for file in files]
        paths = [file.path for file in files]
        fingerprint = _fingerprint_of(paths, texts)
        # What restarts the host, and so drains it first: its config but for what glance-api reloads
        # (a change to that only reloads it), and the pinned version.
        reloads = reload.reload_safe(settings)

        def part_fingerprint(part: int) -> pulumi.Output[str]:
            """The fingerprint of what needs a restart (0) or what glance-api reloads (1)."""
            return pulumi.Output.secret(
                pulumi.Output.all(*texts).apply(
                    lambda rendered: _fingerprint(
                        {path: reload.split(path, text)[part] for path, text in zip(paths, rendered, strict=True)}
                    )
                )
            )

        restart_fingerprint = part_fingerprint(0) if reloads else fingerprint
        restart_triggers: list[pulumi.Input[str]] = [
            restart_fingerprint,
            *([version, args.found_version] if version else []),
        ]

        drain = self._command(
            f"{name}-drain",
            create=scripts.drain(profile.release, profile.units, args.host.settle_seconds),
            triggers=restart_triggers,
            depends_on=[args.after] if args.after else [],
        )
        install = self._command(
            f"{name}-install",
            create=scripts.install(
                profile,
                settings.database.engine,
                [s.type for s in settings.glance.stores],
                extra_packages=[*converter, *([terminator.PACKAGE] if tls_files else [])],
                version=version,
                found=args.found_version,
            ),
            delete=scripts.uninstall(profile),
            depends_on=[drain],
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
        configs = self._config_steps(name, files, texts, [install])
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
            # A pinned version's change (its standard input) runs the schema step of an upgrade.
            update=scripts.schema_upgrade(profile.release) if version else None,
            stdin=version,
            depends_on=[ownership, *args.prerequisites, *([args.dump] if args.dump else [])],
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
            triggers=restart_triggers,
            depends_on=[units, drain, *args.prerequisites],
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
        if reloads:
            # A change glance-api reloads: SIGHUP, once the files are written (and after a restart).
            self._command(
                f"{name}-reload",
                create=scripts.reload_unit(profile.units[0], rendering.API_CONF),
                triggers=[part_fingerprint(1)],
                depends_on=[ownership, self.ready],
            )
        self.undrain = self._command(
            f"{name}-undrain",
            create=scripts.undrain(profile.release, args.host.settle_seconds),
            triggers=[self.ready.id],
            depends_on=[self.ready],
        )
        self.register_outputs({"ready": self.ready.stdout})

    def _config_steps(
        self,
        name: str,
        files: Sequence[rendering.ConfigFile],
        texts: Sequence[pulumi.Output[str]],
        after: Sequence[pulumi.Resource],
    ) -> list[remote.Command]:
        """A step per file, writing its text from standard input."""
        return [
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

    def _terminator(
        self, name: str, files: Sequence[rendering.ConfigFile], args: NodeArgs, after: Sequence[pulumi.Resource]
    ) -> remote.Command:
        """HAProxy's files (left root-only: systemd and HAProxy read them as root), its unit, and
        a reload whenever a file changes: a new certificate is served without a failed request."""
        texts = [_text(file, args) for file in files]
        configs = self._config_steps(name, files, texts, after)
        fingerprint = _fingerprint_of([file.path for file in files], texts)
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
        update: str | None = None,
        stdin: pulumi.Input[str] | None = None,
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
            update=update,
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


def _fingerprint_of(paths: Sequence[str], texts: Sequence[pulumi.Output[str]]) -> pulumi.Output[str]:
    """Secret: the texts are derived from the credentials too, so a password change restarts (or
    reloads) what reads them."""
    return pulumi.Output.secret(
        pulumi.Output.all(*texts).apply(lambda rendered: _fingerprint(dict(zip(paths, rendered, strict=True))))
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
                    **({"ca_bundle": keystone.ca_bundle} if keystone.ca_bundle is not None else {}),
                }
            )
        )
    )
