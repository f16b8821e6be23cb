"""tests/journey/pause.py: a channel that answers "misconfigured" (a
plugin's HERALD_CHANNEL_ERROR) makes herald serve say so once and leave the
campaign for a minute, its messages pending, instead of calling the plugin
five times a second; SIGTERM still stops it at once."""
import json
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "http"))
from httptest import Tap, skip_all, free_port   # noqa: E402

HERALD = os.environ.get("HERALD", "")
TESTPLUG = os.path.join(os.environ.get("HERALD_BUILDDIR", ""), "tests", "plugins", ".libs",
                        "testplug.so")
if not os.access(HERALD, os.X_OK) or not os.path.exists(TESTPLUG):
    skip_all("herald or the test plugin not built")

t = Tap(time_limit=60)
tmp = tempfile.TemporaryDirectory(prefix="herald-pause.")
T = tmp.name
os.makedirs(os.path.join(T, "plugins"))
os.makedirs(os.path.join(T, "tpl"))
import shutil   # noqa: E402
shutil.copy(TESTPLUG, os.path.join(T, "plugins"))
with open(os.path.join(T, "g.ini"), "w") as f:
    f.write("""[store]
path = %(T)s/herald.db
[plugins]
dir = %(T)s/plugins
[tracking]
secret = pause-secret-0123456789abcdef
listen = 127.0.0.1:%(port)d
[channel.email]
plugin = testplug
mode = channel_error
calls = %(T)s/calls.log
""" % {"T": T, "port": free_port()})
for part, text in [("email.subject", "Hi"), ("email.text", "Hello")]:
    with open(os.path.join(T, "tpl", part + ".liquid"), "w") as f:
        f.write(text)
start = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 60))
with open(os.path.join(T, "c.ini"), "w") as f:
    f.write("[campaign]\nid = p\ntemplates = tpl\nchannels = email\nstart = %s\n" % start)
with open(os.path.join(T, "cust.jsonl"), "w") as f:
    for i in range(3):
        f.write(json.dumps({"id": "c%d" % i, "email": "c%d@example.com" % i,
                            "consent": {"email": True}}) + "\n")
subprocess.run([HERALD, "-c", os.path.join(T, "g.ini"), "customers", "import",
                os.path.join(T, "cust.jsonl")], check=True, capture_output=True)
p = subprocess.Popen([HERALD, "-c", os.path.join(T, "g.ini"), "serve", os.path.join(T, "c.ini")],
                     stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def calls():
    path = os.path.join(T, "calls.log")
    return sum(1 for _ in open(path)) if os.path.exists(path) else 0


end = time.monotonic() + 20
while time.monotonic() < end and calls() == 0:
    time.sleep(0.1)
t.ok(calls() >= 1, "serve handed the campaign's messages to the plugin")
time.sleep(3)                  # fifteen ticks: the campaign waits
n = calls()
t0 = time.monotonic()
p.send_signal(signal.SIGTERM)
out, err = p.communicate(timeout=20)
err = err.decode()
t.eq(p.returncode, 0, "SIGTERM: exit 0")
t.ok(time.monotonic() - t0 < 10, "... at once, not after the pause")
t.eq(n, 1, "one send call in 3 s after the channel error, not one a tick")
t.eq(err.count("testplug says 4"), 1, "the error said once: %s" % err.strip()[:300])
t.ok("trying again in 60 s (the messages wait)" in err, "... with when it tries again", err)
db = sqlite3.connect(os.path.join(T, "herald.db"))
states = db.execute("SELECT state, count(*) FROM outbox GROUP BY 1").fetchall()
db.close()
t.eq(states, [("pending", 3)], "the messages wait, pending")
t.done()
