"""Distro profiles and Glance releases as data.

A profile says how a distro installs and runs Glance; a release says which option
names and URLs that Glance generation understands. Everything the rest of the
program does differently per variant is read from these records.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from components.stores import StoreType

DbEngine = Literal["mysql", "postgresql"]
ProfileName = Literal["clearlinux", "rhel", "debian"]


@dataclass(frozen=True)
class Release:
    """Option names and defaults of one Glance generation."""

    name: str
    # SQLAlchemy URL scheme per engine; Liberty used the MySQLdb driver.
    db_url_schemes: dict[DbEngine, str]
    # authtoken option that holds the public Keystone URI.
    public_uri_option: str
    # authtoken option that selects the keystoneauth loader.
    auth_loader_option: str
    # Liberty guides name domains by id, Zed guides by name.
    domain_by_name: bool
    keystone_auth_port: int
    has_registry: bool
    # Credentials go to a drop-in file of this directory, which every Glance program's
    # oslo.config reads after its main file, so the main file can be shown in a preview;
    # None: oslo.config of that release reads no such directory, credentials stay inline.
    credentials_dir: str | None
    supports_keystone_limits: bool
    service_description: str
    # The glance_store drivers this generation ships, and whether it has multi-store
    # (enabled_backends, one section per store) or only [glance_store]'s single-store form.
    store_types: frozenset[StoreType]
    multi_store: bool
    # glance-manage's rolling schema commands (`db check`, `db expand`, `db migrate`, `db contract`);
    # without them the schema moves with `db_sync` before the first host restarts.
    rolling_schema: bool
    # glance-api reloads its configuration on SIGHUP to its main process (components/reload.py).
    sighup_reload: bool
    # While this file exists, glance-api-paste.ini's healthcheck filter (oslo.middleware's
    # disable_by_file backend) answers 503, so a load balancer stops sending the host requests.
    healthcheck_disable_file: str = "/etc/glance/healthcheck_disable"
    # Interoperable image import (Queens and later): the methods enabled by default and the
    # output formats of the image_conversion plugin; empty: the release has no import.
    import_methods: tuple[str, ...] = ()
    conversion_formats: tuple[str, ...] = ()

    @property
    def has_import(self) -> bool:
        return bool(self.import_methods)


LIBERTY = Release(
    name="liberty",
    db_url_schemes={"mysql": "mysql", "postgresql": "postgresql"},
    public_uri_option="auth_uri",
    auth_loader_option="auth_plugin",
    domain_by_name=False,
    # Liberty's Keystone served its admin API on 35357.
    keystone_auth_port=35357,
    has_registry=True,
    credentials_dir=None,
    supports_keystone_limits=False,
    service_description="OpenStack Image service",
    # Liberty's S3 driver was deprecated and read-only in practice; it came back in Ussuri.
    store_types=frozenset({"file", "swift", "rbd", "cinder"}),
    multi_store=False,
    rolling_schema=False,
    # Not checked against Liberty's server: its config changes restart.
    sighup_reload=False,
)

ZED = Release(
    name="zed",
    db_url_schemes={"mysql": "mysql+pymysql", "postgresql": "postgresql+psycopg2"},
    public_uri_option="www_authenticate_uri",
    auth_loader_option="auth_type",
    domain_by_name=True,
    # 35357 is gone: an auth_url there makes every authenticated call 401.
    keystone_auth_port=5000,
    has_registry=False,
    credentials_dir="/etc/glance/glance.conf.d",
    supports_keystone_limits=True,
    service_description="OpenStack Image",
    store_types=frozenset({"file", "swift", "rbd", "s3", "cinder"}),
    multi_store=True,
    import_methods=("glance-direct", "web-download", "copy-image"),
    conversion_formats=("raw", "qcow2", "vmdk"),
    rolling_schema=True,
    sighup_reload=True,
)


@dataclass(frozen=True)
class VersionPin:
    """How a distro installs Glance at one exact version (glance:packageVersion)."""

    # The packages that carry Glance's version, installed at the pinned one together (their
    # dependencies on each other are exact); the first is the one whose version is reported.
    packages: tuple[str, ...]
    # One package at the version: $package and $version are replaced.
    spec: str
    # What a version looks like in this package manager (a full match), with an example.
    pattern: str
    example: str
    # Shell lines installing $packages (the pinned specs plus the other packages), upgrading or
    # downgrading as needed, without the package manager restarting Glance: the restart step
    # does that once the host is drained.
    install_commands: tuple[str, ...]
    # A shell command printing the installed version ("" when it is not installed).
    installed_version: str


@dataclass(frozen=True)
class Profile:
    """How one distro installs, owns and runs Glance."""

    name: ProfileName
    release: Release
    default_db_engine: DbEngine
    packages: tuple[str, ...]
    # Extra packages for the SQLAlchemy driver of each engine (empty: part of the bundle).
    db_driver_packages: dict[DbEngine, tuple[str, ...]]
    # The client libraries each store type's driver imports (absent: nothing extra).
    store_packages: Mapping[StoreType, tuple[str, ...]]
    # What the image_conversion plugin runs (qemu-img), installed when the plugin is enabled.
    conversion_packages: tuple[str, ...]
    # Shell lines; $packages is replaced by the packages plus the engine's driver packages.
    install_commands: tuple[str, ...]
    # A shell command that prints the packages present on the host, one name a line: the
    # install step compares its output before and after, and records what it brought.
    package_query: str
    # Shell lines that remove what the install step brought: "$ours" names a file listing
    # those of its packages still present, sorted (LC_ALL=C). They remove only the ones no
    # other package needs, and keep everything that was there before the stack.
    uninstall_commands: tuple[str, ...]
    # Packages destroy leaves even when the stack brought them: removing them can lock the
    # administrators out (Debian's sudo refuses to go on a host without a root password).
    kept_packages: tuple[str, ...]
    units: tuple[str, ...]
    # Clear Linux fixes ownership through its stateless trigger target, not chown.
    ownership_trigger_unit: str | None
    pg_hba_path: str
    postgresql_unit: str
    # Client environment files that get OS_IMAGE_API_VERSION=2 (Liberty clients default to v1).
    image_api_env_files: tuple[str, ...]
    version_pin: VersionPin


CLEAR_LINUX = Profile(
    name="clearlinux",
    release=LIBERTY,
    default_db_engine="mysql",
    packages=("openstack-image",),
    db_driver_packages={"mysql": (), "postgresql": ()},
    # The openstack-image bundle carries every driver's client library.
    store_packages={},
    # Liberty has no import plugins.
    conversion_packages=(),
    install_commands=("clr_bundle_add $packages",),
    # swupd tracks each installed bundle by a file of this directory.
    package_query="ls -1 /usr/share/clear/bundles",
    # swupd refuses to remove a bundle that another installed bundle includes: remove ours
    # until a round removes nothing, so what other bundles include stays.
    uninstall_commands=(
        "while :; do",
        "  removed=",
        '  for bundle in $(cat "$ours"); do',
        '    [ -e "/usr/share/clear/bundles/$bundle" ] || continue',
        '    swupd bundle-remove "$bundle" > /dev/null 2>&1 && removed=1',
        "  done",
        '  [ -n "$removed" ] || break',
        "done",
    ),
    kept_packages=("sudo",),
    units=("glance-api.service", "glance-registry.service"),
    ownership_trigger_unit="update-triggers.target",
    pg_hba_path="/var/lib/pgsql/data/pg_hba.conf",
    postgresql_unit="postgresql.service",
    image_api_env_files=("/root/admin-openrc.sh", "/root/demo-openrc.sh"),
    # Bundles carry no versions of their own: the pin is the OS release, which swupd moves to
    # (either way) before the bundle is added.
    version_pin=VersionPin(
        packages=(),
        spec="$package",
        pattern=r"[0-9]+",
        example="31000",
        install_commands=("swupd update --version $version", "clr_bundle_add $packages"),
        installed_version="swupd info 2>/dev/null | sed -n 's/^Installed version: *//p'",
    ),
)

RHEL = Profile(
    name="rhel",
    release=ZED,
    default_db_engine="postgresql",
    packages=("openstack-glance",),
    db_driver_packages={"mysql": ("python3-PyMySQL",), "postgresql": ("python3-psycopg2",)},
    store_packages={
        "swift": ("python3-swiftclient",),
        "rbd": ("python3-rbd", "python3-rados"),
        "s3": ("python3-boto3",),
        "cinder": ("python3-os-brick", "python3-cinderclient"),
    },
    conversion_packages=("qemu-img",),
    # Without crb, python3-pyxattr is unavailable and the install fails.
    install_commands=("yum config-manager --set-enabled crb", "yum install -y $packages"),
    package_query="rpm -qa --qf '%{NAME}\\n'",
    # Ours become dependencies ("unmarked as installed by the user"): dnf then tells which of
    # them nothing else needs, and only those go, without taking other packages along.
    uninstall_commands=(
        'yum -q mark remove $(cat "$ours")',
        "yum -q repoquery --unneeded --qf '%{name}' | LC_ALL=C sort -u"
        ' | LC_ALL=C comm -12 - "$ours" > "$ours.unneeded"',
        '[ ! -s "$ours.unneeded" ] || yum remove -y --noautoremove $(cat "$ours.unneeded")',
    ),
    kept_packages=("sudo",),
    units=("openstack-glance-api.service",),
    ownership_trigger_unit=None,
    pg_hba_path="/var/lib/pgsql/data/pg_hba.conf",
    postgresql_unit="postgresql.service",
    image_api_env_files=(),
    version_pin=VersionPin(
        packages=("openstack-glance", "python3-glance"),
        spec="$package-$version",
        pattern=r"[0-9][A-Za-z0-9._+~^]*-[A-Za-z0-9._+~^]+",
        example="25.1.0-1.el9",
        # dnf installs exactly the version named, downgrading a newer one. RDO's scriptlets
        # try-restart a running glance-api on upgrade: the host is drained by then.
        install_commands=("yum config-manager --set-enabled crb", "yum install -y $packages"),
        installed_version="rpm -q --qf '%{VERSION}-%{RELEASE}\\n' openstack-glance 2>/dev/null || true",
    ),
)

# `dpkg --configure -a` finishes what an interrupted run left half done, but it does not wait
# for the package lock: it exits 2 while another dpkg runs, e.g. the apt-get of an `up`
# killed a moment ago, which goes on on the host. Retry that for up to 300 s, as apt-get waits.
_DPKG_CONFIGURE = (
    "tries=0; until dpkg --configure -a; do [ $? -eq 2 ] && [ $((tries += 1)) -lt 300 ] || exit 1; sleep 1; done"
)

DEBIAN = Profile(
    name="debian",
    release=ZED,
    default_db_engine="mysql",
    packages=("glance-api",),
    db_driver_packages={"mysql": ("python3-pymysql",), "postgresql": ("python3-psycopg2",)},
    store_packages={
        "swift": ("python3-swiftclient",),
        "rbd": ("python3-rbd", "python3-rados"),
        "s3": ("python3-boto3",),
        "cinder": ("python3-os-brick", "python3-cinderclient"),
    },
    conversion_packages=("qemu-utils",),
    # A deploy interrupted during the install leaves dpkg half done: finish that first (a
    # no-op otherwise), and wait for the package lock rather than fail on it. Try the cached
    # package lists first: a controller without a mirror still installs from its local
    # archive, and the lists are refreshed only when that fails.
    install_commands=(
        "export DEBIAN_FRONTEND=noninteractive",
        _DPKG_CONFIGURE.replace("$", "$$"),
        "apt_get='apt-get -o DPkg::Lock::Timeout=300'",
        "$$apt_get install -y $packages || { $$apt_get update && $$apt_get install -y $packages; }",
    ),
    # Present: anything dpkg knows beyond "not-installed" or "config-files" (a package another
    # interrupted run left half configured was there before us).
    package_query=(
        "dpkg-query -W -f '${db:Status-Status} ${Package}\\n'"
        ' | awk \'$1 != "not-installed" && $1 != "config-files" { print $2 }\''
    ),
    # Ours become automatically installed: apt then tells which of them nothing else needs
    # (what autoremove would take), and only those are purged, so no package that depends on
    # one of them goes along. Purged, not removed: before the stack they were not there, and
    # glance-common's purge also takes the config it made (glance-api.conf), as a host
    # without the stack has none.
    uninstall_commands=(
        "export DEBIAN_FRONTEND=noninteractive",
        _DPKG_CONFIGURE,
        "apt_get='apt-get -o DPkg::Lock::Timeout=300'",
        'apt-mark auto $(cat "$ours") > /dev/null',
        "$apt_get -s autoremove | awk '$1 == \"Remv\" { print $2 }' | LC_ALL=C sort -u"
        ' | LC_ALL=C comm -12 - "$ours" > "$ours.unneeded"',
        '[ ! -s "$ours.unneeded" ] || $apt_get purge -y $(cat "$ours.unneeded")',
    ),
    kept_packages=("sudo",),
    units=("glance-api.service",),
    ownership_trigger_unit=None,
    pg_hba_path="/etc/postgresql/15/main/pg_hba.conf",
    postgresql_unit="postgresql.service",
    image_api_env_files=(),
    version_pin=VersionPin(
        # glance-api depends on glance-common and that on python3-glance, each at its own version.
        packages=("glance-api", "glance-common", "python3-glance"),
        spec="$package=$version",
        pattern=r"([0-9]+:)?[0-9][A-Za-z0-9.+~]*(-[A-Za-z0-9.+~]+)?",
        example="2:25.1.0-2+deb12u5",
        install_commands=(
            "export DEBIAN_FRONTEND=noninteractive",
            _DPKG_CONFIGURE.replace("$", "$$"),
            "apt_get='apt-get -o DPkg::Lock::Timeout=300 --allow-downgrades'",
            # The postinst's restart (through invoke-rc.d, which asks policy-rc.d) would cut off
            # the requests in flight: 101 refuses it, the restart step restarts the drained host.
            # An operator's own policy-rc.d is left alone.
            "if [ ! -e /usr/sbin/policy-rc.d ]; then",
            "  trap 'rm -f /usr/sbin/policy-rc.d' EXIT",
            "  printf '#!/bin/sh\\nexit 101\\n' > /usr/sbin/policy-rc.d",
            "  chmod 0755 /usr/sbin/policy-rc.d",
            "fi",
            "$$apt_get install -y $packages || { $$apt_get update && $$apt_get install -y $packages; }",
        ),
        installed_version=(
            "dpkg-query -W -f '${db:Status-Status} ${Version}\\n' glance-api 2>/dev/null"
            " | awk '$1 == \"installed\" { print $2 }'"
        ),
    ),
)

PROFILES: dict[str, Profile] = {p.name: p for p in (CLEAR_LINUX, RHEL, DEBIAN)}
