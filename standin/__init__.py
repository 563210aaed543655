"""A stand-in for the provider plugins, for machines that cannot get them.

The Go module proxy of these offline machines refuses the modules of the pulumi-command,
-openstack, -mysql, -postgresql and -random plugins, so the real engine cannot load them.
`standin` runs the real program under `pulumi.runtime.set_mocks` (program.py) and applies
each resource it declares to the lab controller as it is registered (executor.py): remote
commands over SSH, Keystone objects through the Keystone API (keystone.py), database
objects as SQL, the image through the Glance API. No Pulumi state is kept.
"""
