"""Shared helpers for the store's command tests: TAP output, a scratch
folder, and running the import/report commands (tests/store/store-cli,
which calls the same cmd_customers/cmd_events/cmd_report as herald)."""
import os
import sqlite3
import subprocess
import sys
import tempfile
import shutil
import atexit

SRCDIR = os.environ.get("HERALD_SRCDIR", os.path.join(os.path.dirname(__file__), "..", ".."))
BUILDDIR = os.environ.get("HERALD_BUILDDIR", ".")
DATA = os.path.join(SRCDIR, "tests", "store")
CLI = os.path.join(BUILDDIR, "tests", "store", "store-cli")

_n = 0
_failed = 0


def ok(cond, name, diag=None):
    global _n, _failed
    _n += 1
    if not cond:
        _failed += 1
    print("%sok %d - %s" % ("" if cond else "not ", _n, name))
    if not cond and diag is not None:
        for line in str(diag).splitlines() or [""]:
            print("#   " + line)
    sys.stdout.flush()
    return cond


def eq(got, want, name):
    return ok(got == want, name, "got:  %r\nwant: %r" % (got, want))


def done():
    print("1..%d" % _n)
    sys.exit(1 if _failed else 0)


def skip_all(reason):
    print("1..0 # SKIP %s" % reason)
    sys.exit(0)


if not os.access(CLI, os.X_OK):
    skip_all("%s not built" % CLI)

TMP = tempfile.mkdtemp(prefix="herald-store-test-")
atexit.register(shutil.rmtree, TMP, True)
os.environ.setdefault("HERALD_NOW", "1790000000")


def tmp(name):
    return os.path.join(TMP, name)


def write(name, text, mode="w"):
    p = tmp(name)
    with open(p, mode, newline="" if mode == "w" else None) as f:
        f.write(text)
    return p


def run(*args, cwd=None):
    """Run store-cli ARGS; returns (exit code, stdout, stderr)."""
    p = subprocess.run([CLI] + list(args), capture_output=True, text=True,
                       cwd=cwd or TMP, timeout=120)
    return p.returncode, p.stdout, p.stderr


def query(db, sql, *params):
    con = sqlite3.connect(db)
    try:
        return con.execute(sql, params).fetchall()
    finally:
        con.close()


def count(db, table):
    if not os.path.exists(db):
        return 0
    return query(db, "SELECT count(*) FROM %s" % table)[0][0]
