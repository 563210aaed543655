#!/bin/bash
# Provisions the lab controller image. Its text is part of the image cache key,
# so any edit here rebuilds the image.
#
#   provision.sh packages   run by `systemd-nspawn -D ROOTFS` WITHOUT booting, on the
#                           host's network: apt installs and all static configuration.
#   provision.sh bootstrap  run by lab-provision.service inside the BOOTED container on a
#                           private network (only its own loopback, so a build never
#                           collides with a running lab's ports): database accounts,
#                           Keystone bootstrap, Swift's service user and endpoints,
#                           RabbitMQ's user for Glance's notifications.
#                           Powers the container off when done.
#   provision.sh cluster    run by lab-cluster.service at every boot of a cluster session
#                           (lab.cluster), before any service starts; skipped otherwise
#                           (ConditionPathExists). Binds this controller's services to its
#                           own address and writes HAProxy's config. Session overlay only.
#
# Inputs (bootstrap): /root/lab-secrets.env, written by the builder, mode 0600,
# deleted by the builder afterwards. Secrets only ever travel through files, stdin
# and environment, never through argv (visible to every process on the host).
set -euo pipefail

# Packages the lab itself needs (the prerequisites the Glance install guides assume).
LAB_PACKAGES=(
    mariadb-server mariadb-client
    postgresql-15 postgresql-client-15
    memcached
    keystone uwsgi-core uwsgi-plugin-python3
    python3-openstackclient
    # Swift 2.30, a real object store for Glance. The proxy's authtoken filter needs
    # keystonemiddleware, only a Recommends of swift-proxy (keystone pulls it in anyway).
    swift swift-proxy swift-account swift-container swift-object python3-keystonemiddleware
    # RabbitMQ 3.10 (Erlang 25), for Glance's oslo.messaging notifications; python3-amqp
    # for the lab's own client on the controller (lab/amqp_remote.py, shipped over ssh).
    rabbitmq-server python3-amqp
    curl ca-certificates
    # The load balancer in front of Glance on the two-controller lab (lab.cluster). Disabled:
    # only a cluster session's first controller starts it (systemd.wants= on its command line).
    haproxy
)
# Packages the deployment installs later: downloaded only, so that installing them
# inside the lab needs no network and is fast.
PREFETCH_PACKAGES=(glance-api python3-pymysql python3-psycopg2)

export DEBIAN_FRONTEND=noninteractive
export LC_ALL=C.UTF-8

log() { echo "[provision $(date +%T)] $*"; }

stage_packages() {
    # No systemd runs during this stage; deny service starts from maintainer scripts
    # (they would start daemons inside a throw-away namespace). Removed at the end so
    # the deployment's own `apt-get install glance-api` behaves as on any Debian host.
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
    chmod 0755 /usr/sbin/policy-rc.d

    # The mirror may serve a dated snapshot whose Release files have expired.
    cat >/etc/apt/apt.conf.d/99lab-snapshot <<'EOF'
Acquire::Check-Valid-Until "false";
Acquire::Check-Date "false";
EOF
    log "apt-get update"
    apt-get update -q
    # Security/point updates the base system lacks, as a maintained host would have.
    apt-get upgrade -y -q
    log "installing lab packages"
    apt-get install -y -q --no-install-recommends "${LAB_PACKAGES[@]}"

    # Keep the image small: drop the archives of what is installed, then fetch the
    # deployment's packages. Recommends stay on here, exactly as the deployment's own
    # `apt-get install -y glance-api` will resolve them. apt lists are kept.
    apt-get clean
    log "downloading (not installing) ${PREFETCH_PACKAGES[*]}"
    apt-get install -y -q --download-only "${PREFETCH_PACKAGES[@]}"

    configure_sshd
    configure_mariadb
    configure_postgresql
    configure_memcached
    configure_keystone
    configure_swift
    configure_rabbitmq
    configure_haproxy
    install_provision_unit
    install_cluster_unit

    rm -f /usr/sbin/policy-rc.d
    log "packages stage done"
}

configure_sshd() {
    # Key-only root login on 2222, loopback only. Pulumi's command provider opens many
    # sessions at once: raise the limits that would otherwise drop connections.
    cat >/etc/ssh/sshd_config.d/50-lab.conf <<'EOF'
Port 2222
ListenAddress 127.0.0.1
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UseDNS no
MaxStartups 100:30:200
MaxSessions 100
EOF
    install -d -m 0700 /root/.ssh
    # `up` bind-mounts the session's public key here; the file must exist to be a target.
    install -m 0600 /dev/null /root/.ssh/authorized_keys
}

configure_mariadb() {
    cat >/etc/mysql/mariadb.conf.d/99-lab.cnf <<'EOF'
[mysqld]
bind-address = 127.0.0.1
port = 3306
# Small lab: keep the footprint modest.
innodb_buffer_pool_size = 64M
max_connections = 200
EOF
}

configure_postgresql() {
    # Debian's postgresql.conf includes conf.d. pg_hba.conf stays Debian's default:
    # `host all all 127.0.0.1/32 scram-sha-256` already admits password logins over TCP.
    cat >/etc/postgresql/15/main/conf.d/lab.conf <<'EOF'
listen_addresses = '127.0.0.1'
port = 5432
EOF
}

configure_memcached() {
    sed -i -e 's/^-l .*/-l 127.0.0.1/' -e 's/^-p .*/-p 11211/' /etc/memcached.conf
    grep -q '^-l 127.0.0.1$' /etc/memcached.conf
}

configure_keystone() {
    # The package's keystone-uwsgi.ini loads the uwsgi apparmor plugin, which fails on
    # this kernel (aa_change_profile: Invalid argument). Serve keystone-wsgi-public from
    # our own ini and unit instead; the unit in /etc overrides the package's in /lib.
    cat >/etc/keystone/lab-uwsgi.ini <<'EOF'
[uwsgi]
plugins = python3
http-socket = 127.0.0.1:5000
wsgi-file = /usr/bin/keystone-wsgi-public
uid = keystone
gid = keystone
master = true
processes = 2
threads = 4
lazy-apps = true
die-on-term = true
buffer-size = 65535
post-buffering = 4096
# http-socket does not keep connections alive but would not say so: clients (requests,
# Go's net/http in the Pulumi provider) then reuse a closed connection and get
# "Connection reset by peer" at random. Say it.
add-header = Connection: close
# Workers segfault in OpenSSL's atexit cleanup on every stop; skip those hooks.
skip-atexit = true
skip-atexit-teardown = true
# keystone-wsgi-public ignores --config-file; it reads this variable.
env = OS_KEYSTONE_CONFIG_FILES=/etc/keystone/keystone.conf
EOF
    cat >/etc/systemd/system/keystone.service <<'EOF'
[Unit]
Description=OpenStack Keystone (lab: uwsgi http-socket on 127.0.0.1:5000)
After=network.target mariadb.service memcached.service
Wants=mariadb.service

[Service]
Type=simple
ExecStart=/usr/bin/uwsgi --ini /etc/keystone/lab-uwsgi.ini
Restart=on-failure
RestartSec=2
KillSignal=SIGTERM

[Install]
WantedBy=multi-user.target
EOF
    # Enabled only once the database is bootstrapped (bootstrap stage).
    systemctl disable keystone.service >/dev/null 2>&1 || true
    cp -n /etc/keystone/keystone.conf /etc/keystone/keystone.conf.debian
}

# Swift: a proxy and one account, container and object server, one replica on one
# device, all on loopback.
SWIFT_STORAGE=(account:6202 container:6201 object:6200)
SWIFT_UNITS=(swift-account swift-container swift-object swift-proxy)
# Stands in proxy-server.conf for the swift user's password until the bootstrap stage.
SWIFT_PASSWORD_PLACEHOLDER=@SWIFT_SERVICE_PASSWORD@

configure_swift() {
    # The hash path prefix/suffix only have to stay the same for the life of the rings,
    # which live in the image: fixed lab values.
    cat >/etc/swift/swift.conf <<'EOF'
[swift-hash]
swift_hash_path_prefix = glance-pulumi-lab-prefix
swift_hash_path_suffix = glance-pulumi-lab-suffix

[storage-policy:0]
name = Policy-0
default = yes
EOF

    local entry server port
    for entry in "${SWIFT_STORAGE[@]}"; do
        server=${entry%%:*} port=${entry##*:}
        # workers = 1: a parent and one worker each (2 cores; memory matters more).
        # (workers = 0, no fork, would save only ~40 MiB of the ~250 for all four.)
        cat >"/etc/swift/${server}-server.conf" <<EOF
[DEFAULT]
bind_ip = 127.0.0.1
bind_port = ${port}
workers = 1
devices = /srv/node
mount_check = false
swift_dir = /etc/swift
log_name = swift-${server}-server

[pipeline:main]
pipeline = healthcheck ${server}-server

[app:${server}-server]
use = egg:swift#${server}

[filter:healthcheck]
use = egg:swift#healthcheck
EOF
    done

    # The bootstrap stage puts the swift user's password in place of the placeholder:
    # root:swift 0640 from the start. delay_auth_decision: keystoneauth decides, so
    # that ACLs and anonymous /healthcheck work.
    install -m 0640 -o root -g swift /dev/null /etc/swift/proxy-server.conf
    cat >/etc/swift/proxy-server.conf <<EOF
[DEFAULT]
bind_ip = 127.0.0.1
bind_port = 8080
workers = 1
swift_dir = /etc/swift
log_name = swift-proxy-server

[pipeline:main]
pipeline = catch_errors gatekeeper healthcheck proxy-logging cache listing_formats authtoken keystoneauth copy slo dlo proxy-logging proxy-server

[app:proxy-server]
use = egg:swift#proxy
# A project's account (AUTH_<project id>) comes into being with its first container.
account_autocreate = true

[filter:catch_errors]
use = egg:swift#catch_errors

[filter:gatekeeper]
use = egg:swift#gatekeeper

[filter:healthcheck]
use = egg:swift#healthcheck

[filter:proxy-logging]
use = egg:swift#proxy_logging

[filter:cache]
use = egg:swift#memcache
memcache_servers = 127.0.0.1:11211

[filter:listing_formats]
use = egg:swift#listing_formats

[filter:authtoken]
paste.filter_factory = keystonemiddleware.auth_token:filter_factory
www_authenticate_uri = http://127.0.0.1:5000/v3
auth_url = http://127.0.0.1:5000/v3
auth_type = password
project_domain_id = default
user_domain_id = default
project_name = service
username = swift
password = ${SWIFT_PASSWORD_PLACEHOLDER}
region_name = RegionOne
delay_auth_decision = true
cache = swift.cache
include_service_catalog = false
service_token_roles_required = true

[filter:keystoneauth]
use = egg:swift#keystoneauth
operator_roles = admin, member

[filter:copy]
use = egg:swift#copy

[filter:slo]
use = egg:swift#slo

[filter:dlo]
use = egg:swift#dlo
EOF

    # Rings: 2^10 partitions, 1 replica, one device d1 on 127.0.0.1.
    install -d -o swift -g swift -m 0755 /srv/node /srv/node/d1
    for entry in "${SWIFT_STORAGE[@]}"; do
        server=${entry%%:*} port=${entry##*:}
        rm -f "/etc/swift/${server}.builder" "/etc/swift/${server}.ring.gz"
        swift-ring-builder "/etc/swift/${server}.builder" create 10 1 1
        swift-ring-builder "/etc/swift/${server}.builder" add --region 1 --zone 1 \
            --ip 127.0.0.1 --port "${port}" --device d1 --weight 100
        swift-ring-builder "/etc/swift/${server}.builder" rebalance
        test -s "/etc/swift/${server}.ring.gz"
    done

    # The packages enable some twenty units (auditors, replicators, updaters, reaper,
    # sharder, reconciler, container-sync, reconstructor); with one replica on one
    # device they have nothing to do but cost memory. Keep the three storage servers;
    # the proxy is enabled once it has its password (bootstrap stage).
    local link unit
    for link in /etc/systemd/system/multi-user.target.wants/swift-*.service; do
        unit=${link##*/}
        case ${unit%.service} in
            swift-account | swift-container | swift-object) ;;
            *) systemctl disable "$unit" ;;
        esac
    done
    # rsyslog came with swift. journald already keeps every line (swift logs to
    # /dev/log); a second copy under /var/log would only fill the session's tmpfs.
    systemctl disable rsyslog.service
    check_xattrs /srv/node/d1
}

check_xattrs() {  # check_xattrs DIR: the swift user can set user.* xattrs there
    # The object server keeps an object's metadata in user.* xattrs, a pickle split into
    # 254-byte values (user.swift.metadata, ...metadata1, ...). Checked here on the
    # build's filesystem; tests/lab checks a session's overlay (tmpfs upper layer, which
    # has user xattrs since Linux 6.6).
    runuser -u swift -- /usr/bin/python3 - "$1" <<'EOF'
import os, sys
path = os.path.join(sys.argv[1], ".xattr-probe")
with open(path, "wb") as probe:
    for name in ("user.swift.metadata", "user.swift.metadata1"):
        os.setxattr(probe.fileno(), name, b"x" * 254)
    ok = os.getxattr(probe.fileno(), "user.swift.metadata1") == b"x" * 254
os.unlink(path)
sys.exit(0 if ok else 1)
EOF
}

configure_rabbitmq() {
    # AMQP on loopback only (lab-cluster.service adds the first controller's address).
    # Erlang's distribution (how rabbitmqctl reaches the node) and the port mapper (epmd)
    # stay on loopback too: with host networking they would otherwise listen on every
    # address of the machine. The node name does not depend on the hostname, which a
    # cluster session changes at boot: the node's database in the image is named after it.
    cat >/etc/rabbitmq/rabbitmq-env.conf <<'EOF'
NODENAME=rabbit@localhost
# Should erl start epmd itself (it finds epmd.socket's first).
ERL_EPMD_ADDRESS=127.0.0.1
# rabbitmqctl & co. run a distributed Erlang node of their own, too.
CTL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}"
EOF
    cat >/etc/rabbitmq/rabbitmq.conf <<'EOF'
listeners.tcp.1 = 127.0.0.1:5672
distribution.listener.interface = 127.0.0.1
distribution.listener.port_range.min = 25672
distribution.listener.port_range.max = 25672
# Publishers are blocked above this (idle use is ~100 MiB); the default, 40 % of the
# machine's memory, would let a runaway lab take gigabytes.
vm_memory_high_watermark.absolute = 512MiB
# guest is deleted at bootstrap; were it to come back, from loopback only.
loopback_users.guest = true
EOF
    # The package's epmd.socket listens on [::]:4369, i.e. on every address.
    install -d /etc/systemd/system/epmd.socket.d
    cat >/etc/systemd/system/epmd.socket.d/lab.conf <<'EOF'
[Socket]
ListenStream=
ListenStream=127.0.0.1:4369
EOF
    # RabbitMQ shuts down cleanly on SIGTERM. The package's ExecStop, `rabbitmqctl stop`,
    # boots a second Erlang VM first (slower `down`) and fails at poweroff once epmd is gone.
    install -d /etc/systemd/system/rabbitmq-server.service.d
    cat >/etc/systemd/system/rabbitmq-server.service.d/lab.conf <<'EOF'
[Service]
ExecStop=
EOF
    # The package enables it already; it first starts at the bootstrap stage.
    systemctl enable rabbitmq-server.service
}

configure_haproxy() {
    # The package enables haproxy.service; the single lab does not run it, and a cluster
    # session's first controller pulls it in at boot with a config made for that session.
    systemctl disable haproxy.service
}

install_provision_unit() {
    # The builder copied this script to /usr/local/sbin/lab-provision.
    cat >/etc/systemd/system/lab-provision.service <<'EOF'
[Unit]
Description=Lab image bootstrap (build time only)
After=mariadb.service postgresql.service memcached.service rabbitmq-server.service
Wants=mariadb.service postgresql.service memcached.service rabbitmq-server.service

[Service]
Type=oneshot
ExecStart=/bin/sh -c '/usr/local/sbin/lab-provision bootstrap >/var/log/lab-provision.log 2>&1; echo $? >/var/log/lab-provision.rc; systemctl --no-block poweroff'
TimeoutStartSec=900

[Install]
WantedBy=multi-user.target
EOF
    systemctl enable lab-provision.service
}

install_cluster_unit() {
    # Runs only in cluster sessions: lab.cluster bind-mounts /etc/lab-cluster (cluster.env,
    # hosts, haproxy.cfg). Before sysinit.target, so before every service it reconfigures.
    cat >/etc/systemd/system/lab-cluster.service <<'EOF'
[Unit]
Description=Lab cluster session: bind services to this controller's address
DefaultDependencies=no
After=local-fs.target
Before=sysinit.target shutdown.target
Conflicts=shutdown.target
ConditionPathExists=/etc/lab-cluster/cluster.env

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/usr/local/sbin/lab-provision cluster

[Install]
WantedBy=sysinit.target
EOF
    systemctl enable lab-cluster.service
}

# ---- bootstrap stage (inside the booted container) --------------------------------

wait_for() {  # wait_for SECONDS DESCRIPTION COMMAND...
    local deadline=$((SECONDS + $1)) what=$2
    shift 2
    until "$@" >/dev/null 2>&1; do
        if ((SECONDS >= deadline)); then
            log "timed out waiting for $what"
            return 1
        fi
        sleep 0.5
    done
}

stage_bootstrap() {
    # shellcheck disable=SC1091
    source /root/lab-secrets.env
    : "${MYSQL_ADMIN_USER:?}" "${MYSQL_ADMIN_PASSWORD:?}" "${PG_ADMIN_PASSWORD:?}"
    : "${KEYSTONE_ADMIN_PASSWORD:?}" "${KEYSTONE_DB_PASSWORD:?}"
    : "${RABBITMQ_USER:?}" "${RABBITMQ_PASSWORD:?}"

    wait_for 120 mariadb mariadb-admin ping
    log "mariadb accounts"
    # 'localhost' and '127.0.0.1' are distinct hosts to MariaDB: a TCP client from
    # 127.0.0.1 matches '127.0.0.1' (or 'localhost' after name resolution), a socket
    # client matches 'localhost'. Create both so either way of connecting works.
    mariadb --batch <<EOF
CREATE DATABASE IF NOT EXISTS keystone;
CREATE USER IF NOT EXISTS 'keystone'@'localhost' IDENTIFIED BY '${KEYSTONE_DB_PASSWORD}';
CREATE USER IF NOT EXISTS 'keystone'@'127.0.0.1' IDENTIFIED BY '${KEYSTONE_DB_PASSWORD}';
GRANT ALL PRIVILEGES ON keystone.* TO 'keystone'@'localhost';
GRANT ALL PRIVILEGES ON keystone.* TO 'keystone'@'127.0.0.1';
CREATE USER IF NOT EXISTS '${MYSQL_ADMIN_USER}'@'localhost' IDENTIFIED BY '${MYSQL_ADMIN_PASSWORD}';
CREATE USER IF NOT EXISTS '${MYSQL_ADMIN_USER}'@'127.0.0.1' IDENTIFIED BY '${MYSQL_ADMIN_PASSWORD}';
GRANT ALL PRIVILEGES ON *.* TO '${MYSQL_ADMIN_USER}'@'localhost' WITH GRANT OPTION;
GRANT ALL PRIVILEGES ON *.* TO '${MYSQL_ADMIN_USER}'@'127.0.0.1' WITH GRANT OPTION;
FLUSH PRIVILEGES;
EOF

    wait_for 120 postgresql runuser -u postgres -- pg_isready -h /var/run/postgresql
    log "postgresql password"
    # PostgreSQL 15 stores it as SCRAM (password_encryption default).
    runuser -u postgres -- psql -q -v ON_ERROR_STOP=1 -v pw="${PG_ADMIN_PASSWORD}" <<'EOF'
ALTER USER postgres PASSWORD :'pw';
EOF

    log "keystone"
    cat >/etc/keystone/keystone.conf <<EOF
[DEFAULT]
log_dir = /var/log/keystone

[database]
connection = mysql+pymysql://keystone:${KEYSTONE_DB_PASSWORD}@127.0.0.1/keystone

[token]
provider = fernet

[cache]
enabled = true
backend = dogpile.cache.memcached
memcache_servers = 127.0.0.1:11211
EOF
    chown root:keystone /etc/keystone/keystone.conf
    chmod 0640 /etc/keystone/keystone.conf
    runuser -u keystone -- keystone-manage db_sync
    keystone-manage fernet_setup --keystone-user keystone --keystone-group keystone
    keystone-manage credential_setup --keystone-user keystone --keystone-group keystone
    # keystone-manage reads the password from the environment: keep it out of argv.
    OS_BOOTSTRAP_PASSWORD="${KEYSTONE_ADMIN_PASSWORD}" keystone-manage bootstrap \
        --bootstrap-username admin --bootstrap-project-name admin \
        --bootstrap-role-name admin \
        --bootstrap-admin-url http://127.0.0.1:5000/v3/ \
        --bootstrap-internal-url http://127.0.0.1:5000/v3/ \
        --bootstrap-public-url http://127.0.0.1:5000/v3/ \
        --bootstrap-region-id RegionOne

    systemctl enable --now keystone.service
    wait_for 120 keystone curl -fsS http://127.0.0.1:5000/v3

    export OS_AUTH_URL=http://127.0.0.1:5000/v3 OS_IDENTITY_API_VERSION=3
    export OS_USERNAME=admin OS_PASSWORD="${KEYSTONE_ADMIN_PASSWORD}"
    export OS_PROJECT_NAME=admin OS_USER_DOMAIN_NAME=Default OS_PROJECT_DOMAIN_NAME=Default
    export OS_REGION_NAME=RegionOne
    openstack project create --or-show --domain default \
        --description "Service Project" service -f value -c id
    # bootstrap creates admin, member and reader (since Rocky); make sure anyway.
    # (`openstack role create --or-show` is broken in this client: Resource.get() error.)
    for role in admin member reader; do
        openstack role show "$role" -f value -c id || openstack role create "$role" -f value -c id
    done
    openstack token issue -f value -c id >/dev/null

    bootstrap_swift
    bootstrap_rabbitmq

    # Nothing of this build should leak into the image's sessions.
    systemctl disable lab-provision.service
    rm -f /root/lab-secrets.env /root/.bash_history
    log "bootstrap stage done"
}

bootstrap_swift() {
    : "${SWIFT_SERVICE_PASSWORD:?}"
    log "swift: keystone user, service, endpoints"
    # Plain Keystone API calls (the openstack CLI would want the new user's password
    # in argv or on a terminal; it also costs ~2 s per call). Secrets in the environment.
    KEYSTONE_ADMIN_PASSWORD="${KEYSTONE_ADMIN_PASSWORD}" SWIFT_SERVICE_PASSWORD="${SWIFT_SERVICE_PASSWORD}" \
        /usr/bin/python3 - <<'EOF'
import json, os, urllib.request

KEYSTONE = "http://127.0.0.1:5000/v3"
SWIFT_URL = "http://127.0.0.1:8080/v1/AUTH_%(project_id)s"

def call(method, path, body=None, token=None):
    headers = {"Content-Type": "application/json"}
    if token:
        headers["X-Auth-Token"] = token
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(KEYSTONE + path, data=data, headers=headers, method=method)
    with urllib.request.urlopen(request, timeout=60) as response:
        text = response.read()
        return response.headers.get("X-Subject-Token"), (json.loads(text) if text else None)

def password_auth(user, password, project):
    return {"auth": {
        "identity": {"methods": ["password"], "password": {
            "user": {"name": user, "domain": {"id": "default"}, "password": password}}},
        "scope": {"project": {"name": project, "domain": {"id": "default"}}}}}

token, _ = call("POST", "/auth/tokens", password_auth("admin", os.environ["KEYSTONE_ADMIN_PASSWORD"], "admin"))
service_project = call("GET", "/projects?name=service", token=token)[1]["projects"][0]["id"]
admin_role = call("GET", "/roles?name=admin", token=token)[1]["roles"][0]["id"]
user = call("POST", "/users", {"user": {
    "name": "swift", "domain_id": "default", "default_project_id": service_project,
    "password": os.environ["SWIFT_SERVICE_PASSWORD"], "description": "Swift proxy (validates tokens)"}},
    token)[1]["user"]["id"]
call("PUT", f"/projects/{service_project}/users/{user}/roles/{admin_role}", token=token)
service = call("POST", "/services", {"service": {
    "name": "swift", "type": "object-store", "description": "OpenStack Object Storage"}}, token)[1]["service"]["id"]
for interface in ("public", "internal", "admin"):
    call("POST", "/endpoints", {"endpoint": {
        "service_id": service, "interface": interface, "region_id": "RegionOne", "url": SWIFT_URL}}, token)
# The new user can log in to the project the proxy names.
call("POST", "/auth/tokens", password_auth("swift", os.environ["SWIFT_SERVICE_PASSWORD"], "service"))
EOF

    log "swift: proxy credentials, start"
    # printf is a builtin: the password never appears in any process's argv.
    local conf
    conf=$(</etc/swift/proxy-server.conf)
    install -m 0640 -o root -g swift /dev/null /etc/swift/proxy-server.conf.new
    printf '%s\n' "${conf/"${SWIFT_PASSWORD_PLACEHOLDER}"/"${SWIFT_SERVICE_PASSWORD}"}" \
        >/etc/swift/proxy-server.conf.new
    mv /etc/swift/proxy-server.conf.new /etc/swift/proxy-server.conf
    if grep -qF "${SWIFT_PASSWORD_PLACEHOLDER}" /etc/swift/proxy-server.conf; then
        log "the swift password did not make it into proxy-server.conf"
        return 1
    fi
    systemctl enable swift-proxy.service
    systemctl start "${SWIFT_UNITS[@]/%/.service}"
    wait_for 120 "swift proxy" curl -fsS http://127.0.0.1:8080/healthcheck

    # End to end: a token of the service project is accepted for its account (the proxy
    # validated it with its own credentials) and an anonymous request is refused.
    # Nothing is written: the image's /srv/node stays empty.
    SWIFT_SERVICE_PASSWORD="${SWIFT_SERVICE_PASSWORD}" /usr/bin/python3 - <<'EOF'
import json, os, urllib.error, urllib.request

body = {"auth": {
    "identity": {"methods": ["password"], "password": {"user": {
        "name": "swift", "domain": {"id": "default"}, "password": os.environ["SWIFT_SERVICE_PASSWORD"]}}},
    "scope": {"project": {"name": "service", "domain": {"id": "default"}}}}}
request = urllib.request.Request("http://127.0.0.1:5000/v3/auth/tokens", data=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"}, method="POST")
with urllib.request.urlopen(request, timeout=60) as response:
    token = response.headers["X-Subject-Token"]
    catalog = json.load(response)["token"]["catalog"]
urls = [e["url"] for s in catalog if s["type"] == "object-store" for e in s["endpoints"] if e["interface"] == "public"]
assert len(urls) == 1, catalog
head = urllib.request.Request(urls[0], headers={"X-Auth-Token": token}, method="HEAD")
with urllib.request.urlopen(head, timeout=60) as response:
    assert response.status in (200, 204), response.status
try:
    urllib.request.urlopen(urllib.request.Request(urls[0], method="HEAD"), timeout=60)
    raise SystemExit("swift let an anonymous request in")
except urllib.error.HTTPError as error:
    assert error.code == 401, error.code
print("swift: token accepted for", urls[0])
EOF
}

bootstrap_rabbitmq() {
    wait_for 180 rabbitmq rabbitmqctl -q await_startup
    log "rabbitmq: user ${RABBITMQ_USER} on vhost /, guest deleted"
    rabbitmqctl -q delete_user guest
    # No password argument: rabbitmqctl reads it from stdin (printf is a builtin).
    printf '%s\n' "${RABBITMQ_PASSWORD}" | rabbitmqctl -q add_user "${RABBITMQ_USER}"
    rabbitmqctl -q set_permissions -p / "${RABBITMQ_USER}" '.*' '.*' '.*'
    local users
    users=$(rabbitmqctl -q list_users --formatter json)
    if [[ ${users} != *"\"${RABBITMQ_USER}\""* || ${users} == *'"guest"'* ]]; then
        log "rabbitmq: expected user ${RABBITMQ_USER} and no guest, found: ${users}"
        return 1
    fi
    # The user logs in over AMQP with that password and may declare; a wrong one is refused.
    RABBITMQ_USER="${RABBITMQ_USER}" RABBITMQ_PASSWORD="${RABBITMQ_PASSWORD}" /usr/bin/python3 - <<'EOF'
import os
import amqp

def connect(password):
    connection = amqp.Connection("127.0.0.1:5672", userid=os.environ["RABBITMQ_USER"], password=password,
                                 virtual_host="/", connect_timeout=10)
    connection.connect()
    return connection

with connect(os.environ["RABBITMQ_PASSWORD"]) as connection:
    channel = connection.channel()
    channel.exchange_declare("lab-probe", "topic", durable=False, auto_delete=False)
    channel.exchange_delete("lab-probe")
try:
    connect("wrong-password").close()
    raise SystemExit("rabbitmq accepted a wrong password")
except amqp.exceptions.AccessRefused:
    pass
print("rabbitmq: login ok")
EOF
    # Its logs of this build should not greet every session (it writes until it stops).
    systemctl stop rabbitmq-server.service
    find /var/log/rabbitmq -type f -delete
}

# ---- cluster stage (every boot of a cluster session, before the services) ---------

rewrite() {  # rewrite FILE SED_SCRIPT EXPECTED_LINE: edit in place, then insist on the result
    sed -i -e "$2" "$1"
    if ! grep -qxF -- "$3" "$1"; then
        log "cluster: $1 has no line '$3' after the rewrite"
        return 1
    fi
}

stage_cluster() {
    # shellcheck disable=SC1091
    source /etc/lab-cluster/cluster.env
    : "${LAB_CLUSTER_ROLE:?}" "${LAB_CLUSTER_HOSTNAME:?}" "${LAB_CLUSTER_ADDRESS:?}" "${LAB_CLUSTER_SUBNET:?}"
    local address=${LAB_CLUSTER_ADDRESS}
    # Both controllers' names, on both (systemd.hostname= on the command line set the name).
    install -m 0644 /etc/lab-cluster/hosts /etc/hosts
    printf '%s\n' "${LAB_CLUSTER_HOSTNAME}" >/etc/hostname
    rewrite /etc/ssh/sshd_config.d/50-lab.conf \
        "/^ListenAddress 127.0.0.1\$/a ListenAddress ${address}" "ListenAddress ${address}"
    if [[ ${LAB_CLUSTER_ROLE} != primary ]]; then
        log "cluster: ${LAB_CLUSTER_HOSTNAME} (${address}): sshd only"
        return 0
    fi
    # The first controller keeps every lab service; the others reach them at its address.
    # Loopback stays bound too: the services' own clients (Keystone's database and cache,
    # the Swift proxy's storage servers and cache) keep using 127.0.0.1.
    rewrite /etc/mysql/mariadb.conf.d/99-lab.cnf \
        's/^bind-address = 127.0.0.1$/bind-address = 0.0.0.0/' "bind-address = 0.0.0.0"
    rewrite /etc/postgresql/15/main/conf.d/lab.conf \
        "s/^listen_addresses = '127.0.0.1'\$/listen_addresses = '127.0.0.1,${address}'/" \
        "listen_addresses = '127.0.0.1,${address}'"
    printf 'host    all             all             %s            scram-sha-256\n' "${LAB_CLUSTER_SUBNET}" \
        >>/etc/postgresql/15/main/pg_hba.conf
    rewrite /etc/memcached.conf "s/^-l 127.0.0.1\$/-l 127.0.0.1,${address}/" "-l 127.0.0.1,${address}"
    rewrite /etc/keystone/lab-uwsgi.ini \
        's/^http-socket = 127.0.0.1:5000$/http-socket = 0.0.0.0:5000/' "http-socket = 0.0.0.0:5000"
    # GNU sed -i keeps the file's owner and mode (root:swift 0640: it holds a password).
    rewrite /etc/swift/proxy-server.conf 's/^bind_ip = 127.0.0.1$/bind_ip = 0.0.0.0/' "bind_ip = 0.0.0.0"
    rewrite /etc/swift/proxy-server.conf \
        "s|^www_authenticate_uri = http://127.0.0.1:5000/v3\$|www_authenticate_uri = http://${address}:5000/v3|" \
        "www_authenticate_uri = http://${address}:5000/v3"
    # RabbitMQ's AMQP listener; its distribution and epmd stay on loopback.
    rewrite /etc/rabbitmq/rabbitmq.conf \
        "/^listeners.tcp.1 = 127.0.0.1:5672\$/a listeners.tcp.2 = ${address}:5672" "listeners.tcp.2 = ${address}:5672"
    install -m 0644 /etc/lab-cluster/haproxy.cfg /etc/haproxy/haproxy.cfg
    log "cluster: ${LAB_CLUSTER_HOSTNAME} (${address}): services bound to it, haproxy configured"
}

case "${1:-}" in
    packages) stage_packages ;;
    bootstrap) stage_bootstrap ;;
    cluster) stage_cluster ;;
    *)
        echo "usage: $0 packages|bootstrap|cluster" >&2
        exit 2
        ;;
esac
