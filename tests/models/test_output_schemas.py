"""The committed schemas/ are what the models generate, and each is a valid JSON Schema.

Real records from the broker are validated against them in
tests/integration/test_failures_on_broker.py.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest

from models.output_schemas import OUTPUTS, output_schema_files

SCHEMAS = Path(__file__).resolve().parents[2] / "schemas"


def test_the_committed_schemas_equal_the_generated_ones() -> None:
    generated = output_schema_files()
    committed = {p.name: p.read_text(encoding="utf-8") for p in SCHEMAS.glob("*.schema.json")}
    assert set(committed) == set(generated), "run `returnhook schemas --out schemas`"
    for name, text in generated.items():
        assert committed[name] == text, f"schemas/{name} is stale: run `returnhook schemas`"


@pytest.mark.parametrize("name", sorted(output_schema_files()))
def test_each_schema_is_a_valid_2020_12_schema(name: str) -> None:
    schema = json.loads((SCHEMAS / name).read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema["type"] == "object" and schema["required"]


def test_a_record_missing_a_required_field_is_invalid() -> None:
    schema = json.loads((SCHEMAS / "attempt.schema.json").read_text())
    record = {"id": "x", "deliveryId": "d"}
    errors = list(jsonschema.Draft202012Validator(schema).iter_errors(record))
    assert any("'tenantId' is a required property" in e.message for e in errors)
    assert set(OUTPUTS) == {"order-patch", "order-event", "dead-letter", "attempt"}


def test_the_command_checks_and_writes(tmp_path: Path) -> None:
    command = [sys.executable, "-c", "from streams.cli.main import main; main()", "schemas"]
    check = subprocess.run(
        [*command, "--out", str(SCHEMAS), "--check"], capture_output=True, text=True
    )
    assert check.returncode == 0, check.stderr
    stale = subprocess.run(
        [*command, "--out", str(tmp_path), "--check"], capture_output=True, text=True
    )
    assert stale.returncode == 1 and "out of date" in stale.stderr
    wrote = subprocess.run([*command, "--out", str(tmp_path)], capture_output=True, text=True)
    assert wrote.returncode == 0 and "wrote 4 file(s)" in wrote.stdout
    assert {p.name for p in tmp_path.iterdir()} == set(output_schema_files())
