"""The last-known snapshot on local disk, so that Weir can start while Postgres is down.

After each successful load, a worker writes the snapshot's source rows (as read
by `weir.storage.snapshot`, not the built snapshot) to a file in the data
directory. `gatewayctl serve --allow-stale-start` builds its first snapshot
from that file when Postgres is unreachable. Provider credentials stay sealed
in the file and are decrypted only in memory, when the snapshot is built. Key
hashes are not secrets, but the file maps users to keys and grants, so it is
written with 0600 permissions in a 0700 directory all the same.
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
from pathlib import Path

import msgspec
from psycopg.conninfo import conninfo_to_dict

from weir.errors import ConfigError
from weir.storage.snapshot import Rows

logger = logging.getLogger(__name__)

SNAPSHOT_FILE_NAME = "snapshot.msgpack"
FORMAT_VERSION = 1


def database_identity(url: str) -> str:
    """Return `user@host:port/dbname` for a libpq URL or key=value string, without any password."""
    parameters = conninfo_to_dict(url)
    return "{}@{}:{}/{}".format(*(parameters.get(name, "") for name in ("user", "host", "port", "dbname")))


class StoredSnapshot(msgspec.Struct, frozen=True):
    """The file's content: the source rows, when they were saved, and from which database."""

    format: int
    saved_at: float
    database: str
    """`database_identity` of the source database; a stale start rejects a file from another database."""
    rows: Rows


class SnapshotStore:
    """One snapshot file: its reader, and a writer that replaces it atomically."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._written_digest: bytes | None = None
        self.failures = 0

    def __repr__(self) -> str:
        return f"SnapshotStore(path={str(self.path)!r})"

    def save(self, rows: Rows, database: str) -> bool:
        """Write `rows` unless they equal what this store wrote last; return whether it wrote.

        A failed write (OSError) is logged, as a WARNING for the first of a
        series, and counted instead of raised, because a failed save must not
        fail the reload that triggered it.
        """
        content = msgspec.msgpack.encode(StoredSnapshot(FORMAT_VERSION, time.time(), database, rows))
        digest = hashlib.sha256(msgspec.msgpack.encode(rows)).digest()
        if digest == self._written_digest:
            return False
        try:
            self._replace(content)
        except OSError as error:
            self.failures += 1
            level = logging.WARNING if self.failures == 1 else logging.DEBUG
            logger.log(level, "Could not save the last-known snapshot to %s: %s", self.path, error.strerror)
            return False
        self.failures = 0
        self._written_digest = digest
        return True

    def load(self) -> StoredSnapshot | None:
        """Return the saved snapshot, or None when there is no file."""
        try:
            content = self.path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as error:
            raise ConfigError(f"Cannot read the last-known snapshot {self.path}: {error.strerror}.") from None
        try:
            stored = msgspec.msgpack.decode(content, type=StoredSnapshot)
        except msgspec.DecodeError:  # also raised when the content has another shape
            raise ConfigError(
                f"The last-known snapshot {self.path} is damaged or was not written by Weir. Delete it; the next "
                "successful load from Postgres writes a new one."
            ) from None
        if stored.format != FORMAT_VERSION:
            raise ConfigError(
                f"The last-known snapshot {self.path} has format {stored.format}, but this Weir reads "
                f"format {FORMAT_VERSION}. Delete it; the next successful load from Postgres writes a new one."
            )
        return stored

    def _replace(self, content: bytes) -> None:
        # Write a private temporary file, then rename it over the old one, so
        # that neither a reader nor a crash leaves half a file at `path`. Workers of one replica
        # write the same path, so each uses its own temporary name.
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        temporary = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        try:
            with os.fdopen(os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb") as file:
                os.fchmod(file.fileno(), 0o600)  # the mode of O_CREAT does not apply to a file left by a crash
                file.write(content)
                file.flush()
                os.fsync(file.fileno())
            os.replace(temporary, self.path)
        except BaseException:
            temporary.unlink(missing_ok=True)
            raise
