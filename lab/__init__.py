"""The lab: real systemd controller hosts (Debian 12 in systemd-nspawn) on this machine.

`python3 -m lab {build,up,down,status,cluster-up,cluster-down,cluster-status}`. Two topologies
(lab.topology) share one lifecycle (lab.lifecycle); their APIs are lab.controller (Lab) and
lab.cluster (Cluster); the image is lab.image (ensure_image). See lab/README.md.
"""
