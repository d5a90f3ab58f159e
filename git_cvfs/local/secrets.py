"""Optional per-repository credentials in .cvfs/secrets.env, read as environment."""

from __future__ import annotations

import os
import stat

from git_cvfs.errors import ConfigError
from git_cvfs.local.git import Repo, run_git

SECRETS_FILE = ".cvfs/secrets.env"


def load_secrets(repo: Repo) -> list[str]:
    """Put KEY=VALUE lines into the environment (variables already set win); returns the names.

    Refused when git tracks the file or others can read it: a key that leaks
    through a commit or a shared machine is a key someone else holds.
    """
    path = repo.root / SECRETS_FILE
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return []
    if st.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ConfigError(
            f"{SECRETS_FILE} is readable by other users (mode {stat.S_IMODE(st.st_mode):o})",
            hint=f"chmod 600 {SECRETS_FILE}",
        )
    tracked = run_git(["ls-files", "--error-unmatch", "--", SECRETS_FILE], cwd=repo.root, check=False)
    if tracked.returncode == 0:
        raise ConfigError(
            f"{SECRETS_FILE} is tracked by git: its credentials are in your history",
            hint=f"git rm --cached {SECRETS_FILE}, rotate those keys, and keep it in .cvfs/.gitignore",
        )
    names = []
    for lineno, line in enumerate(path.read_text().splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.removeprefix("export ").partition("=")
        key = key.strip()
        if not sep or not key.replace("_", "").isalnum():
            raise ConfigError(f"{SECRETS_FILE}:{lineno}: expected KEY=VALUE", hint="one KEY=VALUE per line")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        os.environ.setdefault(key, value)
        names.append(key)
    return names
