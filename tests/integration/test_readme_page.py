"""README's "Try it with your own endpoint" page, followed as written on the embedded broker.

The page's ``sh`` blocks are extracted from README.md and run in order by bash, as a new user
would paste them. Only what must differ on a shared test machine is set around them: the broker
address (``RETURNHOOK_BROKER`` after the page's own ``export``), topic names and the consumer
group (``RETURNHOOK_TOPICS_FILE``/``RETURNHOOK_APP_ID``, which the commands read), and a free port
for the receiver in place of 8080.
"""

from __future__ import annotations

import os
import re
import subprocess
import uuid
from pathlib import Path

import pytest

from streams.processes.ports import free_port
from tests.integration.test_cli import fresh_topics_file
from tests.integration.worker_process import RETURNHOOK

pytestmark = pytest.mark.integration

README = Path(__file__).resolve().parents[2] / "README.md"
TITLE = "## Try it with your own endpoint"


def page_commands(readme: str) -> list[str]:
    """The ``sh`` blocks of the page, in order."""
    start = readme.index(TITLE)
    end = readme.find("\n## ", start + len(TITLE))
    page = readme[start : end if end != -1 else None]
    return re.findall(r"```sh\n(.*?)```", page, flags=re.DOTALL)


def test_the_page_has_the_whole_path() -> None:
    script = "\n".join(page_commands(README.read_text(encoding="utf-8")))
    order = ["topics apply", "settings publish", "demo-receiver", "worker", "send", "tail"]
    positions = [script.index(f"returnhook {step}") for step in order]
    assert positions == sorted(positions), script
    assert "RETURNHOOK_EGRESS_ALLOW=" in script


def test_the_page_runs_as_written(broker: str, tmp_path: Path) -> None:
    _, topics_file = fresh_topics_file(tmp_path)
    port = free_port()
    blocks = page_commands(README.read_text(encoding="utf-8"))
    script = "\n".join(blocks).replace("8080", str(port))
    script = re.sub(
        r"^(export RETURNHOOK_BROKER=\S+)$",
        rf"\1\nexport RETURNHOOK_BROKER={broker}  # the test's broker",
        script,
        count=1,
        flags=re.MULTILINE,
    )
    wrapped = "set -euo pipefail\ntrap 'kill $(jobs -p) 2>/dev/null; wait' EXIT\n" + script
    env = {k: v for k, v in os.environ.items() if not k.startswith("RETURNHOOK_")}
    env["PATH"] = f"{RETURNHOOK.parent}{os.pathsep}{env.get('PATH', '')}"
    env["RETURNHOOK_TOPICS_FILE"] = str(topics_file)
    env["RETURNHOOK_APP_ID"] = f"readme-{uuid.uuid4().hex[:8]}"

    result = subprocess.run(
        ["bash", "-c", wrapped],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=150,
        check=False,
    )

    assert result.returncode == 0, (result.stdout, result.stderr[-4000:])
    lines = result.stdout.splitlines()
    assert any(re.match(r"patch\s+acme o-1001 step 0 .*erp-synced", line) for line in lines), (
        result.stdout
    )
    assert any(re.match(r"event\s+acme o-1001 step 0 .*: Success", line) for line in lines), (
        result.stdout
    )
    assert "published settings of 1 tenant(s)" in result.stdout
