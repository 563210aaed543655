"""A stand-in for the provider plugins, for machines that cannot get them.

A machine that cannot download the official pulumi-command, -openstack, -mysql, -postgresql
and -random plugins (and has no GLANCE_PULUMI_PLUGIN_DIR) cannot run the real engine.
`lab.standin` runs the real program under `pulumi.runtime.set_mocks` (program.py) and applies
each resource it declares to the lab controller as it is registered (executor.py): remote
commands over SSH, Keystone objects through the Keystone API (keystone.py), database
objects as SQL, the image through the Glance API. No Pulumi state is kept.

A test double, not evidence of how a provider behaves; it needs the project's virtualenv (pulumi),
unlike the rest of the lab. Used by the quickstart and the benchmark when the plugins are missing,
and by the end-to-end tests (tests/e2e/test_lab_applied.py).
"""
