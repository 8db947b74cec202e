"""``${NAME}`` in tenant settings: a reference into that tenant's own secrets, nothing else.

Settings are written by tenants' administrators, so a reference must never read the worker's
environment at large (``${HOME}``, ``${RETURNHOOK_BROKER}``) or another tenant's secrets. A
reference names a secret *inside the tenant's namespace*; where that namespace lives (an
environment variable, a mounted file) is the shell's business (``streams.ops.secret_store``),
which hands this module a lookup keyed by ``(scope, name)``:

- ``${ERP_TOKEN}``        -> ``(tenant id, "ERP_TOKEN")``: the tenant's own secret;
- ``${shared:ERP_TOKEN}`` -> ``(SHARED, "ERP_TOKEN")``: a secret the operator shared with every
  tenant on purpose.

Any other ``${...}`` is refused when settings are published, and if such a record reaches a
worker anyway it is a step error, never an expansion. Pure: no environment, no files.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

SHARED = "_shared"
"""The scope of operator-shared secrets; no tenant id can spell it (see ``tenant_env_token``)."""

SECRET_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9]*(?:_[A-Za-z0-9]+)*$")
"""Letters, digits, single inner underscores: ``__`` separates tenant and name in env names."""
MAX_NAME_LENGTH = 128
RESERVED_PREFIX = "RETURNHOOK_"
"""Names the worker's own variables use; a reference spelled like them is a probe, not a secret."""

REFERENCE = re.compile(r"\$\{([^{}]*)\}")
"""Anything of the form ``${...}``: each one must be a valid reference."""

ENV_PREFIX = "RETURNHOOK_SECRET_"
SHARED_ENV_PREFIX = "RETURNHOOK_SHARED_SECRET_"
_ENV_TENANT = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
_FILE_TENANT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")

SecretLookup = Mapping[tuple[str, str], str]
"""``(scope, name) -> value``: a tenant id or ``SHARED``, and the secret's name."""


class SecretReferenceError(LookupError):
    """A reference that is malformed, outside the tenant's namespace, or not provided."""


def parse_reference(inner: str) -> tuple[bool, str]:
    """``(shared, name)`` of the text between ``${`` and ``}``, or why it is not a reference."""
    shared = False
    name = inner
    if ":" in inner:
        scope, _, name = inner.partition(":")
        if scope != "shared":
            raise SecretReferenceError(
                f"${{{inner}}} is not a secret reference: the only scope is 'shared:' "
                "(a tenant reaches its own secrets and the operator's shared ones, nothing else)"
            )
        shared = True
    if name.upper().startswith(RESERVED_PREFIX):
        raise SecretReferenceError(
            f"${{{inner}}} is not a secret reference: names starting with {RESERVED_PREFIX} "
            "are the worker's own variables; a tenant's settings cannot read them"
        )
    if len(name) > MAX_NAME_LENGTH or not SECRET_NAME.match(name):
        raise SecretReferenceError(
            f"${{{inner}}} is not a secret reference: a secret name is letters, digits and "
            f"single underscores, starting with a letter, at most {MAX_NAME_LENGTH} characters"
        )
    return shared, name


def references(text: str) -> list[str]:
    """The inner text of every ``${...}`` in ``text``."""
    return REFERENCE.findall(text)


def check_references(text: str | None) -> str | None:
    """Validator: every ``${...}`` must be a well-formed reference (publish time)."""
    if text:
        for inner in references(text):
            try:
                parse_reference(inner)
            except SecretReferenceError as exc:
                raise ValueError(str(exc)) from None
    return text


def is_reference_only(text: str) -> bool:
    """The whole value is one reference: not itself a secret, its value is."""
    match = REFERENCE.fullmatch(text)
    return match is not None


def resolve_references(text: str, tenant: str, lookup: SecretLookup) -> str:
    """``text`` with each reference replaced by the tenant's secret, or SecretReferenceError.

    The tenant comes from the event being processed (its settings' key), never from the text.
    """

    def replace(match: re.Match[str]) -> str:
        shared, name = parse_reference(match.group(1))
        scope = SHARED if shared else tenant
        # A tenant whose id spells the shared scope has no namespace of its own.
        value = None if not shared and tenant == SHARED else lookup.get((scope, name))
        if value is None:
            shown = f"shared:{name}" if shared else name
            owner = "shared with tenants" if shared else f"available to tenant {tenant!r}"
            raise SecretReferenceError(f"secret {shown} is not {owner}")
        return value

    return REFERENCE.sub(replace, text)


def tenant_env_token(tenant: str) -> str | None:
    """The tenant's part of ``RETURNHOOK_SECRET_<TENANT>__<NAME>``, or None: files only.

    Only ids of lower-case letters, digits and single inner hyphens get one (``acme-eu`` ->
    ``ACME_EU``), so no two tenants ever share an environment namespace ("Acme" and "acme",
    "a-b" and "a_b" would). Other ids use the secrets directory, whose names are exact.
    """
    if _ENV_TENANT.match(tenant) is None:
        return None
    return tenant.upper().replace("-", "_")


def secret_env_name(scope: str, name: str) -> str | None:
    """The environment variable holding ``(scope, name)``, or None when it has none."""
    if scope == SHARED:
        return SHARED_ENV_PREFIX + name
    token = tenant_env_token(scope)
    return None if token is None else f"{ENV_PREFIX}{token}__{name}"


def secret_file_parts(scope: str, name: str) -> tuple[str, str] | None:
    """``(directory, file)`` under the secrets directory, or None for an unusable tenant id."""
    if scope == SHARED:
        return SHARED, name
    if len(scope) > 253 or _FILE_TENANT.match(scope) is None:
        return None
    return scope, name
