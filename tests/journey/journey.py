"""tests/journey/journey.py: triggered campaigns and follow-up steps, end to
end, in real time (delays of a few seconds): `herald serve CAMPAIGN.ini`
on loopback with two outbox channels (email, sms), events posted to
POST /events, what the plugins wrote read back from their messages.jsonl,
and the store read with Python's sqlite3.

- alice: cart_abandoned -> step 1 by e-mail (event.* in the templates,
  its link tracked) -> she clicks it -> step 2 is skipped by `unless`;
- bob: the same, but only a machine fetches his link (HEAD): step 2 goes
  out anyway, on the next channel (sms), from step 2's own templates;
- carol: cart_abandoned then order_placed before the delay: cancelled;
- dave: two cart_abandoned (reenter = no): one journey; the same event
  posted twice: recorded once;
- erin: enters, then serve is stopped (SIGTERM) between the steps and
  started again: step 2 still goes, once;
- frank: his event is answered 2xx, then serve is killed with SIGKILL at
  once: after a restart his message goes, once;
- a forged click token gets 404; the open pixel records opened;
- herald run refuses a triggered campaign; bad [trigger] and [step.N]
  keys and bad events get file, line and field."""
import json
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.parse

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "http"))
from httptest import Tap, skip_all, free_port, request, PLUGIN_DIR   # noqa: E402

HERALD = os.environ.get("HERALD", "")
if not os.access(HERALD, os.X_OK):
    skip_all("herald not built")
if not os.path.exists(os.path.join(PLUGIN_DIR, "outbox.so")):
    skip_all("outbox.so not built")

t = Tap(time_limit=150)
tmp = tempfile.TemporaryDirectory(prefix="herald-journey.")
T = tmp.name
PORT = free_port()
BASE = "http://127.0.0.1:%d" % PORT
TOKEN = "events-token-0123456789abcdef"
BROWSER = {"User-Agent": "Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0"}


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
base_url = %(base)s
secret = track-secret-0123456789abcdef
listen = 127.0.0.1:%(port)d
events_token = %(token)s
; the clicks here come a second after the send: people's, for this test
machine_window = 0
[channel.email]
plugin = outbox
dir = %(T)s/out-email
from = Shop <news@shop.example>
[channel.sms]
plugin = outbox
dir = %(T)s/out-sms
""" % {"T": T, "plugdir": PLUGIN_DIR, "base": BASE, "port": PORT, "token": TOKEN})

write("tpl/email.subject.liquid", "Still thinking about {{ event.item }}?")
write("tpl/email.html.liquid",
      "<html><body><p>{{ customer.name }}: {{ event.item }} ({{ event.type }} "
      "at {{ event.at }})</p><a href=\"https://shop.example/cart?c={{ customer.id }}\">"
      "your cart</a></body></html>")
write("tpl/sms.body.liquid", "{{ event.item }} is waiting")
write("tpl2/sms.body.liquid", "Last call for {{ event.item }}, {{ customer.name }}")
CAMPAIGN = write("cart.ini", """[campaign]
id = cart
templates = tpl
channels = email, sms

[trigger]
event = cart_abandoned
delay = 1s
cancel_on = order_placed, account_closed
reenter = no

[step.2]
after = 5s
unless = clicked, converted
channel = next
templates = tpl2
""")
customers = []
for name in ["alice", "bob", "carol", "dave", "erin", "frank"]:
    customers.append({"id": name, "email": name + "@example.com",
                      "phone": "+1555000%04d" % len(customers),
                      "consent": {"email": True, "sms": True},
                      "attributes": {"name": name.capitalize()}})
write("customers.jsonl", "".join(json.dumps(c) + "\n" for c in customers))


def herald(*args):
    p = subprocess.run([HERALD, "-c", GW] + list(args), capture_output=True, timeout=60)
    return p.returncode, p.stdout.decode(), p.stderr.decode()


def query(sql, *args):
    db = sqlite3.connect(os.path.join(T, "herald.db"))
    rows = db.execute(sql, args).fetchall()
    db.close()
    return rows


def messages(channel):
    path = os.path.join(T, "out-" + channel, "messages.jsonl")
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def by_id(channel):
    out = {}
    for m in messages(channel):
        out.setdefault(m["id"], []).append(m)
    return out


def iso(ts):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


def post(*events):
    body = "".join(json.dumps(e) + "\n" for e in events).encode()
    st, _, b = request("POST", BASE + "/events", body,
                       {"Authorization": "Bearer " + TOKEN,
                        "Content-Type": "application/x-ndjson"})
    return st, b


def event(customer, type_, at=None, **props):
    e = {"customer": customer, "type": type_, "at": iso(at if at else time.time())}
    if props:
        e["properties"] = props
    return e


class Serve:
    def __init__(self):
        self.p = subprocess.Popen([HERALD, "-c", GW, "serve", CAMPAIGN],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        end = time.monotonic() + 20
        self.up = False
        while time.monotonic() < end and self.p.poll() is None:
            try:
                st, _, body = request("GET", BASE + "/healthz")
                self.up = st == 200
                break
            except OSError:
                time.sleep(0.05)

    def stop(self, sig=signal.SIGTERM):
        self.p.send_signal(sig)
        try:
            out, err = self.p.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            self.p.kill()
            out, err = self.p.communicate()
        return self.p.returncode, out.decode(), err.decode()


def wait_for(cond, seconds):
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(0.1)
    return cond()


def timer(customer, step):
    r = query("SELECT state, reason FROM timers WHERE campaign = 'cart' "
              "AND customer = ? AND step = ?", customer, step)
    return r[0] if r else None


# ---- setup and refusals -------------------------------------------------
rc, out, err = herald("customers", "import", os.path.join(T, "customers.jsonl"))
t.eq(rc, 0, "customers imported")
rc, out, err = herald("lint", CAMPAIGN)
t.eq((rc, err), (0, ""), "the campaign lints")
rc, out, err = herald("run", CAMPAIGN)
t.ok(rc == 1 and "has a [trigger]: herald serve runs it for each 'cart_abandoned' event" in err,
     "herald run refuses a triggered campaign, naming herald serve", err)

# ---- the journeys --------------------------------------------------------
sv = Serve()
t.ok(sv.up, "herald serve with the campaign answers /healthz")
t0 = time.time()
st, b = post(event("alice", "cart_abandoned", item="red shoes"),
             event("bob", "cart_abandoned", item="blue hat"),
             event("carol", "cart_abandoned", item="green scarf"),
             event("dave", "cart_abandoned", item="socks"),
             event("erin", "cart_abandoned", item="gloves"))
t.eq((st, b), (200, b"imported 5 events\n"), "POST /events: five trigger events")
# carol orders before her delay is over: her entry is cancelled.
st, b = post(event("carol", "order_placed", order="A-1"))
t.eq(st, 200, "POST /events: carol's order_placed, a custom event without a channel")
# dave abandons again (reenter = no), and his first event comes again.
first_dave = query("SELECT at FROM events WHERE customer = 'dave'")[0][0]
st, b = post(event("dave", "cart_abandoned", at=first_dave + 1, item="more socks"),
             event("dave", "cart_abandoned", at=first_dave, item="socks"))
t.eq(st, 200, "POST /events: dave again, and his first event re-delivered")

# The plugin writes the message before the core records it as sent: wait
# for both.
t.ok(wait_for(lambda: len(messages("email")) >= 4 and query(
    "SELECT count(*) FROM outbox WHERE campaign = 'cart' AND step = 1 "
    "AND state = 'sent'")[0][0] >= 4, 8),
     "step 1 e-mails written and recorded as sent within seconds", messages("email"))
email = by_id("email")
t.eq(sorted(email), ["cart:1:alice:1", "cart:1:bob:1", "cart:1:dave:1", "cart:1:erin:1"],
     "step 1: one message per journey, keyed campaign:step:customer:instance; none for carol")
t.eq(timer("carol", 1), ("cancelled", "cancel_on: order_placed"),
     "carol's entry: cancelled by order_placed")
t.eq(query("SELECT count(*) FROM timers WHERE customer = 'dave' AND step = 1"), [(1,)],
     "dave: one journey (reenter = no), the repeated event recorded once")
t.eq(query("SELECT count(*) FROM events WHERE customer = 'dave' AND type = 'cart_abandoned'"),
     [(2,)], "dave's two distinct events are both recorded")
a = email["cart:1:alice:1"][0]
t.ok(a["parts"]["email.subject"].startswith("Still thinking about red shoes?"),
     "event.item in the subject", a["parts"]["email.subject"])
t.ok("Alice: red shoes (cart_abandoned at %s" % iso(query(
    "SELECT at FROM events WHERE customer = 'alice'")[0][0]) in a["parts"]["email.html"],
     "event.type and event.at (RFC 3339) in the body", a["parts"]["email.html"])
sent1 = query("SELECT sent_at FROM outbox WHERE key = 'cart:1:alice:1'")[0][0]
ent = query("SELECT at FROM events WHERE customer = 'alice' AND type = 'cart_abandoned'")[0][0]
t.ok(ent + 1 <= sent1 <= ent + 8, "step 1 sent 1 s (delay) after the event, not before (and within seconds)",
     (ent, sent1))


def link(msg):
    html = msg["parts"]["email.html"]
    i = html.index('href="') + 6
    return html[i:html.index('"', i)]


# alice clicks (a person); bob's link is only fetched by a scanner (HEAD).
st, h, _ = request("GET", link(a), headers=BROWSER)
t.eq((st, h.get("Location")), (302, "https://shop.example/cart?c=alice"),
     "alice's click: 302 to the link")
st, h, _ = request("HEAD", link(email["cart:1:bob:1"][0]), headers=BROWSER)
t.eq(st, 302, "bob's link fetched with HEAD (a scanner)")
t.eq(query("SELECT customer, machine FROM events WHERE type = 'clicked' ORDER BY customer"),
     [("alice", None), ("bob", "head")], "the clicks recorded, bob's as a machine's")
# A forged token: 404, no redirect, nothing recorded.
forged = link(a)[:-3] + ("AAA" if not link(a).endswith("AAA") else "BBB")
st, h, _ = request("GET", forged, headers=BROWSER)
t.ok(st == 404 and "Location" not in h, "a forged click token: 404 and no Location", (st, h))
# The open pixel.
html = email["cart:1:erin:1"][0]["parts"]["email.html"]
px = html[html.index('<img src="') + 10:]
px = px[:px.index('"')]
st, h, body = request("GET", px, headers=BROWSER)
t.ok(st == 200 and len(body) == 43 and h.get("Cache-Control") == "no-store",
     "the open pixel: a 43-byte GIF, no-store", (st, h, len(body)))
t.eq(query("SELECT count(*) FROM events WHERE customer = 'erin' AND type = 'opened' "
           "AND message_key = 'cart:1:erin:1'"), [(1,)], "the open recorded for erin's message")

# The timer queue in /metrics: the waiting follow-ups, in a scrape that
# promtool accepts.
st, _, body = request("GET", BASE + "/metrics")
gauges = dict(line.split(" ", 1) for line in body.decode().splitlines()
              if line.startswith(("herald_waiting_steps ", "herald_due_steps ")))
t.ok(st == 200 and 0 <= int(gauges.get("herald_waiting_steps", "-1")) <= 5
     and "herald_due_steps" in gauges, "/metrics: the timer queue's gauges", gauges)
if os.access("/usr/bin/promtool", os.X_OK):
    p = subprocess.run(["/usr/bin/promtool", "check", "metrics"], input=body,
                       capture_output=True, timeout=30)
    t.ok(p.returncode == 0, "/metrics with journeys: promtool check metrics",
         p.stdout.decode() + p.stderr.decode())

# erin: serve stops between her steps and starts again.
rc, out, err = sv.stop()
t.eq(rc, 0, "SIGTERM between the steps: exit 0")
t.ok("step 1 for alice (entry 1): email" in out, "serve logs each step it fires", out)
t.eq(timer("erin", 2)[0], "waiting", "erin's step 2 waits in the store while serve is down")
sv = Serve()
t.ok(sv.up, "serve started again")
t.ok(wait_for(lambda: len(messages("sms")) >= 3 and query(
    "SELECT count(*) FROM outbox WHERE campaign = 'cart' AND step = 2 "
    "AND state = 'sent'")[0][0] >= 3, 20), "step 2 messages after the restart",
     messages("sms"))
time.sleep(0.5)
sms = by_id("sms")
t.eq(sorted(sms), ["cart:2:bob:1", "cart:2:dave:1", "cart:2:erin:1"],
     "step 2: bob (a machine's click does not count), dave and erin; not alice (clicked)")
t.ok(all(len(v) == 1 for v in sms.values()), "each step 2 message written once",
     {k: len(v) for k, v in sms.items()})
t.eq(sms["cart:2:bob:1"][0]["parts"]["sms.body"].strip(), "Last call for blue hat, Bob",
     "step 2 on the next channel (sms), from step 2's templates, event.* kept")
t.eq(timer("alice", 2), ("exited", "unless: clicked"), "alice's step 2: exited by unless")
s2 = query("SELECT sent_at FROM outbox WHERE key = 'cart:2:bob:1'")[0][0]
s1 = query("SELECT sent_at FROM outbox WHERE key = 'cart:1:bob:1'")[0][0]
t.ok(s1 + 5 <= s2, "step 2 sent no sooner than 5 s (after) past step 1", (s1, s2))

# frank: answered 2xx, then SIGKILL at once.
st, b = post(event("frank", "cart_abandoned", item="hat"))
t.eq(st, 200, "frank's event answered 200")
sv.p.kill()
sv.p.communicate()
t.eq(query("SELECT count(*) FROM events WHERE customer = 'frank'"), [(1,)],
     "frank's event is in the store after SIGKILL")
sv = Serve()
t.ok(wait_for(lambda: "cart:1:frank:1" in by_id("email"), 8),
     "after the restart frank's step 1 goes out")
time.sleep(1.2)
t.eq(len(by_id("email").get("cart:1:frank:1", [])), 1, "once")
rc, out, err = sv.stop()
t.eq(rc, 0, "SIGTERM: exit 0")
t.eq(query("SELECT count(*) FROM outbox WHERE campaign = 'cart' AND state <> 'sent'"), [(0,)],
     "every message of the campaign is recorded sent")

# The report's funnel by step.
rc, out, err = herald("report", "cart", "--json")
steps = {x["step"]: x for x in json.loads(out)["steps"]} if rc == 0 else {}
t.eq({k: (v["entered"], v["sent"], v["cancelled"], v["engaged"]) for k, v in steps.items()
      if k == 1}, {1: (6, 5, 1, 2)},
     "report: step 1 entered by 6, 5 sent, 1 cancelled, 2 engaged (alice's click, erin's open)")
t.eq((steps.get(2, {}).get("sent"), steps.get(2, {}).get("exited")), (3, 1),
     "report: step 2 sent 3, 1 exited by unless")
rc, out, err = herald("report", "cart")
t.ok(rc == 0 and "Journey steps" in out and "EXITED" in out, "report: the steps in the text", out)

# ---- bad input ------------------------------------------------------------
bad = write("bad-events.jsonl",
            json.dumps(event("alice", "Cart Abandoned")) + "\n" +
            json.dumps(event("alice", "opened")) + "\n" +
            json.dumps(dict(event("alice", "cart_abandoned"), properties=[1])) + "\n")
rc, out, err = herald("events", "import", "--skip-bad", bad)
lines = err.splitlines()
t.ok(rc == 0 and len(lines) == 3, "three bad events", err)
t.ok(lines[0].startswith(bad + ":1: type: 'Cart Abandoned' is not an event type"),
     "a bad custom type: file, line and field", lines[0])
t.eq(lines[1], bad + ":2: channel: required for a 'opened' event (your own event types "
     "may leave it out)", "a standard type needs its channel")
t.ok(lines[2].startswith(bad + ":3: properties:"), "properties must be an object", lines[2])
for text, want in [
        ("[trigger]\nevent = cart_abandoned\ndelay = 31d\n",
         ":7: [trigger] delay: '31d' is not a duration from 0s to 30d"),
        ("[trigger]\nevent = Cart\n", ":6: [trigger] event: 'Cart' is not an event type"),
        ("[trigger]\ndelay = 1s\n", ":5: [trigger]: missing key 'event'"),
        ("[trigger]\nevent = x\nreenter = sometimes\n", ":7: [trigger] reenter: 'sometimes'"),
        ("[step.3]\nafter = 1d\n", ":1: [step.2]: missing (steps go 2, 3, ... without gaps)"),
        ("[step.2]\nafter = 1d\nunless = bounced\n",
         ":7: [step.2] unless: 'bounced' is not one of opened, clicked, converted, replied"),
        ("[step.2]\nafter = 1d\nchannel = fax\n",
         ":7: [step.2] channel: 'fax' is not same, next or one of the campaign's channels"),
        ("[step.2]\nunless = clicked\n", ":5: [step.2]: missing key 'after'"),
        ("[step.1]\nafter = 1d\n", ":5: [step.1]: a step is [step.N] with N from 2 to 99")]:
    path = write("bad.ini", "[campaign]\nid = bad\ntemplates = tpl\nchannels = email\n" + text)
    rc, out, err = herald("lint", path)
    t.ok(rc == 1 and (path + want) in err, "lint: " + want.split(": ", 1)[1][:60], err)

t.done()
