"""Where tenants' secrets come from: the worker's environment and a secrets directory.

The naming is the isolation (``models.secret_reference`` decides which ``(scope, name)`` a
reference means; this reads it):

- environment: ``RETURNHOOK_SECRET_<TENANT>__<NAME>`` (tenant id upper-cased, ``-`` -> ``_``;
  only for ids of lower-case letters, digits and inner hyphens) and
  ``RETURNHOOK_SHARED_SECRET_<NAME>`` for secrets the operator shares with every tenant;
- files: ``<secrets dir>/<tenant id>/<NAME>`` and ``<secrets dir>/_shared/<NAME>``, as a
  Kubernetes Secret mounted per tenant lays them out (one trailing newline is dropped).

The environment wins when both hold a secret. Every value handed out is registered for
redaction first, so a rotated file's new value is masked in logs too.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path

from models.secret_reference import (
    ENV_PREFIX,
    SHARED,
    SHARED_ENV_PREFIX,
    secret_env_name,
    secret_file_parts,
    tenant_env_token,
)

MAX_SECRET_BYTES = 64 * 1024


class SecretStore(Mapping[tuple[str, str], str]):
    """``(tenant id or SHARED, name) -> value``, read on demand; nothing else of the env."""

    def __init__(
        self,
        env: Mapping[str, str],
        secrets_dir: Path | None = None,
        on_read: Callable[[Iterable[str]], None] | None = None,
    ) -> None:
        # Only the secret namespaces are kept: the rest of the environment is never reachable.
        self._env = {k: v for k, v in env.items() if k.startswith((ENV_PREFIX, SHARED_ENV_PREFIX))}
        self._dir = secrets_dir
        self._on_read = on_read

    def __getitem__(self, key: tuple[str, str]) -> str:
        value = self._read(*key)
        if value is None:
            raise KeyError(key)
        if self._on_read is not None:
            self._on_read([value])
        return value

    def _read(self, scope: str, name: str) -> str | None:
        env_name = secret_env_name(scope, name)
        if env_name is not None and env_name in self._env:
            return self._env[env_name]
        parts = secret_file_parts(scope, name)
        if self._dir is None or parts is None:
            return None
        path = self._dir.joinpath(*parts)
        try:
            with path.open("rb") as handle:
                data = handle.read(MAX_SECRET_BYTES + 1)
        except OSError:
            return None
        if len(data) > MAX_SECRET_BYTES:
            return None
        text = data.decode("utf-8", errors="replace")
        return text[:-2] if text.endswith("\r\n") else text.removesuffix("\n")

    def __iter__(self) -> Iterator[tuple[str, str]]:
        """The secrets the environment holds (files are read on demand, not listed)."""
        for key in self._env:
            if key.startswith(SHARED_ENV_PREFIX):
                scope, name = SHARED, key[len(SHARED_ENV_PREFIX) :]
            else:
                token, _, name = key[len(ENV_PREFIX) :].partition("__")
                scope = token.lower().replace("_", "-")
            if secret_env_name(scope, name) == key:
                yield scope, name

    def __len__(self) -> int:
        return sum(1 for _ in self)


def env_secret_name(tenant: str, name: str) -> str:
    """The variable an operator sets for ``tenant``'s secret ``name`` (for docs and errors)."""
    token = tenant_env_token(tenant)
    if token is None:
        raise ValueError(
            f"tenant id {tenant!r} has no environment namespace; use the secrets directory"
        )
    return f"{ENV_PREFIX}{token}__{name}"
