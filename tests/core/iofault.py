"""tests/core/iofault.py: the disk fails under a campaign (EIO, then
ENOSPC), at every point of a whole run, and nothing is recorded that did
not happen, nothing is lost.

The shim tests/core/iofault.so (LD_PRELOAD) fails the Nth write, flush or
truncate of the store's files (herald.db, its -wal and -journal) and every
one after it: a disk that went bad or full and stays so.  A clean run
counts those calls; N then sweeps them (every one up to 60, then evenly
spaced points).  After each run with its fault:
- herald exits 0 or 1, never by a signal, and says what failed, naming
  the store file (exit 1; or a warning, exit 0, when the fault came as it
  closed: what was committed stays in the write-ahead log);
- no message is recorded sent that the plugin did not accept (every
  "sent" row is in the plugin's log);
- the store passes PRAGMA integrity_check;
then, the disk fixed, a run completes the campaign: every customer has
exactly one message recorded sent, and the plugin saw each at most twice
(a batch recorded "sending" before the fault is sent again: at least
once), always under the message's one key.
HERALD_IOFAULT_POINTS=N samples N points instead of 40 (0: all)."""
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "http"))
from httptest import Tap, skip_all, BUILDDIR   # noqa: E402

HERALD = os.environ.get("HERALD", "")
SHIM = os.path.join(BUILDDIR, "tests", "core", ".libs", "iofault.so")
TESTPLUG = os.path.join(BUILDDIR, "tests", "plugins", ".libs", "testplug.so")
if not os.access(HERALD, os.X_OK):
    skip_all("herald not built")
for f in (SHIM, TESTPLUG):
    if not os.path.exists(f):
        skip_all("%s not built" % f)

t = Tap(time_limit=900)
tmp = tempfile.TemporaryDirectory(prefix="herald-iofault.")
T = tmp.name
N = 40                                   # customers
POINTS = int(os.environ.get("HERALD_IOFAULT_POINTS", "40"))
plugdir = os.path.join(T, "plugins")
os.makedirs(plugdir)
shutil.copy(TESTPLUG, plugdir)
os.makedirs(os.path.join(T, "tpl"))
for name, text in (("email.subject.liquid", "Hello {{ customer.id }}"),
                   ("email.text.liquid", "Hi {{ customer.id }}")):
    with open(os.path.join(T, "tpl", name), "w") as f:
        f.write(text)
with open(os.path.join(T, "c.ini"), "w") as f:
    f.write("[campaign]\nid = io\ntemplates = tpl\nchannels = email\n")
with open(os.path.join(T, "cust.jsonl"), "w") as f:
    for i in range(N):
        f.write(json.dumps({"id": "c%03d" % i, "email": "c%d@example.com" % i,
                            "consent": {"email": True}}) + "\n")


def setup(d):
    """A store with the customers imported, a gateway, an empty log."""
    if os.path.exists(d):
        shutil.rmtree(d)
    os.makedirs(d)
    with open(os.path.join(d, "g.ini"), "w") as f:
        f.write("[store]\npath = %s/herald.db\n[plugins]\ndir = %s\n"
                "[channel.email]\nplugin = testplug\nmode = sent\nlog = %s/plugin.log\n"
                % (d, plugdir, d))
    rc, out, err = herald(d, "customers", "import", os.path.join(T, "cust.jsonl"))
    assert rc == 0, err


def herald(d, *args, at=None, errno_name="EIO", count=None):
    env = dict(os.environ)
    if at is not None or count is not None:
        env["LD_PRELOAD"] = SHIM
        env["IOFAULT_PATH"] = os.path.join(d, "herald.db")
        env["IOFAULT_ERRNO"] = errno_name
        if at is not None:
            env["IOFAULT_AT"] = str(at)
        if count is not None:
            env["IOFAULT_COUNT"] = count
        # Under AddressSanitizer: the shim comes before its runtime.
        env["ASAN_OPTIONS"] = (env.get("ASAN_OPTIONS", "") + ":verify_asan_link_order=0").lstrip(":")
    p = subprocess.run([HERALD, "-c", os.path.join(d, "g.ini")] + list(args),
                       capture_output=True, timeout=120, env=env)
    return p.returncode, p.stdout.decode(), p.stderr.decode()


def plugin_log(d):
    """Message key -> times the plugin was handed it."""
    out = {}
    path = os.path.join(d, "plugin.log")
    if os.path.exists(path):
        with open(path) as f:
            for line in f:
                k = line.split()[0]
                out[k] = out.get(k, 0) + 1
    return out


def store_state(d):
    db = sqlite3.connect(os.path.join(d, "herald.db"))
    try:
        check = db.execute("PRAGMA integrity_check").fetchone()[0]
        sent = [r[0] for r in db.execute("SELECT key FROM outbox WHERE state = 'sent'")]
    finally:
        db.close()
    return check, sent


# The clean run: how many write/flush calls the store's files see.
d0 = os.path.join(T, "clean")
setup(d0)
cnt = os.path.join(T, "count")
rc, out, err = herald(d0, "run", os.path.join(T, "c.ini"), count=cnt)
t.eq(rc, 0, "clean run under the shim: exit 0")
total = int(open(cnt).read())
t.ok(total > 20, "the clean run wrote to the store %d times" % total)
check, sent = store_state(d0)
t.eq((check, len(sent)), ("ok", N), "clean run: every customer sent")

if POINTS and total > 60:
    step = (total - 60) / POINTS
    points = list(range(1, 61)) + sorted({60 + int(step * i) for i in range(1, POINTS + 1)})
else:
    points = list(range(1, total + 1))

for errno_name in ("EIO", "ENOSPC"):
    bad = []
    failed_runs = 0
    for at in points:
        d = os.path.join(T, "f")
        setup(d)
        rc, out, err = herald(d, "run", os.path.join(T, "c.ini"), at=at,
                              errno_name=errno_name)
        what = "%s at call %d" % (errno_name, at)
        if rc not in (0, 1):
            bad.append("%s: exit %d: %s" % (what, rc, err[-300:]))
            continue
        if rc == 1:
            failed_runs += 1
        # Said, either way: a run that failed names the store; one whose
        # fault came at its end (copying the log into the store file as
        # it closed) warns, naming it.
        if "herald.db" not in err:
            bad.append("%s: exit %d without naming the store: %r" % (what, rc, err[-300:]))
        log = plugin_log(d)
        check, sent = store_state(d)
        if check != "ok":
            bad.append("%s: integrity_check: %s" % (what, check))
        ghost = [k for k in sent if k not in log]
        if ghost:
            bad.append("%s: recorded sent, never accepted: %s" % (what, ghost[:3]))
        # The disk fixed: the campaign completes.
        rc2, out2, err2 = herald(d, "run", os.path.join(T, "c.ini"))
        log = plugin_log(d)
        check, sent = store_state(d)
        if rc2 != 0 or check != "ok" or len(sent) != N or len(set(sent)) != N:
            bad.append("%s: the run after: exit %d, %s, %d sent: %s"
                       % (what, rc2, check, len(sent), err2[-300:]))
        elif len(log) != N or max(log.values()) > 2:
            bad.append("%s: the plugin saw %d keys, one %d times"
                       % (what, len(log), max(log.values())))
    t.ok(not bad, "%s at %d points of %d: exit 0 or 1, the store named, no message "
         "recorded sent that was not accepted, the store intact, and the next "
         "run completes (each customer sent once, handed over at most twice)"
         % (errno_name, len(points), total), "\n".join(bad[:10]))
    t.ok(failed_runs > len(points) // 2,
         "%s: most faulty runs stopped with exit 1 (%d of %d)"
         % (errno_name, failed_runs, len(points)))
t.done()
