"""tests/core/serve.py: herald serve, the tracking server, on loopback.

- The List-Unsubscribe URL of a message herald run wrote: a GET shows a
  confirmation page and changes nothing (mail scanners follow links); the
  RFC 8058 one-click POST withdraws that customer's consent for that
  channel, once, and records an "unsubscribed" event for the campaign;
  another customer is untouched.
- Forged, truncated, re-spelled or foreign tokens get 404 and change
  nothing.
- Twilio callbacks at base_url/inbound/sms/...: a STOP reply signed with
  the auth token (X-Twilio-Signature computed here independently)
  withdraws SMS consent; START gives it back; a delivered status callback
  is recorded; a bad signature gets 403 and changes nothing.
- POST /events takes JSON lines with the bearer events_token, all or
  nothing: a bad line names its line and field and records nothing; no
  token or a wrong one gets 401; the scheme is case-insensitive
  ("bearer"); without events_token the API is off.
- /healthz answers 200 to any method, at once, whatever body follows.
- A body of exactly 64 KiB is taken; one byte more is 413.  A declared
  Content-Length of 200 MB gets 413 naming the limit before a byte of the
  body is sent, and a chunked body gets it as soon as it grows past the
  limit (the test sends 80 KiB and never ends the body).
- SIGTERM stops it; a missing secret or a bad listen address is refused
  with the file and line."""
import base64
import email
import glob
import hashlib
import hmac
from http.client import HTTPConnection
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import urllib.parse

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "http"))
from httptest import Tap, skip_all, free_port, PLUGIN_DIR, http, serve_start   # noqa: E402

HERALD = os.environ.get("HERALD", "")
if not os.access(HERALD, os.X_OK):
    skip_all("herald not built")
for so in ("outbox", "sms"):
    if not os.path.exists(os.path.join(PLUGIN_DIR, so + ".so")):
        skip_all("%s.so not built" % so)

t = Tap(time_limit=120)
tmp = tempfile.TemporaryDirectory(prefix="herald-serve.")
T = tmp.name
SID = "AC0123456789abcdef0123456789abcdef"
TOKEN = "tok-secret-0123"
SECRET = "serve-secret-0123456789abcdef"


PORT = free_port()
BASE = "http://127.0.0.1:%d" % PORT


EVTOKEN = "ev-token-0123456789abcdef"


def gateway(path, secret=SECRET, listen="127.0.0.1:%d" % PORT, events=True):
    with open(path, "w") as f:
        f.write("""[store]
path = %(T)s/herald.db
[plugins]
dir = %(plugdir)s
[tracking]
base_url = %(base)s
%(secret)slisten = %(listen)s
%(events)s[channel.email]
plugin = outbox
dir = %(T)s/out/email
from = Sender <sender@example.com>
[channel.sms]
plugin = sms
provider = twilio
base_url = http://127.0.0.1:9
account_sid = %(sid)s
auth_token = %(token)s
from = +15005550006
""" % {"T": T, "plugdir": PLUGIN_DIR, "base": BASE, "sid": SID, "token": TOKEN,
       "listen": listen, "secret": ("secret = %s\n" % secret) if secret else "",
       "events": ("events_token = %s\n" % EVTOKEN) if events else ""})


def herald(*args, ini="g.ini"):
    p = subprocess.run([HERALD, "-c", os.path.join(T, ini)] + list(args),
                       capture_output=True, timeout=60)
    return p.returncode, p.stdout.decode(), p.stderr.decode()


def raw(request, body_chunks=(), timeout=15):
    """Send REQUEST (bytes) on a fresh connection, then each of BODY_CHUNKS;
    return (everything the server answered until it closed or TIMEOUT,
    whether the server closed the connection)."""
    s = socket.create_connection(("127.0.0.1", PORT), timeout=timeout)
    got, closed = b"", False
    try:
        s.sendall(request)
        for c in body_chunks:
            s.sendall(c)
        while True:
            r = s.recv(65536)
            if not r:
                closed = True
                break
            got += r
    except socket.timeout:
        pass
    except OSError:
        closed = True
        try:
            got += s.recv(65536)
        except OSError:
            pass
    s.close()
    return got, closed


def serve(ini):
    """Start herald serve; it is up when /healthz answers."""
    return serve_start(HERALD, os.path.join(T, ini), BASE)


def consent(customer, channel):
    db = sqlite3.connect(os.path.join(T, "herald.db"))
    row = db.execute("SELECT granted FROM consent WHERE customer = ? AND channel = ?",
                     (customer, channel)).fetchone()
    db.close()
    return None if row is None else row[0]


def events(type_):
    db = sqlite3.connect(os.path.join(T, "herald.db"))
    rows = db.execute("SELECT customer, channel, campaign FROM events WHERE type = ? "
                      "ORDER BY customer", (type_,)).fetchall()
    db.close()
    return rows


def twilio_sig(url, body):
    params = urllib.parse.parse_qsl(body, keep_blank_values=True)
    data = url + "".join(k + v for k, v in sorted(params))
    return base64.b64encode(hmac.new(TOKEN.encode(), data.encode(), hashlib.sha1).digest()).decode()


gateway(os.path.join(T, "g.ini"))
os.makedirs(os.path.join(T, "tpl"))
for name, text in {"email.subject.liquid": "Hello {{ customer.id }}",
                   "email.text.liquid": "Hi {{ customer.id }}\n",
                   "sms.body.liquid": "Hi"}.items():
    with open(os.path.join(T, "tpl", name), "w") as f:
        f.write(text)
with open(os.path.join(T, "c.ini"), "w") as f:
    f.write("[campaign]\nid = news\ntemplates = tpl\nchannels = email\n")
with open(os.path.join(T, "c.jsonl"), "w") as f:
    for c in ("a", "b"):
        f.write(json.dumps({"id": c, "email": c + "@example.com", "phone": "+1500555019" + str(ord(c) % 10),
                            "consent": {"email": True, "sms": True}}) + "\n")
    # an id with a newline in it, like the token's separator
    f.write(json.dumps({"id": "x\ny", "email": "xy@example.com", "consent": {"email": True}}) + "\n")
rc, out, err = herald("customers", "import", os.path.join(T, "c.jsonl"))
t.ok(rc == 0, "customers imported", err)
rc, out, err = herald("run", os.path.join(T, "c.ini"))
t.ok(rc == 0, "campaign sent to the outbox", out + err)
links = {}
for path in glob.glob(os.path.join(T, "out", "email", "new", "*")):
    msg = email.message_from_binary_file(open(path, "rb"))
    to = msg["To"].split("@")[0].strip("<")
    links[to[-1]] = msg["List-Unsubscribe"].split("<")[1].split(">")[0]
t.ok(sorted(links) == ["a", "b", "y"] and all(u.startswith(BASE + "/u/") for u in links.values()),
     "each message carries its own unsubscribe link on base_url", links)

srv, up = serve("g.ini")
try:
    t.ok(up, "serve answers /healthz")

    # 1. The unsubscribe link.
    st, page = http("GET", links["a"])
    t.ok(st == 200 and 'method="post"' in page and "email" in page,
         "GET shows a confirmation form", page)
    t.eq(consent("a", "email"), None, "a GET changes nothing")
    st, page = http("POST", links["a"], b"List-Unsubscribe=One-Click",
                    {"Content-Type": "application/x-www-form-urlencoded"})
    t.ok(st == 200 and "will not receive email" in page, "the one-click POST answers 200", page)
    t.eq(consent("a", "email"), 0, "consent for e-mail withdrawn")
    t.eq(consent("a", "sms"), None, "the other channel untouched")
    t.eq(consent("b", "email"), None, "the other customer untouched")
    t.eq(events("unsubscribed"), [("a", "email", "news")], "an unsubscribed event for the campaign")
    st, _ = http("POST", links["a"], b"List-Unsubscribe=One-Click")
    t.eq(st, 200, "a second POST is fine too")
    rc, out, err = herald("preview", os.path.join(T, "c.ini"), "--customer", "a")
    t.ok("email: no consent" in out, "the next campaign skips a's e-mail", out + err)
    st, _ = http("POST", links["y"], b"List-Unsubscribe=One-Click")
    t.ok(st == 200 and consent("x\ny", "email") == 0,
         "a customer id holding a newline is unsubscribed as itself", st)

    # 2. Tokens that are not ours.
    tok = links["b"].rsplit("/", 1)[1]
    payload, mac = tok.split(".")
    flip = mac[:-2] + ("A" if mac[-2] != "A" else "B") + mac[-1]
    forged_payload = base64.urlsafe_b64encode(b"a\nnews\nsms").decode().rstrip("=")
    respelled = mac[:-1] + chr(ord(mac[-1]) + 1)     # same bits, other spelling
    bad = {"a changed MAC": payload + "." + flip,
           "another payload with b's MAC": forged_payload + "." + mac,
           "a truncated token": tok[:-4],
           "no MAC": payload,
           "a re-spelled MAC": payload + "." + respelled,
           "not base64": "%%%." + mac}
    codes = {}
    for what, token in bad.items():
        codes[what] = http("POST", BASE + "/u/" + urllib.parse.quote(token, safe="%."))[0]
    t.ok(all(c == 404 for c in codes.values()), "forged and mangled tokens get 404", codes)
    t.eq(consent("b", "email"), None, "and change nothing")
    t.eq(consent("a", "sms"), None, "not even with a's own payload")
    t.eq(http("GET", BASE + "/nowhere")[0], 404, "an unknown path is 404")
    # /healthz: 200 to any method, whatever body comes with it.
    codes = {m: http(m, BASE + "/healthz", b"x" if m in ("POST", "PUT", "PATCH") else None)
             for m in ("GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH", "TRACE", "BREW")}
    t.ok(all(v == (200, "" if m == "HEAD" else "ok\n") for m, v in codes.items()),
         "/healthz answers 200 to any method (HEAD without a body)", codes)
    hc = HTTPConnection("127.0.0.1", PORT, timeout=10)
    kept = []
    for m in ("GET", "HEAD", "DELETE", "GET"):
        hc.request(m, "/healthz")
        r = hc.getresponse()
        r.read()
        kept.append((m, r.status, r.will_close))
    hc.close()
    t.ok(all(st == 200 and not closes for _, st, closes in kept),
         "/healthz without a body keeps the connection alive", kept)
    got, _ = raw(b"POST /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 200000000\r\n\r\n")
    t.ok(got.startswith(b"HTTP/1.1 200 ") and got.endswith(b"\r\n\r\nok\n"),
         "/healthz: a POST announcing 200 MB gets 200 at once, before any body", got[:200])
    got, _ = raw(b"PUT /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n\r\n"
                 b"3\r\nabc\r\n")
    t.ok(got.startswith(b"HTTP/1.1 200 ") and got.endswith(b"ok\n"),
         "/healthz: a chunked body that never ends gets 200 at once", got[:200])

    # 3. Twilio callbacks, routed to the sms plugin.
    url = BASE + "/inbound/sms/reply"
    stop = open(os.path.join(os.environ.get("HERALD_SRCDIR", "."), "tests", "http", "fixtures",
                             "twilio-reply-stop.form")).read().strip()
    stop = stop.replace("%2B15005550199", urllib.parse.quote("+15005550197"))   # a's phone
    hdr = {"Content-Type": "application/x-www-form-urlencoded"}
    st, _ = http("POST", url, stop.encode(), dict(hdr, **{"X-Twilio-Signature": "AAAA"}))
    t.eq(st, 403, "a callback with a bad signature gets 403")
    t.eq(consent("a", "sms"), None, "and changes nothing")
    st, _ = http("POST", url, stop.encode(), dict(hdr, **{"X-Twilio-Signature": twilio_sig(url, stop)}))
    t.eq(st, 200, "a signed STOP reply gets 200")
    t.eq(consent("a", "sms"), 0, "STOP withdraws SMS consent for the customer with that number")
    t.eq(consent("b", "sms"), None, "nobody else's")
    start = stop.replace("Body=stop", "Body=START")
    st, _ = http("POST", url, start.encode(), dict(hdr, **{"X-Twilio-Signature": twilio_sig(url, start)}))
    t.ok(st == 200 and consent("a", "sms") == 1, "START gives it back", st)
    status = ("MessageSid=SM1&MessageStatus=delivered&To=%2B15005550198&From=%2B15005550006&"
              "AccountSid=" + SID)
    surl = BASE + "/inbound/sms/status"
    st, _ = http("POST", surl, status.encode(), dict(hdr, **{"X-Twilio-Signature": twilio_sig(surl, status)}))
    t.ok(st == 200 and ("b", "sms", None) in events("delivered"),
         "a delivered status callback (an id Herald never sent) is recorded for b, by number",
         (st, events("delivered")))
    # A message Herald sent, known to Twilio as SM77: its callback is the
    # message's (customer, campaign and key), whatever number it names.
    db = sqlite3.connect(os.path.join(T, "herald.db"))
    db.execute("INSERT INTO outbox (key, campaign, step, customer, channel, instance, state, "
               "created, updated, sent_at, provider_id) VALUES ('promo:1:a', 'promo', 1, 'a', "
               "'sms', 'sms', 'sent', 1, 1, 1, 'SM77')")
    db.commit()
    db.close()
    status = status.replace("SM1", "SM77").replace("delivered", "undelivered")
    st, _ = http("POST", surl, status.encode(), dict(hdr, **{"X-Twilio-Signature": twilio_sig(surl, status)}))
    db = sqlite3.connect(os.path.join(T, "herald.db"))
    got = db.execute("SELECT customer, channel, campaign, message_key FROM events "
                     "WHERE message_key = 'promo:1:a'").fetchall()
    db.close()
    t.ok(st == 200 and len(got) == 1 and got[0][:3] == ("a", "sms", "promo"),
         "a callback naming a message Herald sent (MessageSid) is that message's: customer a, "
         "campaign promo, its key", (st, got))
    t.eq(http("POST", BASE + "/inbound/nosuch/x", b"")[0], 404, "an unknown channel is 404")

    # 4. The events API.
    auth = {"Authorization": "Bearer " + EVTOKEN, "Content-Type": "application/x-ndjson"}
    good = (json.dumps({"customer": "b", "channel": "email", "type": "opened",
                        "at": "2026-11-01T10:00:00Z", "campaign": "news"}) + "\n" +
            json.dumps({"customer": "b", "channel": "email", "type": "converted",
                        "at": "2026-11-01T11:00:00Z"}) + "\n").encode()
    st, body = http("POST", BASE + "/events", good, auth)
    t.ok(st == 200 and body == "imported 2 events\n", "events API: two events imported", (st, body))
    t.eq(events("opened"), [("b", "email", "news")], "events API: the event is in the store")
    st, body = http("POST", BASE + "/events", good, auth)
    t.ok(st == 200 and "2 already recorded" in body, "events API: sent twice, recorded once", body)
    bad = (json.dumps({"customer": "a", "channel": "email", "type": "clicked",
                       "at": "2026-11-01T10:00:00Z"}) + "\n" +
           json.dumps({"customer": "a", "channel": "email", "type": "Liked",
                       "at": "2026-11-01T10:00:00Z"}) + "\n").encode()
    st, body = http("POST", BASE + "/events", bad, auth)
    t.ok(st == 400 and "events:2: type: 'Liked' is not an event type" in body
         and "nothing imported" in body, "events API: a bad line names line and field", body)
    t.eq(events("clicked"), [], "events API: and nothing of that request is recorded")
    st, _ = http("POST", BASE + "/events", good)
    t.eq(st, 401, "events API: no token, 401")
    st, _ = http("POST", BASE + "/events", good, {"Authorization": "Bearer " + EVTOKEN[:-1] + "x"})
    t.eq(st, 401, "events API: a wrong token, 401")
    # RFC 7235 section 2.1: the scheme is case-insensitive, then 1*SP.
    for spelled in ("bearer ", "BEARER ", "bEaReR ", "Bearer   "):
        st, body = http("POST", BASE + "/events", good, {"Authorization": spelled + EVTOKEN})
        t.ok(st == 200 and "already recorded" in body,
             "events API: the scheme spelled %r is accepted" % spelled, (st, body))
    for bad_auth in ("Bearer" + EVTOKEN, "Bearer", "Bearer ", "Basic " + EVTOKEN,
                     "Bearer " + EVTOKEN + "x", "Bearer x" + EVTOKEN, "Bearers " + EVTOKEN):
        st, _ = http("POST", BASE + "/events", good, {"Authorization": bad_auth})
        t.eq(st, 401, "events API: %r is 401" % bad_auth)
    t.eq(http("POST", BASE + "/inbound/email/x", b"")[0], 404, "a channel without callbacks is 404")

    # 5. Bodies over the limit (64 KiB).
    limit = 65536
    exact = good + b"\n" * (limit - len(good))      # blank lines are allowed
    st, body = http("POST", BASE + "/events", exact, auth)
    t.ok(st == 200 and "2 already recorded" in body, "events API: a body of exactly 64 KiB is taken",
         (st, body))
    st, body = http("POST", BASE + "/events", exact + b"\n", auth)
    t.ok(st == 413 and "65536 bytes (64 KiB)" in body,
         "events API: one byte more is 413, naming the limit", (st, body))
    head = ("POST /events HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer %s\r\n"
            "Content-Type: application/x-ndjson\r\n" % EVTOKEN).encode()
    got, closed = raw(head + b"Content-Length: 200000000\r\n\r\n")
    t.ok(got.startswith(b"HTTP/1.1 413 ") and b"the limit is 65536 bytes (64 KiB)" in got and closed,
         "Content-Length 200 MB: 413 naming the limit before any of the body, then closed", got[:300])
    got, closed = raw(head + b"Expect: 100-continue\r\nContent-Length: 200000000\r\n\r\n")
    t.ok(got.startswith(b"HTTP/1.1 413 ") and b"100 Continue" not in got,
         "with Expect: 100-continue, 413 instead of 100 Continue", got[:300])
    chunk = b"4000\r\n" + b"\n" * 0x4000 + b"\r\n"       # 16 KiB of blank lines
    got, closed = raw(head + b"Transfer-Encoding: chunked\r\n\r\n", [chunk] * 5)
    t.ok(got.startswith(b"HTTP/1.1 413 ") and b"the limit is 65536 bytes (64 KiB)" in got and closed,
         "a chunked body past the limit (80 KiB, never ended): 413 at once, then closed", got[:300])
    got, closed = raw(head + b"Transfer-Encoding: chunked\r\n\r\n", [chunk] * 3 + [b"0\r\n\r\n"])
    t.ok(got.startswith(b"HTTP/1.1 200 ") and b"imported 0 events" in got,
         "a chunked body under the limit is taken", got[:300])
    st, body = http("POST", BASE + "/events", good, auth)
    t.ok(st == 200 and "2 already recorded" in body, "and the server still takes events", (st, body))
finally:
    srv.send_signal(signal.SIGTERM)
    try:
        out, err = srv.communicate(timeout=10)
    except subprocess.TimeoutExpired:
        srv.kill()
        out, err = srv.communicate()
t.eq(srv.returncode, 0, "SIGTERM stops it, exit 0")
t.ok(b"stopped (SIGTERM)" in out, "and it says so", out + err)
t.ok(TOKEN.encode() not in out + err and SECRET.encode() not in out + err, "no secret printed")

# 6. Without events_token the events API is off.
gateway(os.path.join(T, "noevents.ini"), events=False)
srv, up = serve("noevents.ini")
try:
    st, body = http("POST", BASE + "/events", b"{}", {"Authorization": "Bearer " + EVTOKEN}) if up else (None, "")
    t.ok(st == 404 and "events_token" in body, "no events_token: /events is 404 and says why", st)
finally:
    srv.send_signal(signal.SIGTERM)
    srv.communicate(timeout=10)

# 7. Configuration problems, named with the file and line.
gateway(os.path.join(T, "nosecret.ini"), secret=None)
rc, out, err = herald("serve", ini="nosecret.ini")
t.ok(rc == 1 and "nosecret.ini:6: [tracking] base_url: needs [tracking] secret" in err,
     "no secret: refused (base_url needs it)", err)
gateway(os.path.join(T, "badlisten.ini"), listen="localhost:80x")
rc, out, err = herald("serve", ini="badlisten.ini")
t.ok(rc == 1 and "badlisten.ini:8: [tracking] listen: 'localhost:80x'" in err,
     "a bad listen address: file, line and key", err)
rc, out, err = herald("serve", "--bogus")
t.eq(rc, 2, "an unknown option is a usage error")

tmp.cleanup()
t.done()
