"""Image stores: every type's rendering, parsed back, and every validation rule's message."""

from __future__ import annotations

import configparser
import json
from typing import Any, get_args

import pytest

from components.rendering import API_CONF, Credentials, config_files
from components.settings import ConfigError, Settings, load_settings
from components.store_options import SWIFT_REFERENCES
from components.stores import STORE_TYPES, Store
from tests.unit.harness import (
    TEST_CEPH_KEY,
    TEST_SECRETS,
    pinned,
    plain,
    project_defaults,
    run_program,
    run_stack,
    stack_config,
)

DROP_IN = "/etc/glance/glance.conf.d/50-glance-pulumi-credentials.conf"
CREDENTIALS = Credentials("db-pw", "glance-pw", "limits-pw")
FILE = {"id": "local", "type": "file", "path": "/srv/glance/images/"}
SWIFT = {"id": "objects", "type": "swift", "container": "images", "createContainer": True}
RBD = {"id": "ceph", "type": "rbd", "pool": "glance-images", "monHosts": ["mon1", "mon2"], "keyring": TEST_CEPH_KEY}
S3 = {
    "id": "s3",
    "type": "s3",
    "endpoint": "https://s3.example:8443",
    "bucket": "glance",
    "accessKey": "AKIA1",
    "secretKey": "s3-secret",
}
CINDER = {"id": "volumes", "type": "cinder", "volumeType": "glance", "catalogInfo": "volumev3::internalURL"}
EVERY_TYPE: list[dict[str, Any]] = [FILE, SWIFT, RBD, S3, CINDER]


def load(profile: str = "debian", **keys: Any) -> Settings:
    config = {**project_defaults(), "profile": profile, **TEST_SECRETS, **pinned("controller"), **keys}
    raw = {key: value if isinstance(value, str) else json.dumps(value) for key, value in config.items()}
    return load_settings(raw, frozenset(TEST_SECRETS) | {"stores"})


def parse(text: str) -> configparser.ConfigParser:
    # [DEFAULT] would otherwise leak its options into every section.
    parser = configparser.ConfigParser(interpolation=None, default_section="__unused__")
    parser.read_string(text)
    return parser


def files_of(
    settings: Settings, credentials: Credentials = CREDENTIALS, endpoint_id: str | None = "endpoint-id"
) -> dict[str, str]:
    """path -> text of every file the node writes."""
    return {file.path: file.render(credentials, endpoint_id) for file in config_files(settings)}


# ---- rendering -------------------------------------------------------------------------


def test_zed_renders_the_multi_store_form_with_a_section_per_store() -> None:
    api = parse(files_of(load(stores=EVERY_TYPE, defaultStore="objects"))[API_CONF])
    assert api["DEFAULT"]["enabled_backends"] == "local:file, objects:swift, ceph:rbd, s3:s3, volumes:cinder"
    assert dict(api["glance_store"]) == {"default_backend": "objects"}
    assert dict(api["local"]) == {"filesystem_store_datadir": "/srv/glance/images/"}
    assert dict(api["objects"]) == {
        "swift_store_container": "images",
        "swift_store_create_container_on_put": "False",
        "swift_store_config_file": SWIFT_REFERENCES,
        "default_swift_reference": "objects",
        "swift_store_region": "RegionOne",
    }
    assert dict(api["ceph"]) == {
        "rbd_store_pool": "glance-images",
        "rbd_store_user": "glance",
        # Glance's own client config, not the host's shared /etc/ceph/ceph.conf.
        "rbd_store_ceph_conf": "/etc/ceph/glance-pulumi/ceph.conf",
    }
    assert dict(api["s3"]) == {
        "s3_store_host": "https://s3.example:8443",
        "s3_store_access_key": "AKIA1",
        "s3_store_bucket": "glance",
        "s3_store_create_bucket_on_put": "False",
    }
    assert dict(api["volumes"]) == {"cinder_volume_type": "glance", "cinder_catalog_info": "volumev3::internalURL"}
    # Multi-store stages uploads and import tasks in file stores of its own.
    assert api["os_glance_staging_store"]["filesystem_store_datadir"] == "/var/lib/glance/staging/"
    assert api["os_glance_tasks_store"]["filesystem_store_datadir"] == "/var/lib/glance/tasks_work_dir/"


def test_store_secrets_stay_out_of_the_main_file() -> None:
    settings = load(stores=EVERY_TYPE, defaultStore="objects")
    files = files_of(settings)
    assert "s3-secret" not in files[API_CONF] and TEST_CEPH_KEY not in files[API_CONF]
    assert parse(files[DROP_IN])["s3"]["s3_store_secret_key"] == "s3-secret"
    secret = [file.path for file in config_files(settings) if file.secret]
    assert secret == [DROP_IN, SWIFT_REFERENCES, "/etc/ceph/glance-pulumi/ceph.keyring"]
    # The files without a secret are rendered without the credentials.
    plain = [file.render(None, "e") for file in config_files(settings) if not file.secret]
    assert not any(TEST_CEPH_KEY in text or "glance-pw" in text for text in plain)


def test_swift_account_is_the_glance_user_in_the_service_project_by_default() -> None:
    references = parse(files_of(load(stores=[SWIFT]))[SWIFT_REFERENCES])
    assert dict(references["objects"]) == {
        "auth_version": "3",
        "auth_address": "http://controller:5000/v3",
        "user": "service:glance",
        "key": "glance-pw",
        "user_domain_name": "Default",
        "project_domain_name": "Default",
    }


def test_swift_account_of_its_own() -> None:
    store = {**SWIFT, "user": "images:glance-swift", "key": "own%key", "authUrl": "https://keystone.example/v3"}
    references = configparser.ConfigParser()  # glance_store's parser interpolates '%'
    references.read_string(files_of(load(stores=[store]))[SWIFT_REFERENCES])
    assert references["objects"]["user"] == "images:glance-swift"
    assert references["objects"]["key"] == "own%key"
    assert references["objects"]["auth_address"] == "https://keystone.example/v3"


def test_multi_tenant_swift_needs_no_account() -> None:
    store = {"id": "objects", "type": "swift", "multiTenant": True, "createContainerOnPut": True}
    settings = load(stores=[store])
    api = parse(files_of(settings)[API_CONF])
    assert api["objects"]["swift_store_multi_tenant"] == "True"
    assert api["objects"]["swift_store_create_container_on_put"] == "True"
    assert "swift_store_config_file" not in api["objects"]
    assert SWIFT_REFERENCES not in files_of(settings)


def test_rbd_writes_its_own_ceph_conf_and_keyring_never_the_shared_ones() -> None:
    settings = load(stores=[{**RBD, "user": "images", "cephConf": "/etc/ceph/prod.conf"}])
    files = files_of(settings)
    assert not [path for path in files if path.startswith("/etc/ceph/") and "/glance-pulumi/" not in path]
    ceph = parse(files["/etc/ceph/glance-pulumi/ceph.conf"])
    assert ceph["global"]["mon_host"] == "mon1,mon2"
    assert ceph["client.images"]["keyring"] == "/etc/ceph/glance-pulumi/ceph.keyring"
    keyring = parse(files["/etc/ceph/glance-pulumi/ceph.keyring"])
    assert keyring["client.images"]["key"] == TEST_CEPH_KEY
    assert parse(files[API_CONF])["ceph"]["rbd_store_ceph_conf"] == "/etc/ceph/glance-pulumi/ceph.conf"


def test_two_rbd_stores_get_a_pair_of_files_each() -> None:
    second = {**RBD, "id": "backup", "pool": "backup", "cephConf": "/etc/ceph/backup.conf"}
    files = files_of(load(stores=[RBD, second], defaultStore="ceph"))
    for store_id in ("ceph", "backup"):
        conf = parse(files[f"/etc/ceph/glance-pulumi/{store_id}.conf"])
        assert conf["client.glance"]["keyring"] == f"/etc/ceph/glance-pulumi/{store_id}.keyring"
        assert f"/etc/ceph/glance-pulumi/{store_id}.keyring" in files


def test_store_description_is_shown_by_the_stores_api() -> None:
    api = parse(files_of(load(stores=[{**FILE, "description": "Local disk"}]))[API_CONF])
    assert api["local"]["store_description"] == "Local disk"


def test_liberty_renders_the_single_store_form() -> None:
    settings = load("clearlinux", stores=[FILE, SWIFT], defaultStore="objects")
    api = parse(files_of(settings)[API_CONF])
    assert not api.has_option("DEFAULT", "enabled_backends") and not api.has_section("objects")
    store = api["glance_store"]
    assert (store["stores"], store["default_store"]) == ("file,swift,http", "swift")
    assert store["filesystem_store_datadir"] == "/srv/glance/images/"
    assert store["default_swift_reference"] == "objects"
    # Liberty names domains by id.
    assert parse(files_of(settings)[SWIFT_REFERENCES])["objects"]["user_domain_id"] == "default"


def test_without_stores_the_guides_file_store_is_rendered_as_before() -> None:
    api = parse(files_of(load(imageStorePath="/data/images"))[API_CONF])
    assert dict(api["glance_store"]) == {
        "stores": "file,http",
        "default_store": "file",
        "filesystem_store_datadir": "/data/images/",
    }
    assert not api.has_option("DEFAULT", "enabled_backends") and not api.has_section("os_glance_staging_store")


# ---- validation ------------------------------------------------------------------------

INVALID: list[tuple[str, dict[str, Any], str]] = [
    (
        "same id twice",
        {"stores": [FILE, {**SWIFT, "id": "local"}], "defaultStore": "local"},
        "glance:stores id 'local' is used more than once; ids must be unique",
    ),
    (
        "default is not a store",
        {"stores": [FILE, SWIFT], "defaultStore": "ceph"},
        "glance:defaultStore 'ceph' is not a store id; one of: local, objects",
    ),
    (
        "several stores without a default",
        {"stores": [FILE, SWIFT]},
        "glance:defaultStore required with several stores; one of: local, objects",
    ),
    ("default without stores", {"defaultStore": "local"}, "glance:defaultStore only used with stores"),
    (
        "store type the release lacks",
        {"profile": "clearlinux", "stores": [S3]},
        "glance:stores[0].type Glance liberty (profile clearlinux) has no s3 store; supported: file, swift, rbd,",
    ),
    (
        "two stores of a type on Liberty",
        {"profile": "clearlinux", "stores": [FILE, {**FILE, "id": "other", "path": "/b"}], "defaultStore": "local"},
        "glance:stores Glance liberty configures one store per type (no multi-store); file is declared more",
    ),
    ("unknown type", {"stores": [{"id": "x", "type": "nfs"}]}, "glance:stores[0].type must be one of: file, swift"),
    ("type missing", {"stores": [{"id": "x", "path": "/a"}]}, "glance:stores[0].type must be one of: file, swift"),
    ("file without path", {"stores": [{"id": "x", "type": "file"}]}, "glance:stores[0].path is required"),
    (
        "rbd without monitors",
        {"stores": [{"id": "c", "type": "rbd", "keyring": TEST_CEPH_KEY}]},
        "glance:stores[0].monHosts is required",
    ),
    (
        "rbd without keyring",
        {"stores": [{"id": "c", "type": "rbd", "monHosts": ["m"]}]},
        "stores[0].keyring is required",
    ),
    (
        "rbd keyring not a cephx key",
        {"stores": [{**RBD, "keyring": "[client.glance]"}]},
        "glance:stores[0].keyring must be the cephx key itself",
    ),
    ("s3 without bucket", {"stores": [{k: v for k, v in S3.items() if k != "bucket"}]}, "stores[0].bucket is required"),
    (
        "s3 without secret key",
        {"stores": [{k: v for k, v in S3.items() if k != "secretKey"}]},
        "].secretKey is required",
    ),
    (
        "cinder without volume type",
        {"stores": [{"id": "v", "type": "cinder"}]},
        "glance:stores[0].volumeType is required",
    ),
    (
        "cinder found two ways",
        {"stores": [{**CINDER, "endpointTemplate": "http://cinder:8776/v3/%(tenant)s"}]},
        "glance:stores[0].catalogInfo, endpointTemplate give one way to find Cinder, not both",
    ),
    (
        "unknown store option",
        {"stores": [{**SWIFT, "containerName": "x"}]},
        "glance:stores[0].containerName is not a known key",
    ),
    (
        "multi-tenant swift with an account",
        {"stores": [{**SWIFT, "multiTenant": True, "key": "k"}]},
        "glance:stores[0].key, createContainer not used by a multiTenant store",
    ),
    ("id with a colon", {"stores": [{**FILE, "id": "a:b"}]}, "glance:stores[0].id must be letters, digits"),
    ("reserved id", {"stores": [{**FILE, "id": "glance_store"}]}, "glance:stores[0].id 'glance_store' is reserved"),
    (
        "reserved staging id",
        {"stores": [{**FILE, "id": "os_glance_staging_store"}]},
        "'os_glance_staging_store' is reserved",
    ),
    (
        "imageStorePath beside stores",
        {"stores": [FILE], "imageStorePath": "/srv/images"},
        "glance:imageStorePath not used with stores",
    ),
    ("empty stores", {"stores": [], "defaultStore": "x"}, "glance:defaultStore only used with stores"),
    (
        "two file stores in one directory",
        {"stores": [FILE, {**FILE, "id": "twin"}], "defaultStore": "local"},
        "glance:stores two file stores have the same path",
    ),
]


@pytest.mark.parametrize(("change", "message"), [case[1:] for case in INVALID], ids=[case[0] for case in INVALID])
def test_invalid_stores_are_refused_before_any_resource(change: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as refused:
        load(**change)
    assert message in str(refused.value)


def test_invalid_stores_register_nothing() -> None:
    from tests.unit.harness import Deployment

    deployment = Deployment()
    with pytest.raises(ConfigError):
        run_program({**stack_config("debian-swift"), **TEST_SECRETS, "defaultStore": "nowhere"}, deployment)
    assert deployment.registrations == []


def test_a_store_credential_set_without_secret_is_refused() -> None:
    config = {**project_defaults(), "profile": "debian", **TEST_SECRETS, **pinned("controller"), "stores": [S3]}
    raw = {key: value if isinstance(value, str) else json.dumps(value) for key, value in config.items()}
    with pytest.raises(ConfigError) as refused:
        load_settings(raw, frozenset(TEST_SECRETS))
    assert (
        "glance:stores[0].secretKey holds a credential: set it with "
        "`pulumi config set --secret --path 'glance:stores[0].secretKey'`" in str(refused.value)
    )


# ---- the program -----------------------------------------------------------------------


def test_swift_stack_creates_its_container_in_the_glance_account() -> None:
    deployment = run_stack("debian-swift", glancePassword="gl-pw")
    container = deployment.named("glance-objects-container")
    assert container.inputs["name"] == "glance" and container.protect
    account = deployment.named("glance-objects-account")
    assert (account.inputs["userName"], account.inputs["tenantName"]) == ("glance", "service")
    assert "password" in account.secret_inputs
    # Glance starts only once the container exists, and the account's user has its role.
    assert deployment.depends_on("glance-restart", "glance-objects-container")
    assert deployment.depends_on("glance-objects-account", "glance-service-admin")
    # The references file travels as a secret; the main file names it.
    references = deployment.named("glance-config-glance-pulumi-swift")
    assert "stdin" in references.secret_inputs and "key = gl-pw" in plain(references.inputs["stdin"])
    main = plain(deployment.named("glance-config-glance-api").inputs["stdin"])
    assert "default_backend = objects" in main and "gl-pw" not in main
    assert "python3-swiftclient" in deployment.named("glance-install").inputs["create"]


def test_store_directories_are_made_and_the_file_stores_protected() -> None:
    deployment = run_stack("debian-swift")
    store = deployment.named("glance-image-store-local")
    assert store.protect and "/var/lib/glance/images" in store.inputs["create"]
    work = deployment.named("glance-work-dirs")
    assert not work.protect
    assert "/var/lib/glance/staging /var/lib/glance/tasks_work_dir" in work.inputs["create"]
    assert deployment.depends_on("glance-units", "glance-work-dirs")


def test_ceph_stack_writes_its_files_like_the_other_configs() -> None:
    deployment = run_stack("rhel-ceph")
    ceph_conf = deployment.named("glance-config-rbd-ceph")
    assert "stdin" not in ceph_conf.secret_inputs and "mon_host = ceph-mon1" in plain(ceph_conf.inputs["stdin"])
    assert "/etc/ceph/glance-pulumi/ceph.conf" in ceph_conf.inputs["create"]
    keyring = deployment.named("glance-config-rbd-ceph-keyring")
    assert "stdin" in keyring.secret_inputs and TEST_CEPH_KEY in plain(keyring.inputs["stdin"])
    ownership = deployment.named("glance-ownership").inputs["create"]
    assert "/etc/ceph/glance-pulumi/ceph.conf" in ownership and "/etc/ceph/glance-pulumi/ceph.keyring" in ownership
    # The shared /etc/ceph/ceph.conf (the stack's cephConf) is neither written, owned nor removed.
    for step in deployment.registrations:
        for field in ("create", "delete"):
            assert "/etc/ceph/ceph.conf" not in str(step.inputs.get(field, "")), (step.name, field)
    install = deployment.named("glance-install").inputs["create"]
    assert "python3-rbd python3-rados" in install
    assert not any(r.type.startswith("openstack:objectstorage") for r in deployment.registrations)


def test_rbd_steps_keep_their_names_from_before_as_aliases() -> None:
    """Steps named after the files in /etc/ceph are the same steps now: an upgrade rewrites
    them in place instead of deleting the shared file after writing Glance's own."""
    names = {file.path: (file.step_name, file.aliases) for file in config_files(load(stores=[RBD]))}
    assert names["/etc/ceph/glance-pulumi/ceph.conf"] == ("rbd-ceph", ("ceph",))
    assert names["/etc/ceph/glance-pulumi/ceph.keyring"] == ("rbd-ceph-keyring", ("ceph.client.glance.keyring",))
    assert names[API_CONF] == ("glance-api", ())


def test_an_old_step_name_two_rbd_stores_share_is_neither_ones_alias() -> None:
    names = {
        file.step_name: file.aliases
        for file in config_files(load(stores=[RBD, {**RBD, "id": "backup"}], defaultStore="ceph"))
    }
    assert names["rbd-ceph"] == names["rbd-backup"] == names["rbd-ceph-keyring"] == ()


def test_the_store_types_are_the_models_tags() -> None:
    """STORE_TYPES (the messages' list) and the models' `type` tags are one list."""
    tags = tuple(model.model_fields["type"].default for model in get_args(Store))
    assert tags == STORE_TYPES


def test_a_swift_store_cannot_set_the_url_the_program_derives() -> None:
    with pytest.raises(ConfigError) as refused:
        load(stores=[{**SWIFT, "apiUrl": "http://keystone.example/v3"}])
    assert "glance:stores[0].apiUrl is not a known key" in str(refused.value)


def test_a_stores_change_restarts_glance() -> None:
    before = run_stack("debian-swift")
    stores = [*stack_config("debian-swift")["stores"], {"id": "more", "type": "file", "path": "/srv/more"}]
    after = run_stack("debian-swift", stores=stores)
    assert before.named("glance-restart").inputs["triggers"] != after.named("glance-restart").inputs["triggers"]
    assert after.named("glance-image-store-more").protect
