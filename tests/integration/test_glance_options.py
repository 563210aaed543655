"""Rendered Zed configs checked against Debian's real Glance option registry.

oslo-config-validator (from Debian's python3-glance, run by Debian's own python3)
knows every option glance-api registers. It cannot see typos inside
[keystone_authtoken] (that group's sample data is incomplete), so those options are
checked against keystonemiddleware's and keystoneauth's own option lists instead.
"""

from __future__ import annotations

import configparser
import json
import os
import string
import subprocess
from pathlib import Path
from typing import Any

import pytest

from components.rendering import (
    API_CONF,
    RESERVED_STORES,
    Credentials,
    credentials_path,
    effective_sections,
    render_ini,
)
from components.settings import Settings, load_settings
from components.store_options import SWIFT_REFERENCES
from tests.certificates import Authority
from tests.unit.harness import TEST_SECRETS, stack_config
from tests.unit.test_stores import EVERY_TYPE, SWIFT, files_of

DEBIAN_PYTHON = "/usr/bin/python3"
VALIDATOR = "/usr/bin/oslo-config-validator"
NAMESPACES = [
    "castellan.config",
    "glance",
    "glance.api",
    "glance.store",
    "glance.multi_store",
    "oslo.concurrency",
    "oslo.messaging",
    "oslo.db",
    "oslo.policy",
    "keystonemiddleware.auth_token",
    "oslo.limit",
    "oslo.log",
    "oslo.middleware.cors",
    "oslo.middleware.healthcheck",
    "oslo.middleware.http_proxy_to_wsgi",
    "oslo.reports",
    "osprofiler",
]
CREDENTIALS = Credentials("db$pw@x", "glance$pw", "limits$pw")
ENDPOINT_ID = "0123456789abcdef"

pytestmark = pytest.mark.skipif(
    not os.path.exists(VALIDATOR) and os.environ.get("CI") != "true",
    reason="Debian's python3-glance is not installed (scripts/setup installs it)",
)

ZED_VARIANTS: dict[str, dict[str, Any]] = {
    "rhel": {},
    "debian": {},
    "debian-postgresql": {"dbEngine": "postgresql"},
    "debian-options": {"debug": True, "apiOptions": ["DEFAULT.workers=2", "glance_store.filesystem_store_file_perm=0"]},
    "debian-import": {
        "importMethods": ["glance-direct", "web-download"],
        "importPlugins": [
            {"name": "inject_image_metadata", "properties": {"hw_rng_model": "virtio", "a.b": "c:d"}},
            {"name": "image_conversion", "outputFormat": "qcow2"},
            {"name": "image_decompression"},
        ],
        "webDownloadAllowedHosts": ["images.example", "10.9.0.1"],
        "webDownloadAllowPrivate": True,
        "webDownloadAllowedPorts": [443, 8443],
        "webDownloadAllowedSchemes": ["https"],
    },
}


STORE_STACKS = ["debian-swift", "rhel-ceph"]


def settings_for(variant: str) -> Settings:
    """A stack's settings as the engine would give them: `debian-options` is stack debian plus overrides."""
    stack = variant if variant in STORE_STACKS else variant.split("-")[0]
    config = {**stack_config(stack), **TEST_SECRETS, **ZED_VARIANTS.get(variant, {})}
    raw = {key: value if isinstance(value, str) else json.dumps(value) for key, value in config.items()}
    # Store credentials are set with --secret --path, which makes the whole stores key secret.
    return load_settings(raw, frozenset(TEST_SECRETS) | {"stores"})


def validate(text: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    conf = tmp_path / "glance-api.conf"
    conf.write_text(text)
    namespaces = [arg for name in NAMESPACES for arg in ("--namespace", name)]
    # oslo_limit/auth_type is reported falsely: keystoneauth registers it at run time.
    command = [DEBIAN_PYTHON, VALIDATOR, *namespaces, "--input-file", str(conf), "--exclude-group", "oslo_limit"]
    return subprocess.run(command, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("variant", sorted(ZED_VARIANTS))
def test_rendered_zed_config_uses_only_real_glance_options(variant: str, tmp_path: Path) -> None:
    text = render_ini(effective_sections(settings_for(variant), CREDENTIALS, ENDPOINT_ID))
    result = validate(text, tmp_path)
    assert result.returncode == 0, result.stderr
    assert "ERROR" not in result.stderr


# Runs oslo-config-validator with each store's section checked against its driver's group
# of the glance.multi_store namespace (the registry names groups after drivers; Glance
# registers the same options under each store id at run time), plus the per-store options
# glance_store registers for every backend but leaves out of the sample data.
STORE_VALIDATOR = """
import json, sys
from glance_store import driver
from oslo_config import generator, validator

store_types = json.loads(sys.argv[1])
markers = {"file": "filesystem_store_datadir", "swift": "swift_store_container", "rbd": "rbd_store_pool",
           "s3": "s3_store_host", "cinder": "cinder_volume_type"}
real = generator._generate_machine_readable_data

def with_store_sections(groups, conf):
    data = real(groups, conf)
    options = data["options"]
    group_of = {kind: next(name for name, group in options.items()
                           if any(opt["name"] == marker for opt in group["opts"]))
                for kind, marker in markers.items()}
    per_backend = [{"name": opt.dest, "dest": opt.dest} for opt in driver.Store.MULTI_BACKEND_OPTIONS]
    for section, kind in store_types.items():
        group = options[group_of[kind]]
        options[section] = {**group, "opts": group["opts"] + per_backend}
    return data

generator._generate_machine_readable_data = with_store_sections
sys.argv = ["oslo-config-validator", *sys.argv[2:]]
sys.exit(validator.main())
"""


def validate_with_stores(settings: Settings, text: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    conf = tmp_path / "glance-api.conf"
    conf.write_text(text)
    sections = {store.id: store.type for store in settings.glance.stores}
    sections |= {name: "file" for name in RESERVED_STORES}
    namespaces = [arg for name in NAMESPACES for arg in ("--namespace", name)]
    command = [DEBIAN_PYTHON, "-c", STORE_VALIDATOR, json.dumps(sections), *namespaces, "--input-file", str(conf)]
    return subprocess.run([*command, "--exclude-group", "oslo_limit"], capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("stack", STORE_STACKS)
def test_store_stacks_use_only_real_store_options(stack: str, tmp_path: Path) -> None:
    settings = settings_for(stack)
    result = validate_with_stores(
        settings, render_ini(effective_sections(settings, CREDENTIALS, ENDPOINT_ID)), tmp_path
    )
    assert result.returncode == 0, result.stderr
    assert "ERROR" not in result.stderr


def test_every_store_types_options_are_real(tmp_path: Path) -> None:
    settings = settings_for_stores(EVERY_TYPE)
    text = render_ini(effective_sections(settings, CREDENTIALS, ENDPOINT_ID))
    result = validate_with_stores(settings, text, tmp_path)
    assert result.returncode == 0, result.stderr
    # And a misspelt store option is caught.
    result = validate_with_stores(settings, text.replace("rbd_store_pool", "rbd_pool"), tmp_path)
    assert result.returncode != 0 and "ceph/rbd_pool is not part of the sample config" in result.stderr


def settings_for_stores(stores: list[dict[str, Any]]) -> Settings:
    config = {**stack_config("debian"), **TEST_SECRETS, "stores": stores, "defaultStore": stores[0]["id"]}
    raw = {key: value if isinstance(value, str) else json.dumps(value) for key, value in config.items()}
    return load_settings(raw, frozenset(TEST_SECRETS) | {"stores"})


def test_swift_references_read_back_exactly_through_glance_store(tmp_path: Path) -> None:
    """glance_store reads the references file with its own configparser (interpolation, quotes)."""
    hostile = {
        f"s{index}": {"id": f"s{index}", "type": "swift", "key": password}
        for index, password in enumerate(HOSTILE_PASSWORDS.values())
    }
    settings = settings_for_stores(list(hostile.values()))
    references = tmp_path / "glance-swift.conf"
    references.write_text(files_of(settings, CREDENTIALS, ENDPOINT_ID)[SWIFT_REFERENCES])
    program = (
        "import json, sys\n"
        "from glance_store._drivers.swift.utils import SwiftConfigParser\n"
        "parser = SwiftConfigParser()\n"
        "parser.read(sys.argv[1])\n"
        "print(json.dumps({ref: parser.get(ref, 'key') for ref in parser.sections()}))\n"
    )
    result = subprocess.run(
        [DEBIAN_PYTHON, "-c", program, str(references)], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {ref: item["key"] for ref, item in hostile.items()}


IMPORT_READER = """
import json, sys
from oslo_config import cfg
import glance.opts
conf = cfg.ConfigOpts()
for group, opts in [*glance.opts.list_api_opts(), *glance.opts.list_image_import_opts()]:
    conf.register_opts(opts, group=group)
conf(["--config-file", sys.argv[1]], project="glance", default_config_files=[])
print(json.dumps({
    "methods": conf.enabled_import_methods,
    "staging": conf.node_staging_uri,
    "worker": conf.worker_self_reference_url,
    "plugins": conf.image_import_opts.image_import_plugins,
    "format": conf.image_conversion.output_format,
    "inject": conf.inject_metadata_properties.inject,
    "roles": conf.inject_metadata_properties.ignore_user_roles,
    "schemes": conf.import_filtering_opts.allowed_schemes,
    "hosts": conf.import_filtering_opts.allowed_hosts,
    "denied": conf.import_filtering_opts.disallowed_hosts,
    "ports": conf.import_filtering_opts.allowed_ports,
}))
"""


def read_import_options(text: str, tmp_path: Path) -> dict[str, Any]:
    conf = tmp_path / "glance-api.conf"
    conf.write_text(text)
    result = subprocess.run(
        [DEBIAN_PYTHON, "-c", IMPORT_READER, str(conf)], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    return dict(json.loads(result.stdout))


def test_import_options_read_back_through_glances_own_options(tmp_path: Path) -> None:
    """Lists, the inject dictionary and the ports as Glance's registered options parse them."""
    options = read_import_options(
        render_ini(effective_sections(settings_for("debian-import"), CREDENTIALS, ENDPOINT_ID)), tmp_path
    )
    assert options == {
        "methods": ["glance-direct", "web-download"],
        "staging": "file:///var/lib/glance/staging",
        "worker": None,
        "plugins": ["inject_image_metadata", "image_conversion", "image_decompression"],
        "format": "qcow2",
        "inject": {"hw_rng_model": "virtio", "a.b": "c:d"},
        "roles": ["admin"],
        "schemes": ["https"],
        "hosts": ["images.example", "10.9.0.1"],
        "denied": [],
        "ports": [443, 8443],
    }


def test_each_api_hosts_file_is_valid_and_names_its_own_worker_url(tmp_path: Path) -> None:
    hosts = ["10.0.0.11", "10.0.0.12"]
    config = {**stack_config("debian-swift"), **TEST_SECRETS, "apiHosts": hosts, "publicUrl": "http://lb:9292"}
    config |= {"internalUrl": "", "adminUrl": "", "stores": [{"id": "objects", "type": "swift"}], "defaultStore": ""}
    config |= {"sshHostKeys": [], "insecureIgnoreHostKeys": True}
    raw = {key: value if isinstance(value, str) else json.dumps(value) for key, value in config.items()}
    settings = load_settings(raw, frozenset(TEST_SECRETS) | {"stores"})
    for host, address in zip(settings.api_hosts, hosts, strict=True):
        text = render_ini(effective_sections(settings, CREDENTIALS, ENDPOINT_ID, host))
        result = validate_with_stores(settings, text, tmp_path)
        assert result.returncode == 0, result.stderr
        options = read_import_options(text, tmp_path)
        assert options["worker"] == f"http://{address}:9292"
        assert options["staging"] == "file:///tmp/staging/"  # unused: multi-store stages in its reserved store
        assert {"localhost", "169.254.169.254", "lb", address} <= set(options["denied"])


def test_a_misspelled_option_is_caught(tmp_path: Path) -> None:
    sections = effective_sections(settings_for("debian"), CREDENTIALS, ENDPOINT_ID)
    sections["glance_store"]["filesystem_store_datdir"] = "/var/lib/glance/images/"
    result = validate(render_ini(sections), tmp_path)
    assert result.returncode != 0
    assert "glance_store/filesystem_store_datdir is not part of the sample config" in result.stderr


def authtoken_option_names() -> set[str]:
    program = (
        "import json\n"
        "from keystoneauth1 import loading\n"
        "from keystonemiddleware.auth_token import _opts\n"
        "names = {o.dest for _, opts in _opts.list_opts() for o in opts}\n"
        "names |= {o.dest for o in loading.get_auth_plugin_conf_options('password')}\n"
        "names |= {o.dest for o in loading.get_auth_common_conf_options()}\n"
        "print(json.dumps(sorted(names)))\n"
    )
    result = subprocess.run([DEBIAN_PYTHON, "-c", program], capture_output=True, text=True, timeout=60, check=True)
    return set(json.loads(result.stdout))


@pytest.mark.parametrize("variant", sorted(ZED_VARIANTS))
def test_authtoken_options_are_current_keystonemiddleware_names(variant: str) -> None:
    # [DEFAULT] would otherwise leak its options into every section.
    parser = configparser.ConfigParser(interpolation=None, default_section="__unused__")
    parser.read_string(render_ini(effective_sections(settings_for(variant), CREDENTIALS, ENDPOINT_ID)))
    known = authtoken_option_names()
    rendered = set(parser["keystone_authtoken"])
    assert rendered <= known, rendered - known
    # Zed must not fall back to the deprecated Liberty names.
    assert not rendered & {"auth_uri", "auth_plugin"}


@pytest.mark.parametrize("path", ["/etc/glance/glance-api.conf", "/etc/glance/glance-registry.conf"])
def test_liberty_files_use_names_glance_still_knows(path: str, tmp_path: Path) -> None:
    """Clear Linux follows its Liberty guide; Zed's registry still knows those names, the
    Liberty-only ones (auth_uri, auth_plugin) as deprecated aliases and nothing else."""
    text = files_of(settings_for("clearlinux"), CREDENTIALS, None)[path]
    result = validate(text, tmp_path)
    assert result.returncode == 0, result.stderr
    deprecated = {
        line.split("Deprecated opt ")[1].split()[0] for line in result.stderr.splitlines() if "Deprecated opt" in line
    }
    assert deprecated == {"keystone_authtoken/auth_uri", "keystone_authtoken/auth_plugin"}


# Every printable ASCII punctuation character and a space, placed where parsers bite most: at
# both ends (quotes, white space), and beside '$', '%', '@', ':' and '/'.
HOSTILE_PASSWORDS = {
    "db": ' "' + "".join(reversed(string.punctuation)) + ' x"',
    "glance": "'" + string.punctuation + " '",
    "limits": " $glance_password %(x)s ${a} \\ ",
}


def test_every_printable_password_reads_back_exactly_through_oslo_config(tmp_path: Path) -> None:
    """Glance reads its config with oslo.config and connects with SQLAlchemy: both, for real."""
    credentials = Credentials(HOSTILE_PASSWORDS["db"], HOSTILE_PASSWORDS["glance"], HOSTILE_PASSWORDS["limits"])
    for variant in ("rhel", "debian"):
        settings = settings_for(variant)
        # The files as the host gets them: glance-api.conf, and the credentials in their drop-in
        # directory, which oslo.config finds by itself for Glance's programs (here: --config-dir).
        drop_in = credentials_path(settings)
        assert drop_in is not None
        files = files_of(settings, credentials, ENDPOINT_ID)
        conf_dir = tmp_path / variant / "glance.conf.d"
        conf_dir.mkdir(parents=True)
        conf = tmp_path / variant / "glance-api.conf"
        conf.write_text(files[API_CONF])
        (conf_dir / drop_in.rsplit("/", 1)[1]).write_text(files[drop_in])
        program = (
            "import json, sys\n"
            "from oslo_config import cfg\n"
            "from sqlalchemy.engine import make_url\n"
            "conf = cfg.ConfigOpts()\n"
            "conf.register_opt(cfg.StrOpt('connection'), group='database')\n"
            "conf.register_opt(cfg.StrOpt('password'), group='keystone_authtoken')\n"
            "conf.register_opt(cfg.StrOpt('password'), group='oslo_limit')\n"
            "conf(['--config-file', sys.argv[1], '--config-dir', sys.argv[2]], project='glance')\n"
            "print(json.dumps({'db': make_url(conf.database.connection).password,\n"
            "                  'glance': conf.keystone_authtoken.password,\n"
            "                  'limits': conf.oslo_limit.password}))\n"
        )
        result = subprocess.run(
            [DEBIAN_PYTHON, "-c", program, str(conf), str(conf_dir)],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        read_back = json.loads(result.stdout)
        expected = dict(HOSTILE_PASSWORDS) if variant == "rhel" else {**HOSTILE_PASSWORDS, "limits": None}
        assert read_back == expected, variant


def test_tls_options_are_real(tmp_path: Path) -> None:
    """A stack served over TLS on its hosts, trusting a private CA, with every store type (Swift's
    Keystone over https): the listen, proxy, CA and store CA options are Glance's own."""
    authority = Authority()
    server = authority.issue("controller")
    stores = [{**store, "authUrl": "https://keystone.example/v3"} if store is SWIFT else store for store in EVERY_TYPE]
    tls = {"tlsCertificate": server.certificate, "tlsPrivateKey": server.key, "tlsCaBundle": authority.pem}
    urls = {"publicUrl": "", "internalUrl": "", "adminUrl": ""}
    config = {**stack_config("debian"), **TEST_SECRETS, **urls, **tls, "stores": stores, "defaultStore": "local"}
    raw = {key: value if isinstance(value, str) else json.dumps(value) for key, value in config.items()}
    settings = load_settings(raw, frozenset(TEST_SECRETS) | {"stores", "tlsPrivateKey"})
    sections = effective_sections(settings, CREDENTIALS, ENDPOINT_ID)
    assert sections["oslo_middleware"] and sections["DEFAULT"]["bind_host"] == "127.0.0.1"
    assert sections["objects"]["swift_store_cacert"] and sections["volumes"]["cinder_ca_certificates_file"]
    result = validate_with_stores(settings, render_ini(sections), tmp_path)
    assert result.returncode == 0, result.stderr
    assert "ERROR" not in result.stderr
    assert set(sections["keystone_authtoken"]) <= authtoken_option_names()
