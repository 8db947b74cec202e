"""Worker configuration: one precedence order (flags > RETURNHOOK_* > config file > defaults),
validated by pydantic-settings, with errors that name the problem."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError
from typer.testing import CliRunner

from streams.cli.main import app
from streams.http.webhook_client import DEFAULT_RETRY_DELAYS
from streams.ops.config import CONFIG_FILE_ENV, ConfigFileError, WorkerConfig, load_config


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No RETURNHOOK_* of the developer's shell (or of another test) leaks in."""
    for name in list(os.environ):
        if name.startswith("RETURNHOOK_"):
            monkeypatch.delenv(name)


def config_file(tmp_path: Path, content: dict | str) -> Path:
    path = tmp_path / "worker.yaml"
    path.write_text(content if isinstance(content, str) else yaml.safe_dump(content))
    return path


# --- defaults and each source alone ------------------------------------------------------------


def test_defaults() -> None:
    config = load_config({})
    assert config.broker is None
    assert config.app_id == "returnhook"
    assert config.web_port == 6066 and config.web_enabled is True
    assert config.log_level == "info" and config.log_format == "text"
    assert config.retry_delays == DEFAULT_RETRY_DELAYS == (1.0, 5.0, 15.0)
    assert config.max_in_flight == 256
    assert config.max_in_flight_per_host == 64
    assert config.max_uncommitted == 20_000
    assert config.drain_timeout_s == 3.0
    assert config.commit_interval_s == 2.8  # faust's own default
    assert (config.session_timeout_s, config.heartbeat_interval_s, config.rebalance_timeout_s) == (
        6.0,
        1.0,
        6.0,
    )


def test_environment_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RETURNHOOK_BROKER", "kafka-1:9092,kafka-2:9092")
    monkeypatch.setenv("RETURNHOOK_MAX_IN_FLIGHT", "32")
    monkeypatch.setenv("RETURNHOOK_WEB_ENABLED", "false")
    monkeypatch.setenv("RETURNHOOK_LOG_FORMAT", "json")
    monkeypatch.setenv("RETURNHOOK_RETRY_DELAYS", "0.5, 2,10")
    config = load_config({})
    assert config.broker == "kafka-1:9092,kafka-2:9092"
    assert config.max_in_flight == 32
    assert config.web_enabled is False
    assert config.log_format == "json"
    assert config.retry_delays == (0.5, 2.0, 10.0)


def test_config_file(tmp_path: Path) -> None:
    path = config_file(
        tmp_path,
        {"app_id": "from-file", "max_uncommitted": 100, "retry_delays": [0.1, 0.2]},
    )
    config = load_config({}, path)
    assert config.app_id == "from-file"
    assert config.max_uncommitted == 100
    assert config.retry_delays == (0.1, 0.2)
    assert config.max_in_flight == 256  # what the file leaves out keeps its default


def test_config_file_retry_delays_may_be_a_comma_string(tmp_path: Path) -> None:
    assert load_config({}, config_file(tmp_path, "retry_delays: 1,2\n")).retry_delays == (1, 2)


def test_config_file_named_by_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(CONFIG_FILE_ENV, str(config_file(tmp_path, {"app_id": "via-env-path"})))
    assert load_config({}).app_id == "via-env-path"


def test_an_empty_config_file_means_defaults(tmp_path: Path) -> None:
    assert load_config({}, config_file(tmp_path, "")) == load_config({})


def test_the_result_is_a_plain_worker_config(tmp_path: Path) -> None:
    config = load_config({}, config_file(tmp_path, {"app_id": "x"}))
    assert type(config) is WorkerConfig
    assert config.model_copy(update={"broker": "b:1"}).broker == "b:1"


# --- precedence --------------------------------------------------------------------------------


def test_precedence_flags_over_environment_over_file_over_defaults(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = config_file(
        tmp_path,
        {"app_id": "file", "max_in_flight": 10, "max_in_flight_per_host": 5, "web_port": 7000},
    )
    monkeypatch.setenv("RETURNHOOK_APP_ID", "env")
    monkeypatch.setenv("RETURNHOOK_MAX_IN_FLIGHT", "20")
    config = load_config({"app_id": "flag"}, path)
    assert config.app_id == "flag"  # flag > env > file
    assert config.max_in_flight == 20  # env > file
    assert config.max_in_flight_per_host == 5  # file > default
    assert config.web_port == 7000  # file > default
    assert config.max_uncommitted == 20_000  # default


def test_commit_interval_from_the_environment_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RETURNHOOK_COMMIT_INTERVAL_S", "1")
    assert load_config({}).commit_interval_s == 1.0
    monkeypatch.setenv("RETURNHOOK_COMMIT_INTERVAL_S", "0")
    with pytest.raises(ValidationError, match="commit_interval_s"):
        load_config({})


def test_flags_win_over_environment_without_a_file(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RETURNHOOK_RETRY_DELAYS", "9,9")
    assert load_config({"retry_delays": "0.2,0.4"}).retry_delays == (0.2, 0.4)
    assert load_config({}).retry_delays == (9.0, 9.0)


def test_an_explicit_file_wins_over_the_environments_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    monkeypatch.setenv(CONFIG_FILE_ENV, str(config_file(tmp_path / "a", {"app_id": "env-file"})))
    explicit = config_file(tmp_path / "b", {"app_id": "flag-file"})
    assert load_config({}, explicit).app_id == "flag-file"


# --- errors ------------------------------------------------------------------------------------


def test_a_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigFileError, match=r"config file .*nope\.yaml does not exist"):
        load_config({}, tmp_path / "nope.yaml")


def test_an_unknown_key_in_the_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ValidationError) as raised:
        load_config({}, config_file(tmp_path, {"max_inflight": 3}))
    [error] = raised.value.errors()
    assert error["loc"] == ("max_inflight",) and error["type"] == "extra_forbidden"


def test_an_unknown_flag_is_named() -> None:
    with pytest.raises(ValidationError, match="bogus"):
        load_config({"bogus": 1})


@pytest.mark.parametrize(
    ("source", "values", "field", "message"),
    [
        ("env", {"RETURNHOOK_WEB_PORT": "http"}, "web_port", "valid integer"),
        ("env", {"RETURNHOOK_WEB_PORT": "70000"}, "web_port", "less than or equal to 65535"),
        ("env", {"RETURNHOOK_LOG_FORMAT": "xml"}, "log_format", "'text' or 'json'"),
        ("env", {"RETURNHOOK_MAX_IN_FLIGHT": "0"}, "max_in_flight", "greater than 0"),
        ("file", {"retry_delays": [1, -1]}, "retry_delays", "must not be negative"),
        ("file", {"session_timeout_s": 2}, "session_timeout_s", "greater than or equal to 6"),
        ("flag", {"log_level": "verbose"}, "log_level", "'debug', 'info'"),
        ("flag", {"retry_delays": "1,x"}, "retry_delays", "could not convert"),
    ],
)
def test_invalid_values_name_the_field(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    source: str,
    values: dict,
    field: str,
    message: str,
) -> None:
    flags: dict = {}
    path = None
    if source == "env":
        for name, value in values.items():
            monkeypatch.setenv(name, value)
    elif source == "file":
        path = config_file(tmp_path, values)
    else:
        flags = values
    with pytest.raises(ValidationError) as raised:
        load_config(flags, path)
    [error] = raised.value.errors()
    assert error["loc"] == (field,)
    assert message in error["msg"]


def test_drain_must_leave_half_the_rebalance_timeout_to_faust() -> None:
    for drain in (6.0, 5.9, 3.1):
        with pytest.raises(ValidationError, match=r"at most half of rebalance_timeout_s \(6\)"):
            load_config({"drain_timeout_s": drain})
    with pytest.raises(ValidationError, match="faust still commits, flushes the producer"):
        load_config({"drain_timeout_s": 5.9})
    assert load_config({"drain_timeout_s": 3.0}).drain_timeout_s == 3
    assert load_config({"drain_timeout_s": 4.0, "rebalance_timeout_s": 8.0}).drain_timeout_s == 4


def test_the_byte_bound_of_the_window_defaults_well_under_a_worker_s_memory() -> None:
    assert load_config({}).max_uncommitted_bytes == 256 * 1024 * 1024
    with pytest.raises(ValidationError, match="max_uncommitted_bytes"):
        load_config({"max_uncommitted_bytes": 0})


def test_invalid_yaml_is_a_config_file_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigFileError, match="not valid YAML"):
        load_config({}, config_file(tmp_path, "max_in_flight: [1\n"))


def test_a_file_that_is_not_a_mapping_is_a_config_file_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigFileError):
        load_config({}, config_file(tmp_path, "- a\n- b\n"))


# --- the CLI -----------------------------------------------------------------------------------

runner = CliRunner()


def test_config_show_prints_the_effective_configuration(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RETURNHOOK_MAX_IN_FLIGHT", "12")
    path = config_file(tmp_path, {"max_in_flight": 99, "max_uncommitted": 77})
    result = runner.invoke(app, ["config", "show", "--config", str(path), "--broker", "k:9092"])
    assert result.exit_code == 0, result.output
    shown = yaml.safe_load(result.output)
    assert shown["broker"] == "k:9092"  # flag
    assert shown["max_in_flight"] == 12  # env over file
    assert shown["max_uncommitted"] == 77  # file over default
    assert shown["retry_delays"] == [1.0, 5.0, 15.0]  # default


def test_config_show_masks_broker_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RETURNHOOK_BROKER", "kafka://svc:hunter2-secret@kafka:9092")
    result = runner.invoke(app, ["config", "show"])
    assert result.exit_code == 0, result.output
    assert "hunter2-secret" not in result.output
    assert yaml.safe_load(result.output)["broker"] == "kafka://***@kafka:9092"


def test_config_show_reports_a_missing_file(tmp_path: Path) -> None:
    result = runner.invoke(app, ["config", "show", "--config", str(tmp_path / "nope.yaml")])
    assert result.exit_code == 1
    assert "error:" in result.output and "does not exist" in result.output
    assert "Traceback" not in result.output


def test_config_show_names_an_unknown_key(tmp_path: Path) -> None:
    path = config_file(tmp_path, {"max_inflight": 3})
    result = runner.invoke(app, ["config", "show", "--config", str(path)])
    assert result.exit_code == 1
    assert "invalid worker configuration" in result.output
    assert "max_inflight" in result.output


def test_config_show_names_a_bad_environment_value(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RETURNHOOK_WEB_PORT", "http")
    result = runner.invoke(app, ["config", "show"])
    assert result.exit_code == 1
    assert "web_port" in result.output and "integer" in result.output


def test_the_attempt_log_can_be_switched_off(monkeypatch: pytest.MonkeyPatch) -> None:
    assert WorkerConfig().attempt_log is True
    monkeypatch.setenv("RETURNHOOK_ATTEMPT_LOG", "false")
    assert WorkerConfig().attempt_log is False
