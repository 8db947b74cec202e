"""The topic catalog: every topic returnhook touches, loaded from `topics.yaml`.

Code names topics by role (``catalog.input``), never by literal name, so renaming a topic in the
YAML file is enough for the admin command and the workers to follow.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

ENV_VAR = "RETURNHOOK_TOPICS_FILE"
FILE_NAME = "topics.yaml"
#: The file shipped at the repository root, next to the `streams` and `models` packages.
REPO_TOPICS_FILE = Path(__file__).resolve().parents[2] / FILE_NAME

# Kafka's own rule for topic names (kafka.common.internals.Topic).
_TOPIC_NAME_PATTERN = r"^[A-Za-z0-9._-]{1,249}$"


class TopicsFileError(ValueError):
    """A topics file that is missing, unreadable or invalid; the message names the file."""


def _config_value(value: Any) -> Any:
    """Kafka configs are strings; YAML turns `7` into int and `true` into bool, so undo that."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return value


ConfigValue = Annotated[str, BeforeValidator(_config_value)]


class TopicSpec(BaseModel):
    """One topic as it must exist on the cluster."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(pattern=_TOPIC_NAME_PATTERN)
    partitions: int = Field(ge=1)
    replication_factor: int = Field(ge=1)
    configs: dict[str, ConfigValue] = Field(default_factory=dict)


# Roles added after the first release: a topics file without them still loads, with these.
OPTIONAL_ROLES: dict[str, dict[str, Any]] = {
    "attempts": {"name": "returnhook-attempts", "configs": {"retention.ms": "604800000"}},
    "redrives": {
        "name": "returnhook-redrives",
        "partitions": 1,
        "configs": {"cleanup.policy": "compact"},
    },
    "progress": {
        "name": "returnhook-progress",
        "partitions": 1,
        "configs": {"cleanup.policy": "compact", "min.compaction.lag.ms": "0"},
    },
}


def _optional_spec(role: str) -> TopicSpec:
    entry = OPTIONAL_ROLES[role]
    return TopicSpec(
        name=entry["name"],
        partitions=entry.get("partitions", 12),
        replication_factor=1,
        configs=entry["configs"],
    )


class TopicCatalog(BaseModel):
    """All of returnhook's topics by role; role names are the `topics:` keys of the YAML file."""

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    input: TopicSpec
    settings: TopicSpec
    patches: TopicSpec
    events: TopicSpec
    dead_letters: TopicSpec = Field(alias="deadLetters")
    attempts: TopicSpec = Field(default_factory=lambda: _optional_spec("attempts"))
    """One record per HTTP attempt (the attempt log), keyed by order id."""
    redrives: TopicSpec = Field(default_factory=lambda: _optional_spec("redrives"))
    """Compacted: which dead letters `returnhook dead-letters redrive` has put back, and where."""
    progress: TopicSpec = Field(default_factory=lambda: _optional_spec("progress"))
    """Per input partition, what finished beyond the commit point (streams/core/progress.py)."""

    def all(self) -> list[TopicSpec]:
        """Every topic, in role order, for code that must treat them alike (creation, checks)."""
        return list(self.by_role().values())

    def by_role(self) -> dict[str, TopicSpec]:
        """Topics keyed by their YAML role name (`deadLetters`), as reports show them."""
        return {
            (field.alias or name): getattr(self, name)
            for name, field in type(self).model_fields.items()
        }


# --- the file format: `defaults` fill what a topic entry leaves out -----------------------------


class _FileTopic(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    name: str = Field(pattern=_TOPIC_NAME_PATTERN)
    partitions: int | None = Field(default=None, ge=1)
    replication_factor: int | None = Field(default=None, ge=1, alias="replicationFactor")
    configs: dict[str, ConfigValue] = Field(default_factory=dict)


class _FileDefaults(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    partitions: int | None = Field(default=None, ge=1)
    replication_factor: int | None = Field(default=None, ge=1, alias="replicationFactor")


class _FileTopics(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    input: _FileTopic
    settings: _FileTopic
    patches: _FileTopic
    events: _FileTopic
    dead_letters: _FileTopic = Field(alias="deadLetters")
    attempts: _FileTopic | None = None
    redrives: _FileTopic | None = None
    progress: _FileTopic | None = None


class _TopicsFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    defaults: _FileDefaults = Field(default_factory=_FileDefaults)
    topics: _FileTopics


def resolve_topics_path(path: str | Path | None = None) -> Path:
    """Pick the topics file: explicit > $RETURNHOOK_TOPICS_FILE > ./topics.yaml > repo root.

    An explicit or environment path is used even when missing, so a typo there fails loudly
    instead of silently falling back to another file.
    """
    if path is not None:
        return Path(path)
    from_env = os.environ.get(ENV_VAR)
    if from_env:
        return Path(from_env)
    in_cwd = Path.cwd() / FILE_NAME
    if in_cwd.is_file():
        return in_cwd
    return REPO_TOPICS_FILE


def load_topics(path: str | Path | None = None) -> TopicCatalog:
    """Read and validate the topics file (see `resolve_topics_path` for which one)."""
    file = resolve_topics_path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise TopicsFileError(f"topics file not found: {file}") from None
    except OSError as exc:
        raise TopicsFileError(f"cannot read topics file {file}: {exc}") from exc
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise TopicsFileError(f"topics file {file} is not valid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise TopicsFileError(f"topics file {file} must be a mapping with a `topics:` key")
    try:
        parsed = _TopicsFile.model_validate(raw)
    except ValidationError as exc:
        raise TopicsFileError(_describe(file, exc)) from None
    return _to_catalog(file, parsed)


def _describe(file: Path, exc: ValidationError) -> str:
    lines = [f"invalid topics file {file}:"]
    for error in exc.errors():
        where = ".".join(str(part) for part in error["loc"]) or "(root)"
        lines.append(f"  {where}: {error['msg']}")
    return "\n".join(lines)


def _to_catalog(file: Path, parsed: _TopicsFile) -> TopicCatalog:
    """Apply `defaults`; a value missing from both places is an error, never a silent guess."""
    specs: dict[str, TopicSpec] = {}
    problems: list[str] = []
    for field_name, field in _FileTopics.model_fields.items():
        role = field.alias or field_name
        entry: _FileTopic | None = getattr(parsed.topics, field_name)
        if entry is None:  # an optional role the file leaves out: its default entry
            entry = _FileTopic.model_validate(OPTIONAL_ROLES[role])
        partitions = entry.partitions or parsed.defaults.partitions
        replication = entry.replication_factor or parsed.defaults.replication_factor
        if partitions is None:
            problems.append(f"  topics.{role}.partitions: missing and no defaults.partitions")
        if replication is None:
            problems.append(
                f"  topics.{role}.replicationFactor: missing and no defaults.replicationFactor"
            )
        if partitions is not None and replication is not None:
            specs[field_name] = TopicSpec(
                name=entry.name,
                partitions=partitions,
                replication_factor=replication,
                configs=entry.configs,
            )
    if problems:
        raise TopicsFileError("\n".join([f"invalid topics file {file}:", *problems]))
    names = [spec.name for spec in specs.values()]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise TopicsFileError(
            f"invalid topics file {file}: several roles share a topic name: {duplicates}"
        )
    return TopicCatalog(**specs)


def dump_topics(catalog: TopicCatalog, path: str | Path) -> Path:
    """Write `catalog` in the `topics.yaml` format, every value explicit (no `defaults`)."""
    document = {
        "topics": {
            role: {
                "name": spec.name,
                "partitions": spec.partitions,
                "replicationFactor": spec.replication_factor,
                "configs": dict(spec.configs),
            }
            for role, spec in catalog.by_role().items()
        }
    }
    target = Path(path)
    target.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    return target
