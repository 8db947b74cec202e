"""docker-compose.yml stays valid, and topic names stay in topics.yaml only.

No Docker engine is needed: ``config`` only parses, validates and interpolates the file.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
COMPOSE_FILE = ROOT / "docker-compose.yml"
TOPICS_FILE = ROOT / "topics.yaml"


def _compose(command: list[str], *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """Runs a compose ``config`` without variables from the caller's shell leaking in."""
    clean = {k: v for k, v in os.environ.items() if k not in {"WORKER_REPLICAS", "COMPOSE_FILE"}}
    return subprocess.run(
        [*command, "--project-directory", str(ROOT), "-f", str(COMPOSE_FILE), "config", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**clean, **env},
        check=False,
    )


def _docker_compose_v1() -> list[str]:
    if shutil.which("docker-compose") is None:
        pytest.skip("docker-compose executable not installed (Debian package docker-compose)")
    return ["docker-compose"]


def test_compose_file_is_valid_for_docker_compose() -> None:
    result = _compose(_docker_compose_v1(), "-q")
    assert result.returncode == 0, f"docker-compose config failed:\n{result.stderr}"


def test_worker_replicas_come_from_the_environment() -> None:
    command = _docker_compose_v1()
    for env, expected in (({}, 2), ({"WORKER_REPLICAS": "5"}, 5)):
        result = _compose(command, **env)
        assert result.returncode == 0, f"docker-compose config failed:\n{result.stderr}"
        worker = yaml.safe_load(result.stdout)["services"]["worker"]
        assert worker["deploy"]["replicas"] == expected


def test_compose_file_is_valid_for_docker_compose_v2() -> None:
    """The plugin is rarely installed next to v1; when it is, the file must suit it too."""
    if shutil.which("docker") is None:
        pytest.skip("docker CLI not installed")
    probe = subprocess.run(
        ["docker", "compose", "version"], capture_output=True, text=True, check=False
    )
    if probe.returncode != 0:
        pytest.skip("docker compose v2 plugin not installed")
    result = _compose(["docker", "compose"], "-q")
    assert result.returncode == 0, f"docker compose config failed:\n{result.stderr}"


def test_topic_names_are_not_hard_coded() -> None:
    """The image carries topics.yaml; a rename there must not need an edit here."""
    topics = yaml.safe_load(TOPICS_FILE.read_text())["topics"]
    names = [spec["name"] for spec in topics.values()]
    assert names, "topics.yaml lists no topics"
    compose_text = COMPOSE_FILE.read_text()
    hard_coded = [name for name in names if name in compose_text]
    assert not hard_coded, f"docker-compose.yml hard-codes topic names: {hard_coded}"
