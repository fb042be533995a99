"""A real PostgreSQL on loopback, in a folder of its own: the record's production database, for
the tests, the fault tests and the benchmark.

:class:`LocalPostgres` runs Debian's ``postgresql`` (``apt-get install postgresql``): ``initdb``
into ``folder`` (trust authentication: it listens on 127.0.0.1 and a socket in the folder
only), ``pg_ctl`` to start, stop (fast: the connections are cut, as a database failing over
would) and restart it. PostgreSQL refuses to run as root: as root, it runs as the ``postgres``
user the package creates, owning the folder.
"""
from __future__ import annotations

import glob
import logging
import os
import pwd
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from loanxai.errors import RecordError
from loanxai.ops.services import free_port

__all__ = ["LocalPostgres"]

logger = logging.getLogger(__name__)

#: the database the record is kept in
DATABASE = "records"


def _binary(name: str) -> str:
    """A PostgreSQL program: on the PATH, else in Debian's versioned folder."""
    found = shutil.which(name) or next(iter(sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True)), None)
    if found is None:
        raise RecordError(f"no {name}: install PostgreSQL (apt-get install postgresql)")
    return found


@dataclass
class LocalPostgres:
    """A PostgreSQL server on 127.0.0.1:``port`` with its data and socket under ``folder``."""

    folder: Path
    port: int

    @property
    def url(self) -> str:
        """The record's SQLAlchemy URL."""
        return self.database_url(DATABASE)

    def database_url(self, database: str) -> str:
        """The SQLAlchemy URL of one of the server's databases."""
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def create_database(self, database: str) -> str:
        """Create an empty database (a test's own); its URL."""
        self._run(_binary("createdb"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", database)
        return self.database_url(database)

    @property
    def data(self) -> Path:
        """The data directory."""
        return self.folder / "data"

    def _run(self, *command: str) -> None:
        """Run a PostgreSQL program as the server's user; a failure names its output."""
        prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        done = subprocess.run([*prefix, *command], capture_output=True, text=True, stdin=subprocess.DEVNULL)
        if done.returncode != 0:
            raise RecordError(f"{Path(command[0]).name} failed ({done.returncode}): {(done.stderr or done.stdout)[-800:]}")

    def start(self) -> None:
        """Create the cluster the first time, start the server and wait until it accepts connections."""
        if not self.data.exists():
            self.folder.mkdir(parents=True, exist_ok=True)
            if os.geteuid() == 0:
                user = pwd.getpwnam("postgres")
                os.chown(self.folder, user.pw_uid, user.pw_gid)
            self._run(_binary("initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8",
                      "--no-sync")
            self._start()
            self.create_database(DATABASE)
            return
        self._start()

    def _start(self) -> None:
        """Start the server; a port taken since it was chosen is given up for another, once."""
        log = self.folder / "server.log"
        for attempt in range(2):
            written = log.stat().st_size if log.exists() else 0
            options = f"-h 127.0.0.1 -p {self.port} -k {self.folder} -c fsync=on -c synchronous_commit=on"
            try:
                self._run(_binary("pg_ctl"), "-D", str(self.data), "-o", options, "-l", str(log),
                          "-w", "-t", "30", "start")
                return
            except RecordError as error:
                told = log.read_text(errors="replace")[written:] if log.exists() else ""
                if attempt == 0 and "could not bind" in told:
                    logger.warning("PostgreSQL's port %d was taken; trying another", self.port)
                    self.port = free_port()
                    continue
                raise RecordError(f"{error}\n{log}:\n{told[-1500:]}") from None

    def stop(self) -> None:
        """Stop the server at once, cutting its connections (``pg_ctl stop -m fast``)."""
        if (self.data / "postmaster.pid").exists():
            self._run(_binary("pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop")
