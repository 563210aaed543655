#!/bin/bash
# The lab image's recipe, in lifecycle order: install, configure, init, start. Its text,
# the guest package and the config templates are the image cache key: any edit rebuilds.
#
#   provision.sh packages   run by `systemd-nspawn -D ROOTFS` WITHOUT booting, on the host's
#                           network: install, then configure (every service's config files
#                           rendered from lab/templates for the single lab's node).
#   provision.sh bootstrap  run by lab-provision.service inside the BOOTED container on a
#                           private network (only its own loopback, so a build never collides
#                           with a running lab's ports): init (accounts, Keystone), then start
#                           (Swift, RabbitMQ) and check each end to end. Powers off when done.
#
# A cluster node renders its own config files at boot (lab-cluster.service, `guest configure`
# with the node's plan). Secrets (bootstrap): /root/lab-secrets.env, written by the builder,
# mode 0600, deleted afterwards; they travel through files and stdin, never argv.
set -euo pipefail

# What the Glance install guides assume, the lab's own tools, and HAProxy (disabled: only a
# cluster session's first controller starts it). keystonemiddleware is only a Recommends of
# swift-proxy; python3-amqp is the lab's AMQP client (lab/amqp_remote.py, shipped over ssh).
LAB_PACKAGES=(
    mariadb-server mariadb-client postgresql-15 postgresql-client-15 memcached
    keystone uwsgi-core uwsgi-plugin-python3 python3-openstackclient
    swift swift-proxy swift-account swift-container swift-object python3-keystonemiddleware
    rabbitmq-server python3-amqp curl ca-certificates haproxy
)
# The deployment installs these later: downloaded only, so that needs no network.
PREFETCH_PACKAGES=(glance-api python3-pymysql python3-psycopg2)
SWIFT_SERVERS=(swift-account swift-container swift-object)
SECRETS=/root/lab-secrets.env

export DEBIAN_FRONTEND=noninteractive LC_ALL=C.UTF-8 PYTHONPATH=/usr/local/lib/glance-pulumi-lab

log() { echo "[provision $(date +%T)] $*"; }
guest() { /usr/bin/python3 -m guest "$@"; }
wait_for() { # wait_for SECONDS DESCRIPTION COMMAND...
    local deadline=$((SECONDS + $1)) what=$2
    shift 2
    until "$@" >/dev/null 2>&1; do
        ((SECONDS < deadline)) || { log "timed out waiting for $what" && return 1; }
        sleep 0.5
    done
}

install_packages() {
    log "install"
    # No systemd runs in this stage: deny service starts from maintainer scripts. Removed
    # at the end, so the deployment's own `apt-get install glance-api` behaves as anywhere.
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
    chmod 0755 /usr/sbin/policy-rc.d
    guest configure apt system
    apt-get update -q
    apt-get upgrade -y -q # the point updates a maintained host would have
    apt-get install -y -q --no-install-recommends "${LAB_PACKAGES[@]}"
    # Recommends stay on for the prefetch, as the deployment's own install resolves them.
    apt-get clean
    apt-get install -y -q --download-only "${PREFETCH_PACKAGES[@]}"
}

configure_services() {
    log "configure"
    guest configure # every service; the secret-bearing files wait for the bootstrap stage
    install -d -m 0700 /root/.ssh
    install -m 0600 /dev/null /root/.ssh/authorized_keys # a session bind-mounts its key here
    install -d -o swift -g swift -m 0755 /srv/node /srv/node/d1
    guest swift-rings
    runuser -u swift -- env PYTHONPATH="$PYTHONPATH" /usr/bin/python3 -m guest check-xattrs /srv/node/d1
    # Of the twenty-odd swift units the packages enable, only the storage servers stay
    # (one replica on one device); the proxy waits for its password. rsyslog came with
    # swift: journald keeps every line already.
    local link
    for link in /etc/systemd/system/multi-user.target.wants/swift-*.service; do
        [[ " ${SWIFT_SERVERS[*]} " == *" $(basename "$link" .service) "* ]] || systemctl disable "${link##*/}"
    done
    systemctl disable rsyslog.service haproxy.service keystone.service
    systemctl enable rabbitmq-server.service lab-provision.service lab-cluster.service
    rm -f /usr/sbin/policy-rc.d
}

init_services() {
    log "init: database accounts, Keystone"
    # shellcheck disable=SC1090
    source "$SECRETS"
    wait_for 120 mariadb mariadb-admin ping
    # 'localhost' (socket, or TCP after name resolution) and '127.0.0.1' (TCP) are distinct
    # hosts to MariaDB: each account exists for both.
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
    runuser -u postgres -- psql -q -v ON_ERROR_STOP=1 -v pw="${PG_ADMIN_PASSWORD}" <<<"ALTER USER postgres PASSWORD :'pw';"

    guest configure keystone swift --secrets "$SECRETS"
    runuser -u keystone -- keystone-manage db_sync
    keystone-manage fernet_setup --keystone-user keystone --keystone-group keystone
    keystone-manage credential_setup --keystone-user keystone --keystone-group keystone
    local url=http://127.0.0.1:5000/v3/
    OS_BOOTSTRAP_PASSWORD="${KEYSTONE_ADMIN_PASSWORD}" keystone-manage bootstrap \
        --bootstrap-username admin --bootstrap-project-name admin --bootstrap-role-name admin \
        --bootstrap-admin-url "$url" --bootstrap-internal-url "$url" --bootstrap-public-url "$url" \
        --bootstrap-region-id RegionOne
}

start_services() {
    log "start: Keystone, Swift, RabbitMQ"
    systemctl enable --now keystone.service
    wait_for 120 keystone curl -fsS http://127.0.0.1:5000/v3
    export OS_AUTH_URL=http://127.0.0.1:5000/v3 OS_IDENTITY_API_VERSION=3 OS_REGION_NAME=RegionOne
    export OS_USERNAME=admin OS_PASSWORD="${KEYSTONE_ADMIN_PASSWORD}" OS_PROJECT_NAME=admin
    export OS_USER_DOMAIN_NAME=Default OS_PROJECT_DOMAIN_NAME=Default
    openstack project create --or-show --domain default --description "Service Project" service -f value -c id
    # bootstrap creates admin, member and reader (since Rocky); make sure anyway.
    # (`openstack role create --or-show` is broken in this client: Resource.get() error.)
    for role in admin member reader; do
        openstack role show "$role" -f value -c id || openstack role create "$role" -f value -c id
    done

    guest register-swift --secrets "$SECRETS"
    systemctl enable swift-proxy.service
    systemctl start "${SWIFT_SERVERS[@]/%/.service}" swift-proxy.service
    wait_for 120 "swift proxy" curl -fsS http://127.0.0.1:8080/healthcheck
    guest check-swift --secrets "$SECRETS"

    wait_for 180 rabbitmq rabbitmqctl -q await_startup
    rabbitmqctl -q delete_user guest
    printf '%s\n' "${RABBITMQ_PASSWORD}" | rabbitmqctl -q add_user "${RABBITMQ_USER}" # password on stdin
    rabbitmqctl -q set_permissions -p / "${RABBITMQ_USER}" '.*' '.*' '.*'
    guest check-rabbitmq --secrets "$SECRETS"
    # Its logs of this build should not greet every session (it writes until it stops).
    systemctl stop rabbitmq-server.service
    find /var/log/rabbitmq -type f -delete

    # Nothing of this build should leak into the image's sessions.
    systemctl disable lab-provision.service
    rm -f "$SECRETS" /root/.bash_history
}

case "${1:-}" in
    packages)
        install_packages
        configure_services
        ;;
    bootstrap)
        init_services
        start_services
        ;;
    *)
        echo "usage: $0 packages|bootstrap" >&2
        exit 2
        ;;
esac
log "$1 stage done"
