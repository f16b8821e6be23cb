"""tests/track/tracking.py: open and click tracking, end to end: a real
`herald run` through the outbox plugin, then `herald serve` on loopback.

- The e-mail written to the Maildir is parsed with the email package and
  its HTML with html.parser: every link is rewritten or kept as the rules
  say (http(s) in any quoting or case, with entities: rewritten; mailto,
  tel, #, the unsubscribe URL, data-herald-notrack: kept, the attribute
  removed; links inside a comment, a script or a style: untouched bytes);
  each tracked href's token is checked here with an HMAC of our own (the
  key derived from the secret as token.h says) and names the message and
  the exact URL; the open pixel is the last thing before </body>; the
  text part keeps its URLs.  With text_links = yes the text part's URLs
  are tracked too, and track_opens = no leaves the pixel out.
- A click answers 302 with Location exactly the link's URL (non-ASCII
  percent-encoded) and records a clicked event for the message, with the
  URL; forged, truncated, altered, foreign-key and wrong-kind tokens get
  404, no Location, and record nothing.
- The pixel is the exact 43-byte transparent GIF, no-store, and records
  opened.
- A HEAD click, a scanner's User-Agent, two links of one message clicked
  at once, a click and an open within machine_window of the send: all
  recorded as machines', and herald report leaves them out of its rates
  and shows them apart.
Time is HERALD_NOW: the run at T0, the server at T0 + 100 (people) or
T0 + 1 (within the window); nothing here measures a clock."""
import base64
import email
import glob
import hashlib
import hmac
import html.parser
import json
import os
import sqlite3
import sys
import tempfile
import urllib.parse
from email import policy

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "http"))
from httptest import (Tap, skip_all, free_port, request, serve_start,   # noqa: E402
                      serve_stop, PLUGIN_DIR)

HERALD = os.environ.get("HERALD", "")
if not os.access(HERALD, os.X_OK):
    skip_all("herald not built")
if not os.path.exists(os.path.join(PLUGIN_DIR, "outbox.so")):
    skip_all("outbox.so not built")

t = Tap(time_limit=120)
tmp = tempfile.TemporaryDirectory(prefix="herald-track.")
T = tmp.name
SECRET = "track-secret-0123456789abcdef"
PORT = free_port()
BASE = "http://127.0.0.1:%d" % PORT
T0 = 1790000000
BROWSER = {"User-Agent": "Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0"}
GIF = bytes.fromhex("47494638396101000100800000000000ffffff21f90401000000002c"
                    "00000000010001000002024401003b")


def gateway(name, extra=""):
    path = os.path.join(T, name)
    with open(path, "w") as f:
        f.write("""[store]
path = %(T)s/herald.db
[plugins]
dir = %(plugdir)s
[tracking]
base_url = %(base)s
secret = %(secret)s
listen = 127.0.0.1:%(port)d
%(extra)s
[channel.email]
plugin = outbox
dir = %(T)s/out-%(name)s
from = Shop <news@shop.example>
""" % {"T": T, "plugdir": PLUGIN_DIR, "base": BASE, "secret": SECRET, "port": PORT,
       "extra": extra, "name": name})
    return path


def herald(ini, *args, now=T0):
    env = dict(os.environ, HERALD_NOW=str(now))
    import subprocess
    p = subprocess.run([HERALD, "-c", ini] + list(args), capture_output=True, timeout=60, env=env)
    return p.returncode, p.stdout.decode(), p.stderr.decode()


def query(sql, *args):
    db = sqlite3.connect(os.path.join(T, "herald.db"))
    rows = db.execute(sql, args).fetchall()
    db.close()
    return rows


def b64d(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def b64e(b):
    return base64.urlsafe_b64encode(b).decode().rstrip("=")


TRACK_KEY = hmac.new(SECRET.encode(), b"herald tracking links v1", hashlib.sha256).digest()


def sign(payload, key=TRACK_KEY):
    return b64e(payload) + "." + b64e(hmac.new(key, payload, hashlib.sha256).digest()[:16])


def read_token(url, prefix, suffix=""):
    """The payload of a tracked URL, when its MAC is right; else None."""
    if not url.startswith(BASE + prefix) or not url.endswith(suffix):
        return None
    tok = url[len(BASE + prefix):len(url) - len(suffix)]
    payload, _, mac = tok.partition(".")
    p = b64d(payload)
    return p if sign(p) == tok else None


class Links(html.parser.HTMLParser):
    """Every <a> and <img> of a document, with their attributes."""
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.a, self.img = [], []

    def handle_starttag(self, tag, attrs):
        (self.a if tag == "a" else self.img if tag == "img" else []).append(dict(attrs))


# Templates: links of every kind.
os.makedirs(os.path.join(T, "tpl"))
HTML = """<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>Hello</title>
<style>a[href="https://style.example/"] { color: red }</style>
<script>var s = '<a href="https://script.example/">';</script>
</head><body>
<p>Hello {{ customer.id }}</p>
<a href="https://shop.example/p?a=1&amp;b=2">double</a>
<a href='https://shop.example/single'>single</a>
<a class=x href=https://shop.example/unquoted>unquoted</a>
<A HREF="HTTPS://SHOP.EXAMPLE/UPPER">upper</A>
<a href="https://shop.example/caf&eacute;?q=&quot;x&quot;">entities</a>
<a href="mailto:help@shop.example">mail</a>
<a href="tel:+33123456789">tel</a>
<a href="#top">anchor</a>
<a href="{{ unsubscribe_url }}">unsubscribe</a>
<a data-herald-notrack href="https://shop.example/notrack">notrack</a>
<!-- <a href="https://comment.example/"> -->
<a download href="https://shop.example/c/{{ customer.id }}">personal</a>
</body></html>
"""
TEXT = "Hello {{ customer.id }}, see https://shop.example/p?a=1&b=2.\nStop: {{ unsubscribe_url }}\n"
for name, text in {"email.subject.liquid": "Hello", "email.html.liquid": HTML,
                   "email.text.liquid": TEXT}.items():
    with open(os.path.join(T, "tpl", name), "w") as f:
        f.write(text)
with open(os.path.join(T, "news.ini"), "w") as f:
    f.write("[campaign]\nid = news\ntemplates = tpl\nchannels = email\n")
with open(os.path.join(T, "quiet.ini"), "w") as f:
    f.write("[campaign]\nid = quiet\ntemplates = tpl\nchannels = email\ntrack_opens = no\n")
CUSTOMERS = ["a", "b", "c", "d", "e", "f"]
with open(os.path.join(T, "c.jsonl"), "w") as f:
    for c in CUSTOMERS:
        f.write(json.dumps({"id": c, "email": c + "@example.com", "consent": {"email": True}}) + "\n")

G = gateway("g.ini")
rc, out, err = herald(G, "customers", "import", os.path.join(T, "c.jsonl"))
t.ok(rc == 0, "customers imported", err)
rc, out, err = herald(G, "run", os.path.join(T, "news.ini"))
t.ok(rc == 0 and "6 customers planned" in out, "herald run through the outbox", out + err)


def mails(outdir):
    """customer id -> (html, text, List-Unsubscribe URL) of the Maildir."""
    got = {}
    for path in glob.glob(os.path.join(T, outdir, "new", "*")):
        with open(path, "rb") as f:
            msg = email.message_from_binary_file(f, policy=policy.default)
        cust = msg["To"].addresses[0].username
        got[cust] = (msg.get_body(("html",)).get_content(), msg.get_body(("plain",)).get_content(),
                     str(msg["List-Unsubscribe"]).split("<")[1].split(">")[0])
    return got


m = mails("out-g.ini")
t.eq(sorted(m), CUSTOMERS, "one e-mail per customer")

# 1. Which links were rewritten, and into what.
TRACKED = ["https://shop.example/p?a=1&b=2", "https://shop.example/single",
           "https://shop.example/unquoted", "HTTPS://SHOP.EXAMPLE/UPPER",
           'https://shop.example/café?q="x"']
bad = []
links = {}                     # customer -> list of (href, attrs)
for cust, (body, text, unsub) in m.items():
    p = Links()
    p.feed(body)
    p.close()
    links[cust] = p.a
    hrefs = [a.get("href") for a in p.a]
    want_kept = ["mailto:help@shop.example", "tel:+33123456789", "#top", unsub,
                 "https://shop.example/notrack"]
    if len(hrefs) != 11:
        bad.append((cust, "links", hrefs))
        continue
    if hrefs[5:10] != want_kept:
        bad.append((cust, "kept", hrefs[5:10], want_kept))
    if any("data-herald-notrack" in a for a in p.a):
        bad.append((cust, "data-herald-notrack left in the output"))
    for i, want in enumerate(TRACKED + ["https://shop.example/c/" + cust]):
        h = hrefs[i] if i < 5 else hrefs[10]
        payload = read_token(h, "/c/")
        if payload != b"c" + ("news:1:" + cust).encode() + b"\0" + want.encode():
            bad.append((cust, "tracked link %d" % i, h, payload))
    if "class" not in p.a[2] or "download" not in p.a[10]:
        bad.append((cust, "other attributes lost"))
    for untouched in ('<a href="https://script.example/">', 'a[href="https://style.example/"]',
                      '<!-- <a href="https://comment.example/"> -->'):
        if untouched not in body:
            bad.append((cust, "changed", untouched))
t.ok(not bad, "every http(s) link tracked with a token naming the message and the exact URL; "
     "mailto, tel, #, unsubscribe and data-herald-notrack kept; comment, script and style "
     "untouched", bad[:3])

body, text, unsub = m["a"]
PIXEL = body.split('<img src="')[-1].split('"')[0]
pix = read_token(PIXEL, "/o/", ".gif")
t.eq(pix, b"onews:1:a", "the open pixel's token names the message")
t.ok(body.rstrip().endswith('" width="1" height="1" alt=""></body></html>'),
     "the pixel is the last thing before </body>", body[-200:])
p = Links()
p.feed(body)
t.eq([(i.get("width"), i.get("height"), i.get("alt")) for i in p.img], [("1", "1", "")],
     "one pixel, 1x1, empty alt")
t.eq(text, "Hello a, see https://shop.example/p?a=1&b=2.\nStop: %s\n" % unsub,
     "the text part keeps its URLs")

# 2. text_links = yes tracks the text part's URLs; track_opens = no: no pixel.
G2 = gateway("g2.ini", "text_links = yes")
rc, out, err = herald(G2, "run", os.path.join(T, "quiet.ini"))
t.ok(rc == 0, "a second campaign, with text_links and track_opens = no", out + err)
m2 = mails("out-g2.ini")
body2, text2, unsub2 = m2["a"]
url = text2.split("see ")[1].split(".\n")[0]
t.ok(read_token(url, "/c/") == b"cquiet:1:a\0https://shop.example/p?a=1&b=2"
     and text2.endswith("Stop: %s\n" % unsub2),
     "text_links: the text's URL tracked, the unsubscribe URL kept", text2)
t.ok("<img" not in body2 and "/o/" not in body2, "track_opens = no: no pixel", body2[-200:])
p = Links()
p.feed(body2)
t.eq(read_token(p.a[0]["href"], "/c/"), b"cquiet:1:a\0" + TRACKED[0].encode(),
     "its HTML links are still tracked")


def detail(url):
    """A click's detail as herald writes it (jansson, compact)."""
    return json.dumps({"url": url}, separators=(",", ":"), ensure_ascii=False)


def click(cust, i, method="GET", headers=BROWSER):
    return request(method, links[cust][i]["href"], headers=headers)


def clicks():
    return query("SELECT customer, channel, campaign, message_key, detail, machine FROM events "
                 "WHERE type = 'clicked' ORDER BY customer, id")


srv, up = serve_start(HERALD, G, BASE, env=dict(os.environ, HERALD_NOW=str(T0 + 100)))
try:
    t.ok(up, "serve is up")

    # 3. A click.
    st, hdr, _ = click("a", 0)
    t.ok(st == 302 and hdr["Location"] == "https://shop.example/p?a=1&b=2"
         and hdr["Cache-Control"] == "no-store",
         "a click: 302 to the exact URL, no-store", (st, dict(hdr)))
    t.eq(clicks(), [("a", "email", "news", "news:1:a", detail(TRACKED[0]), None)],
         "a clicked event for the message, with the URL, a person's")
    st, hdr, _ = click("b", 4)
    t.ok(st == 302 and hdr["Location"] == "https://shop.example/caf%C3%A9?q=%22x%22",
         "a URL with é and quotes: percent-encoded in Location", hdr["Location"])
    t.eq(query("SELECT detail FROM events WHERE customer = 'b' AND type = 'clicked'"),
         [(detail(TRACKED[4]),)], "and recorded as written in the e-mail")

    # 4. Tokens that are not ours.
    tok = links["b"][1]["href"][len(BASE + "/c/"):]
    payload, mac = tok.split(".")
    other = b"cnews:1:b\0https://evil.example/"
    unsub_key = SECRET.encode()
    forged = {
        "a changed MAC": payload + "." + mac[:-2] + ("A" if mac[-2] != "A" else "B") + mac[-1],
        "a truncated token": tok[:-4],
        "the payload alone": payload,
        "another URL with b's MAC": b64e(other) + "." + mac,
        "signed with the secret itself (the unsubscribe key)": sign(other, unsub_key),
        "an open token at /c/": PIXEL[len(BASE + "/o/"):-len(".gif")],
        "not base64": "%%%." + mac,
    }
    n_before = len(query("SELECT * FROM events"))
    got = {}
    for what, tk in forged.items():
        st, hdr, _ = request("GET", BASE + "/c/" + urllib.parse.quote(tk, safe="%."), headers=BROWSER)
        got[what] = (st, hdr.get("Location"))
    st, hdr, _ = request("GET", BASE + "/o/" + tok + ".gif", headers=BROWSER)
    got["a click token at /o/"] = (st, hdr.get("Location"))
    st, hdr, _ = request("GET", PIXEL[:-len(".gif")], headers=BROWSER)
    got["an open token without .gif"] = (st, hdr.get("Location"))
    t.ok(all(v == (404, None) for v in got.values()),
         "forged, truncated, altered and wrong-kind tokens: 404 and no Location", got)
    t.eq(len(query("SELECT * FROM events")), n_before, "and nothing recorded")
    st, hdr, _ = request("POST", links["a"][0]["href"], b"", BROWSER)
    t.ok(st == 405 and "Location" not in hdr, "a POST to a link: 405, no Location", st)

    # 5. The pixel.
    st, hdr, gif = request("GET", PIXEL, headers=BROWSER)
    t.ok(st == 200 and gif == GIF and len(gif) == 43 and hdr["Content-Type"] == "image/gif"
         and hdr["Cache-Control"] == "no-store",
         "the pixel: the 43-byte transparent GIF, image/gif, no-store", (st, dict(hdr), gif))
    t.ok(gif[:6] == b"GIF89a" and gif[6:10] == b"\1\0\1\0" and gif[19:23] == b"\x21\xf9\x04\x01",
         "GIF89a, 1x1, a graphic control extension with the transparency flag")
    t.eq(query("SELECT customer, campaign, message_key, machine FROM events WHERE type = 'opened'"),
         [("a", "news", "news:1:a", None)], "an opened event, a person's")

    # 6. Machines.
    st, hdr, gif = click("c", 0, "HEAD")
    t.ok(st == 302 and hdr["Location"] == TRACKED[0], "a HEAD click answers like a GET", st)
    st, _, _ = click("d", 1, headers={"User-Agent": "Mozilla/5.0 (compatible; bingbot/2.0)"})
    t.eq(st, 302, "a crawler's click is redirected too")
    click("e", 0)
    click("e", 1)            # the same instant (HERALD_NOW): two links at once
    t.eq([(r[0], r[5]) for r in clicks()],
         [("a", None), ("b", None), ("c", "head"), ("d", "agent"), ("e", "burst"), ("e", "burst")],
         "HEAD, a scanner's agent and a burst of two links are machines' (both burst clicks)")
finally:
    rc, out, err = serve_stop(srv)
t.eq(rc, 0, "serve stops on SIGTERM")

# 7. Within machine_window of the send.
srv, up = serve_start(HERALD, G, BASE, env=dict(os.environ, HERALD_NOW=str(T0 + 1)))
try:
    t.ok(up, "serve again, one second after the send")
    st, hdr, _ = click("f", 0)
    request("GET", mails("out-g.ini")["f"][0].split('<img src="')[-1].split('"')[0], headers=BROWSER)
    t.ok(st == 302 and hdr["Location"] == TRACKED[0], "a fast click is still redirected", st)
    t.eq(query("SELECT type, machine FROM events WHERE customer = 'f' ORDER BY type"),
         [("clicked", "fast"), ("opened", "fast")], "a click and an open 1 s after the send: fast")
finally:
    serve_stop(srv)

# 8. The report leaves machines out of the rates.
rc, out, err = herald(G, "report", "news", "--json")
r = json.loads(out) if rc == 0 else {}
g = (r.get("groups") or [{}])[0]
t.ok(g.get("sent") == 6 and g["engagement"]["clicked"]["messages"] == 2
     and g["engagement"]["opened"]["messages"] == 1
     and abs(g["rates"]["clicked"] - 2 / 6) < 1e-9 and abs(g["rates"]["opened"] - 1 / 6) < 1e-9,
     "report: clicked 2 of 6 and opened 1 of 6, the people's only", json.dumps(g))
t.eq(g.get("machine"), {"opened": {"messages": 1, "events": 1}, "clicked": {"messages": 4, "events": 5}},
     "report: the machines' opens and clicks apart")
rc, out, err = herald(G, "report", "news")
rows = [l.split() for l in out.split("Rates (")[-1].splitlines()]
t.ok(rc == 0 and ["email", "-", "0.0%", "16.7%", "33.3%", "0.0%", "0.0%", "0.0%", "0.0%",
                  "0.0%"] in rows
     and ["email", "-", "1", "4"] in rows,
     "the text report: the people's rates, the machines in a table of their own", out)

tmp.cleanup()
t.done()
