"""bench/store/workers.py: herald run on PostgreSQL next to SQLite, and
several workers sharing one campaign on PostgreSQL.

  1. One worker: an N-customer campaign (default 100,000) into an outbox
     channel, on SQLite and on PostgreSQL (a server of the bench's own,
     started here), the same run: messages per second each, and the ratio
     (target: PostgreSQL at least half of SQLite).  Each run is repeated
     (REPEAT, default 3) and the median reported: the machine is shared.
  2. Scaling: 1, 2 and 4 workers on one campaign of M customers (default
     4,000) into webhooks answered after 50 ms by a loopback receiver,
     each worker with concurrency 8: messages per second for each count
     (target: 4 workers at least 3.5 times one).

  HERALD_BUILDDIR=/path/to/build /usr/bin/python3 bench/store/workers.py [N] [M]
"""
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(TOP, "tests"))
sys.path.insert(0, os.path.join(TOP, "tests", "http"))
from pgserver import PgServer          # noqa: E402
from fakeprovider import FakeProvider  # noqa: E402

BUILD = os.environ.get("HERALD_BUILDDIR", TOP)
HERALD = os.environ.get("HERALD", os.path.join(BUILD, "herald"))
PLUGINS = os.path.join(BUILD, "plugins", ".libs")
N = int(sys.argv[1]) if len(sys.argv) > 1 else 100000
M = int(sys.argv[2]) if len(sys.argv) > 2 else 4000
REPEAT = int(os.environ.get("REPEAT", "3"))
if not os.access(HERALD, os.X_OK):
    sys.stderr.write("workers.py: no herald at %s (set HERALD_BUILDDIR)\n" % HERALD)
    sys.exit(77)

work = tempfile.mkdtemp(prefix="herald-bench-workers.")
os.chmod(work, 0o755)


def herald(gw, *args, check=True):
    t0 = time.monotonic()
    p = subprocess.run([HERALD, "-c", gw] + list(args), capture_output=True)
    dt = time.monotonic() - t0
    if check and p.returncode != 0:
        sys.stderr.write(p.stdout.decode() + p.stderr.decode())
        raise SystemExit("herald %s failed" % " ".join(args))
    return dt


def write(path, text):
    with open(path, "w") as f:
        f.write(text)


def customers(path, n, webhook=None):
    with open(path, "w") as f:
        for i in range(n):
            c = {"id": "c%07d" % i, "email": "c%d@example.com" % i,
                 "consent": {"email": True, "webhook": True},
                 "attributes": {"first_name": "Ann", "points": i % 1000}}
            if webhook:
                c["webhook"] = webhook + "/hook/%d" % i
            f.write(json.dumps(c) + "\n")


srv = PgServer(os.path.join(work, "pg"))
srv.own_folder = False
try:
    srv.start("bench0")
    tpl = os.path.join(work, "tpl")
    os.makedirs(tpl)
    write(os.path.join(tpl, "email.subject.liquid"), "Hello {{ customer.first_name }}")
    write(os.path.join(tpl, "email.text.liquid"),
          "Dear {{ customer.first_name }}, you have {{ customer.points }} points.\n")
    write(os.path.join(tpl, "webhook.body.liquid"), '{"customer":"{{ customer.id }}"}')
    customers(os.path.join(work, "c.jsonl"), N)

    # ---- 1. one worker, SQLite next to PostgreSQL -----------------------
    print("1. one worker, %d customers into an outbox channel (median of %d)"
          % (N, REPEAT))
    rates = {"sqlite": [], "postgresql": []}
    for rep in range(REPEAT):
        for kind in ("sqlite", "postgresql"):
            d = os.path.join(work, "%s%d" % (kind, rep))
            os.makedirs(d)
            if kind == "sqlite":
                store = "path = %s/herald.db" % d
            else:
                db = "b%d" % rep
                srv.create_db(db)
                store = "url = %s" % srv.url(db)
            gw = os.path.join(d, "g.ini")
            write(gw, "[store]\n%s\n[plugins]\ndir = %s\n[channel.email]\nplugin = outbox\n"
                  "dir = %s/out\nfrom = Bench <b@example.com>\n" % (store, PLUGINS, d))
            write(os.path.join(d, "c.ini"), "[campaign]\nid = bench\ntemplates = %s\n"
                  "channels = email\n" % tpl)
            herald(gw, "store", "migrate")
            herald(gw, "customers", "import", os.path.join(work, "c.jsonl"))
            dt = herald(gw, "run", os.path.join(d, "c.ini"))
            rates[kind].append(N / dt)
            print("   %-10s run %d: %7.2f s  %8.0f messages/s" % (kind, rep + 1, dt, N / dt))
            sys.stdout.flush()
    s, p = statistics.median(rates["sqlite"]), statistics.median(rates["postgresql"])
    print("   median: SQLite %.0f messages/s, PostgreSQL %.0f messages/s: "
          "PostgreSQL/SQLite = %.2f (target >= 0.5)" % (s, p, p / s))

    # ---- 2. scaling: 1, 2, 4 workers against a 50 ms receiver -----------
    print("2. workers sharing one campaign of %d webhooks, receiver answers "
          "after 50 ms, concurrency 8 per worker" % M)
    with FakeProvider(rules=[{"path": "/hook/", "status": 200, "delay": 0.05}]) as fp:
        customers(os.path.join(work, "w.jsonl"), M, webhook=fp.url)
        base = None
        for workers in (1, 2, 4):
            db = "w%d" % workers
            srv.create_db(db)
            d = os.path.join(work, db)
            os.makedirs(d)
            gw = os.path.join(d, "g.ini")
            write(gw, "[store]\nurl = %s\n[plugins]\ndir = %s\n[channel.webhook]\n"
                  "plugin = webhook\nsecret = whsec_MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=\n"
                  "allow_private = yes\nconcurrency = 8\n" % (srv.url(db), PLUGINS))
            write(os.path.join(d, "c.ini"), "[campaign]\nid = scale\ntemplates = %s\n"
                  "channels = webhook\n" % tpl)
            herald(gw, "store", "migrate")
            herald(gw, "customers", "import", os.path.join(work, "w.jsonl"))
            fp.reset(rules=[{"path": "/hook/", "status": 200, "delay": 0.05}])
            t0 = time.monotonic()
            ps = [subprocess.Popen([HERALD, "-c", gw, "run", os.path.join(d, "c.ini")],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
                  for _ in range(workers)]
            errs = [p.communicate()[1] for p in ps]
            dt = time.monotonic() - t0
            if any(p.returncode for p in ps):
                sys.stderr.write(b"".join(errs).decode())
                raise SystemExit("a worker failed")
            got = len(set(q["headers"].get("webhook-id") for q in fp.requests))
            rate = M / dt
            base = base or rate
            print("   %d worker(s): %7.2f s  %7.0f messages/s  x%.2f of one  (%d distinct "
                  "webhooks, %d requests)" % (workers, dt, rate, rate / base, got,
                                              len(fp.requests)))
            sys.stdout.flush()
    print("   target: 4 workers >= 3.5x one")
finally:
    srv.stop()
    subprocess.run(["rm", "-rf", work])
