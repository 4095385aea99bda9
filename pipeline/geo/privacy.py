"""Client identity without personal data: a keyed hash of the IP address.

`client_id` is a keyed 64-bit BLAKE2b hash of the normalised address, so counts of distinct clients
work while the address itself is never written (unless the raw-IP opt-in is set). The key is the
secret `DLCDN_IP_KEY`; without it one is generated once and kept outside the repository (0600).
Geolocation happens before hashing, on the address itself.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path

from pipeline import files

KEY_ENV = "DLCDN_IP_KEY"
MIN_KEY_CHARS = 16


class SettingError(ValueError):
    """A setting holds a value dlcdn cannot use; the message names the setting."""


def key_file() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "dlcdn" / "ip_key"


def load_ip_key(env: Mapping[str, str] | None = None, announce: bool = True) -> bytes:
    """The hash key: `DLCDN_IP_KEY`, else a key generated once into the user's config dir."""
    return ip_key((os.environ if env is None else env).get(KEY_ENV), announce)


def ip_key(value: str | None, announce: bool = True) -> bytes:
    """The hash key from a `DLCDN_IP_KEY` value; None: the key file (generated the first time)."""
    if value is not None:
        if len(value) < MIN_KEY_CHARS:
            raise SettingError(f"{KEY_ENV} is too short: use at least {MIN_KEY_CHARS} characters")
        return _derive(value)
    path = key_file()
    if not path.exists():
        # Never overwrite a key another process created meanwhile: theirs stands.
        with contextlib.suppress(FileExistsError), files.atomic_path(path, replace=False) as tmp:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(secrets.token_hex(32) + "\n")
        if announce:
            print(
                f"dlcdn: {KEY_ENV} is not set; generated a client-hash key in {path} (mode 0600). "
                f"Keep it: client_id values are comparable only under the same key.",
                file=sys.stderr,
            )
    return _derive(path.read_text().strip())


def _derive(secret: str) -> bytes:
    # BLAKE2b takes keys of at most 64 bytes; a secret of any length maps to one.
    return hashlib.blake2b(secret.encode(), digest_size=32, person=b"dlcdn-ip-key").digest()


def client_ids(values: Iterable[str], key: bytes) -> list[int]:
    """Keyed 64-bit hashes as signed int64 (what the `client_id` column holds)."""
    out = []
    for v in values:
        d = hashlib.blake2b(v.encode(), digest_size=8, key=key).digest()
        out.append(int.from_bytes(d, "little", signed=True))
    return out
