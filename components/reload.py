"""Which glance-api.conf changes glance-api takes on SIGHUP, without a restart.

Debian's glance-api runs Glance's own WSGI server (glance/common/wsgi.py, not uwsgi), as
RHEL's does. With worker processes (the default: one per CPU), SIGHUP to its main process
reloads: it re-reads its config files, tells the old workers to stop accepting (each finishes
the requests it holds, so no connection is dropped), sets up logging, the socket options and
the stores again, and forks new workers from itself. The application (paste pipeline,
authtoken middleware, policy, the database engine) was built once at start, so the new workers
run it as it was: every option the application read then needs a restart, drained.

Reloaded: RELOADABLE, the options that reload applies. Everything else restarts. With
`DEFAULT.workers=0` in apiOptions (one process) SIGHUP is not handled and would stop
glance-api: every change restarts.
"""

from __future__ import annotations

from components.rendering import API_CONF
from components.settings import Settings

# [DEFAULT] debug: logging is set up again; client_socket_timeout and max_header_line:
# configure() applies them to the new workers.
RELOADABLE: dict[str, frozenset[str]] = {"DEFAULT": frozenset({"debug", "client_socket_timeout", "max_header_line"})}


def reload_safe(settings: Settings) -> bool:
    """glance-api of this stack reloads on SIGHUP (a release that does, with worker processes)."""
    workers = settings.glance.extra_options.get("DEFAULT", {}).get("workers")
    return settings.profile.release.sighup_reload and workers != "0"


def split(path: str, text: str) -> tuple[str, str]:
    """A rendered file as (what a change to needs a restart, what glance-api reloads): glance-api.conf's
    RELOADABLE option lines (the renderer writes one `option = value` line each) go to the second,
    and a section they leave empty goes with its header, so the first part is the file the
    renderer would write without them (the same text when there are none)."""
    if path != API_CONF:
        return text, ""
    section = ""
    restart: list[str] = []
    reloaded: list[str] = []
    for line in text.splitlines():
        if line.startswith("["):
            section = line.strip()[1:-1]
        elif line.split(" = ", 1)[0] in RELOADABLE.get(section, frozenset()):
            reloaded.append(f"[{section}] {line}")
            continue
        restart.append(line)
    # The renderer writes a blank line, then each section's header, then its options.
    emptied = {
        index
        for index, line in enumerate(restart)
        if line.startswith("[") and (index + 1 == len(restart) or not restart[index + 1])
    }
    kept = [line for index, line in enumerate(restart) if index not in emptied and index + 1 not in emptied]
    return "\n".join(kept) + "\n", "\n".join(reloaded)
