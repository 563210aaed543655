"""Offline Pulumi toolchain installer (stdlib only), run as `scripts/pulumi-toolchain [--check]`.

That launcher runs `python3 -m tools.pulumi_toolchain` (this package) before any virtualenv exists.
Modules: versions (the pins in requirements.txt, the cache key), gobuild (Go builds, the CLI),
language_host, plugins (the official resource plugins), system (a pulumi on PATH), cache and build;
__main__ is the command line.

Prints ONE line on stdout: the toolchain directory, which holds

    bin/   pulumi, the Python language host and its helpers
    home/  a PULUMI_HOME whose plugin cache has every resource plugin at its exact version

Versions come from requirements.txt: ``pulumi==X`` and every ``pulumi-NAME==Y`` (the plugin
version must equal the SDK wheel's pulumi-plugin.json version, which equals the pip version).

Order of preference:
  1. a complete toolchain already in the cache for these versions (a warm run: well under a second);
  2. a ``pulumi`` on PATH of the pinned version whose ``pulumi plugin ls`` already has every plugin at
     its exact version (an operator machine with internet): a small ``system-KEY`` directory with
     symlinks to it is made and printed;
  3. otherwise the CLI and the Python language host are built from Go modules through the configured
     Go module proxy, under a lock, in a temporary directory that is renamed into place when complete,
     and the official resource plugins are installed from GLANCE_PULUMI_PLUGIN_DIR. This installer never
     builds a plugin: the module proxy does not serve them, and the engine is only as good as the
     official binaries.

Environment:
  GLANCE_PULUMI_CACHE                cache root (default /var/cache/glance-pulumi); the toolchain goes to
                                     $GLANCE_PULUMI_CACHE/toolchain/KEY, scratch work to .../work/KEY
  GLANCE_PULUMI_PLUGIN_DIR           directory of the official plugins at the pinned versions:
                                     pulumi-resource-NAME-vVERSION-linux-amd64.tar.gz (the release asset)
                                     or a binary pulumi-resource-NAME-vVERSION; and optionally the official
                                     Python language host pulumi-language-python-vPULUMI_VERSION (without
                                     it an older host runs programs but cannot start policy packs). A
                                     cached toolchain that lacks them installs them from here on the next run.
  GLANCE_PULUMI_ALLOW_MISSING_PLUGINS=1
                                     install the toolchain even if some plugins are not in the plugin
                                     directory (they are listed in manifest.json "missing")
  GLANCE_PULUMI_GO_PARALLEL          go build -p (default 2)
  GLANCE_PULUMI_NO_SYSTEM=1          ignore a pulumi on PATH

Progress goes to stderr; on failure the message names the binary and the step; exit status 1.
With --check nothing is built: the directory is printed if a usable toolchain exists, else exit status 3.
"""
