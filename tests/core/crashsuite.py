"""tests/core/crashsuite.py: the crash suite ("Prove it").  Real plugins,
real receivers, SIGKILL at random moments.

Part run: N customers, half by e-mail (the email plugin, to an aiosmtpd
recorder) and half by webhook (the webhook plugin, to a recording HTTP
receiver), one campaign.  A clean run of a twin campaign gives the run's
duration D; K moments drawn in (0.02 D, 0.8 D) with a seeded RNG are the
kills:
`herald run` is started, SIGKILLed at the next moment (counted from the
start of the campaign's runs), and started again, until a run exits 0.
Part serve: a triggered journey ([trigger] on a custom event, delay 0s)
served by `herald serve`; a poster sends E events to POST /events, one
customer each, re-posting what got no 2xx; serve is SIGKILLed at K moments
(after a drawn number of answered events) and started again on the same
port; at the end it drains and stops.

Counted at the receivers, by message key (the webhook-id; the e-mail's
Message-ID, which is SHA-256 of the key): every customer's message arrived,
under its own key and no other, at that customer's address.  After each kill, once the receivers are
quiet, the store says which messages the killed process had handed over
and not recorded (received during that process's life, still `sending`):
per channel at most two batches of 500 per lane (README, "Delivery
semantics"), and every copy beyond the first is one of those, once per
kill that left it so.  The store ends with every message sent; in part
serve, every event answered 2xx is in the store.

HERALD_CRASH_CUSTOMERS, HERALD_CRASH_KILLS and HERALD_CRASH_EVENTS give
the long size (20000, 30, 3000: 30 kills of run, 30 of serve);
HERALD_CRASH_SEED repeats a run's moments."""
import asyncio
import collections
import hashlib
import http.server
import json
import logging
import os
import random
import re
import signal
import socketserver
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import warnings

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "http"))
from httptest import Tap, skip_all, free_port, request, PLUGIN_DIR   # noqa: E402

HERALD = os.environ.get("HERALD", "")
if not os.access(HERALD, os.X_OK):
    skip_all("herald not built")
for so in ("email", "webhook"):
    if not os.path.exists(os.path.join(PLUGIN_DIR, so + ".so")):
        skip_all("%s.so not built" % so)
try:
    from aiosmtpd.smtp import SMTP
except ImportError:
    skip_all("aiosmtpd is not installed (scripts/install-deps.sh installs it)")
warnings.filterwarnings("ignore", module="aiosmtpd")
logging.getLogger("mail.log").setLevel(logging.CRITICAL)

N = int(os.environ.get("HERALD_CRASH_CUSTOMERS", "2000"))
KILLS = int(os.environ.get("HERALD_CRASH_KILLS", "8"))
EVENTS = int(os.environ.get("HERALD_CRASH_EVENTS", "300"))
# Kills of serve: 5, or as many as of run when the size is given.
SERVE_KILLS = int(os.environ.get("HERALD_CRASH_SERVE_KILLS",
                                 os.environ.get("HERALD_CRASH_KILLS", "5")))
EVENT_RATE = max(50.0, EVENTS / 30.0)    # events posted a second
SEED = int(os.environ.get("HERALD_CRASH_SEED", str(int(time.time() * 1000) % 1000000)))
BATCH = 500        # messages per plugin call (core/run/internal.h, README)
LANES = int(os.environ.get("HERALD_CRASH_LANES", "1"))   # lanes of each channel
BOUND = 2 * BATCH * LANES
LONG = N > 5000 or EVENTS > 1000
t = Tap(time_limit=int(os.environ.get("HERALD_CRASH_TIME_LIMIT", "1800" if LONG else "240")))
rng = random.Random(SEED)
procs = []        # every herald started, killed at the end whatever happens
t0 = time.monotonic()
tmp = tempfile.TemporaryDirectory(prefix="herald-crashsuite.")
T = tmp.name
SECRET = "whsec_MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="
TOKEN = "events-token-0123456789abcdef"


def note(s):
    t.out("# " + s)


# ---- the receivers ------------------------------------------------------
class Receivers:
    """What arrived, in order: (key or '?raw', channel, to whom: the
    recipient's local part, the webhook URL's last segment).  active
    counts the connections open at the SMTP and HTTP receivers."""

    def __init__(self):
        self.lock = threading.Lock()
        self.got = []
        self.active = 0
        self.keys = {}     # Message-ID left part (hex) -> key
        self.latency = 0.0   # seconds each answer waits, as a provider's would

    def expect(self, keys):
        for k in keys:
            self.keys[hashlib.sha256(k.encode()).hexdigest()[:32]] = k

    def add(self, key, channel, who):
        with self.lock:
            self.got.append((key, channel, who))

    def conn(self, d):
        with self.lock:
            self.active += d

    def count(self):
        with self.lock:
            return len(self.got), self.active

    def since(self, offset):
        with self.lock:
            return list(self.got[offset:])

    def quiet(self, seconds=30):
        """After a kill: wait until every connection of the dead process
        is closed and nothing arrives for 0.2 s, so what it had written
        to its sockets is counted before the next process starts."""
        end = time.monotonic() + seconds
        last, since = None, time.monotonic()
        while time.monotonic() < end:
            n, active = self.count()
            if (n, active) != last:
                last, since = (n, active), time.monotonic()
            elif active == 0 and time.monotonic() - since >= 0.2:
                return True
            time.sleep(0.02)
        return False


R = Receivers()
MSGID = re.compile(rb"^Message-ID:\s*<([0-9a-f]{32})\.herald@", re.I | re.M)


class SmtpHandler:
    async def handle_DATA(self, server, session, envelope):
        data = envelope.original_content or b""
        head = data.split(b"\r\n\r\n", 1)[0]
        m = MSGID.search(head)
        key = R.keys.get(m.group(1).decode(), "?" + m.group(1).decode()) if m else "?none"
        R.add(key, "email", ",".join(r.split("@")[0] for r in envelope.rcpt_tos))
        if R.latency:
            await asyncio.sleep(R.latency)
        return "250 2.0.0 Ok: queued"


class CountingSMTP(SMTP):
    async def _handle_client(self):
        R.conn(1)
        try:
            await super()._handle_client()
        finally:
            R.conn(-1)


class SmtpRecorder:
    def __init__(self):
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        if not self.ready.wait(10):
            raise RuntimeError("SMTP recorder did not start")

    def _run(self):
        asyncio.set_event_loop(self.loop)
        factory = lambda: CountingSMTP(SmtpHandler(), hostname="crash-test", timeout=30)  # noqa: E731
        self.srv = self.loop.run_until_complete(
            self.loop.create_server(factory, "127.0.0.1", 0))
        self.port = self.srv.sockets[0].getsockname()[1]
        self.ready.set()
        self.loop.run_forever()
        self.srv.close()
        self.loop.run_until_complete(self.srv.wait_closed())
        self.loop.close()

    def stop(self):
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


class HookHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # The answer's head and body are two writes: with Nagle on, the body
    # waits for the client's delayed ACK, 40 ms a request.
    disable_nagle_algorithm = True

    def log_message(self, *a):
        pass

    def handle(self):
        R.conn(1)
        try:
            super().handle()
        except OSError:
            pass
        finally:
            R.conn(-1)

    def do_POST(self):
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n) if n else b""
        if len(body) < n:          # cut by the kill: never received
            self.close_connection = True
            return
        R.add(self.headers.get("webhook-id", "?none"), "webhook", self.path.split("/")[-1])
        if R.latency:
            time.sleep(R.latency)
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")


class HookServer(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True


# ---- herald ---------------------------------------------------------------
def write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)
    return path


def gateway(d, extra=""):
    return write(os.path.join(d, "g.ini"), """[store]
path = %(d)s/herald.db
[plugins]
dir = %(plugdir)s
%(extra)s
[channel.email]
plugin = email
server = 127.0.0.1:%(smtp)d
from = Crash Test <news@crash.example>
starttls = no
timeout_ms = 10000
lanes = %(lanes)d
[channel.webhook]
plugin = webhook
secret = %(secret)s
allow_private = yes
concurrency = 4
timeout_ms = 10000
lanes = %(lanes)d
""" % {"d": d, "plugdir": PLUGIN_DIR, "smtp": smtp.port, "secret": SECRET,
       "lanes": LANES, "extra": extra})


def templates(d):
    write(os.path.join(d, "tpl", "email.subject.liquid"), "Hello {{ customer.first_name }}")
    write(os.path.join(d, "tpl", "email.text.liquid"),
          "Hi {{ customer.first_name }}, {{ event.item | default: 'spring' }}.\n")
    write(os.path.join(d, "tpl", "webhook.body.liquid"),
          '{"customer": {{ customer.id | json }}}')


def customers(path, prefix, n, hook):
    """n customers PREFIX00000..: even ones by e-mail, odd ones by webhook."""
    with open(path, "w") as f:
        for i in range(n):
            cid = "%s%05d" % (prefix, i)
            c = {"id": cid, "attributes": {"first_name": "N%d" % i}}
            if i % 2 == 0:
                c["email"] = "%s@example.com" % cid
                c["consent"] = {"email": True}
            else:
                c["webhook"] = "%s/hook/%s" % (hook, cid)
                c["consent"] = {"webhook": True}
            f.write(json.dumps(c) + "\n")
    return ["%s%05d" % (prefix, i) for i in range(n)]


def herald(ini, *args, timeout=600):
    p = subprocess.run([HERALD, "-c", ini] + list(args), capture_output=True, timeout=timeout)
    return p.returncode, p.stdout.decode(), p.stderr.decode()


def query(db, sql, *args):
    c = sqlite3.connect(db, timeout=30)
    try:
        return c.execute(sql, args).fetchall()
    finally:
        c.close()


def stop(p, sig=signal.SIGKILL):
    if p.poll() is None:
        p.send_signal(sig)
    try:
        return p.wait(timeout=30)
    except subprocess.TimeoutExpired:
        p.kill()
        return p.wait()


def lost_at_kill(db, campaign, offset):
    """After a kill, per channel: the keys the dead process handed to a
    receiver (arrived since OFFSET) that the store still has in
    'sending': sent, not recorded, so sent again by the next process."""
    sending = set(k for (k,) in query(db, "SELECT key FROM outbox WHERE campaign = ? "
                                          "AND state = 'sending'", campaign))
    out = {"email": set(), "webhook": set()}
    for key, ch, _ in R.since(offset):
        if key in sending:
            out[ch].add(key)
    return out


def check(part, campaign, db, want, lost, offset0):
    """The counts at the receivers against WANT (the keys), LOST (one
    {channel: keys} per kill) and the store.  Returns the summary."""
    got = [(k, who) for k, _, who in R.since(offset0) if k.startswith(campaign + ":")
           or k.startswith("?")]
    copies = collections.Counter(k for k, _ in got)
    missing = sorted(set(want) - set(copies))
    stray = sorted(set(copies) - set(want))
    t.ok(not missing, "%s: every customer's message arrived (%d missing of %d)"
         % (part, len(missing), len(want)), missing[:10])
    t.ok(not stray, "%s: no message under another key (%d stray)" % (part, len(stray)), stray[:10])
    # campaign:step:customer[:instance]: the customer is the third field.
    elsewhere = [(k, who) for k, who in got if k.split(":")[2:3] != [who]]
    t.ok(not elsewhere, "%s: each message went to its own customer's address (%d elsewhere)"
         % (part, len(elsewhere)), elsewhere[:10])
    per_kill = [(len(l["email"]), len(l["webhook"])) for l in lost]
    worst = max([max(e, w) for e, w in per_kill] or [0])
    t.ok(worst <= BOUND, "%s: at each kill, per channel, at most 2 batches of %d per lane (%d) "
         "sent and not recorded: at most %d (worst %d)" % (part, BATCH, LANES, BOUND, worst),
         per_kill)
    times_lost = collections.Counter(k for l in lost for ch in l for k in l[ch])
    bad = {k: (copies[k], times_lost[k]) for k in want if copies[k] and copies[k] != 1 + times_lost[k]}
    dups = sum(v - 1 for v in copies.values() if v > 1)
    t.ok(not bad, "%s: the %d copies beyond the first are exactly the messages in flight at a "
         "kill, once per such kill" % (part, dups),
         "key: (copies, kills that left it sent and not recorded)\n"
         + "\n".join("%s %s" % kv for kv in sorted(bad.items())[:10]))
    states = dict(query(db, "SELECT state, count(*) FROM outbox WHERE campaign = ? GROUP BY 1",
                        campaign))
    t.eq(states, {"sent": len(want)}, "%s: the store: every message sent, none left sending" % part)
    return {"delivered": len(got), "distinct": len(copies), "duplicates": dups,
            "in_flight": sum(times_lost.values()), "worst": worst, "per_kill": per_kill}


smtp = SmtpRecorder()
hooks = HookServer(("127.0.0.1", 0), HookHandler)
threading.Thread(target=hooks.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True).start()
HOOK = "http://127.0.0.1:%d" % hooks.server_address[1]


def cleanup():
    for p in procs:
        if p.poll() is None:
            stop(p)
    hooks.shutdown()
    hooks.server_close()
    smtp.stop()
    if os.environ.get("KEEP_T"):
        sys.stderr.write("kept %s\n" % T)
    else:
        tmp.cleanup()


def time_limit(*a):
    # Tap's handler ends the process at once: stop what we started first.
    threading.Thread(target=cleanup, daemon=True).start()
    time.sleep(2)
    t._timeout()


signal.signal(signal.SIGALRM, time_limit)
note("seed %d (HERALD_CRASH_SEED=%d repeats it); %d customers, %d kills of run; "
     "%d events, %d kills of serve" % (SEED, SEED, N, KILLS, EVENTS, SERVE_KILLS))

try:
    # ---- part run --------------------------------------------------------
    D1 = os.path.join(T, "run")
    templates(D1)
    G1 = gateway(D1)
    DB1 = os.path.join(D1, "herald.db")
    ids = customers(os.path.join(D1, "c.jsonl"), "c", N, HOOK)
    rc, out, err = herald(G1, "customers", "import", os.path.join(D1, "c.jsonl"))
    t.ok(rc == 0, "run: %d customers imported (half e-mail, half webhook)" % N, out + err)
    for cid in ("clean", "spring"):
        write(os.path.join(D1, cid + ".ini"), "[campaign]\nid = %s\ntemplates = tpl\n"
              "channels = email, webhook\nretry_horizon = 0s\n" % cid)
    R.expect("clean:1:" + c for c in ids)
    R.expect("spring:1:" + c for c in ids)

    # A clean run of the twin campaign: its duration spreads the kills,
    # and its counts are the control (every customer once, no repeat).
    off = R.count()[0]
    start = time.monotonic()
    rc, out, err = herald(G1, "run", os.path.join(D1, "clean.ini"))
    D = time.monotonic() - start
    t.ok(rc == 0, "run: a clean run of the twin campaign exits 0 (%.1f s)" % D, out + err)
    R.quiet()
    c = collections.Counter(k for k, _, _ in R.since(off))
    t.ok(len(c) == N and max(c.values()) == 1,
         "run: without a kill, every customer's message arrived once (%d messages, %d keys)"
         % (sum(c.values()), len(c)))

    # Up to 0.8 D: a restarted run is slower than the clean one (start,
    # and what was in flight sent again one at a time), so the campaign
    # is not finished before the last moment.
    moments = sorted(rng.uniform(0.02 * D, 0.8 * D) for _ in range(KILLS))
    note("run: kill moments (s, from the first start): "
         + " ".join("%.2f" % m for m in moments))
    off0 = R.count()[0]
    lost, kills, runs, elapsed, last_rc = [], 0, 0, 0.0, None
    while runs < KILLS + 10:
        runs += 1
        off = R.count()[0]
        log = open(os.path.join(D1, "run%d.out" % runs), "w")
        p = subprocess.Popen([HERALD, "-c", G1, "run", os.path.join(D1, "spring.ini")],
                             stdout=log, stderr=subprocess.STDOUT)
        procs.append(p)
        started = time.monotonic()
        if kills < KILLS:
            try:
                last_rc = p.wait(timeout=max(0.0, moments[kills] - elapsed))
            except subprocess.TimeoutExpired:
                p.send_signal(signal.SIGKILL)
                last_rc = p.wait()
                kills += 1
            elapsed += time.monotonic() - started
        else:
            try:
                last_rc = p.wait(timeout=600)
            except subprocess.TimeoutExpired:
                last_rc = stop(p)
        log.close()
        R.quiet()
        if last_rc == -signal.SIGKILL:
            lost.append(lost_at_kill(DB1, "spring", off))
        elif last_rc == 0:
            break
        else:
            note("run %d exited %s: %s" % (runs, last_rc,
                                           open(log.name).read().strip()[-300:]))
    t.eq(kills, KILLS, "run: herald run killed with SIGKILL at each of the %d moments" % KILLS)
    t.eq(last_rc, 0, "run: then a run exits 0 (after %d runs)" % runs)
    s = check("run", "spring", DB1, ["spring:1:" + c for c in ids], lost, off0)
    print_run = ("run: %d customers, %d kills, %d runs: %d delivered, %d duplicates "
                 "(%d messages sent and not recorded at the kills, at most %d per kill "
                 "and channel, the bound %d); seed %d"
                 % (N, kills, runs, s["delivered"], s["duplicates"], s["in_flight"],
                    s["worst"], BOUND, SEED))
    note(print_run)
    note("run: per kill, (e-mail, webhook) sent and not recorded: %s" % s["per_kill"])

    # ---- part serve --------------------------------------------------------
    # The receivers answer after 20 ms here, as a provider would: serve
    # sends the journeys as their events come, a few messages a batch, and
    # a batch that takes a while is what a kill should find in flight.
    R.latency = 0.02
    D2 = os.path.join(T, "serve")
    templates(D2)
    PORT = free_port()
    BASE = "http://127.0.0.1:%d" % PORT
    G2 = gateway(D2, "[tracking]\nlisten = 127.0.0.1:%d\nevents_token = %s\n"
                 "secret = track-secret-0123456789abcdef\n" % (PORT, TOKEN))
    DB2 = os.path.join(D2, "herald.db")
    eids = customers(os.path.join(D2, "c.jsonl"), "e", EVENTS, HOOK)
    rc, out, err = herald(G2, "customers", "import", os.path.join(D2, "c.jsonl"))
    t.ok(rc == 0, "serve: %d customers imported" % EVENTS, out + err)
    CART = write(os.path.join(D2, "cart.ini"), "[campaign]\nid = cart\ntemplates = tpl\n"
                 "channels = email, webhook\n[trigger]\nevent = cart_abandoned\ndelay = 0s\n")
    R.expect("cart:1:%s:1" % c for c in eids)

    def serve_start():
        log = open(os.path.join(D2, "serve%d.out" % len(procs)), "w")
        p = subprocess.Popen([HERALD, "-c", G2, "serve", CART], stdout=log,
                             stderr=subprocess.STDOUT)
        procs.append(p)
        log.close()
        end = time.monotonic() + 30
        while time.monotonic() < end and p.poll() is None:
            try:
                if request("GET", BASE + "/healthz", timeout=2)[0] == 200:
                    return p, True
            except OSError:
                pass
            time.sleep(0.02)
        return p, False

    now_s = int(time.time())
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now_s))
    events = [{"customer": c, "type": "cart_abandoned", "at": now,
               "properties": {"item": "item %d" % i}} for i, c in enumerate(eids)]
    answered = []            # indexes of the events whose POST got a 2xx
    post_stats = collections.Counter()
    posting_done = threading.Event()

    def poster():
        """EVENT_RATE events a second, two a request; what gets no 2xx
        (serve is down, or dies before it answers) is posted again."""
        i, per, due = 0, 2, time.monotonic()
        while i < len(events) and not posting_done.is_set():
            due += per / EVENT_RATE
            body = "".join(json.dumps(e) + "\n" for e in events[i:i + per]).encode()
            try:
                st, _, _ = request("POST", BASE + "/events", body,
                                   {"Authorization": "Bearer " + TOKEN,
                                    "Content-Type": "application/x-ndjson"}, timeout=10)
            except OSError:
                st = None
            post_stats[st] += 1
            if st is not None and 200 <= st < 300:
                answered.extend(range(i, min(i + per, len(events))))
                i += per
            time.sleep(max(0.0, due - time.monotonic()))
        posting_done.set()

    off0 = R.count()[0]
    sv, up = serve_start()
    t.ok(up, "serve: herald serve with the triggered campaign answers /healthz")
    th = threading.Thread(target=poster, daemon=True)
    th.start()
    thresholds = sorted(rng.randrange(1, EVENTS) for _ in range(SERVE_KILLS))
    note("serve: kills after these counts of answered events (then 0-100 ms): "
         + " ".join(map(str, thresholds)))
    lost2, skills, restarts_up = [], 0, 0
    off = R.count()[0]
    for th_n in thresholds:
        if not up:
            posting_done.set()
            break
        while len(answered) < th_n and not posting_done.is_set():
            time.sleep(0.002)
        time.sleep(rng.uniform(0, 0.1))
        sv.send_signal(signal.SIGKILL)
        rcs = sv.wait()
        skills += rcs == -signal.SIGKILL
        R.quiet()
        lost2.append(lost_at_kill(DB2, "cart", off))
        off = R.count()[0]
        sv, up = serve_start()
        restarts_up += up
    t.eq((skills, restarts_up), (SERVE_KILLS, SERVE_KILLS),
         "serve: killed with SIGKILL %d times while events were posted, restarted on the "
         "same port each time" % SERVE_KILLS)
    th.join(120)
    t.ok(posting_done.is_set() and len(answered) == EVENTS,
         "serve: every event posted got a 2xx in the end (%d requests answered 2xx, %d not)"
         % (sum(v for k, v in post_stats.items() if k and 200 <= k < 300),
            sum(v for k, v in post_stats.items() if not k or not 200 <= k < 300)),
         post_stats)
    # Drain: every journey's message recorded sent.
    end = time.monotonic() + (600 if LONG else 60)
    while time.monotonic() < end and query(
            DB2, "SELECT count(*) FROM outbox WHERE campaign = 'cart' AND state = 'sent'"
    )[0][0] < EVENTS and sv.poll() is None:
        time.sleep(0.1)
    rcs = stop(sv, signal.SIGTERM)
    t.eq(rcs, 0, "serve: drained, then SIGTERM: exit 0")
    R.quiet()
    stored = set(query(DB2, "SELECT customer, at FROM events WHERE type = 'cart_abandoned'"))
    want_ev = set((events[i]["customer"], now_s) for i in answered)
    t.ok(want_ev <= stored, "serve: every event answered 2xx is in the store (%d of %d)"
         % (len(want_ev & stored), len(want_ev)), sorted(want_ev - stored)[:10])
    s2 = check("serve", "cart", DB2, ["cart:1:%s:1" % events[i]["customer"] for i in answered],
               lost2, off0)
    print_serve = ("serve: %d events, %d answered 2xx and stored, %d kills: %d delivered, "
                   "%d duplicates (%d sent and not recorded at the kills, at most %d per kill "
                   "and channel, the bound %d)"
                   % (EVENTS, len(want_ev & stored), skills, s2["delivered"], s2["duplicates"],
                      s2["in_flight"], s2["worst"], BOUND))
    note(print_serve)
    note("serve: per kill, (e-mail, webhook) sent and not recorded: %s" % s2["per_kill"])
    note("took %.1f s" % (time.monotonic() - t0))
finally:
    cleanup()
t.done()
