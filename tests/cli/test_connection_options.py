"""Every command that talks to Kafka takes the same connection options, in the same precedence,
and planted passwords show nowhere: not in `config show`, not in error output."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import typer.main
from typer.testing import CliRunner

from streams.cli.connection_options import CONNECTION_FLAGS
from streams.cli.main import app

KAFKA_COMMANDS = [
    ("worker",),
    ("topics", "apply"),
    ("settings", "publish"),
    ("settings", "show"),
    ("settings", "list"),
    ("config", "show"),
    ("replay",),
    ("check",),
    ("dead-letters", "list"),
    ("dead-letters", "redrive"),
    ("send",),
    ("tail",),
]
PASSWORD = "pw-planted-7c1e-Qz"
KEY_PASSWORD = "kp-planted-91ab-Wy"


def _command(path: tuple[str, ...]) -> Any:
    command: Any = typer.main.get_command(app)
    for name in path:
        command = command.commands[name]  # a group (typer may bundle its own click)
    return command


def _options(command: Any) -> set[str]:
    return {opt for p in command.params for opt in (*p.opts, *p.secondary_opts)}


def test_every_kafka_command_takes_the_same_connection_options() -> None:
    expected = {
        "--broker",
        "--config",
        "--security-protocol",
        "--ssl-ca-file",
        "--ssl-cert-file",
        "--ssl-key-file",
        "--ssl-check-hostname",
        "--no-ssl-check-hostname",
        "--sasl-mechanism",
        "--sasl-username",
        "--sasl-password-file",
        "--compression-type",
    }
    assert len(CONNECTION_FLAGS) == 9
    for path in KAFKA_COMMANDS:
        missing = expected - _options(_command(path))
        assert not missing, f"returnhook {' '.join(path)} lacks {sorted(missing)}"


def test_no_password_on_the_command_line() -> None:
    for path in KAFKA_COMMANDS:
        assert not {"--sasl-password", "--ssl-key-password"} & _options(_command(path))


@pytest.fixture
def runner(monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    import os

    for key in [k for k in os.environ if k.startswith("RETURNHOOK_")]:
        monkeypatch.delenv(key)
    return CliRunner()


def test_flags_beat_env_beat_config_file(
    runner: CliRunner, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    config = tmp_path / "worker.yaml"
    config.write_text(
        "security_protocol: SASL_SSL\nsasl_mechanism: PLAIN\nsasl_username: from-file\n"
        f"sasl_password: {PASSWORD}\ncompression_type: gzip\n"
    )
    monkeypatch.setenv("RETURNHOOK_SASL_USERNAME", "from-env")
    monkeypatch.setenv("RETURNHOOK_COMPRESSION_TYPE", "snappy")
    result = runner.invoke(
        app,
        ["config", "show", "--config", str(config), "--sasl-mechanism", "scram-sha-512"],
    )
    assert result.exit_code == 0, result.output
    assert "sasl_mechanism: SCRAM-SHA-512" in result.output  # flag
    assert "sasl_username: from-env" in result.output  # env over file
    assert "compression_type: snappy" in result.output
    assert "security_protocol: SASL_SSL" in result.output  # file over default
    assert PASSWORD not in result.output
    assert "sasl_password: '**********'" in result.output


def test_planted_passwords_absent_from_config_show_and_errors(
    runner: CliRunner, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("RETURNHOOK_SECURITY_PROTOCOL", "SASL_SSL")
    monkeypatch.setenv("RETURNHOOK_SASL_USERNAME", "svc")
    monkeypatch.setenv("RETURNHOOK_SASL_PASSWORD", PASSWORD)
    monkeypatch.setenv("RETURNHOOK_SSL_KEY_PASSWORD", KEY_PASSWORD)
    monkeypatch.setenv("RETURNHOOK_SSL_CERT_FILE", str(tmp_path / "missing.crt"))
    shown = runner.invoke(app, ["config", "show"])
    assert shown.exit_code == 0, shown.output
    # A configuration that cannot be used: every command ends with one line, no secret.
    from streams.processes.ports import free_port

    broker = f"127.0.0.1:{free_port('127.0.0.1')}"
    outputs = [shown.output]
    for args in (
        ["topics", "apply", "--broker", broker],
        ["settings", "list", "--broker", broker],
        ["check", "--broker", broker],
        ["replay", "--from", "1h", "--broker", broker],
        ["dead-letters", "list", "--broker", broker],
        ["dead-letters", "redrive", "--broker", broker],
        ["send", "--tenant", "t", "--order", "o", "--broker", broker],
        ["tail", "--broker", broker],
        ["config", "show", "--sasl-mechanism", "NOPE"],
    ):
        result = runner.invoke(app, args)
        assert result.exit_code == 1, (args, result.output)
        assert "Traceback" not in result.output
        outputs.append(result.output)
    for text in outputs:
        assert PASSWORD not in text and KEY_PASSWORD not in text
