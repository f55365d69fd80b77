"""Operator settings: the home directory and its ``preserve.yaml``.

The home (``--home`` or ``PRESERVE_HOME``) holds the config file, the default
SQLite catalog and the staging area.  Everything has a default, so an empty
home works.
"""

from __future__ import annotations

import os
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from preservation.errors import ConfigError
from preservation.home_dir import CONFIG_NAME, default_home, resolve_home  # noqa: F401 - offered here too
from preservation.monitoring_settings import AlertSettings, MonitoringSettings
from preservation.notification_settings import NotificationSettings

REPO_ROOT = Path(__file__).resolve().parents[1]
# package data, so that an installed wheel has it too (the checkout's policies/ links to these files)
DEFAULT_POLICY: Traversable = resources.files("preservation").joinpath("policies", "default.yaml")


class NodeCredentials(BaseModel):
    model_config = ConfigDict(extra="forbid")
    key: str = Field(min_length=16, description="shared HMAC key for the node agent")
    key_id: str = "coordinator"
    ca_file: str | None = None


class CheckpointSettings(BaseModel):
    """The signed checkpoints of the event log (docs/evidence.md); ``preserve init`` writes ``key`` and ``origin``."""

    model_config = ConfigDict(extra="forbid")
    key: Path | None = None
    """The coordinator's Ed25519 private key file (0600), relative to the home; its public keys lie beside it."""
    origin: str = Field(default="", max_length=200, pattern=r"^[A-Za-z0-9._/:-]*$")
    every_events: int = Field(default=10000, ge=1, le=1_000_000_000)
    every_seconds: int = Field(default=3600, ge=60, le=31 * 86400)
    quorum: int | None = Field(default=None, ge=1, le=1000)
    """Witness co-signatures a key-introduction checkpoint needs (after a lost key); None: a majority of the
    witness keys known (docs/evidence.md)."""


class Settings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    home: Path
    catalog_url: str = ""
    policy: Path | None = None
    """The policy file; None is the default policy shipped with preserve (:data:`DEFAULT_POLICY`)."""
    staging_dir: Path | None = None
    workers: int = Field(default=2, ge=1, le=64)
    node_credentials: dict[str, NodeCredentials] = Field(default_factory=dict)
    access_secret: str | None = None
    access_timezone: str = Field(default="Asia/Shanghai", max_length=64, pattern=r"^[A-Za-z0-9_+/-]+$")
    """The IANA time zone the portal shows times in (the zone is named beside every time)."""

    @field_validator("access_timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as e:
            raise ValueError(f"unknown time zone {value!r} (an IANA name such as Asia/Shanghai)") from e
        return value

    monitoring: MonitoringSettings = Field(default_factory=MonitoringSettings)
    alerts: AlertSettings = Field(default_factory=AlertSettings)
    notifications: NotificationSettings = Field(default_factory=NotificationSettings)
    checkpoints: CheckpointSettings = Field(default_factory=CheckpointSettings)

    def model_post_init(self, __context: Any) -> None:
        if not self.catalog_url:
            self.catalog_url = f"sqlite:///{self.home / 'catalog.sqlite'}"
        if self.staging_dir is None:
            self.staging_dir = self.home / "staging"
        if self.policy is not None and not self.policy.is_absolute():
            # not resolved: the file is read through the name configured, so a symlink repointed is followed
            self.policy = self.home / self.policy
        if self.checkpoints.key is not None and not self.checkpoints.key.is_absolute():
            self.checkpoints.key = (self.home / self.checkpoints.key).resolve()


    @property
    def policy_source(self) -> Path | Traversable:
        """Where the policy is read from: the configured file, else the packaged default."""
        return self.policy if self.policy is not None else DEFAULT_POLICY


def load_settings(home: str | os.PathLike | None = None) -> Settings:
    """Read ``<home>/preserve.yaml`` (if any); raises ConfigError naming the bad field."""
    home_path = resolve_home(home)
    data: dict[str, Any] = {}
    config_file = home_path / CONFIG_NAME
    if config_file.exists():
        try:
            loaded = yaml.safe_load(config_file.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as e:
            raise ConfigError(f"{config_file} is not valid YAML: {e}") from e
        if not isinstance(loaded, dict):
            raise ConfigError(f"{config_file} must hold a mapping of settings")
        data.update(loaded)
    if os.environ.get("PRESERVE_CATALOG"):
        data["catalog_url"] = os.environ["PRESERVE_CATALOG"]
    if os.environ.get("PRESERVE_POLICY"):
        data["policy"] = os.environ["PRESERVE_POLICY"]
    data["home"] = home_path
    try:
        return Settings(**data)
    except ValidationError as e:
        first = e.errors()[0]
        field = ".".join(str(p) for p in first["loc"])
        raise ConfigError(f"{config_file}: field {field!r}: {first['msg']}") from e
