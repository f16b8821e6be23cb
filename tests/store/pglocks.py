"""tests/store/pglocks.py: on PostgreSQL no lock wait lasts forever.

Another session holds customer b's caps lock (the advisory lock a worker
planning b holds until its transaction ends) and never lets go, as a
worker stopped mid-transaction would.  A capped campaign over a, b and c
then waits at b for the store's lock timeout (10 s, as SQLite's busy
timeout), fails closed (b not planned, not messaged), says so and exits
1 (PostgreSQL rolls the whole planning page back, so its other customers
wait for the next run too).  Once the lock is gone the next run plans
everybody and sends each once."""
import json
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "http"))
sys.path.insert(0, os.path.join(HERE, ".."))
from httptest import Tap, skip_all, PLUGIN_DIR   # noqa: E402
from pgserver import PgServer                   # noqa: E402

HERALD = os.environ.get("HERALD", "")
if not os.access(HERALD, os.X_OK):
    skip_all("herald not built")
if not os.path.exists(os.path.join(PLUGIN_DIR, "outbox.so")):
    skip_all("outbox.so not built")
srv = PgServer()
if not srv.available():
    skip_all("PostgreSQL is not installed (scripts/install-deps.sh installs it)")

t = Tap(time_limit=180)
tmp = tempfile.TemporaryDirectory(prefix="herald-pglocks.")
T = tmp.name


def write(name, text):
    path = os.path.join(T, name)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)
    return path


def herald(*args):
    p = subprocess.run([HERALD, "-c", GW] + list(args), capture_output=True, timeout=120)
    return p.returncode, p.stdout.decode(), p.stderr.decode()


def sent():
    path = os.path.join(T, "out", "messages.jsonl")
    if not os.path.exists(path):
        return []
    return sorted(json.loads(line)["customer"] for line in open(path))


try:
    url = srv.start()
    GW = write("g.ini", "[store]\nurl = %s\n[plugins]\ndir = %s\n[channel.email]\n"
               "plugin = outbox\ndir = %s/out\nfrom = A <a@example.com>\n" % (url, PLUGIN_DIR, T))
    write("tpl/email.subject.liquid", "Hi")
    write("tpl/email.text.liquid", "Hi {{ customer.id }}")
    C = write("c.ini", "[campaign]\nid = k\ntemplates = tpl\nchannels = email\n"
              "[caps]\nemail = 3/7d\n")
    write("c.jsonl", "".join(json.dumps({"id": c, "email": c + "@example.com",
                                         "consent": {"email": True}}) + "\n"
                             for c in ("a", "b", "c")))
    rc, out, err = herald("store", "migrate")
    t.eq(rc, 0, "store migrated")
    rc, out, err = herald("customers", "import", os.path.join(T, "c.jsonl"))
    t.eq(rc, 0, "customers imported")

    # A session that takes b's caps lock and keeps it.
    holder = subprocess.Popen(
        ["psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-d", url],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    holder.stdin.write(b"BEGIN;\nSELECT pg_advisory_xact_lock (1213352004, hashtext ('b'));\n"
                       b"\\echo held\n")
    holder.stdin.flush()
    lines = [holder.stdout.readline().strip() for _ in range(2)]
    t.ok(b"held" in lines, "another session holds customer b's caps lock", lines)

    t0 = time.monotonic()
    rc, out, err = herald("run", C)
    took = time.monotonic() - t0
    t.eq(rc, 1, "the run does not wait forever: exit 1")
    t.ok("customer b: " in err and "locking a customer's caps: canceling statement due to "
         "lock timeout" in err, "... it names b and the lock wait that timed out", err[-600:])
    # PostgreSQL aborts the transaction at a failed statement: the planning
    # page it was in is rolled back whole, so none of it goes this time.
    t.ok("b" not in sent(), "... b is not messaged", sent())
    t.out("# the run took %.1f s (the lock timeout is 10 s)" % took)

    holder.stdin.write(b"ROLLBACK;\n\\q\n")
    holder.stdin.close()
    holder.wait(timeout=30)
    rc, out, err = herald("run", C)
    t.eq(rc, 0, "the lock gone, the next run completes")
    t.eq(sent(), ["a", "b", "c"], "... b sent, once; nobody twice")
finally:
    srv.stop()
t.done()
