"""The files a run writes (rejects, report, journal, dry-run file, suppression list): one place
for how they are created, locked and written.

Every output file is
- created owner-only (0600) whatever the umask, and made so when it exists with more;
- never opened through a symbolic link (O_NOFOLLOW), and only when it is a regular file of the
  user running the target: a link or a file planted in a shared directory is refused, never
  written through, appended to or chmod'ed;
- opened at start-up, before any input is read, so that an output that cannot be created stops
  the run at once with one line naming its setting;
- locked for the whole run (flock): a second run on the same file is refused with one line
  naming the first one's process ID;
- written a line at a time, each line whole or not at all (a failed write is cut back off).

In a Meltano project (`MELTANO_PROJECT_ROOT` set) the default paths lie under
`output/<loader name>/`, a directory that carries its own `.gitignore` (`*`): the files hold
personal data and must not be committed, and two loaders never share a journal.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import logging
import os
import stat
from pathlib import Path

from target_amazon_dsp_conversions.errors import SettingError, UserError

logger = logging.getLogger("target-amazon-dsp-conversions")

OWNER_ONLY = 0o600
_OPEN_FLAGS = os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC
# Where Meltano says the project and the loader are (`meltano run`, `meltano invoke`).
MELTANO_PROJECT_ROOT = "MELTANO_PROJECT_ROOT"
MELTANO_LOADER_NAME = "MELTANO_LOADER_NAME"
DEFAULT_LOADER_NAME = "target-amazon-dsp-conversions"
# The output files whose paths default by where the target runs: setting -> file name.
DEFAULT_FILE_NAMES = {
    "dry_run_path": "dry-run-requests.jsonl",
    "rejects_path": "rejects.jsonl",
    "journal_path": "delivery-journal.sqlite",
    "suppression_list_path": "suppression-list.sqlite",
}


class OutputError(UserError):
    """An output file could not be written during the run (a full disk, a removed directory):
    the run stops with this one line."""

    def __init__(self, setting: str, path: str, error: OSError | str) -> None:
        """Name the file, its setting and what the system said."""
        reason = error if isinstance(error, str) else (error.strerror or str(error))
        super().__init__(
            f"cannot write {path} (setting '{setting}'): {reason}; free the space or fix the "
            "path, then re-run from the last STATE"
        )
        self.setting = setting


def default_directory() -> Path | None:
    """In a Meltano project, where output files go unless their settings say otherwise:
    `output/<loader name>/` under the project root (git-ignored). None outside Meltano."""
    root = os.environ.get(MELTANO_PROJECT_ROOT)
    if not root:
        return None
    loader = os.environ.get(MELTANO_LOADER_NAME) or DEFAULT_LOADER_NAME
    return Path(root) / "output" / loader


def default_path(name: str) -> str:
    """Where the output file `name` goes unless its setting says otherwise: the working
    directory, or in a Meltano project `default_directory()`."""
    directory = default_directory()
    return name if directory is None else str(directory / name)


def ignored_by_git(directory: Path) -> None:
    """Give a default output directory of a Meltano project its own `.gitignore`, so `git add
    -A` never stages what it holds, whatever the project's own `.gitignore` says."""
    marker = directory / ".gitignore"
    if marker.exists() or marker.is_symlink():
        return
    with contextlib.suppress(OSError):  # the outputs themselves say what is wrong
        descriptor = os.open(marker, _OPEN_FLAGS | os.O_EXCL, 0o644)
        os.write(descriptor, b"# Written by target-amazon-dsp-conversions: personal data.\n*\n")
        os.close(descriptor)


def make_directories(directory: Path) -> None:
    """Create what is missing of `directory`, owner-only (0700) whatever the umask: nobody
    else can plant a link in a directory the target made."""
    missing = []
    while not directory.is_dir() and directory != directory.parent:
        missing.append(directory)
        directory = directory.parent
    for path in reversed(missing):
        with contextlib.suppress(FileExistsError):
            os.mkdir(path, 0o700)


def check_distinct(paths: dict[str, str]) -> None:
    """Settings that name the same file (setting -> path): one line naming both."""
    seen: dict[str, str] = {}
    for setting, path in paths.items():
        real = os.path.realpath(path)
        if real in seen:
            raise SettingError(
                setting, f"names the same file as {seen[real]} ({path}); give each its own"
            )
        seen[real] = setting


def check_database_directory(setting: str, path: str) -> None:
    """SQLite creates files beside a database, following links (`OutputFile` cannot vouch
    for them): its directory must be one that only its owner (or root) writes to."""
    directory = os.path.dirname(os.path.abspath(path))
    try:
        status = os.stat(directory)
    except OSError:
        return  # created by OutputFile, as the user's own
    if status.st_mode & stat.S_IWOTH or status.st_uid not in (os.geteuid(), 0):
        raise SettingError(
            setting,
            f"{directory} is writable by other users, who could plant links where SQLite "
            f"writes beside {os.path.basename(path)}; give a directory of your own",
        )


class OutputFile:
    """One output file, created (or opened) and locked for the run; see the module's rules."""

    def __init__(self, setting: str, path: str, *, truncate: bool = False) -> None:
        """Create or open the file now, or raise SettingError naming `setting` (start-up).
        `truncate` empties it, once it is locked."""
        self.setting = setting
        self.path = path
        self.created = False
        self._descriptor: int | None = None
        self._descriptor = self._open()
        self.size = os.fstat(self._descriptor).st_size
        if truncate and self.size:
            try:
                os.ftruncate(self._descriptor, 0)
            except OSError as exc:
                self.close()
                raise SettingError(setting, self._cannot_create(exc)) from None
            self.size = 0

    @property
    def descriptor(self) -> int:
        """The open file (read with os.pread; writes go through `append` and `replace`)."""
        if self._descriptor is None:
            raise OutputError(self.setting, self.path, "the file was closed")
        return self._descriptor

    def append(self, data: bytes) -> None:
        """Append `data` (whole lines) whole or not at all: a write cut short (a full disk) is
        cut back off, and OutputError says why."""
        descriptor = self.descriptor
        written = 0
        try:
            while written < len(data):
                written += os.write(descriptor, data[written:])
        except OSError as exc:
            if written:
                with contextlib.suppress(OSError):
                    os.ftruncate(descriptor, self.size)
            raise OutputError(self.setting, self.path, exc) from None
        self.size += written

    def replace(self, data: bytes) -> None:
        """Make `data` the file's whole content, durably (the report)."""
        descriptor = self.descriptor
        try:
            os.ftruncate(descriptor, 0)
            self.size = 0
            self.append(data)
            os.fsync(descriptor)
        except OSError as exc:
            raise OutputError(self.setting, self.path, exc) from None

    def close(self, *, remove_if_empty: bool = False) -> None:
        """Release the file (and its lock). `remove_if_empty`: a file this run created and
        left empty goes (a clean run leaves no rejects file behind)."""
        if self._descriptor is None:
            return
        if remove_if_empty and self.created and self.size == 0:
            with contextlib.suppress(OSError):
                if os.path.samestat(os.lstat(self.path), os.fstat(self._descriptor)):
                    os.unlink(self.path)
        os.close(self._descriptor)
        self._descriptor = None

    # Start-up.

    def _open(self) -> int:
        directory = Path(self.path).parent
        try:
            make_directories(directory)
            if directory == default_directory():
                ignored_by_git(directory)
            existed = os.path.lexists(self.path)
            descriptor = os.open(self.path, _OPEN_FLAGS, OWNER_ONLY)
        except OSError as exc:
            raise SettingError(self.setting, self._cannot_create(exc)) from None
        try:
            self._check(descriptor)
            self._lock(descriptor)
        except BaseException:
            os.close(descriptor)
            raise
        self.created = not existed
        return descriptor

    def _cannot_create(self, exc: OSError) -> str:
        if exc.errno == errno.ELOOP:
            return (
                f"{self.path} is a symbolic link; the target does not write through links "
                "(another user may have planted it): give a path of your own"
            )
        if exc.errno == errno.EISDIR:
            return f"{self.path} is a directory; give a file path"
        if exc.errno in (errno.ENOTDIR, errno.EEXIST):
            return f"cannot create {self.path}: a part of its directory is a file"
        return f"cannot create {self.path}: {exc.strerror or exc}"

    def _check(self, descriptor: int) -> None:
        """A regular file of ours, owner-only."""
        status = os.fstat(descriptor)
        if not stat.S_ISREG(status.st_mode):
            raise SettingError(self.setting, f"{self.path} is not a regular file")
        if status.st_uid != os.geteuid():
            raise SettingError(
                self.setting,
                f"{self.path} belongs to another user (uid {status.st_uid}); the target writes "
                "only files of its own: give a path of your own",
            )
        if status.st_nlink > 1:
            raise SettingError(
                self.setting,
                f"{self.path} has other names (hard links); the target writes only files of "
                "its own: give a path of your own",
            )
        mode = stat.S_IMODE(status.st_mode)
        if mode & ~OWNER_ONLY:
            try:
                os.fchmod(descriptor, OWNER_ONLY)
            except OSError as exc:
                raise SettingError(self.setting, self._cannot_create(exc)) from None
            logger.warning(
                "%s was readable by others (mode %o); made it owner-only (600), as it holds "
                "personal data",
                self.path,
                mode,
            )

    def _lock(self, descriptor: int) -> None:
        """One run at a time on this file."""
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = lock_holder(descriptor)
            if holder == os.getpid():
                return  # a target object of this process (the SDK's tests make several)
            who = f"another run of the target (process {holder})" if holder else "another run"
            raise UserError(
                f"{self.path} (setting '{self.setting}') is in use by {who}; wait for it to "
                f"end, or give this run its own {self.setting}"
            ) from None
        except OSError:
            return  # a file system without locks (some network mounts): nothing to hold


def lock_holder(descriptor: int) -> int | None:
    """The process that holds the flock on this file (Linux: /proc/locks), if it can be told."""
    status = os.fstat(descriptor)
    device = f"{os.major(status.st_dev):02x}:{os.minor(status.st_dev):02x}:{status.st_ino}"
    try:
        with open("/proc/locks", encoding="ascii") as locks:
            for line in locks:
                fields = line.split()
                # "1: FLOCK  ADVISORY  WRITE 12345 fe:00:2146960 0 EOF"
                if len(fields) >= 6 and fields[1] == "FLOCK" and fields[5] == device:  # noqa: PLR2004
                    return int(fields[4])
    except (OSError, ValueError):
        pass
    return None
