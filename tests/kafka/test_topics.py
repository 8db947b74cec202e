from pathlib import Path

import pytest

from streams.kafka.topics import (
    ENV_VAR,
    REPO_TOPICS_FILE,
    TopicCatalog,
    TopicsFileError,
    TopicSpec,
    dump_topics,
    load_topics,
    resolve_topics_path,
)

ROLES = [
    "input",
    "settings",
    "patches",
    "events",
    "deadLetters",
    "attempts",
    "redrives",
    "progress",
]


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def minimal_yaml(input_name: str = "in", extra: str = "") -> str:
    return (
        "defaults: {partitions: 3, replicationFactor: 1}\n"
        "topics:\n"
        f"  input: {{name: {input_name}}}\n"
        "  settings: {name: settings, partitions: 1}\n"
        "  patches: {name: patches}\n"
        "  events: {name: events}\n"
        "  deadLetters: {name: dead}\n"
        "  progress: {name: progress, partitions: 1}\n" + extra
    )


@pytest.fixture
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No env override and a cwd without topics.yaml, so only explicit choices count."""
    monkeypatch.delenv(ENV_VAR, raising=False)
    workdir = tmp_path / "cwd"
    workdir.mkdir()
    monkeypatch.chdir(workdir)
    return workdir


def test_repo_file_applies_defaults_and_keeps_overrides() -> None:
    catalog = load_topics(REPO_TOPICS_FILE)
    assert list(catalog.by_role()) == ROLES
    assert catalog.input == TopicSpec(
        name="order-status-changed",
        partitions=12,
        replication_factor=1,
        configs={"retention.ms": "604800000"},
    )
    assert catalog.settings.partitions == 1
    assert catalog.settings.configs["cleanup.policy"] == "compact"
    assert catalog.dead_letters.name == "returnhook-dead-letters"
    assert [spec.name for spec in catalog.all()] == [
        "order-status-changed",
        "tenant-settings",
        "order-patches",
        "order-events",
        "returnhook-dead-letters",
        "returnhook-attempts",
        "returnhook-redrives",
        "returnhook-progress",
    ]
    assert catalog.progress.partitions == 1
    assert catalog.progress.configs["cleanup.policy"] == "compact"


def test_dump_then_load_round_trips(tmp_path: Path) -> None:
    catalog = load_topics(REPO_TOPICS_FILE)
    renamed = catalog.model_copy(
        update={"input": catalog.input.model_copy(update={"name": "x-1", "partitions": 7})}
    )
    path = dump_topics(renamed, tmp_path / "out.yaml")
    assert load_topics(path) == renamed
    assert "deadLetters:" in path.read_text()
    assert "replicationFactor: 1" in path.read_text()


def test_config_values_become_strings(tmp_path: Path) -> None:
    extra_settings = minimal_yaml().replace(
        "settings: {name: settings, partitions: 1}",
        "settings: {name: settings, partitions: 1, configs: {retention.ms: 1000, "
        "unclean.leader.election.enable: false}}",
    )
    catalog = load_topics(write(tmp_path / "t.yaml", extra_settings))
    assert catalog.settings.configs == {
        "retention.ms": "1000",
        "unclean.leader.election.enable": "false",
    }


def test_precedence_explicit_over_env_over_cwd_over_repo(
    isolated: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert resolve_topics_path() == REPO_TOPICS_FILE
    assert load_topics().input.name == "order-status-changed"

    write(isolated / "topics.yaml", minimal_yaml("from-cwd"))
    assert load_topics().input.name == "from-cwd"

    env_file = write(tmp_path / "env.yaml", minimal_yaml("from-env"))
    monkeypatch.setenv(ENV_VAR, str(env_file))
    assert load_topics().input.name == "from-env"

    explicit = write(tmp_path / "explicit.yaml", minimal_yaml("from-arg"))
    assert load_topics(explicit).input.name == "from-arg"
    assert load_topics(str(explicit)).input.name == "from-arg"


def test_env_file_missing_is_an_error_not_a_fallback(
    isolated: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    missing = tmp_path / "nope.yaml"
    monkeypatch.setenv(ENV_VAR, str(missing))
    with pytest.raises(TopicsFileError, match="not found") as info:
        load_topics()
    assert str(missing) in str(info.value)


def test_invalid_yaml_names_the_file(tmp_path: Path) -> None:
    path = write(tmp_path / "broken.yaml", "topics: [unclosed\n")
    with pytest.raises(TopicsFileError, match="not valid YAML") as info:
        load_topics(path)
    assert str(path) in str(info.value)


def test_not_a_mapping(tmp_path: Path) -> None:
    with pytest.raises(TopicsFileError, match="must be a mapping"):
        load_topics(write(tmp_path / "list.yaml", "- a\n- b\n"))


def test_validation_errors_name_the_field_path(tmp_path: Path) -> None:
    text = (
        "topics:\n"
        "  input: {name: in, partitions: 0, replicationFactor: 1}\n"
        "  settings: {name: s, partition: 1, replicationFactor: 1}\n"
        "  patches: {name: 'bad name!', partitions: 1, replicationFactor: 1}\n"
        "  events: {name: e, partitions: 1, replicationFactor: 1}\n"
    )
    path = write(tmp_path / "bad.yaml", text)
    with pytest.raises(TopicsFileError) as info:
        load_topics(path)
    message = str(info.value)
    assert str(path) in message
    assert "topics.input.partitions" in message
    assert "topics.settings.partition" in message  # the typo, as an unknown key
    assert "topics.patches.name" in message
    assert "topics.deadLetters" in message  # missing role


def test_missing_partitions_without_defaults(tmp_path: Path) -> None:
    text = minimal_yaml().replace("defaults: {partitions: 3, replicationFactor: 1}\n", "")
    with pytest.raises(TopicsFileError) as info:
        load_topics(write(tmp_path / "t.yaml", text))
    assert "topics.input.partitions: missing and no defaults.partitions" in str(info.value)
    assert "topics.settings.replicationFactor" in str(info.value)


def test_duplicate_topic_names_rejected(tmp_path: Path) -> None:
    text = minimal_yaml(input_name="events")
    with pytest.raises(TopicsFileError, match="share a topic name"):
        load_topics(write(tmp_path / "t.yaml", text))


def test_catalog_accepts_python_and_yaml_role_names() -> None:
    spec = TopicSpec(name="t", partitions=1, replication_factor=1, configs={})
    by_field = TopicCatalog(
        input=spec, settings=spec, patches=spec, events=spec, dead_letters=spec, progress=spec
    )
    by_alias = TopicCatalog.model_validate(
        {
            "input": spec,
            "settings": spec,
            "patches": spec,
            "events": spec,
            "deadLetters": spec,
            "progress": spec,
        }
    )
    assert by_field == by_alias
    assert list(by_field.by_role()) == ROLES


def test_a_file_without_the_later_roles_gets_their_defaults(tmp_path: Path) -> None:
    """attempts and redrives came later: an older topics file still loads."""
    catalog = load_topics(write(tmp_path / "t.yaml", minimal_yaml()))
    assert catalog.attempts.name == "returnhook-attempts"
    assert catalog.attempts.partitions == 3  # the file's defaults apply
    assert catalog.redrives.name == "returnhook-redrives"
    assert catalog.redrives.partitions == 1
    assert catalog.redrives.configs["cleanup.policy"] == "compact"
