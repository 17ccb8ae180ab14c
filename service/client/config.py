"""Where the CLI finds the API: a login file, overridden by ``OPSJOBS_URL`` / ``OPSJOBS_TOKEN``.

The file is ``$XDG_CONFIG_HOME/opsjobs/cli.toml`` (``~/.config/opsjobs/cli.toml`` when
``XDG_CONFIG_HOME`` is unset), readable by its owner only: it holds a bearer token.
"""

from __future__ import annotations

import json
import os
import tomllib
from dataclasses import dataclass
from pathlib import Path

from service.client.errors import CliError, ExitCode

URL_ENV = "OPSJOBS_URL"
TOKEN_ENV = "OPSJOBS_TOKEN"
FILE_MODE = 0o600


def config_path() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "opsjobs" / "cli.toml"


@dataclass(frozen=True)
class Login:
    url: str
    token: str


def _read_file(path: Path) -> dict[str, str]:
    try:
        with path.open("rb") as handle:
            data = tomllib.load(handle)
    except FileNotFoundError:
        return {}
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise CliError(f"cannot read {path}: {exc}; run opsjobs login again") from None
    return {key: value for key, value in data.items() if isinstance(value, str)}


def load_login() -> Login:
    """The URL and token to use; raises when either is missing."""
    stored = _read_file(config_path())
    url = os.environ.get(URL_ENV) or stored.get("url")
    token = os.environ.get(TOKEN_ENV) or stored.get("token")
    if not url or not token:
        missing = URL_ENV if not url else TOKEN_ENV
        raise CliError(
            f"not logged in: run opsjobs login, or set {URL_ENV} and {TOKEN_ENV} "
            f"({missing} is not set)",
            ExitCode.UNREACHABLE,
        )
    return Login(url=normalise_url(url), token=token)


def normalise_url(url: str) -> str:
    url = url.strip().rstrip("/")
    if not url.startswith(("http://", "https://")):
        raise CliError(f"the API URL must start with http:// or https://, got {url!r}")
    return url


def save_login(login: Login) -> Path:
    """Write the login file, owner-only from the first byte."""
    path = config_path()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    # json.dumps quotes a string the way TOML's basic strings want it.
    text = f"url = {json.dumps(login.url)}\ntoken = {json.dumps(login.token)}\n"
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        os.fchmod(handle.fileno(), FILE_MODE)
        handle.write(text)
    return path


def remove_login() -> Path | None:
    path = config_path()
    try:
        path.unlink()
    except FileNotFoundError:
        return None
    return path
