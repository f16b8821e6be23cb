"""tests/journey/stuck.py: herald serve with a plugin stuck in send.

A triggered campaign on the test plugin, which holds its first batch for
ten minutes; [channel.email] send_timeout = 2s.  An event is posted; the
step fires and its message goes to the plugin, which does not return:
serve gives the batch up after 2 s, says which channel and plugin, and
exits 1 by itself, the message left in flight ("sending").  Started
again with the plugin fixed, serve sends that message (attempt 2), once,
and exits 0 on SIGTERM."""
import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "http"))
from httptest import Tap, skip_all, free_port, request, BUILDDIR, die_with_parent   # noqa: E402

HERALD = os.environ.get("HERALD", "")
TESTPLUG = os.path.join(BUILDDIR, "tests", "plugins", ".libs", "testplug.so")
if not os.access(HERALD, os.X_OK):
    skip_all("herald not built")
if not os.path.exists(TESTPLUG):
    skip_all("testplug.so not built")

t = Tap(time_limit=120)
tmp = tempfile.TemporaryDirectory(prefix="herald-stuck.")
T = tmp.name
PORT = free_port()
BASE = "http://127.0.0.1:%d" % PORT
TOKEN = "events-token-0123456789abcdef"
plugdir = os.path.join(T, "plugins")
os.makedirs(plugdir)
subprocess.run(["cp", TESTPLUG, plugdir], check=True)


def write(name, text):
    path = os.path.join(T, name)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)
    return path


def gateway(extra):
    return write("herald.ini", """[store]
path = %(T)s/herald.db
[plugins]
dir = %(plug)s
[tracking]
secret = stuck-secret-0123456789abcdef
listen = 127.0.0.1:%(port)d
events_token = %(token)s
[channel.email]
plugin = testplug
mode = sent
log = %(T)s/email.log
%(extra)s
""" % {"T": T, "plug": plugdir, "port": PORT, "token": TOKEN, "extra": extra})


GW = gateway("ready = %s/ready\nhold_ms = 600000\nsend_timeout = 2s" % T)
write("tpl/email.subject.liquid", "Your {{ event.item }}")
write("tpl/email.text.liquid", "Still there, {{ customer.id }}?")
CAMPAIGN = write("cart.ini", "[campaign]\nid = cart\ntemplates = tpl\nchannels = email\n"
                 "[trigger]\nevent = cart_abandoned\ndelay = 0s\n")
write("c.jsonl", json.dumps({"id": "ann", "email": "ann@example.com",
                             "consent": {"email": True}}) + "\n")
p = subprocess.run([HERALD, "-c", GW, "customers", "import", os.path.join(T, "c.jsonl")],
                   capture_output=True, timeout=60)
t.eq(p.returncode, 0, "customer imported")


def start():
    log = open(os.path.join(T, "serve.log"), "ab")
    srv = subprocess.Popen([HERALD, "-c", GW, "serve", CAMPAIGN], stdout=log,
                           stderr=subprocess.STDOUT, preexec_fn=die_with_parent)
    for _ in range(400):
        try:
            if request("GET", BASE + "/healthz")[0] == 200:
                return srv, True
        except OSError:
            if srv.poll() is not None:
                break
            time.sleep(0.05)
    return srv, False


srv, up = start()
t.ok(up, "serve answers /healthz")
if not up:
    t.ok(False, "serve's output", open(os.path.join(T, "serve.log")).read()[-800:])
    t.done()
st, _, b = request("POST", BASE + "/events",
                   body=(json.dumps({"customer": "ann", "type": "cart_abandoned",
                                     "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                                     "properties": {"item": "tent"}}) + "\n").encode(),
                   headers={"Authorization": "Bearer " + TOKEN,
                            "Content-Type": "application/x-ndjson"})
t.ok(st == 200, "the event is taken", b)
end = time.monotonic() + 30
while time.monotonic() < end and not os.path.exists(os.path.join(T, "ready")):
    time.sleep(0.05)
t.ok(os.path.exists(os.path.join(T, "ready")), "the step's message is in the plugin, held")
try:
    rc = srv.wait(timeout=60)
except subprocess.TimeoutExpired:
    srv.kill()
    rc = srv.wait()
log = open(os.path.join(T, "serve.log")).read()
t.eq(rc, 1, "serve stops by itself, exit 1, once send_timeout has passed")
t.ok("channel email: plugin testplug did not return from send within 2s (send_timeout)" in log
     and "stopped: a plugin did not return from send within its channel's send_timeout" in log,
     "... saying which channel and plugin, and why it stopped", log[-800:])
db = sqlite3.connect(os.path.join(T, "herald.db"))
rows = db.execute("SELECT state, attempts FROM outbox").fetchall()
db.close()
t.eq(rows, [("sending", 1)], "... the message left in flight, nothing recorded sent")

# The plugin fixed: the message goes, once.
if os.path.exists(os.path.join(T, "ready")):
    os.remove(os.path.join(T, "ready"))
GW = gateway("")
srv, up = start()
t.ok(up, "serve starts again")
end = time.monotonic() + 30
rows = []
while time.monotonic() < end:
    db = sqlite3.connect(os.path.join(T, "herald.db"))
    rows = db.execute("SELECT state, attempts FROM outbox").fetchall()
    db.close()
    if rows == [("sent", 2)]:
        break
    time.sleep(0.1)
t.eq(rows, [("sent", 2)], "the message in flight is sent by the restarted serve (attempt 2)")
srv.send_signal(15)
t.eq(srv.wait(timeout=20), 0, "SIGTERM: exit 0")
handed = [line.split()[0] for line in open(os.path.join(T, "email.log"))]
t.ok(len(handed) == 2 and handed[0] == handed[1] and handed[0].startswith("cart:1:ann"),
     "the plugin was handed it twice under one key (the held attempt, then this one)", handed)
t.done()
