"""tests/core/faults.py: a store that fails never gets anyone messaged who
must not be.

A campaign (policy = engagement, caps, on_cap = skip) over three customers
who may be messaged and three who may not (a suppressed address, a cap
already reached, no consent) is run with HERALD_STORE_FAULT=N: the Nth
statement the store is asked for fails.  N sweeps every statement of a
whole run.  After each run:
- nobody who may not be messaged was, whatever failed (fail closed: a
  suppression, a cap or a history that could not be read decides
  nothing);
- a run that met its fault either exits 1 or finished what it had to do
  (a fault in its last bookkeeping);
then a run without faults completes the campaign: each customer who may
be messaged has their message, at most twice and under one key (a
failure while recording results leaves a batch "sending", which the next
run sends again, as the README's delivery semantics say).
HERALD_STORE_FAULT=1+ (every statement fails): exit 1, nothing sent."""
import json
import os
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "http"))
from httptest import Tap, skip_all, PLUGIN_DIR   # noqa: E402

HERALD = os.environ.get("HERALD", "")
if not os.access(HERALD, os.X_OK):
    skip_all("herald not built")
if not os.path.exists(os.path.join(PLUGIN_DIR, "outbox.so")):
    skip_all("outbox.so not built")

t = Tap(time_limit=600)
tmp = tempfile.TemporaryDirectory(prefix="herald-faults.")
T = tmp.name
OK = ["ok-1", "ok-2", "ok-3"]
NOT = ["supp", "capped", "nocons"]


def write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)
    return path


def gateway(d):
    return write(os.path.join(d, "herald.ini"), """[store]
path = %(d)s/herald.db
[plugins]
dir = %(plug)s
[tracking]
secret = faults-secret-0123456789abcdef
[channel.email]
plugin = outbox
dir = %(d)s/out
from = Shop <news@shop.example>
""" % {"d": d, "plug": PLUGIN_DIR})


def herald(d, *args, fault=None):
    env = dict(os.environ)
    env.pop("HERALD_STORE_FAULT", None)
    if fault:
        env["HERALD_STORE_FAULT"] = fault
    p = subprocess.run([HERALD, "-c", os.path.join(d, "herald.ini")] + list(args),
                       capture_output=True, timeout=60, env=env)
    return p.returncode, p.stdout.decode(), p.stderr.decode()


def sent_to(d):
    """Message id -> times written by the outbox plugin."""
    path = os.path.join(d, "out", "messages.jsonl")
    out = {}
    if os.path.exists(path):
        with open(path) as f:
            for line in f:
                k = json.loads(line)["id"]
                out[k] = out.get(k, 0) + 1
    return out


# The prepared store: customers, a suppression, a sent message that caps
# "capped", consent withheld from "nocons".
base = os.path.join(T, "base")
gateway(base)
write(os.path.join(T, "tpl", "email.subject.liquid"), "Hello {{ customer.id }}")
write(os.path.join(T, "tpl", "email.text.liquid"), "Hi {{ customer.id }}")
pre = write(os.path.join(T, "pre.ini"), """[campaign]
id = pre
templates = tpl
channels = email
segment = customer.id == "capped"
""")
main = write(os.path.join(T, "main.ini"), """[campaign]
id = main
templates = tpl
channels = email
policy = engagement
[caps]
email = 1/7d
on_cap = skip
""")
custs = [{"id": c, "email": c + "@example.com", "consent": {"email": c != "nocons"}}
         for c in OK + NOT]
write(os.path.join(base, "customers.jsonl"), "".join(json.dumps(c) + "\n" for c in custs))
write(os.path.join(base, "events.jsonl"),
      json.dumps({"customer": "supp", "channel": "email", "type": "bounced",
                  "at": "2026-01-01T00:00:00Z"}) + "\n" +
      json.dumps({"customer": "ok-1", "channel": "email", "type": "clicked",
                  "at": "2026-11-01T00:00:00Z"}) + "\n")
for args in (["customers", "import", os.path.join(base, "customers.jsonl")],
             ["events", "import", os.path.join(base, "events.jsonl")], ["run", pre]):
    rc, out, err = herald(base, *args)
    t.eq((rc, err), (0, ""), "prepared: " + " ".join(args[:2]))
shutil.rmtree(os.path.join(base, "out"))

# The clean run, for reference: exactly the three.
ref = os.path.join(T, "ref")
shutil.copytree(base, ref)
gateway(ref)
rc, out, err = herald(ref, "run", main, fault="count")
t.eq((rc, sorted(sent_to(ref))), (0, ["main:1:" + c for c in OK]),
     "without faults: the three who may be messaged, and only they")
total = int(err.rsplit("store statements: ", 1)[1].split()[0]) if "store statements: " in err else 0
t.ok(total > 30, "a whole run asks the store for %d statements" % total, err)

bad_not, bad_exit, bad_after, silent = [], [], [], []
for n in range(1, total + 1):
    d = os.path.join(T, "n%03d" % n)
    shutil.copytree(base, d)
    gateway(d)
    rc, out, err = herald(d, "run", main, fault=str(n))
    # Every failure is said: a store error never passes unnoticed.
    if "injected fault" not in err:
        silent.append((n, rc, err))
    got = sent_to(d)
    if any(k.split(":")[2] in NOT for k in got):
        bad_not.append((n, sorted(got), err))
    # Exit 0 only when the run did everything despite the fault.
    if rc == 0 and sorted(got) != ["main:1:" + c for c in OK]:
        bad_exit.append((n, rc, sorted(got), err))
    rc2, out2, err2 = herald(d, "run", main)
    got = sent_to(d)
    if (rc2 != 0 or sorted(got) != ["main:1:" + c for c in OK]
            or any(v > 2 for v in got.values())):
        bad_after.append((n, rc2, got, err2))
    shutil.rmtree(d)

t.eq(silent, [], "each of the %d faults is reported (stderr names it)" % total)
t.eq(bad_not, [], "no fault got a suppressed, capped or unconsenting customer messaged")
t.eq(bad_exit, [], "a run that met a fault exits 1, unless it had done everything")
t.eq(bad_after, [], "a later run completes the campaign: each message sent, at most twice, "
     "one key")

# Every statement failing: nothing goes.
d = os.path.join(T, "all")
shutil.copytree(base, d)
gateway(d)
rc, out, err = herald(d, "run", main, fault="1+")
t.ok(rc == 1 and not sent_to(d) and "injected fault" in err,
     "every statement failing: exit 1, nothing sent, the error said", (rc, err))

t.done()
