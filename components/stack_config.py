"""The one place that reads Pulumi's config: every `glance:*` key, and which are secret."""

from __future__ import annotations

from pulumi.runtime import config as runtime_config

from components.settings import NAMESPACE, Settings, load_settings


def read_settings() -> Settings:
    """Validate the whole stack config before any resource is registered."""
    prefix = f"{NAMESPACE}:"
    # Both sources: the language host sets the config map, PULUMI_CONFIG carries it otherwise.
    everything = {**runtime_config.get_config_env(), **runtime_config.CONFIG.get()}
    raw = {key.removeprefix(prefix): value for key, value in everything.items() if key.startswith(prefix)}
    secret_keys = set(runtime_config.get_config_secret_keys_env())
    secret = frozenset(
        key for key in raw if prefix + key in secret_keys or runtime_config.is_config_secret(prefix + key)
    )
    return load_settings(raw, secret)
