"""System accounts: each hub user's servers run under an account of their own.

The account name is a fixed prefix plus a sanitized form of the hub username, so a hub user
named `root` never runs as root, and two hub names that sanitize alike get distinct accounts.
"""

from __future__ import annotations

import hashlib
import os
import pwd
import re
import stat
import subprocess
from dataclasses import dataclass
from pathlib import Path

MAX_ACCOUNT_LENGTH = 32


@dataclass(frozen=True)
class Account:
    """A system account a server runs as."""

    name: str
    uid: int
    gid: int
    home: str


def account_name(username: str, prefix: str) -> str:
    """The system account of a hub user: prefix + safe name (+ a hash when changed)."""
    safe = re.sub(r"[^a-z0-9_-]", "-", username.lower())
    name = prefix + safe
    if safe != username or len(name) > MAX_ACCOUNT_LENGTH:
        digest = hashlib.sha256(username.encode()).hexdigest()[:8]
        name = f"{name[: MAX_ACCOUNT_LENGTH - 9]}-{digest}"
    return name


def current_account(home: str | None = None) -> Account:
    """The account batchhub runs as (isolation off)."""
    entry = pwd.getpwuid(os.getuid())
    return Account(entry.pw_name, entry.pw_uid, entry.pw_gid, home or entry.pw_dir)


def check_reachable(home: Path) -> None:
    """Refuse a home that its account could not enter because a parent folder is closed."""
    for parent in home.resolve().parents:
        mode = parent.stat().st_mode
        if not mode & stat.S_IXOTH:
            raise RuntimeError(
                f"home {home} cannot be reached by its account: {parent} has mode "
                f"{oct(stat.S_IMODE(mode))}; put the state folder where other accounts may pass"
            )


def ensure_account(name: str, homes_dir: Path) -> Account:
    """Create the account with a private home (mode 0700) if it does not exist yet."""
    home = homes_dir / name
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        homes_dir.mkdir(parents=True, exist_ok=True)
        os.chmod(homes_dir, 0o711)
        subprocess.run(
            [
                "useradd",
                "--home-dir",
                str(home),
                "--no-create-home",
                "--user-group",
                "--shell",
                "/bin/bash",
                "--comment",
                "batchhub user",
                name,
            ],
            check=True,
            capture_output=True,
            text=True,
        )
        entry = pwd.getpwnam(name)
    if entry.pw_dir != str(home):
        # batchhub owns the accounts with its prefix: follow a moved state folder
        subprocess.run(["usermod", "--home", str(home), name], check=True, capture_output=True)
        entry = pwd.getpwnam(name)
    home = Path(entry.pw_dir)
    check_reachable(home)
    home.mkdir(parents=True, exist_ok=True)
    os.chown(home, entry.pw_uid, entry.pw_gid)
    os.chmod(home, 0o700)
    return Account(entry.pw_name, entry.pw_uid, entry.pw_gid, str(home))
