"""What every operation needs about one repository, built lazily so cheap paths stay cheap."""

from __future__ import annotations

from functools import cached_property
from pathlib import Path

from git_cvfs.errors import ConfigError
from git_cvfs.local.cache import Cache
from git_cvfs.local.config import Settings, load_settings
from git_cvfs.local.git import Repo
from git_cvfs.local.secrets import load_secrets
from git_cvfs.remote.archive import Archive, as_local, capabilities_of, open_archive


class Workspace:
    def __init__(self, repo: Repo) -> None:
        self.repo = repo
        self._archives: dict[str, Archive] = {}
        self._secret_names: list[str] | None = None

    @classmethod
    def discover(cls, cwd: str | Path | None = None) -> Workspace:
        return cls(Repo.discover(cwd))

    @cached_property
    def settings(self) -> Settings:
        return load_settings(self.repo)

    def use_settings(self, settings: Settings) -> None:
        """Use these settings from now on (the filter's, for the tree a checkout writes), and
        forget what was derived from earlier ones."""
        self.settings = settings  # replaces the cached_property's value
        self.__dict__.pop("readable_names", None)
        self._archives.clear()

    @cached_property
    def cache(self) -> Cache:
        return Cache(self.repo.cvfs_dir)

    @property
    def archive_names(self) -> list[str]:
        """Primary first, then the secondary: the order reads try them in."""
        return sorted(self.settings.archives, key=lambda name: name != "primary")

    def trust_problem(self, name: str) -> ConfigError | None:
        """Why this archive may not be used on this machine yet, or None. Looks at settings
        only: nothing on disk or on the network is touched for an archive before it passes."""
        from git_cvfs.local.trust import forbidden_directory, is_approved, location_of, untrusted_error

        archive = self.settings.archives[name]
        if not is_approved(self.settings, archive):
            return untrusted_error(archive)
        why = forbidden_directory(archive)
        if why is not None:
            return ConfigError(
                f'archive "{name}" at {location_of(archive)} may not be named in .cvfs/config: {why}',
                hint=f"remove archive.{name}.url from .cvfs/config (set your own with "
                f"`git config cvfs.archive.{name}.url URL`)",
            )
        return None

    def load_secrets(self) -> list[str]:
        """The one step that reads .cvfs/secrets.env: its variables go into this process's
        environment, where the SDKs' credential chains look (those already set win). Done
        before the first cloud archive is opened, once; returns the names it set."""
        if self._secret_names is None:
            self._secret_names = load_secrets(self.repo)
        return self._secret_names

    def archive(self, name: str) -> Archive:
        if name not in self._archives:
            problem = self.trust_problem(name)
            if problem is not None:
                raise problem
            settings = self.settings.archives[name]
            if not capabilities_of(settings.url).local:
                self.load_secrets()
            archive = open_archive(settings, concurrency=self.settings.concurrency)
            local = as_local(archive)
            if local is not None:
                local.check_placement(self.repo.root, [self.repo.git_dir, self.repo.common_dir])
                if not self.settings.cache_keep:
                    local.link_from(self.cache.objects)
            self._archives[name] = archive
        return self._archives[name]

    @cached_property
    def readable_names(self) -> list[str]:
        """The archives this machine may read from, in the order reads try them."""
        return [name for name in self.archive_names if self.trust_problem(name) is None]

    @property
    def archives(self) -> list[Archive]:
        """Every archive reads may use: the approved ones. When none is, the first one's problem
        is raised (an error naming the location and the command that approves it)."""
        if not self.readable_names:
            problem = self.trust_problem(self.archive_names[0])
            assert problem is not None
            raise problem
        return [self.archive(name) for name in self.readable_names]

    def unreadable(self) -> ConfigError | None:
        """Why no archive may be read at all, or None when at least one may."""
        if self.readable_names:
            return None
        return self.trust_problem(self.archive_names[0])

    def require_trusted(self, names: list[str] | None = None) -> None:
        """These archives (default: all) approved, or the first problem raised, before any work."""
        for name in names or self.archive_names:
            problem = self.trust_problem(name)
            if problem is not None:
                raise problem

    @property
    def primary(self) -> Archive:
        return self.archive("primary")

    @property
    def pending_dir(self) -> Path:
        # Per work tree: paths the filter left as refs for a hook or `ensure` to finish.
        return self.repo.git_dir / "cvfs" / "pending"
