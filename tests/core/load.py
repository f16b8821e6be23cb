"""tests/core/load.py: herald serve under load on every endpoint, while
200 slow connections hang on, answers every request as it should, keeps
answering /healthz, records every click, and ends cleanly.

wrk (Debian's package, installed by scripts/install-deps.sh) drives each
endpoint in turn for a few seconds with 32 connections: a tracked link
(302, and a clicked event in the store for each click answered), the
open pixel (200), the unsubscribe page (200), POST /events with its token
(200), a provider callback with a forged signature (403 every time),
/metrics with its token (200) and an unknown path (404).  Meanwhile 200
connections from another address each send one byte of a request head
and stall, and a thread asks /healthz every 50 ms.  After each endpoint:
wrk saw no socket error and only the expected status; at the end serve
is alive, every /healthz was answered 200, SIGTERM ends it with exit 0,
and its peak memory (VmHWM) is printed.  No timing is asserted."""
import json
import os
import re
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "http"))
from httptest import Tap, skip_all, free_port, PLUGIN_DIR, request, die_with_parent  # noqa: E402

HERALD = os.environ.get("HERALD", "")
WRK = shutil.which("wrk")
if not os.access(HERALD, os.X_OK):
    skip_all("herald not built")
if not WRK:
    skip_all("wrk not installed (scripts/install-deps.sh installs it)")

SECONDS = os.environ.get("HERALD_LOAD_SECONDS", "3")
t = Tap(time_limit=300)
tmp = tempfile.TemporaryDirectory(prefix="herald-load.")
T = tmp.name
port = free_port()
BASE = "http://127.0.0.1:%d" % port
EVTOK = "load-events-token-0123456789"
METOK = "load-metrics-token-0123456789"


def write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)
    return path


write(os.path.join(T, "g.ini"), """[store]
path = %(T)s/herald.db
[plugins]
dir = %(plug)s
[tracking]
base_url = %(base)s
secret = load-secret-0123456789abcdef
listen = 127.0.0.1:%(port)d
events_token = %(ev)s
metrics_token = %(me)s
; wrk's connections all come from 127.0.0.1
connections_per_client = 0
[channel.email]
plugin = outbox
dir = %(T)s/out
from = Shop <news@shop.example>
[channel.sms]
plugin = sms
provider = twilio
base_url = http://127.0.0.1:9
account_sid = AC0123456789abcdef0123456789abcdef
auth_token = load-twilio-token-0123
from = +15005550006
""" % {"T": T, "plug": PLUGIN_DIR, "base": BASE, "port": port, "ev": EVTOK, "me": METOK})
write(os.path.join(T, "tpl", "email.subject.liquid"), "Sale")
write(os.path.join(T, "tpl", "email.html.liquid"),
      '<p>Hi {{ customer.id }}, <a href="https://shop.example/sale">the sale</a></p>')
write(os.path.join(T, "c.ini"), "[campaign]\nid = l\ntemplates = tpl\nchannels = email\n")
write(os.path.join(T, "c.jsonl"), "".join(
    json.dumps({"id": "c%02d" % i, "email": "c%d@example.com" % i, "consent": {"email": True}}) + "\n"
    for i in range(5)))
for args in (["customers", "import", os.path.join(T, "c.jsonl")], ["run", os.path.join(T, "c.ini")]):
    p = subprocess.run([HERALD, "-c", os.path.join(T, "g.ini")] + args, capture_output=True, timeout=60)
    t.eq(p.returncode, 0, "prepared: " + " ".join(args[:2]))
html = json.loads(open(os.path.join(T, "out", "messages.jsonl")).readline())["parts"]["email.html"]
click = re.search(r'href="%s(/c/[^"]+)"' % re.escape(BASE), html).group(1)
pixel = re.search(r'src="%s(/o/[^"]+)"' % re.escape(BASE), html).group(1)
unsub = json.loads(open(os.path.join(T, "out", "messages.jsonl")).readline()).get("unsubscribe_url", "")
unsub = unsub[len(BASE):] if unsub.startswith(BASE) else None

# Its output to a file: a pipe nobody reads would fill, and block it.
serve_log = open(os.path.join(T, "serve.log"), "wb")
srv = subprocess.Popen([HERALD, "-c", os.path.join(T, "g.ini"), "serve"],
                       stdout=serve_log, stderr=subprocess.STDOUT,
                       preexec_fn=die_with_parent)
up = False
for _ in range(600):
    try:
        up = request("GET", BASE + "/healthz")[0] == 200
        break
    except OSError:
        if srv.poll() is not None:
            break
        time.sleep(0.05)
t.ok(up, "serve answers /healthz")

# 200 slow connections from 127.0.0.2: one byte of a head each, then
# nothing.
slow = []
for i in range(200):
    s = socket.socket()
    try:
        s.bind(("127.0.0.2", 0))
        s.connect(("127.0.0.1", port))
        s.send(b"G")
        slow.append(s)
    except OSError:
        s.close()
t.ok(len(slow) == 200, "200 slow connections open, one byte each (%d)" % len(slow))

health = {"ok": 0, "bad": []}
stop = threading.Event()


def poll_health():
    while not stop.is_set():
        try:
            st, _, body = request("GET", BASE + "/healthz", timeout=10)
            if (st, body) == (200, b"ok\n"):
                health["ok"] += 1
            else:
                health["bad"].append(st)
        except OSError as e:
            health["bad"].append(str(e))
        time.sleep(0.05)


th = threading.Thread(target=poll_health, daemon=True)
th.start()


def lua(method, path, body=None, headers=None):
    lines = ['wrk.method = "%s"' % method, 'wrk.path = "%s"' % path]
    if body is not None:
        lines.append('wrk.body = %s' % json.dumps(body))
    for k, v in (headers or {}).items():
        lines.append('wrk.headers["%s"] = "%s"' % (k, v))
    return write(os.path.join(T, "s-%d.lua" % len(os.listdir(T))), "\n".join(lines) + "\n")


EVENT = json.dumps({"customer": "c01", "type": "visited", "at": "2026-11-01T00:00:00Z"}) + "\n"
cases = [
    ("a tracked link", "GET", click, None, {"User-Agent": "Mozilla/5.0 (X11; Linux x86_64) Firefox/115.0"}, "3xx"),
    ("the open pixel", "GET", pixel, None, {"User-Agent": "Mozilla/5.0 (X11; Linux x86_64) Firefox/115.0"}, "2xx"),
    ("POST /events", "POST", "/events", EVENT, {"Authorization": "Bearer " + EVTOK,
                                                 "Content-Type": "application/x-ndjson"}, "2xx"),
    ("a forged provider callback", "POST", "/inbound/sms/status", "MessageSid=SM1&MessageStatus=delivered",
     {"Content-Type": "application/x-www-form-urlencoded", "X-Twilio-Signature": "AAAA"}, "non"),
    ("/metrics", "GET", "/metrics", None, {"Authorization": "Bearer " + METOK}, "2xx"),
    ("an unknown path", "GET", "/nowhere", None, None, "non"),
]
if unsub:
    cases.append(("the unsubscribe page", "GET", unsub, None, None, "2xx"))
clicks = 0
for name, method, path, body, headers, want in cases:
    script = lua(method, path, body, headers)
    p = subprocess.run([WRK, "-t1", "-c32", "-d" + SECONDS + "s", "--timeout", "10s",
                        "-s", script, BASE], capture_output=True, timeout=120)
    out = p.stdout.decode()
    m = re.search(r"(\d+) requests in", out)
    n = int(m.group(1)) if m else 0
    non = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    non = int(non.group(1)) if non else 0
    errs = re.search(r"Socket errors: (.*)", out)
    okay = p.returncode == 0 and n > 0 and not errs and (non == n if want == "non" else non == 0)
    t.ok(okay, "%s under wrk: %d requests, all answered %s%s" % (
        name, n, "4xx" if want == "non" else want, "" if not errs else "; " + errs.group(1)), out)
    if name == "a tracked link":
        clicks = n

stop.set()
th.join(5)
t.ok(health["ok"] > 0 and not health["bad"],
     "/healthz answered 200 all along (%d times, %d otherwise)" % (health["ok"], len(health["bad"])),
     health["bad"][:5])
t.ok(srv.poll() is None, "serve is alive after the load")


def clicked():
    db = sqlite3.connect(os.path.join(T, "herald.db"))
    try:
        return db.execute("SELECT count(*) FROM events WHERE type = 'clicked'").fetchone()[0]
    finally:
        db.close()


# Every click answered is recorded (wrk counts those it got answers to;
# up to its 32 in flight at the end were answered after it stopped).
n = clicked()
t.ok(clicks <= n <= clicks + 32, "every click answered is in the store (%d answered, %d recorded)"
     % (clicks, n))
hwm = None
try:
    for line in open("/proc/%d/status" % srv.pid):
        if line.startswith("VmHWM:"):
            hwm = line.split()[1]
except OSError:
    pass
for s in slow:
    s.close()
srv.send_signal(15)
try:
    rc = srv.wait(timeout=20)
except subprocess.TimeoutExpired:
    srv.kill()
    rc = srv.wait()
serve_log.close()
t.eq(rc, 0, "SIGTERM ends serve, exit 0")
log = open(os.path.join(T, "serve.log"), "rb").read().decode(errors="replace")
refused = log.count("X-Twilio-Signature refused")
t.ok(0 < refused <= 60 and "more log lines of this channel dropped" in log,
     "the forged callbacks' warnings are rate-limited (%d written, the rest counted)" % refused,
     log[-600:])
t.out("# serve's peak memory (VmHWM): %s kB" % hwm)
t.done()
