"""tests/track/sms-links.py: the short links of SMS ([channel.NAME]
track_links = yes), end to end: a real `herald run` through the outbox
plugin on an sms channel, then `herald serve` on loopback.

- Each http(s) URL of the rendered sms.body becomes BASE/s/TOKEN; the
  rest of the body is unchanged (trailing punctuation kept outside, the
  unsubscribe URL kept).  The store's links table holds the message key
  and the original URL under the token's id, and each TOKEN is checked
  here with an HMAC of our own (the format token.h documents): the id in
  as few big-endian bytes as it takes, then 8 bytes of HMAC-SHA256 with
  the tracking key over "s", the id as 8 bytes, the key, NUL, the URL.
- The segment count, GSM-7 counted here as 3GPP TS 23.038 says: a typical
  1-segment message of about 100 characters with one link stays within 2
  segments (printed as a TAP comment, with what a full /c/ click token
  would have cost).
- A click answers 302 with Location exactly the original URL and records
  a clicked event on channel sms, with the URL, for the message; forged,
  truncated, altered, unknown-id, other-URL and wrong-kind tokens get 404,
  no Location, and record nothing.  A HEAD click is a machine's.  A store
  that cannot be read gets 503, no Location.
- preview shows short links and records nothing; a channel without
  track_links keeps its URLs.
- A link the store cannot record (HERALD_STORE_FAULT): that customer is
  not planned, the run exits 1 naming the template and quoting the
  store, and the next run plans them.
Time is HERALD_NOW: the run at T0, the server at T0 + 100."""
import base64
import hashlib
import hmac
import json
import os
import sqlite3
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "http"))
from httptest import (Tap, skip_all, free_port, request, serve_start,   # noqa: E402
                      serve_stop, PLUGIN_DIR)

HERALD = os.environ.get("HERALD", "")
if not os.access(HERALD, os.X_OK):
    skip_all("herald not built")
if not os.path.exists(os.path.join(PLUGIN_DIR, "outbox.so")):
    skip_all("outbox.so not built")

t = Tap(time_limit=120)
tmp = tempfile.TemporaryDirectory(prefix="herald-smslinks.")
T = tmp.name
SECRET = "sms-secret-0123456789abcdef"
PORT = free_port()
BASE = "http://127.0.0.1:%d" % PORT
T0 = 1790000000
BROWSER = {"User-Agent": "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 "
                         "(KHTML, like Gecko) Chrome/120.0 Mobile Safari/537.36"}
TRACK_KEY = hmac.new(SECRET.encode(), b"herald tracking links v1", hashlib.sha256).digest()

# GSM 7-bit default alphabet and its extension table (TS 23.038 6.2.1).
GSM_BASIC = ("@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
             "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà")
GSM_EXT = "\f^{}\\[~]|€"


def segments(text):
    """(segments, encoding) as a handset sees TEXT: 160 septets in one
    GSM-7 segment, else 153 per segment; 70 UTF-16 units in UCS-2, else
    67; an escape or surrogate pair never split across two."""
    if all(c in GSM_BASIC or c in GSM_EXT for c in text):
        units, one, per = [2 if c in GSM_EXT else 1 for c in text], 160, 153
        enc = "GSM-7"
    else:
        units, one, per = [2 if ord(c) > 0xffff else 1 for c in text], 70, 67
        enc = "UCS-2"
    if sum(units) <= one:
        return 1, enc
    segs, fill = 1, 0
    for u in units:
        if fill + u > per:
            segs, fill = segs + 1, 0
        fill += u
    return segs, enc


def b64e(b):
    return base64.urlsafe_b64encode(b).decode().rstrip("=")


def short_token(link_id, key, url):
    """The short token of link LINK_ID of message KEY to URL, as token.h says."""
    mac = hmac.new(TRACK_KEY, b"s" + link_id.to_bytes(8, "big") + key.encode() + b"\0"
                   + url.encode(), hashlib.sha256).digest()[:8]
    return b64e(link_id.to_bytes((link_id.bit_length() + 7) // 8, "big") + mac)


def click_token(key, url):
    """A full /c/ click token, for the comparison of lengths."""
    p = b"c" + key.encode() + b"\0" + url.encode()
    return b64e(p) + "." + b64e(hmac.new(TRACK_KEY, p, hashlib.sha256).digest()[:16])


def gateway(name, track_links=True):
    path = os.path.join(T, name)
    with open(path, "w") as f:
        f.write("""[store]
path = %(T)s/herald.db
[plugins]
dir = %(plugdir)s
[channel.sms]
plugin = outbox
dir = %(T)s/out-%(name)s
%(track)s
[tracking]
base_url = %(base)s
secret = %(secret)s
listen = 127.0.0.1:%(port)d
""" % {"T": T, "plugdir": PLUGIN_DIR, "base": BASE, "secret": SECRET, "port": PORT,
       "name": name, "track": "track_links = yes" if track_links else ""})
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


def sms_bodies(outdir, campaign):
    """customer id -> sms.body of CAMPAIGN, from the outbox's messages.jsonl."""
    got = {}
    with open(os.path.join(T, outdir, "messages.jsonl")) as f:
        for line in f:
            m = json.loads(line)
            if m["campaign"] == campaign:
                got[m["customer"]] = m["parts"]["sms.body"]
    return got


# A typical promotional SMS of one segment with one link, and one with two
# links, trailing punctuation and the unsubscribe link.
SPRING_URL = "https://shop.example.com/spring?utm_source=sms&c=%s"
SPRING = ("Hi {{ customer.id }}! Spring sale: 25% off everything until Sunday. Shop: "
          + SPRING_URL % "{{ customer.id }}")
MULTI = ("New in: https://shop.example.com/new. Stores: (https://shop.example.com/stores) "
         "Stop: {{ unsubscribe_url }}")
for d, body in (("tpl-spring", SPRING), ("tpl-multi", MULTI)):
    os.makedirs(os.path.join(T, d))
    with open(os.path.join(T, d, "sms.body.liquid"), "w") as f:
        f.write(body)
for cid, d in (("spring", "tpl-spring"), ("multi", "tpl-multi")):
    with open(os.path.join(T, cid + ".ini"), "w") as f:
        f.write("[campaign]\nid = %s\ntemplates = %s\nchannels = sms\n" % (cid, d))
CUSTOMERS = ["a", "b", "c", "d"]
with open(os.path.join(T, "c.jsonl"), "w") as f:
    for i, c in enumerate(CUSTOMERS):
        f.write(json.dumps({"id": c, "phone": "+3361234567%d" % i, "consent": {"sms": True}}) + "\n")

G = gateway("g.ini")
rc, out, err = herald(G, "customers", "import", os.path.join(T, "c.jsonl"))
t.ok(rc == 0, "customers imported", err)

# 1. preview shows the short links and records nothing; a dry run neither.
rc, out, err = herald(G, "preview", os.path.join(T, "spring.ini"), "--customer", "a")
body = out.split("--- sms.body ---\n")[-1].rstrip("\n")
t.ok(rc == 0 and body.startswith("Hi a! Spring sale") and BASE + "/s/" in body
     and "shop.example.com" not in body, "preview shows the short link", out + err)
rc, out2, err = herald(G, "run", os.path.join(T, "spring.ini"), "--dry-run")
t.ok(rc == 0 and query("SELECT count(*) FROM links") == [(0,)]
     and query("SELECT count(*) FROM outbox") == [(0,)],
     "preview and a dry run record no link and no message", out2 + err)

# 2. The run.
rc, out, err = herald(G, "run", os.path.join(T, "spring.ini"))
t.ok(rc == 0 and "4 customers planned" in out, "herald run through the outbox, kind sms", out + err)
rc, out, err = herald(G, "run", os.path.join(T, "multi.ini"))
t.ok(rc == 0, "a second campaign, two links and the unsubscribe link", out + err)
sms = sms_bodies("out-g.ini", "spring")
t.eq(sorted(sms), CUSTOMERS, "one SMS per customer")
links = {(k, u): i for i, k, u in query("SELECT id, message_key, url FROM links")}

bad = []
short = {}                     # customer -> the short link of the spring SMS
for c in CUSTOMERS:
    key, url = "spring:1:" + c, SPRING_URL % c
    lid = links.get((key, url))
    want = ("Hi %s! Spring sale: 25%% off everything until Sunday. Shop: %s/s/%s"
            % (c, BASE, short_token(lid, key, url)) if lid else None)
    if sms[c] != want:
        bad.append((c, sms[c], want))
    short[c] = BASE + "/s/" + short_token(lid, key, url) if lid else ""
t.ok(not bad, "each URL became BASE/s/TOKEN: the link's id in the links table with its "
     "message key and the original URL, and 8 bytes of MAC over them", bad[:2])
t.ok(all(len(s) - len(BASE + "/s/") == 12 for s in short.values()),
     "a token of a link id under 256 is 12 characters", short)

# 3. What it costs in segments.
orig = SPRING.replace("{{ customer.id }}", "a")
o_seg, o_enc = segments(orig)
s_seg, s_enc = segments(sms["a"])
full = orig.replace(SPRING_URL % "a", BASE + "/c/" + click_token("spring:1:a", SPRING_URL % "a"))
f_seg, _ = segments(full)
# The same behind a typical public base_url, with a link id of a busy
# store (4 bytes: a 16-character token).
PUBLIC = "https://go.shop-example.com/t"
prod = sms["a"].replace(BASE, PUBLIC).rsplit("/", 1)[0] + "/" + short_token(
    123456789, "spring:1:a", SPRING_URL % "a")
p_seg, _ = segments(prod)
t.out("# segments: the original, %d characters: %d %s; with its short link, %d characters: "
      "%d %s; behind %s with link id 123456789, %d characters: %d; with a full /c/ click "
      "token instead, %d characters: %d"
      % (len(orig), o_seg, o_enc, len(sms["a"]), s_seg, s_enc, PUBLIC, len(prod), p_seg,
         len(full), f_seg))
t.ok(95 <= len(orig) <= 110 and o_seg == 1 and o_enc == "GSM-7",
     "the original is one GSM-7 segment of about 100 characters (%d)" % len(orig))
t.ok(s_seg <= 2 and p_seg <= 2 and s_enc == "GSM-7",
     "with its short link: %d GSM-7 segment(s) (%d characters), %d behind a public base_url "
     "(%d): at most 2" % (s_seg, len(sms["a"]), p_seg, len(prod)))
t.ok(len(full) > len(prod) + 60,
     "a full click token would cost %d characters more" % (len(full) - len(sms["a"])))
mbody = sms_bodies("out-g.ini", "multi")["a"]
k = "multi:1:a"
want_new = BASE + "/s/" + short_token(links[(k, "https://shop.example.com/new")], k,
                                      "https://shop.example.com/new")
want_st = BASE + "/s/" + short_token(links[(k, "https://shop.example.com/stores")], k,
                                     "https://shop.example.com/stores")
t.ok(mbody.startswith("New in: %s. Stores: (%s) Stop: %s/u/" % (want_new, want_st, BASE)),
     "two links, the sentence's period and the parenthesis kept outside, the unsubscribe "
     "link kept", mbody)
t.eq(query("SELECT count(*) FROM links"), [(12,)],
     "twelve links recorded: one per spring SMS, two per multi SMS")

# 4. A channel without track_links keeps its URLs.
G2 = gateway("g2.ini", track_links=False)
with open(os.path.join(T, "plain.ini"), "w") as f:
    f.write("[campaign]\nid = plain\ntemplates = tpl-spring\nchannels = sms\n")
rc, out, err = herald(G2, "run", os.path.join(T, "plain.ini"))
t.ok(rc == 0 and sms_bodies("out-g2.ini", "plain")["a"] == SPRING.replace("{{ customer.id }}", "a")
     and query("SELECT count(*) FROM links") == [(12,)],
     "without track_links the body keeps its URL and no link is recorded", out + err)


def clicks():
    return query("SELECT customer, channel, campaign, message_key, detail, machine FROM events "
                 "WHERE type = 'clicked' ORDER BY id")


def detail(url):
    return json.dumps({"url": url}, separators=(",", ":"))


srv, up = serve_start(HERALD, G, BASE, env=dict(os.environ, HERALD_NOW=str(T0 + 100)))
try:
    t.ok(up, "serve is up")

    # 5. A click.
    st, hdr, _ = request("GET", short["a"], headers=BROWSER)
    t.ok(st == 302 and hdr["Location"] == SPRING_URL % "a" and hdr["Cache-Control"] == "no-store",
         "a click on the short link: 302 to the exact original URL, no-store", (st, dict(hdr)))
    t.eq(clicks(), [("a", "sms", "spring", "spring:1:a", detail(SPRING_URL % "a"), None)],
         "a clicked event on channel sms for the message, with the URL, a person's")
    st, hdr, _ = request("GET", want_st, headers=BROWSER)
    t.ok(st == 302 and hdr["Location"] == "https://shop.example.com/stores",
         "the second link of a message goes to its own URL", (st, dict(hdr)))

    # 6. Tokens that are not ours.
    tok = short["b"][len(BASE + "/s/"):]
    lid_b = links[("spring:1:b", SPRING_URL % "b")]
    n_before = len(query("SELECT * FROM events"))
    forged = {
        "a changed last character": tok[:-1] + ("A" if tok[-1] != "A" else "B"),
        "a changed first character": ("B" if tok[0] != "B" else "C") + tok[1:],
        "a truncated token": tok[:-1],
        "an extended token": tok + "A",
        "the right key for an unknown id": short_token(999999, "spring:1:b", SPRING_URL % "b"),
        "b's id signed for another URL": short_token(lid_b, "spring:1:b", "https://evil.example/"),
        "b's id signed for another message": short_token(lid_b, "spring:1:a", SPRING_URL % "b"),
        "a click token at /s/": click_token("spring:1:b", SPRING_URL % "b"),
        "not base64": "%%%",
        "empty": "",
    }
    got = {}
    for what, tk in forged.items():
        st, hdr, _ = request("GET", BASE + "/s/" + tk, headers=BROWSER)
        got[what] = (st, hdr.get("Location"))
    st, hdr, _ = request("GET", BASE + "/c/" + tok, headers=BROWSER)
    got["a short token at /c/"] = (st, hdr.get("Location"))
    t.ok(all(v == (404, None) for v in got.values()),
         "forged, truncated, altered, unknown and wrong-kind tokens: 404 and no Location", got)
    t.eq(len(query("SELECT * FROM events")), n_before, "and nothing recorded")
    st, hdr, _ = request("POST", short["b"], b"", BROWSER)
    t.ok(st == 405 and "Location" not in hdr, "a POST to a short link: 405, no Location", st)

    # 7. Machines, as for /c/.
    st, hdr, _ = request("HEAD", short["c"], headers=BROWSER)
    t.ok(st == 302 and hdr["Location"] == SPRING_URL % "c", "a HEAD click answers like a GET", st)
    st, _, _ = request("GET", short["d"], headers={"User-Agent": "WhatsApp/2.23.20.0"})
    t.eq(st, 302, "a link-preview fetcher's click is redirected too")
    t.eq([(r[0], r[1], r[5]) for r in clicks()][-2:], [("c", "sms", "head"), ("d", "sms", "agent")],
         "a HEAD click and a preview fetcher's are machines'")

    # 8. A store that cannot answer: 503, never a redirect.
    db = sqlite3.connect(os.path.join(T, "herald.db"))
    db.execute("ALTER TABLE links RENAME TO links_away")
    db.commit()
    st, hdr, body = request("GET", short["b"], headers=BROWSER)
    t.ok(st == 503 and "Location" not in hdr and hdr.get("Retry-After"),
         "the links table unreadable: 503 with Retry-After, no Location", (st, dict(hdr), body))
    db.execute("ALTER TABLE links_away RENAME TO links")
    db.commit()
    db.close()
    st, hdr, _ = request("GET", short["b"], headers=BROWSER)
    t.ok(st == 302 and hdr["Location"] == SPRING_URL % "b", "and the link works again", st)
finally:
    rc, out, err = serve_stop(srv)
t.eq(rc, 0, "serve stops on SIGTERM")

# 9. The report counts the SMS clicks, the machines' apart.
rc, out, err = herald(G, "report", "spring", "--json")
r = json.loads(out) if rc == 0 else {}
g = (r.get("groups") or [{}])[0]
t.ok(g.get("channel") == "sms" and g.get("sent") == 4
     and g["engagement"]["clicked"]["messages"] == 2
     and g.get("machine", {}).get("clicked", {}).get("messages") == 2,
     "report: 2 of 4 SMS clicked by people, 2 by machines", json.dumps(g))

# 10. A short link the store cannot record: that customer is not planned
# (no message, no link), the run fails, and the line says which template
# and what the store said.  HERALD_STORE_FAULT=N fails the Nth statement;
# each N starts from the same store, so the sweep meets every statement of
# the run, customer a's link among them.
with open(os.path.join(T, "faulty.ini"), "w") as f:
    f.write("[campaign]\nid = faulty\ntemplates = tpl-spring\nchannels = sms\n")


def copy_db(src, dst):
    a, b = sqlite3.connect(src), sqlite3.connect(dst)
    a.backup(b)
    a.close()
    b.close()


DB, PRISTINE = os.path.join(T, "herald.db"), os.path.join(T, "pristine.db")
copy_db(DB, PRISTINE)
found = None
for n in range(1, 80):
    copy_db(PRISTINE, DB)
    env = dict(os.environ, HERALD_NOW=str(T0), HERALD_STORE_FAULT=str(n))
    p = subprocess.run([HERALD, "-c", G, "run", os.path.join(T, "faulty.ini")],
                       capture_output=True, timeout=60, env=env)
    if b"cannot record its short links" in p.stderr:
        found = (n, p.returncode, p.stderr.decode())
        break
n, rc, err = found or (0, 0, "")
want = ("herald: customer a: %s/tpl-spring/sms.body.liquid: cannot record its short links: "
        "%s: injected fault (HERALD_STORE_FAULT, statement %d) (not planned: run again)"
        % (T, DB, n))
t.ok(found and rc == 1 and want in err.splitlines(),
     "a link the store cannot record: the template and the store's words, exit 1",
     (n, rc, err))
t.eq(query("SELECT count(*) FROM outbox WHERE key = 'faulty:1:a'")
     + query("SELECT count(*) FROM links WHERE message_key = 'faulty:1:a'")
     + query("SELECT count(*) FROM outbox WHERE key = 'faulty:1:b'"), [(0,), (0,), (1,)],
     "and neither a message nor a link for that customer; the next customer planned")
rc, out, err = herald(G, "run", os.path.join(T, "faulty.ini"))
t.ok(rc == 0 and query("SELECT count(*) FROM links WHERE message_key = 'faulty:1:a'") == [(1,)],
     "the next run plans the customer, with its link", out + err)

tmp.cleanup()
t.done()
