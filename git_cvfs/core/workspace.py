"""What every operation needs about one repository, built lazily so cheap paths stay cheap."""

from __future__ import annotations

from functools import cached_property
from pathlib import Path

from git_cvfs.local.cache import Cache
from git_cvfs.local.config import Settings, load_settings
from git_cvfs.local.git import Repo
from git_cvfs.local.secrets import load_secrets
from git_cvfs.remote.archive import Archive, is_directory, open_archive


class Workspace:
    def __init__(self, repo: Repo) -> None:
        self.repo = repo
        self._archives: dict[str, Archive] = {}

    @classmethod
    def discover(cls, cwd: str | Path | None = None) -> Workspace:
        return cls(Repo.discover(cwd))

    @cached_property
    def settings(self) -> Settings:
        return load_settings(self.repo)

    @cached_property
    def cache(self) -> Cache:
        return Cache(self.repo.cvfs_dir)

    @property
    def archive_names(self) -> list[str]:
        """Primary first, then the secondary: the order reads try them in."""
        return sorted(self.settings.archives, key=lambda name: name != "primary")

    def archive(self, name: str) -> Archive:
        if name not in self._archives:
            settings = self.settings.archives[name]
            if not is_directory(settings.url):
                load_secrets(self.repo)
            archive = open_archive(settings, concurrency=self.settings.concurrency)
            if is_directory(settings.url):
                from git_cvfs.remote.filedir import FileArchive, check_location

                assert isinstance(archive, FileArchive)
                check_location(archive, self.repo.root, [self.repo.git_dir, self.repo.common_dir])
            self._archives[name] = archive
        return self._archives[name]

    @property
    def archives(self) -> list[Archive]:
        return [self.archive(name) for name in self.archive_names]

    @property
    def primary(self) -> Archive:
        return self.archive("primary")

    @property
    def pending_dir(self) -> Path:
        # Per work tree: paths the filter left as refs for a hook or `ensure` to finish.
        return self.repo.git_dir / "cvfs" / "pending"
