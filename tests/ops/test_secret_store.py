"""The shell that reads tenants' secrets: only the secret namespaces, from env and files."""

from __future__ import annotations

from pathlib import Path

from models.secret_reference import SHARED, resolve_references
from streams.ops.redaction import SecretRegistry
from streams.ops.secret_store import SecretStore, env_secret_name

ENV = {
    "HOME": "/root",
    "RETURNHOOK_BROKER": "kafka:9092",
    "RETURNHOOK_SECRET_ACME__ERP_TOKEN": "acme-env-token",
    "RETURNHOOK_SECRET_BETA__ERP_TOKEN": "beta-env-token",
    "RETURNHOOK_SHARED_SECRET_PARTNER_KEY": "shared-key",
}


def test_env_secrets_by_tenant_and_shared() -> None:
    store = SecretStore(ENV)
    assert store[("acme", "ERP_TOKEN")] == "acme-env-token"
    assert store[("beta", "ERP_TOKEN")] == "beta-env-token"
    assert store[(SHARED, "PARTNER_KEY")] == "shared-key"
    assert store.get(("gamma", "ERP_TOKEN")) is None
    assert sorted(store) == [
        (SHARED, "PARTNER_KEY"),
        ("acme", "ERP_TOKEN"),
        ("beta", "ERP_TOKEN"),
    ]


def test_the_rest_of_the_environment_is_unreachable() -> None:
    store = SecretStore(ENV)
    for text in ["${HOME}", "${BROKER}"]:
        assert store.get(("acme", text[2:-1])) is None
    assert "HOME" not in str(dict(store.items()))


def test_files_per_tenant_as_kubernetes_mounts_them(tmp_path: Path) -> None:
    (tmp_path / "Acme.EU").mkdir()
    (tmp_path / "Acme.EU" / "ERP_TOKEN").write_text("file-token\n")
    (tmp_path / "_shared").mkdir()
    (tmp_path / "_shared" / "PARTNER_KEY").write_text("shared-file\r\n")
    (tmp_path / "acme").mkdir()
    (tmp_path / "acme" / "ERP_TOKEN").write_text("overridden by the env")
    store = SecretStore(ENV | {"RETURNHOOK_SHARED_SECRET_PARTNER_KEY": ""}, tmp_path)
    assert store[("Acme.EU", "ERP_TOKEN")] == "file-token"
    assert store[("acme", "ERP_TOKEN")] == "acme-env-token"
    assert store[(SHARED, "PARTNER_KEY")] == ""  # the environment wins, even when empty
    assert SecretStore({}, tmp_path)[(SHARED, "PARTNER_KEY")] == "shared-file"
    assert store.get(("beta", "PARTNER_KEY")) is None
    assert store.get(("..", "etc")) is None


def test_values_handed_out_are_registered_for_redaction(tmp_path: Path) -> None:
    registry = SecretRegistry()
    store = SecretStore(ENV, on_read=registry.add)
    assert resolve_references("Bearer ${ERP_TOKEN}", "acme", store) == "Bearer acme-env-token"
    assert registry.mask("got acme-env-token") == "got ***"
    assert registry.mask("beta-env-token") == "beta-env-token"  # never read, never needed


def test_env_secret_name_for_operators() -> None:
    assert env_secret_name("acme-eu", "ERP_TOKEN") == "RETURNHOOK_SECRET_ACME_EU__ERP_TOKEN"
