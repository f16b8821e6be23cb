"""A PostgreSQL 15 server of the test's own: initdb into a temporary folder,
listening only on a Unix socket in that folder (no port to collide with),
stopped at the end.  PostgreSQL refuses to run as root, and CI runs as
root: then the cluster belongs to the unprivileged user 'nobody' and is run
through runuser; the tests connect over the socket as that role (local
connections are trusted in a cluster of the test's own).

As a module:  srv = PgServer(); url = srv.start(); ...; srv.stop()
From a shell: eval "$(/usr/bin/python3 tests/pgserver.py start DIR)"
              (sets HERALD_PG_URL), then: /usr/bin/python3 tests/pgserver.py stop DIR
"""
import glob
import os
import shutil
import subprocess
import sys
import tempfile
import time


def pg_bindir():
    for d in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if os.path.exists(os.path.join(d, "initdb")):
            return d
    return None


class PgServer:
    def __init__(self, folder=None):
        self.bindir = pg_bindir()
        self.folder = folder
        self.own_folder = folder is None
        self.root = os.geteuid() == 0
        self.user = "nobody" if self.root else None

    def available(self):
        return self.bindir is not None

    def _as_owner(self, argv, **kw):
        if self.root:
            argv = ["runuser", "-u", "nobody", "--"] + argv
        return subprocess.run(argv, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, timeout=120, **kw)

    def start(self, dbname="herald"):
        if not self.available():
            raise RuntimeError("PostgreSQL is not installed "
                               "(scripts/install-deps.sh installs postgresql-15)")
        if self.folder is None:
            self.folder = tempfile.mkdtemp(prefix="herald-pg-")
        os.makedirs(self.folder, exist_ok=True)
        os.chmod(self.folder, 0o755)
        self.data = os.path.join(self.folder, "data")
        if self.root:
            shutil.chown(self.folder, "nobody", "nogroup")
        if self.user is None:
            import pwd
            self.user = pwd.getpwuid(os.geteuid()).pw_name
        r = self._as_owner([os.path.join(self.bindir, "initdb"), "-D", self.data,
                            "-U", self.user, "--auth=trust", "-E", "UTF8",
                            "--locale=C", "--no-sync"])
        if r.returncode != 0:
            raise RuntimeError("initdb failed: " + r.stdout.decode(errors="replace"))
        # fsync stays on: the tests kill workers, not the server, and the
        # store's durability claims are PostgreSQL's defaults.
        r = self._as_owner([os.path.join(self.bindir, "pg_ctl"), "-D", self.data,
                            "-l", os.path.join(self.folder, "log"), "-w", "-t", "60",
                            "-o", "-c listen_addresses='' -c unix_socket_directories='%s' "
                            "-c max_connections=60 -c shared_buffers=64MB"
                            % self.folder, "start"])
        if r.returncode != 0:
            log = ""
            try:
                log = open(os.path.join(self.folder, "log")).read()[-2000:]
            except OSError:
                pass
            raise RuntimeError("pg_ctl start failed: %s %s"
                               % (r.stdout.decode(errors="replace"), log))
        self.create_db(dbname)
        return self.url(dbname)

    def url(self, dbname="herald"):
        return "postgresql:///%s?host=%s&user=%s" % (dbname, self.folder, self.user)

    def create_db(self, dbname):
        r = self._as_owner([os.path.join(self.bindir, "createdb"), "-h", self.folder,
                            "-U", self.user, dbname])
        if r.returncode != 0:
            raise RuntimeError("createdb %s failed: %s"
                               % (dbname, r.stdout.decode(errors="replace")))
        return self.url(dbname)

    def psql(self, dbname, sql):
        """Run SQL, return its unaligned output (rows separated by newlines,
        columns by '|')."""
        r = subprocess.run(["psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1",
                            "-d", self.url(dbname), "-c", sql],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=120)
        if r.returncode != 0:
            raise RuntimeError("psql: %s" % r.stderr.decode(errors="replace"))
        return r.stdout.decode()

    def stop(self):
        if self.folder and os.path.exists(os.path.join(self.folder, "data",
                                                       "postmaster.pid")):
            self._as_owner([os.path.join(self.bindir, "pg_ctl"), "-D",
                            os.path.join(self.folder, "data"), "-m", "immediate",
                            "-w", "-t", "60", "stop"])
        if self.own_folder and self.folder:
            shutil.rmtree(self.folder, ignore_errors=True)


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] not in ("start", "stop"):
        sys.stderr.write("usage: pgserver.py start|stop DIR\n")
        sys.exit(2)
    srv = PgServer(sys.argv[2])
    if sys.argv[1] == "start":
        try:
            url = srv.start()
        except RuntimeError as e:
            sys.stderr.write("pgserver: %s\n" % e)
            sys.exit(1)
        print("HERALD_PG_URL='%s'; export HERALD_PG_URL" % url)
    else:
        srv.own_folder = False
        srv.stop()
