"""A tenant's ``${NAME}`` reaches its own secrets (and shared ones), nothing else (issue 17)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from models.secret_reference import (
    SHARED,
    SecretReferenceError,
    check_references,
    is_reference_only,
    parse_reference,
    resolve_references,
    secret_env_name,
    secret_file_parts,
    tenant_env_token,
)

SECRETS = {
    ("acme", "ERP_TOKEN"): "acme-token",
    ("beta", "ERP_TOKEN"): "beta-token",
    (SHARED, "PARTNER_KEY"): "shared-key",
}


def test_own_secret_resolves_in_the_tenants_namespace() -> None:
    assert resolve_references("Bearer ${ERP_TOKEN}", "acme", SECRETS) == "Bearer acme-token"
    assert resolve_references("Bearer ${ERP_TOKEN}", "beta", SECRETS) == "Bearer beta-token"


def test_shared_secret_is_reachable_by_every_tenant_only_when_named_so() -> None:
    assert resolve_references("${shared:PARTNER_KEY}", "acme", SECRETS) == "shared-key"
    with pytest.raises(SecretReferenceError, match="secret PARTNER_KEY is not available"):
        resolve_references("${PARTNER_KEY}", "acme", SECRETS)


def test_a_missing_secret_names_it_and_the_tenant() -> None:
    with pytest.raises(SecretReferenceError) as info:
        resolve_references("x ${ERP_TOKEN} ${HOME}", "acme", SECRETS)
    assert str(info.value) == "secret HOME is not available to tenant 'acme'"


def test_another_tenants_secret_is_unreachable() -> None:
    with pytest.raises(SecretReferenceError, match="not available to tenant 'gamma'"):
        resolve_references("${ERP_TOKEN}", "gamma", SECRETS)


def test_a_tenant_named_like_the_shared_scope_gets_no_plain_secrets() -> None:
    with pytest.raises(SecretReferenceError):
        resolve_references("${PARTNER_KEY}", SHARED, SECRETS)


@pytest.mark.parametrize(
    "inner",
    [
        "RETURNHOOK_SECRET_BETA__ERP_TOKEN",  # another tenant's variable, spelled out
        "RETURNHOOK_BROKER",  # the worker's own configuration
        "returnhook_broker",
        "beta:ERP_TOKEN",  # no scope but shared
        "beta.ERP_TOKEN",
        "../beta/ERP_TOKEN",
        "A__B",
        "_A",
        "A_",
        "1A",
        "HOME-default",
        "",
        "X" * 129,
    ],
)
def test_malformed_references_are_refused_and_never_looked_up(inner: str) -> None:
    with pytest.raises(SecretReferenceError, match="is not a secret reference"):
        parse_reference(inner)
    looked_up: list[object] = []

    class Spy(dict):
        def get(self, key: object, default: object = None) -> object:
            looked_up.append(key)
            return "planted"

    with pytest.raises(SecretReferenceError):
        resolve_references("${" + inner + "}", "acme", Spy())
    assert looked_up == []
    with pytest.raises(ValueError, match="is not a secret reference"):
        check_references("v ${" + inner + "}")


def test_text_without_references_is_unchanged() -> None:
    for text in ["", "plain", "$HOME", "${ not closed", "{A}"]:
        assert resolve_references(text, "acme", {}) == text
        assert check_references(text) == text


def test_a_resolved_value_is_not_resolved_again() -> None:
    assert resolve_references("${ERP_TOKEN}", "acme", {("acme", "ERP_TOKEN"): "${B}"}) == "${B}"


def test_reference_only() -> None:
    assert is_reference_only("${A}")
    assert not is_reference_only("Bearer ${A}")


@pytest.mark.parametrize(
    ("tenant", "token"),
    [
        ("acme", "ACME"),
        ("acme-eu", "ACME_EU"),
        ("t1", "T1"),
        ("Acme", None),
        ("a_b", None),
        ("a--b", None),
        ("a.b", None),
        ("-a", None),
        ("", None),
    ],
)
def test_tenant_env_token(tenant: str, token: str | None) -> None:
    assert tenant_env_token(tenant) == token


def test_env_and_file_names() -> None:
    assert secret_env_name("acme-eu", "ERP_TOKEN") == "RETURNHOOK_SECRET_ACME_EU__ERP_TOKEN"
    assert secret_env_name(SHARED, "KEY") == "RETURNHOOK_SHARED_SECRET_KEY"
    assert secret_env_name("Acme", "KEY") is None
    assert secret_file_parts("Acme", "KEY") == ("Acme", "KEY")
    assert secret_file_parts(SHARED, "KEY") == ("_shared", "KEY")
    for unsafe in ["..", ".", "a/b", "", "/etc", "_x"]:
        assert secret_file_parts(unsafe, "KEY") is None


TENANT_IDS = st.text(alphabet="abAB01-_.", min_size=1, max_size=8)
NAMES = st.from_regex(r"\A[A-Za-z][A-Za-z0-9]{0,3}(_[A-Za-z0-9]{1,3}){0,2}\Z")


@given(TENANT_IDS, NAMES, TENANT_IDS, NAMES)
def test_no_two_tenants_share_an_environment_variable(
    tenant: str, name: str, other: str, other_name: str
) -> None:
    """The env naming is injective: a tenant can never land in another's variable."""
    mine, theirs = secret_env_name(tenant, name), secret_env_name(other, other_name)
    if mine is not None and mine == theirs:
        assert (tenant, name) == (other, other_name)
    assert mine != secret_env_name(SHARED, other_name)
