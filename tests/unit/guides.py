"""The options each install guide in ../shared/seeds/ sets, transcribed line by line.

Placeholders are replaced by the values the tests configure, so a rendered file can
be compared with the guide option by option.
"""

DB_PASS = "GLANCE_DBPASS"
GLANCE_PASS = "GLANCE_PASS"
LIMITS_PASS = "MY_PASSWORD"

CLEAR_LINUX_AUTHTOKEN = {
    "auth_uri": "http://controller:5000",
    "auth_url": "http://controller:35357",
    "auth_plugin": "password",
    "project_domain_id": "default",
    "user_domain_id": "default",
    "project_name": "service",
    "username": "glance",
    "password": GLANCE_PASS,
}

# The Clear Linux guide writes the same two sections into both files.
CLEAR_LINUX_API = {
    "database": {"connection": f"mysql://glance:{DB_PASS}@controller/glance"},
    "keystone_authtoken": CLEAR_LINUX_AUTHTOKEN,
}
CLEAR_LINUX_REGISTRY = CLEAR_LINUX_API

RHEL_API = {
    "database": {"connection": f"postgresql+psycopg2://glance:{DB_PASS}@controller:5432/glance"},
    "keystone_authtoken": {
        "www_authenticate_uri": "http://controller:5000",
        "auth_url": "http://controller:5000",
        "memcached_servers": "controller:11211",
        "auth_type": "password",
        "project_domain_name": "Default",
        "user_domain_name": "Default",
        "project_name": "service",
        "username": "glance",
        "password": GLANCE_PASS,
    },
    "paste_deploy": {"flavor": "keystone"},
    "oslo_limit": {
        "auth_url": "http://controller:5000",
        "auth_type": "password",
        "user_domain_id": "default",
        # The guide's MY_SERVICE: the account it creates is service-oslo.
        "username": "service-oslo",
        "system_scope": "all",
        "password": LIMITS_PASS,
        "endpoint_id": "glance-endpoint-public-id",
        "region_name": "RegionOne",
    },
}

CLEAR_LINUX_PACKAGES = "clr_bundle_add openstack-image"
RHEL_PACKAGE_STEPS = ("yum config-manager --set-enabled crb", "yum install -y openstack-glance")
