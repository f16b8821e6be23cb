"""A customers import killed with SIGKILL mid-way leaves the store with
nothing or everything of that file, and a store that opens and checks out;
the same for a re-import (upsert) over existing customers."""
import os
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from storetest import *  # noqa: E402,F401,F403

N = int(os.environ.get("HERALD_CRASH_N", "150000"))
GEN = os.path.join(SRCDIR, "bench", "import", "gen.py")
src = tmp("big.jsonl")
subprocess.run([sys.executable, GEN, str(N), src], check=True)
# The same ids with a changed email domain, for the re-import.
with open(src) as f, open(tmp("big2.jsonl"), "w") as g:
    for line in f:
        g.write(line.replace("@example", "@changed"))


def kill_midway(db, path, what):
    """Start an import, SIGKILL it once it has written part of the file."""
    wal = db + "-wal"
    p = subprocess.Popen([CLI, "customers", "import", "--store", db, path],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.time() + 60
    # Kill once the uncommitted transaction has spilled pages to the WAL
    # (a few MB): well inside the import, long before its commit.
    while time.time() < deadline and p.poll() is None:
        if os.path.exists(wal) and os.path.getsize(wal) > 4 << 20:
            break
        time.sleep(0.01)
    finished = p.poll() is not None
    if not finished:
        os.kill(p.pid, signal.SIGKILL)
    p.wait()
    ok(not finished, "%s: import killed mid-way (WAL at %d bytes)"
       % (what, os.path.getsize(wal) if os.path.exists(wal) else 0))
    return finished


db = tmp("crash.db")
kill_midway(db, src, "first import")
n = count(db, "customers")
ok(n in (0, N), "after the kill: nothing or everything (%d of %d)" % (n, N))
eq(n, 0, "the uncommitted import left nothing")
eq(query(db, "PRAGMA integrity_check"), [("ok",)], "the store passes integrity_check")
eq(len(query(db, "SELECT name FROM sqlite_schema WHERE name LIKE 'customers_%'")), 5,
   "the customer indexes dropped for the bulk import are back")
rc, out, err = run("customers", "import", "--store", db, src)
eq((rc, count(db, "customers")), (0, N), "the import runs again to completion")

kill_midway(db, tmp("big2.jsonl"), "re-import")
eq(query(db, "PRAGMA integrity_check"), [("ok",)], "integrity_check after the second kill")
old = query(db, "SELECT count(*) FROM customers WHERE email LIKE '%@example%'")[0][0]
new = query(db, "SELECT count(*) FROM customers WHERE email LIKE '%@changed%'")[0][0]
ok((old, new) in [(old + new, 0), (0, old + new)] and count(db, "customers") == N,
   "re-import killed: all old or all new records (%d old, %d new)" % (old, new))
e = query(db, "SELECT email FROM customers WHERE email IS NOT NULL LIMIT 1")[0][0]
eq(query(db, "SELECT count(*) FROM customers WHERE email = ?", e), [(1,)], "the email index answers")
ok("customers_email" in query(db, "EXPLAIN QUERY PLAN SELECT id FROM customers WHERE email = ?", e)[0][3],
   "... through customers_email")
done()
