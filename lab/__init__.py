"""The lab: a real systemd controller host (Debian 12 in systemd-nspawn) on this machine.

`python3 -m lab {build,up,down,status}`; the Python API is in lab.controller (Lab,
boot, shutdown, status, ssh) and lab.image (ensure_image). See lab/README.md.
"""
