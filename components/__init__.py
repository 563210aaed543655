"""Pulumi components that deploy the OpenStack Image service (Glance)."""
