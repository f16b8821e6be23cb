"""tests/journey/schedule.py: [campaign] start.

- Without an offset, the start is that wall-clock time in each customer's
  own zone (the campaign's [quiet_hours] timezone for a customer without
  one): herald run before it plans every customer as "deferred" (reason
  "scheduled") to the right instant, checked against Python's zoneinfo,
  across a daylight-saving change, and says when it will send.
- A start inside an SMS quiet period is deferred to the period's end.
- With Z, one instant for all: herald run plans, then herald serve sends
  at the start, each message once; a campaign that nobody ran is planned
  by herald serve itself and sent at its start.
- lint refuses a bad start, and a start with a [trigger]."""
import calendar
import datetime
import json
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from zoneinfo import ZoneInfo

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "http"))
from httptest import Tap, skip_all, free_port, request, PLUGIN_DIR   # noqa: E402

HERALD = os.environ.get("HERALD", "")
if not os.access(HERALD, os.X_OK):
    skip_all("herald not built")
if not os.path.exists(os.path.join(PLUGIN_DIR, "outbox.so")):
    skip_all("outbox.so not built")

t = Tap(time_limit=120)
tmp = tempfile.TemporaryDirectory(prefix="herald-schedule.")
T = tmp.name
PORT = free_port()


def write(name, text):
    path = os.path.join(T, name)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)
    return path


GW = write("herald.ini", """[store]
path = %(T)s/herald.db
[plugins]
dir = %(plugdir)s
[tracking]
secret = schedule-secret-0123456789
listen = 127.0.0.1:%(port)d
[channel.email]
plugin = outbox
dir = %(T)s/out-email
from = Shop <news@shop.example>
[channel.sms]
plugin = outbox
dir = %(T)s/out-sms
""" % {"T": T, "plugdir": PLUGIN_DIR, "port": PORT})
write("tpl/email.subject.liquid", "Sale starts now")
write("tpl/email.text.liquid", "Hello {{ customer.id }}")
write("tpl/sms.body.liquid", "Sale starts now, {{ customer.id }}")
zones = {"tokyo": "Asia/Tokyo", "paris": "Europe/Paris", "ny": "America/New_York",
         "nozone": None}
customers = []
for cid, zone in zones.items():
    c = {"id": cid, "email": cid + "@example.com", "phone": "+3361234%04d" % len(customers),
         "consent": {"email": True, "sms": True}}
    if zone:
        c["timezone"] = zone
    customers.append(c)
write("customers.jsonl", "".join(json.dumps(c) + "\n" for c in customers))


def herald(*args, now=None):
    env = dict(os.environ)
    if now:
        env["HERALD_NOW"] = str(now)
    p = subprocess.run([HERALD, "-c", GW] + list(args), capture_output=True, timeout=60, env=env)
    return p.returncode, p.stdout.decode(), p.stderr.decode()


def query(sql, *args):
    db = sqlite3.connect(os.path.join(T, "herald.db"))
    rows = db.execute(sql, args).fetchall()
    db.close()
    return rows


def utc(s):
    return calendar.timegm(time.strptime(s, "%Y-%m-%dT%H:%M:%SZ"))


def local(wall, zone):
    d = datetime.datetime.strptime(wall, "%Y-%m-%dT%H:%M").replace(tzinfo=ZoneInfo(zone))
    return int(d.timestamp())


rc, out, err = herald("customers", "import", os.path.join(T, "customers.jsonl"))
t.eq(rc, 0, "customers imported")

# ---- a wall-clock start, in each customer's zone --------------------------
NOW = utc("2030-03-01T00:00:00Z")
for cid, wall, extra in [("local", "2030-03-10T09:00", ""),
                         # 02:30 does not exist in New York that night (spring forward)
                         ("gap", "2030-03-10T02:30", "")]:
    path = write(cid + ".ini", """[campaign]
id = %s
templates = tpl
channels = email
start = %s
[quiet_hours]
timezone = Europe/Berlin
""" % (cid, wall))
    rc, out, err = herald("run", path, now=NOW)
    t.eq((rc, err), (0, ""), "%s: herald run before the start exits 0" % cid)
    t.ok("scheduled for the campaign's start: 4, due from" in out,
         "%s: it says how many are scheduled and when" % cid, out)
    t.ok("next due" in out and "herald serve %s" % path in out,
         "%s: and that serve (or a later run) sends them" % cid, out)
    got = dict((c, (s, r, n)) for c, s, r, n in query(
        "SELECT customer, state, reason, next_at FROM outbox WHERE campaign = ?", cid))
    for c, zone in zones.items():
        want = local(wall, zone or "Europe/Berlin")
        t.eq(got.get(c), ("deferred", "scheduled", want),
             "%s: %s is due at %s in %s (%d)" % (cid, c, wall, zone or "the campaign's zone",
                                                  want))
    rc, out, err = herald("run", path, now=NOW + 3600)
    t.ok(rc == 0 and "messages scheduled for later" in out,
         "%s: a second run before the start sends nothing" % cid, out)
    t.eq(query("SELECT count(*) FROM outbox WHERE campaign = ? AND state = 'sent'", cid), [(0,)],
         "%s: nothing sent yet" % cid)

# A start inside SMS quiet hours: deferred to their end, after the start.
path = write("late.ini", """[campaign]
id = late
templates = tpl
channels = sms
start = 2030-03-12T22:00
[quiet_hours]
sms = 21:00-08:00
""")
rc, out, err = herald("run", path, now=NOW)
t.eq(rc, 0, "late: planned")
t.eq(query("SELECT state, reason, next_at FROM outbox WHERE key = 'late:1:paris'"),
     [("deferred", "quiet_hours", local("2030-03-13T08:00", "Europe/Paris"))],
     "late: a start at 22:00 inside quiet hours goes at 08:00 the next morning")

# ---- one instant: herald run plans, herald serve sends --------------------
start = int(time.time()) + 4
iso = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(start))
# retry_horizon = 0s: herald run plans and leaves (else it would wait for
# messages due within 30 s, these included, and send them itself).
ran = write("sale.ini", "[campaign]\nid = sale\ntemplates = tpl\nchannels = email\n"
            "retry_horizon = 0s\nstart = %s\n" % iso)
rc, out, err = herald("run", ran)
t.ok(rc == 0 and "scheduled for the campaign's start: 4" in out, "sale: herald run plans 4", out)
t.eq(sorted(set(r[0] for r in query("SELECT next_at FROM outbox WHERE campaign = 'sale'"))),
     [start], "sale: every customer due at the same instant")
unran = write("flash.ini", "[campaign]\nid = flash\ntemplates = tpl\nchannels = sms\n"
              "start = %s\n" % iso)
p = subprocess.Popen([HERALD, "-c", GW, "serve", ran, unran], stdout=subprocess.PIPE,
                     stderr=subprocess.PIPE)


def sent(campaign):
    return query("SELECT count(*) FROM outbox WHERE campaign = ? AND state = 'sent'",
                 campaign)[0][0]


end = time.monotonic() + 20
early = None
while time.monotonic() < end and (sent("sale") < 4 or sent("flash") < 4):
    if time.time() < start - 0.5 and early is None:
        early = sent("sale") + sent("flash")
    time.sleep(0.1)
finished = time.time()
p.send_signal(signal.SIGTERM)
out, err = p.communicate(timeout=15)
out, err = out.decode(), err.decode()
t.ok(p.returncode == 0, "serve: SIGTERM, exit 0", err)
t.ok(early in (0, None), "serve: nothing sent before the start", early)
t.eq((sent("sale"), sent("flash")), (4, 4), "serve: both campaigns sent at their start")
t.ok(finished < start + 10, "serve: within seconds of the start (%.1f s)" % (finished - start))
t.ok("campaign flash: 4 customers planned for its start" in out,
     "serve: it planned the campaign nobody ran", out)


def lines(channel):
    with open(os.path.join(T, "out-" + channel, "messages.jsonl")) as f:
        return [json.loads(x)["id"] for x in f]


t.eq(sorted(x for x in lines("email") if x.startswith("sale:")),
     ["sale:1:nozone", "sale:1:ny", "sale:1:paris", "sale:1:tokyo"], "sale: each message once")
t.eq(sorted(x for x in lines("sms") if x.startswith("flash:")),
     ["flash:1:nozone", "flash:1:ny", "flash:1:paris", "flash:1:tokyo"], "flash: each message once")

# ---- bad input -------------------------------------------------------------
for text, want in [
        ("start = tomorrow\n", ":5: [campaign] start: 'tomorrow' is not a time like "
         "2026-12-10T09:00 (each customer's own time) or 2026-12-10T09:00:00Z (one instant)"),
        ("start = 2030-02-30T09:00\n", ":5: [campaign] start: '2030-02-30T09:00'"),
        ("start = 2030-01-10T09:00\n[trigger]\nevent = signup\n",
         ":5: [campaign] start: a campaign with a [trigger] starts with each event")]:
    path = write("bad.ini", "[campaign]\nid = bad\ntemplates = tpl\nchannels = email\n" + text)
    rc, out, err = herald("lint", path)
    t.ok(rc == 1 and (path + want) in err, "lint: " + want[2:70], err)

t.done()
