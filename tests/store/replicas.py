"""tests/store/replicas.py: two replicas of `herald serve` on one
PostgreSQL store of the test's own, each with its own events API, run one
triggered campaign with a follow-up step.  Events are posted to both at
once; every journey's two steps are fired once and sent once (each key
once in the outbox plugin's file), whichever replica fired them.  One
replica is killed with SIGKILL after the first steps: the other sends
every second step.  (Without the replicas' turns at the campaign this
still passes: the message keys and the timers' states keep each step
once; the turns spare the duplicate work and keep the events cursor
read by one replica at a time.)"""
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "http"))
sys.path.insert(0, os.path.join(HERE, ".."))
from httptest import Tap, skip_all, free_port, request, PLUGIN_DIR   # noqa: E402
from pgserver import PgServer                                      # noqa: E402

HERALD = os.environ.get("HERALD", "")
if not os.access(HERALD, os.X_OK):
    skip_all("herald not built")
if not os.path.exists(os.path.join(PLUGIN_DIR, "outbox.so")):
    skip_all("outbox.so not built")
srv = PgServer()
if not srv.available():
    skip_all("PostgreSQL is not installed (scripts/install-deps.sh installs it)")

N = 200
TOKEN = "events-token-0123456789abcdef"
t = Tap(time_limit=150)
tmp = tempfile.TemporaryDirectory(prefix="herald-replicas.")
T = tmp.name


def write(name, text):
    path = os.path.join(T, name)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)
    return path


def messages():
    path = os.path.join(T, "out", "messages.jsonl")
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def wait_for(cond, seconds):
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(0.1)
    return cond()


class Serve:
    def __init__(self, gw, port, campaign):
        self.base = "http://127.0.0.1:%d" % port
        self.out = open(os.path.join(T, "serve-%d.log" % port), "w")
        self.p = subprocess.Popen([HERALD, "-c", gw, "serve", campaign],
                                  stdout=self.out, stderr=subprocess.STDOUT)
        end = time.monotonic() + 20
        self.up = False
        while time.monotonic() < end and self.p.poll() is None:
            try:
                st, _, _ = request("GET", self.base + "/healthz")
                self.up = st == 200
                break
            except OSError:
                time.sleep(0.05)

    def post(self, events):
        body = "".join(json.dumps(e) + "\n" for e in events).encode()
        st, _, b = request("POST", self.base + "/events", body,
                           {"Authorization": "Bearer " + TOKEN,
                            "Content-Type": "application/x-ndjson"})
        return st

    def stop(self, sig=signal.SIGTERM):
        if self.p.poll() is None:
            self.p.send_signal(sig)
        try:
            self.p.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.wait()
        self.out.close()
        return open(self.out.name).read()


replicas = []
try:
    url = srv.start()
    ports = [free_port(), free_port()]
    gws = []
    for i, port in enumerate(ports):
        gws.append(write("g%d.ini" % i, """[store]
url = %(url)s
lease = 3s
[plugins]
dir = %(plugdir)s
[tracking]
base_url = http://127.0.0.1:%(port)d
secret = track-secret-0123456789abcdef
listen = 127.0.0.1:%(port)d
events_token = %(token)s
[channel.email]
plugin = outbox
dir = %(T)s/out
from = Shop <news@shop.example>
""" % {"url": url, "plugdir": PLUGIN_DIR, "port": port, "token": TOKEN, "T": T}))
    write("tpl/email.subject.liquid", "Welcome, {{ customer.name }}")
    write("tpl/email.text.liquid", "Hello {{ customer.name }} ({{ event.type }})")
    campaign = write("welcome.ini", """[campaign]
id = welcome
templates = tpl
channels = email
track_opens = no

[trigger]
event = signed_up
delay = 0s

[step.2]
after = 2s
""")
    write("c.jsonl", "".join(json.dumps({"id": "u%04d" % i, "email": "u%d@example.com" % i,
                                          "consent": {"email": True},
                                          "attributes": {"name": "U%d" % i}}) + "\n"
                             for i in range(N)))
    p = subprocess.run([HERALD, "-c", gws[0], "store", "migrate"], capture_output=True)
    t.ok(p.returncode == 0, "store migrated", p.stderr.decode())
    p = subprocess.run([HERALD, "-c", gws[0], "customers", "import", os.path.join(T, "c.jsonl")],
                       capture_output=True)
    t.ok(p.returncode == 0, "%d customers imported" % N, p.stderr.decode())

    replicas = [Serve(gws[i], ports[i], campaign) for i in range(2)]
    t.ok(all(r.up for r in replicas), "two replicas of herald serve answer /healthz")

    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    statuses = [None, None]

    def poster(i):
        evs = [{"customer": "u%04d" % k, "type": "signed_up", "at": now}
               for k in range(i, N, 2)]
        # in small posts, so the two replicas' writes interleave
        statuses[i] = [replicas[i].post(evs[j:j + 10]) for j in range(0, len(evs), 10)]
    ths = [threading.Thread(target=poster, args=(i,)) for i in range(2)]
    for th in ths:
        th.start()
    for th in ths:
        th.join()
    t.ok(all(s == 200 for ss in statuses for s in ss), "events posted to both replicas at once")

    def sent(step):
        return int(srv.psql("herald", "SELECT count(*) FROM outbox WHERE campaign = 'welcome' "
                            "AND step = %d AND state = 'sent'" % step).strip())
    t.ok(wait_for(lambda: sent(1) == N, 40), "every journey's first step sent (%d)" % sent(1))
    log0 = replicas[0].stop(signal.SIGKILL)
    t.ok(wait_for(lambda: sent(2) == N, 40),
         "with replica 0 killed (SIGKILL), replica 1 sends every second step (%d)" % sent(2))
    log1 = replicas[1].stop()
    keys = [m["id"] for m in messages()]
    want = sorted(["welcome:%d:u%04d:1" % (s, k) for s in (1, 2) for k in range(N)])
    t.eq(sorted(keys), want, "each step of each journey sent once, none twice, none missing")
    fired = srv.psql("herald", "SELECT state, count(*) FROM timers GROUP BY 1").strip()
    t.eq(fired, "fired|%d" % (2 * N), "the timer queue: every step fired once")
    instances = srv.psql("herald", "SELECT max(instance) FROM timers").strip()
    t.eq(instances, "1", "one journey per customer: no event entered twice")
    fired_by = [sum(1 for l in log.splitlines() if "herald serve: campaign welcome: step" in l)
                for log in (log0, log1)]
    t.eq(sum(fired_by), 2 * N, "each step fired by one replica only (by replica 0, 1: %s)"
         % fired_by)
finally:
    for r in replicas:
        if r.p.poll() is None:
            r.stop(signal.SIGKILL)
    srv.stop()
    tmp.cleanup()
t.done()
