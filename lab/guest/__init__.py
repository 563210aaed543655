"""Runs inside the lab's containers (and is importable on the host): each node's config
files rendered from lab/templates, and the image build's steps that talk to the services.
The image holds this package and the templates under render.GUEST_PATH; provision.sh and
lab-cluster.service run it as `python3 -m guest ...` (see __main__)."""
