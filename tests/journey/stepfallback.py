"""tests/journey/stepfallback.py: a follow-up step keeps its channel rule
when its message falls back.  Step 1 goes by e-mail; step 2 says
`channel = next` (not e-mail), so it goes by SMS; the SMS channel rejects
it for good: the fallback must not take it back to e-mail, which the
step's rule left out.  The message ends failed on SMS, and e-mail never
sees step 2."""
import json
import os
import shutil
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
tmp = tempfile.TemporaryDirectory(prefix="herald-stepfallback.")
T = tmp.name
os.makedirs(os.path.join(T, "plugins"))
os.makedirs(os.path.join(T, "tpl"))
shutil.copy(TESTPLUG, os.path.join(T, "plugins"))
G = os.path.join(T, "g.ini")
with open(G, "w") as f:
    f.write("""[store]
path = %(T)s/herald.db
[plugins]
dir = %(T)s/plugins
[tracking]
secret = step-secret-0123456789abcdef
listen = 127.0.0.1:%(port)d
[channel.email]
plugin = testplug
mode = sent
log = %(T)s/email.log
[channel.sms]
plugin = testplug
kind = sms
mode = reject
log = %(T)s/sms.log
""" % {"T": T, "port": free_port()})
for part, text in [("email.subject", "Hi"), ("email.text", "Hello"), ("sms.body", "Hi")]:
    with open(os.path.join(T, "tpl", part + ".liquid"), "w") as f:
        f.write(text)
C = os.path.join(T, "c.ini")
with open(C, "w") as f:
    f.write("[campaign]\nid = s\ntemplates = tpl\nchannels = email, sms\n"
            "retry_horizon = 0s\n\n[step.2]\nafter = 1s\nchannel = next\n")
with open(os.path.join(T, "cust.jsonl"), "w") as f:
    for i in range(2):
        f.write(json.dumps({"id": "c%d" % i, "email": "c%d@example.com" % i,
                            "phone": "+3361234567%d" % i,
                            "consent": {"email": True, "sms": True}}) + "\n")
subprocess.run([HERALD, "-c", G, "customers", "import", os.path.join(T, "cust.jsonl")],
               check=True, capture_output=True)
p = subprocess.run([HERALD, "-c", G, "run", C], capture_output=True)
t.ok(p.returncode == 0, "step 1 sent by herald run", p.stderr.decode())


def rows():
    db = sqlite3.connect(os.path.join(T, "herald.db"))
    r = db.execute("SELECT key, channel, state, reason FROM outbox ORDER BY key").fetchall()
    db.close()
    return r


t.eq([(k, ch, st) for k, ch, st, _ in rows()],
     [("s:1:c0", "email", "sent"), ("s:1:c1", "email", "sent")], "step 1: both by e-mail")
sv = subprocess.Popen([HERALD, "-c", G, "serve", C], stdout=subprocess.PIPE,
                      stderr=subprocess.PIPE)
end = time.monotonic() + 30
while time.monotonic() < end:
    st2 = [r for r in rows() if r[0].startswith("s:2:")]
    if len(st2) == 2 and all(r[2] in ("failed", "dead", "sent") for r in st2):
        break
    time.sleep(0.1)
sv.send_signal(signal.SIGTERM)
out, err = sv.communicate(timeout=15)
st2 = [r for r in rows() if r[0].startswith("s:2:")]
t.eq([(k, ch, st) for k, ch, st, _ in st2],
     [("s:2:c0", "sms", "failed"), ("s:2:c1", "sms", "failed")],
     "step 2 (channel = next) went by SMS, was rejected, and stayed failed on SMS")
email_log = open(os.path.join(T, "email.log")).read() if os.path.exists(
    os.path.join(T, "email.log")) else ""
t.ok("s:2:" not in email_log, "e-mail, which the step's rule leaves out, never saw step 2",
     email_log)
t.done()
