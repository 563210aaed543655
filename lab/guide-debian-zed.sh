#!/bin/bash
# The Image service install guide for Debian 12 (Zed), as an operator would type it into a
# script: one step after another, run as root on the controller. It is the baseline that
# `scripts/bench` times against `pulumi up` of the same lab stack; neither slowed down nor tuned.
#
# Settings come from the environment (scripts/bench sets them from the lab's connection):
#   DB_ENGINE=mysql|postgresql  DB_ADMIN_USER  DB_ADMIN_PASSWORD  GLANCE_DBPASS  GLANCE_PASS
#   KEYSTONE_URL (…/v3)  ADMIN_PASS  CONTROLLER  MEMCACHED  PG_HBA  IMAGE_FILE
#   LIMITS=1 (with LIMITS_PASS) for the oslo_limit steps of the RHEL/Zed notes.
# Each step prints "@@phase NAME EPOCH" as it starts; "@@phase end EPOCH" closes the last.
set -euo pipefail

phase() { printf '@@phase %s %s\n' "$1" "$(date +%s.%N)"; }

export OS_AUTH_URL="$KEYSTONE_URL" OS_IDENTITY_API_VERSION=3
export OS_USERNAME=admin OS_PASSWORD="$ADMIN_PASS" OS_PROJECT_NAME=admin
export OS_USER_DOMAIN_NAME=Default OS_PROJECT_DOMAIN_NAME=Default
GLANCE_URL="http://$CONTROLLER:9292"

phase database
if [ "$DB_ENGINE" = mysql ]; then
    MYSQL_PWD="$DB_ADMIN_PASSWORD" mysql -u "$DB_ADMIN_USER" <<SQL
CREATE DATABASE glance;
CREATE USER 'glance'@'localhost' IDENTIFIED BY '$GLANCE_DBPASS';
CREATE USER 'glance'@'%' IDENTIFIED BY '$GLANCE_DBPASS';
GRANT ALL PRIVILEGES ON glance.* TO 'glance'@'localhost';
GRANT ALL PRIVILEGES ON glance.* TO 'glance'@'%';
SQL
    DB_URL="mysql+pymysql://glance:$GLANCE_DBPASS@$CONTROLLER:3306/glance"
    DRIVER=python3-pymysql
else
    runuser -u postgres -- psql -q <<SQL
CREATE ROLE glance LOGIN PASSWORD '$GLANCE_DBPASS';
CREATE DATABASE glance OWNER glance;
GRANT CREATE, CONNECT, TEMPORARY ON DATABASE glance TO glance;
SQL
    sed -i "0,/^host/s||host    glance    glance    $CONTROLLER/32    md5\n&|" "$PG_HBA"
    systemctl reload postgresql
    DB_URL="postgresql+psycopg2://glance:$GLANCE_DBPASS@$CONTROLLER:5432/glance"
    DRIVER=python3-psycopg2
fi

phase keystone
openstack user create --domain default --password "$GLANCE_PASS" glance
openstack role add --project service --user glance admin
openstack service create --name glance --description "OpenStack Image" image
for interface in public internal admin; do
    openstack endpoint create --region RegionOne image "$interface" "$GLANCE_URL"
done
if [ "${LIMITS:-0}" = 1 ]; then
    openstack user create --domain default --password "$LIMITS_PASS" service-oslo
    openstack role add --user service-oslo --user-domain Default --system all reader
    openstack registered limit create --service glance --default-limit 1000 --region RegionOne image_size_total
    openstack registered limit create --service glance --default-limit 1000 --region RegionOne image_stage_total
    openstack registered limit create --service glance --default-limit 1 --region RegionOne image_count_total
    openstack registered limit create --service glance --default-limit 10 --region RegionOne image_count_uploading
    ENDPOINT_ID=$(openstack endpoint list --service glance --interface public --region RegionOne -f value -c ID)
fi

phase install
DEBIAN_FRONTEND=noninteractive apt-get install -y glance-api "$DRIVER"

phase config
cat >/etc/glance/glance-api.conf <<CONF
[DEFAULT]
$([ "${LIMITS:-0}" = 1 ] && echo "use_keystone_limits = True")

[database]
connection = $DB_URL

[keystone_authtoken]
www_authenticate_uri = http://$CONTROLLER:5000
auth_url = http://$CONTROLLER:5000
memcached_servers = $MEMCACHED
auth_type = password
project_domain_name = Default
user_domain_name = Default
project_name = service
username = glance
password = $GLANCE_PASS

[paste_deploy]
flavor = keystone

[glance_store]
stores = file,http
default_store = file
filesystem_store_datadir = /var/lib/glance/images/
CONF
if [ "${LIMITS:-0}" = 1 ]; then
    cat >>/etc/glance/glance-api.conf <<CONF

[oslo_limit]
auth_url = http://$CONTROLLER:5000
auth_type = password
user_domain_id = default
username = service-oslo
system_scope = all
password = $LIMITS_PASS
endpoint_id = $ENDPOINT_ID
region_name = RegionOne
CONF
fi

phase ownership
chown root:glance /etc/glance/glance-api.conf
chmod 0640 /etc/glance/glance-api.conf

phase db_sync
su -s /bin/sh -c "glance-manage db_sync" glance

phase start
systemctl enable glance-api
systemctl restart glance-api

phase ready
until curl -sf "$GLANCE_URL/healthcheck" >/dev/null; do sleep 0.5; done

phase upload
openstack image create --disk-format qcow2 --container-format bare --public --file "$IMAGE_FILE" cirros

phase end
