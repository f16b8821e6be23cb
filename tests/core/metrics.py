"""tests/core/metrics.py: herald serve's GET /metrics, end to end: a real
`herald run` through the outbox plugin, then `herald serve` on loopback.

- The body is the Prometheus text format 0.0.4 (its Content-Type says
  so) and passes `promtool check metrics` (skipped, saying so, when
  /usr/bin/promtool is missing).
- herald_messages equals the outbox counted by campaign, channel and
  state with Python's sqlite3; herald_due_messages and
  herald_due_oldest_age_seconds the due rows at HERALD_NOW;
  herald_events_total the events by type and origin.
- herald_http_requests_total moves after requests: a 404 click, an
  unsubscribe page, a path of no endpoint (other), an inbound callback,
  the previous scrape.  herald_plugin_errors_total counts the callbacks
  a plugin refused (4xx) or failed on (-1, 5xx), per channel, from 0.
- Label values escape backslash, double quote and line feed: the channel
  [channel.sms"x\\y] (campaign ids allow none of them; a row written
  straight into the store holds all three).
- Only GET and HEAD: POST is 405 with Allow.  With [tracking]
  metrics_token a request needs "Authorization: Bearer TOKEN" (401 and
  WWW-Authenticate without it); a token too short or with a space is a
  config error naming the file and line."""
import email
import glob
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "http"))
from httptest import (Tap, skip_all, free_port, request, serve_start,   # noqa: E402
                      serve_stop, PLUGIN_DIR, BUILDDIR)

HERALD = os.environ.get("HERALD", "")
if not os.access(HERALD, os.X_OK):
    skip_all("herald not built")
TESTPLUG = os.path.join(BUILDDIR, "tests", "plugins", ".libs", "testplug.so")
for so in (os.path.join(PLUGIN_DIR, "outbox.so"), os.path.join(PLUGIN_DIR, "sms.so"), TESTPLUG):
    if not os.path.exists(so):
        skip_all("%s not built" % so)
PROMTOOL = "/usr/bin/promtool"

t = Tap(time_limit=120)
tmp = tempfile.TemporaryDirectory(prefix="herald-metrics.")
T = tmp.name
SECRET = "metrics-secret-0123456789abcdef"
MTOKEN = "metrics-token-0123456789"
PORT = free_port()
BASE = "http://127.0.0.1:%d" % PORT
T0 = 1790000000
NOW = T0 + 100                 # the server's clock (HERALD_NOW)
ODD = 'sms"x\\y'               # a channel name with a quote and a backslash
ODD_CAMPAIGN = 'we"ird\\camp\nX'
BROWSER = {"User-Agent": "Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0"}
CTYPE = "text/plain; version=0.0.4; charset=utf-8"

os.makedirs(os.path.join(T, "plugins"))
for so in (os.path.join(PLUGIN_DIR, "outbox.so"), os.path.join(PLUGIN_DIR, "sms.so"), TESTPLUG):
    shutil.copy(so, os.path.join(T, "plugins", os.path.basename(so)))


def gateway(name, extra=""):
    path = os.path.join(T, name)
    with open(path, "w") as f:
        f.write("""[store]
path = %(T)s/herald.db
[plugins]
dir = %(T)s/plugins
[tracking]
base_url = %(base)s
secret = %(secret)s
listen = 127.0.0.1:%(port)d
%(extra)s
[channel.email]
plugin = outbox
dir = %(T)s/out
from = Shop <news@shop.example>
[channel.%(odd)s]
plugin = sms
kind = sms
provider = twilio
base_url = http://127.0.0.1:9
account_sid = AC0123456789abcdef0123456789abcdef
auth_token = tok-secret-0123
from = +15005550006
[channel.tp]
plugin = testplug
kind = webhook
""" % {"T": T, "base": BASE, "secret": SECRET, "port": PORT, "extra": extra, "odd": ODD})
    return path


def herald(ini, *args, now=T0):
    env = dict(os.environ, HERALD_NOW=str(now))
    p = subprocess.run([HERALD, "-c", ini] + list(args), capture_output=True, timeout=60, env=env)
    return p.returncode, p.stdout.decode(), p.stderr.decode()


def query(sql, *args):
    db = sqlite3.connect(os.path.join(T, "herald.db"))
    rows = db.execute(sql, args).fetchall()
    db.close()
    return rows


def skip(why):
    """One assertion that cannot be checked here, as TAP's SKIP."""
    t.n += 1
    t.out("ok %d # SKIP %s" % (t.n, why))


def parse(text):
    """The samples of an exposition: {(name, ((label, value), ...)): value},
    the label values unescaped.  Raises ValueError on what it cannot read."""
    out = {}
    for line in text.split("\n"):
        if not line or line.startswith("#"):
            continue
        i = 0
        while i < len(line) and line[i] not in "{ ":
            i += 1
        name, labels = line[:i], []
        if i < len(line) and line[i] == "{":
            i += 1
            while line[i] != "}":
                eq = line.index("=", i)
                lname = line[i:eq]
                if line[eq + 1] != '"':
                    raise ValueError(line)
                j, value = eq + 2, ""
                while line[j] != '"':
                    if line[j] == "\\":
                        value += {"\\": "\\", '"': '"', "n": "\n"}[line[j + 1]]
                        j += 2
                    else:
                        value += line[j]
                        j += 1
                labels.append((lname, value))
                i = j + 1
                if line[i] == ",":
                    i += 1
            i += 1
        out[(name, tuple(labels))] = float(line[i:].strip())
    return out


def family(samples, name):
    """{labels as a tuple of values: value} of one metric."""
    return {tuple(v for _, v in k[1]): v for k, v in samples.items() if k[0] == name}


def scrape(headers=None, method="GET"):
    st, hdr, body = request(method, BASE + "/metrics", headers=headers or {})
    return st, hdr, body.decode("utf-8")


# Customers: three with e-mail consent, one without (a skipped row).
os.makedirs(os.path.join(T, "tpl"))
for name, text in {"email.subject.liquid": "Hello",
                   "email.html.liquid": "<p>Hi {{ customer.id }} <a href=\"https://shop.example/\">shop</a></p>",
                   "email.text.liquid": "Hi {{ customer.id }}\n"}.items():
    with open(os.path.join(T, "tpl", name), "w") as f:
        f.write(text)
with open(os.path.join(T, "news.ini"), "w") as f:
    f.write("[campaign]\nid = news\ntemplates = tpl\nchannels = email\n")
with open(os.path.join(T, "c.jsonl"), "w") as f:
    for c in "abc":
        f.write(json.dumps({"id": c, "email": c + "@example.com", "consent": {"email": True}}) + "\n")
    f.write(json.dumps({"id": "d", "email": "d@example.com", "consent": {"email": False}}) + "\n")

G = gateway("g.ini")
rc, out, err = herald(G, "customers", "import", os.path.join(T, "c.jsonl"))
t.ok(rc == 0, "customers imported", err)
rc, out, err = herald(G, "run", os.path.join(T, "news.ini"))
t.ok(rc == 0, "herald run through the outbox", out + err)

# Work waiting (due at T0 + 50 and T0 + 80, one not yet), and a row whose
# campaign holds the three characters a label value escapes: written
# straight into the store, as no campaign file allows them.
db = sqlite3.connect(os.path.join(T, "herald.db"))
for key, campaign, customer, channel, state, next_at in [
        ("news:2:a", "news", "a", "email", "pending", T0 + 50),
        ("news:2:b", "news", "b", "email", "retry", T0 + 80),
        ("news:2:c", "news", "c", "email", "deferred", T0 + 500),
        ("odd:1:a", ODD_CAMPAIGN, "a", "sms", "failed", 0)]:
    db.execute("INSERT INTO outbox (key, campaign, step, customer, channel, state, next_at, "
               "created, updated) VALUES (?, ?, 1, ?, ?, ?, ?, ?, ?)",
               (key, campaign, customer, channel, state, next_at, T0, T0))
db.commit()
db.close()

unsub = pixel = None
for path in glob.glob(os.path.join(T, "out", "new", "*")):
    with open(path, "rb") as f:
        msg = email.message_from_binary_file(f)
    if msg["To"].startswith("a@") or "<a@" in msg["To"]:
        unsub = msg["List-Unsubscribe"].split("<")[1].split(">")[0]
        for part in msg.walk():
            if part.get_content_type() == "text/html":
                html = part.get_payload(decode=True).decode()
                pixel = html.split('<img src="')[-1].split('"')[0]
t.ok(unsub and unsub.startswith(BASE + "/u/") and pixel and pixel.startswith(BASE + "/o/"),
     "a's e-mail: its unsubscribe link and open pixel", (unsub, pixel))


def store_messages():
    return {(c, ch or "", s): float(n) for c, ch, s, n in query(
        "SELECT campaign, channel, state, count(*) FROM outbox GROUP BY 1, 2, 3")}


def store_events():
    return {(ty, "machine" if m else "human"): float(n) for ty, m, n in query(
        "SELECT type, machine IS NOT NULL, count(*) FROM events GROUP BY 1, 2")}


env = dict(os.environ, HERALD_NOW=str(NOW))
srv, up = serve_start(HERALD, G, BASE, env=env)
try:
    t.ok(up, "serve is up")

    # 1. The first scrape: the format, promtool, the store's numbers.
    st, hdr, body = scrape()
    t.ok(st == 200 and hdr["Content-Type"] == CTYPE and hdr["Cache-Control"] == "no-store",
         "GET /metrics: 200, " + CTYPE + ", no-store", (st, dict(hdr)))
    if os.access(PROMTOOL, os.X_OK):
        p = subprocess.run([PROMTOOL, "check", "metrics"], input=body.encode(),
                           capture_output=True, timeout=30)
        t.ok(p.returncode == 0 and not p.stdout.strip() and not p.stderr.strip(),
             "promtool check metrics: no problem", p.stdout.decode() + p.stderr.decode() + body)
    else:
        skip("promtool check metrics: %s is missing (Debian package prometheus)" % PROMTOOL)
    try:
        s = parse(body)
    except (ValueError, IndexError, KeyError) as e:
        s = {}
        t.ok(False, "the body parses", "%r\n%s" % (e, body))
    msgs = family(s, "herald_messages")
    t.eq(msgs, store_messages(), "herald_messages: the outbox by campaign, channel and state, "
         "as sqlite3 counts it")
    t.ok(msgs.get(("news", "email", "sent")) == 3 and msgs.get(("news", "", "skipped")) == 1,
         "three sent, one skipped (no consent) with no channel", msgs)
    t.eq((family(s, "herald_due_messages"), family(s, "herald_due_oldest_age_seconds")),
         ({(): 2.0}, {(): 50.0}),
         "due: the pending and the retry row (not the deferred one due later); the oldest "
         "due for 50 s")
    t.eq(family(s, "herald_events_total"), store_events(),
         "herald_events_total: the events by type and origin, as sqlite3 counts them")
    t.eq(family(s, "herald_start_time_seconds"), {(): float(NOW)}, "the start time")
    t.eq(family(s, "herald_http_requests_total"), {("healthz", "200"): 1.0},
         "requests so far: serve_start's /healthz")
    t.eq(family(s, "herald_plugin_errors_total"),
         {(ODD, "refused"): 0.0, (ODD, "failed"): 0.0, ("tp", "refused"): 0.0,
          ("tp", "failed"): 0.0},
         "plugin errors: every channel that takes callbacks, at 0 (not email: the "
         "outbox takes none)")

    # 2. Requests move the counters.
    st, _, _ = request("GET", BASE + "/c/not-a-token", headers=BROWSER)
    t.eq(st, 404, "a click with a bad token: 404")
    st, _, _ = request("GET", unsub, headers=BROWSER)
    t.eq(st, 200, "the unsubscribe page: 200")
    st, _, _ = request("GET", pixel, headers=BROWSER)
    t.eq(st, 200, "the open pixel: 200")
    st, _, _ = request("GET", BASE + "/no/such/path?x=1")
    t.eq(st, 404, "a path of no endpoint: 404")
    st, _, _ = request("POST", BASE + "/inbound/sms%22x%5Cy/status", b"MessageSid=SM1",
                       {"Content-Type": "application/x-www-form-urlencoded"})
    t.eq(st, 403, "a callback to [channel.%s] without Twilio's signature: 403" % ODD)
    got = {}
    for path in ("refuse", "crash", "fail", "ok", "fail"):
        got[path] = request("POST", BASE + "/inbound/tp/" + path, b"x")[0]
    t.eq(got, {"refuse": 400, "crash": 500, "fail": 500, "ok": 200},
         "testplug's callbacks: refused 400, a 500 of its own, a failure (500), one taken")
    st, hdr, body = scrape()
    s = parse(body)
    t.eq(family(s, "herald_http_requests_total"),
         {("healthz", "200"): 1.0, ("metrics", "200"): 1.0, ("click", "404"): 1.0,
          ("unsubscribe", "200"): 1.0, ("open", "200"): 1.0, ("other", "404"): 1.0,
          ("inbound", "403"): 1.0, ("inbound", "400"): 1.0, ("inbound", "500"): 3.0,
          ("inbound", "200"): 1.0},
         "requests by endpoint and code, the previous scrape included, no path in a label")
    t.eq(family(s, "herald_plugin_errors_total"),
         {(ODD, "refused"): 1.0, (ODD, "failed"): 0.0, ("tp", "refused"): 1.0,
          ("tp", "failed"): 3.0},
         "plugin errors: the 403 and the 400 refused; the 500 and the two failures failed")
    t.eq(family(s, "herald_events_total"), store_events(),
         "herald_events_total follows the store (the open just recorded)")
    t.ok(store_events().get(("opened", "human")) == 1.0, "the open counts as a person's",
         store_events())
    t.ok('herald_plugin_errors_total{channel="sms\\"x\\\\y",reason="refused"} 1\n' in body,
         'the channel sms"x\\y escaped as sms\\"x\\\\y', body)
    t.ok('herald_messages{campaign="we\\"ird\\\\camp\\nX",channel="sms",state="failed"} 1\n'
         in body, "a campaign with a quote, a backslash and a line feed escaped", body)
    if os.access(PROMTOOL, os.X_OK):
        p = subprocess.run([PROMTOOL, "check", "metrics"], input=body.encode(),
                           capture_output=True, timeout=30)
        t.ok(p.returncode == 0, "promtool again, with every family holding series",
             p.stdout.decode() + p.stderr.decode())
    else:
        skip("promtool check metrics again: %s is missing" % PROMTOOL)

    # 3. Methods.
    st, hdr, body = scrape(method="HEAD")
    t.ok(st == 200 and hdr["Content-Type"] == CTYPE and body == "",
         "HEAD: 200, the content type, no body", (st, dict(hdr), body[:100]))
    for m in ("POST", "PUT", "DELETE"):
        st, hdr, _ = scrape(method=m)
        t.ok(st == 405 and hdr["Allow"] == "GET, HEAD", "%s: 405, Allow: GET, HEAD" % m,
             (st, dict(hdr)))
    st, _, _ = request("GET", BASE + "/metrics/")
    t.eq(st, 404, "/metrics/ is no endpoint: 404")
finally:
    rc, out, err = serve_stop(srv)
t.eq(rc, 0, "serve stops on SIGTERM")

# 4. metrics_token.
GT = gateway("gt.ini", "metrics_token = " + MTOKEN)
srv, up = serve_start(HERALD, GT, BASE, env=env)
try:
    t.ok(up, "serve with metrics_token")
    st, hdr, body = scrape()
    t.ok(st == 401 and hdr["WWW-Authenticate"] == "Bearer" and "herald_" not in body,
         "no token: 401, WWW-Authenticate: Bearer, no metrics", (st, dict(hdr), body))
    st, _, body = scrape({"Authorization": "Bearer " + MTOKEN + "x"})
    t.ok(st == 401 and "herald_" not in body, "a wrong token: 401", st)
    st, _, body = scrape({"Authorization": "Basic " + MTOKEN})
    t.eq(st, 401, "another scheme: 401")
    st, hdr, body = scrape({"Authorization": "Bearer " + MTOKEN})
    t.ok(st == 200 and hdr["Content-Type"] == CTYPE and "herald_messages{" in body,
         "the token: 200 and the metrics", (st, body[:200]))
    st, _, _ = scrape({"Authorization": "bearer  " + MTOKEN})
    t.eq(st, 200, "the scheme in any case, more than one space")
    st, _, _ = scrape({"Authorization": "Bearer " + MTOKEN}, method="POST")
    t.eq(st, 405, "POST with the token: still 405")
    st, _, body = scrape({"Authorization": "Bearer " + MTOKEN})
    t.eq(family(parse(body), "herald_http_requests_total"),
         {("healthz", "200"): 1.0, ("metrics", "401"): 3.0, ("metrics", "200"): 2.0,
          ("metrics", "405"): 1.0},
         "refused scrapes are counted too, in a new process from 0")
finally:
    serve_stop(srv)

# 5. A bad metrics_token is a config error naming the file and line.
for name, value, why in [("short.ini", "short-token", "too short (at least 16 characters)"),
                         ("space.ini", "a-token with-a-space-in-it",
                          "only visible ASCII characters, no spaces")]:
    path = gateway(name, "metrics_token = " + value)
    with open(path) as f:
        line = 1 + f.read().split("\n").index("metrics_token = " + value)
    rc, out, err = herald(path, "serve")
    want = "%s:%d: [tracking] metrics_token: %s" % (path, line, why)
    t.ok(rc != 0 and want in err, "metrics_token = %s: %s" % (value, want), (rc, err))

tmp.cleanup()
t.done()
