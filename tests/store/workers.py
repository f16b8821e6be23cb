"""tests/store/workers.py: three herald run workers share one campaign on a
PostgreSQL store of the test's own.  One is killed with SIGKILL while it
sends; once its leases expire (lease = 3s here) the other two take back its
chunks and its messages in flight.  Every customer's webhook arrives; the
only repeats are messages that were in flight at the kill, with the same
key; the outbox ends with every message sent."""
import collections
import json
import os
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "http"))
sys.path.insert(0, os.path.join(HERE, ".."))
from fakeprovider import FakeProvider          # noqa: E402
from httptest import Tap, skip_all, PLUGIN_DIR   # noqa: E402
from pgserver import PgServer                   # noqa: E402

HERALD = os.environ.get("HERALD", "")
if not os.access(HERALD, os.X_OK):
    skip_all("herald not built")
if not os.path.exists(os.path.join(PLUGIN_DIR, "webhook.so")):
    skip_all("webhook.so not built")
srv = PgServer()
if not srv.available():
    skip_all("PostgreSQL is not installed (scripts/install-deps.sh installs it)")

N = 3000
t = Tap(time_limit=240)
tmp = tempfile.TemporaryDirectory(prefix="herald-workers.")
T = tmp.name
os.chmod(T, 0o755)


def herald(*args, timeout=120):
    p = subprocess.run([HERALD, "-c", os.path.join(T, "g.ini")] + list(args),
                       capture_output=True, timeout=timeout)
    return p.returncode, p.stdout.decode(), p.stderr.decode()


try:
    url = srv.start()
    # Each request waits a little: the campaign takes a few seconds, so the
    # kill lands while every worker is sending.
    with FakeProvider(rules=[{"path": "/hook/", "status": 200, "delay": 0.002}]) as fp:
        with open(os.path.join(T, "g.ini"), "w") as f:
            f.write("""[store]
url = %(url)s
lease = 3s
[plugins]
dir = %(plugdir)s
[channel.webhook]
plugin = webhook
secret = whsec_MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=
allow_private = yes
concurrency = 4
""" % {"url": url, "plugdir": PLUGIN_DIR})
        os.makedirs(os.path.join(T, "tpl"))
        with open(os.path.join(T, "tpl", "webhook.body.liquid"), "w") as f:
            f.write('{"customer":"{{ customer.id }}"}')
        with open(os.path.join(T, "c.ini"), "w") as f:
            f.write("[campaign]\nid = spring\ntemplates = tpl\nchannels = webhook\n"
                    "retry_horizon = 0s\n")
        with open(os.path.join(T, "c.jsonl"), "w") as f:
            for i in range(N):
                f.write(json.dumps({"id": "c%05d" % i, "consent": {"webhook": True},
                                    "webhook": fp.url + "/hook/%d" % i}) + "\n")

        rc, out, err = herald("run", os.path.join(T, "c.ini"))
        t.ok(rc != 0 and "herald store migrate" in err,
             "an unmigrated database is refused with the hint", err)
        rc, out, err = herald("store", "migrate")
        t.ok(rc == 0, "herald store migrate", out + err)
        rc, out, err = herald("customers", "import", os.path.join(T, "c.jsonl"))
        t.ok(rc == 0, "%d customers imported into PostgreSQL" % N, out + err)

        procs = []
        for w in range(3):
            log = open(os.path.join(T, "w%d.log" % w), "w")
            procs.append((subprocess.Popen([HERALD, "-c", os.path.join(T, "g.ini"), "run",
                                            os.path.join(T, "c.ini")],
                                           stdout=log, stderr=subprocess.STDOUT), log))
        # Kill worker 0 once a fifth of the campaign has gone out.
        deadline = time.time() + 60
        while len(fp.requests) < N // 5 and time.time() < deadline \
                and procs[0][0].poll() is None:
            time.sleep(0.02)
        killed_running = procs[0][0].poll() is None
        procs[0][0].send_signal(signal.SIGKILL)
        t.ok(killed_running, "worker 0 killed with SIGKILL while the campaign was sending "
             "(%d webhooks so far)" % len(fp.requests))
        at_kill = len(fp.requests)
        rcs = []
        for p, log in procs:
            try:
                rcs.append(p.wait(timeout=120))
            except subprocess.TimeoutExpired:
                p.kill()
                rcs.append("timeout")
            log.close()
        logs = [open(os.path.join(T, "w%d.log" % w)).read() for w in range(3)]
        t.ok(rcs[1:] == [0, 0], "the other two workers finish, exit 0 (%s)" % rcs[1:],
             "\n".join(logs))
        keys = collections.Counter(q["headers"].get("webhook-id", "") for q in fp.requests)
        want = set("spring:1:c%05d" % i for i in range(N))
        t.ok(not (want - set(keys)), "every customer's webhook arrived (none missing)",
             sorted(want - set(keys))[:5])
        t.eq(len(set(keys) - want), 0, "no stray keys")
        dups = {k: n for k, n in keys.items() if n > 1}
        # In flight at the kill: worker 0's lanes (one) hold at most two
        # batches of 500 (README, "Delivery semantics").
        t.ok(len(dups) <= 1000 and all(n == 2 for n in dups.values()),
             "repeats only among worker 0's messages in flight at the kill, each twice "
             "(%d repeated, %d webhooks at the kill)" % (len(dups), at_kill), dups)
        took_back = sum("in flight at a worker whose lease expired" in l for l in logs[1:])
        t.ok(took_back >= 1 or not dups,
             "a surviving worker says it took back the dead worker's messages", logs[1:])
        states = srv.psql("herald", "SELECT state, count(*) FROM outbox GROUP BY 1 ORDER BY 1")
        t.eq(states.strip(), "sent|%d" % N, "the outbox: every message sent, none left sending")
        owners = srv.psql("herald", "SELECT count(DISTINCT owner) FROM plan_chunks "
                          "WHERE campaign = 'spring'").strip()
        t.ok(owners in ("2", "3"), "the chunks were planned by several workers (%s)" % owners)
        chunks = srv.psql("herald", "SELECT state, count(*) FROM plan_chunks GROUP BY 1").strip()
        t.eq(chunks, "done|64", "all 64 chunks planned")

        # A run after the campaign is done sends nothing again.
        before = len(fp.requests)
        rc, out, err = herald("run", os.path.join(T, "c.ini"))
        t.ok(rc == 0 and len(fp.requests) == before, "a later run sends nothing again",
             out + err)

        # Caps across workers: every customer has spring's message; two
        # campaigns capped at two messages a day each, sent at the same
        # moment by workers of their own, may add one message per
        # customer between them, not two.
        for cid in ("capa", "capb"):
            with open(os.path.join(T, cid + ".ini"), "w") as f:
                f.write("[campaign]\nid = %s\ntemplates = tpl\nchannels = webhook\n"
                        "retry_horizon = 0s\n[caps]\nall = 2/1d\non_cap = skip\n" % cid)
        ps = [subprocess.Popen([HERALD, "-c", os.path.join(T, "g.ini"), "run",
                                os.path.join(T, cid + ".ini")],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
              for cid in ("capa", "capb", "capa", "capb")]
        outs = [p.communicate(timeout=120)[0].decode() for p in ps]
        t.ok(all(p.returncode == 0 for p in ps), "two capped campaigns, two workers each, "
             "at the same time: all exit 0", outs)
        per = srv.psql("herald", "SELECT n, count(*) FROM (SELECT customer, count(*) AS n "
                       "FROM outbox WHERE state = 'sent' GROUP BY 1) x GROUP BY 1")
        t.eq(per.strip(), "2|%d" % N, "every customer got exactly two messages: the cap "
             "held across workers and campaigns")
        both = srv.psql("herald", "SELECT campaign, count(*) FROM outbox WHERE state = 'sent' "
                        "AND campaign IN ('capa', 'capb') GROUP BY 1 ORDER BY 1")
        t.ok(len(both.split()) == 2, "both campaigns sent some of them (%s)"
             % " ".join(both.split()))
finally:
    srv.stop()
    tmp.cleanup()
t.done()
