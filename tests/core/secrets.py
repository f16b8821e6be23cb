"""tests/core/secrets.py: a secret that the gateway is given never comes
out again: not in what any command prints (successes, refusals and
failures), not in `herald plugins`, not in reports, not in any file
Herald writes (the store, the outbox, the Maildir), whatever goes wrong.

Every secret key of the core and of the plugins is set to a distinctive
value: [tracking] secret, events_token and metrics_token; the e-mail
channel's password, verp_secret, mailgun_signing_key and
postmark_password; the SMS channel's auth_token; the webhook channel's
secret.  Then every command runs, each way it can go: lint, plugins,
dry run, a run whose SMTP server refuses the password and whose SMS
provider answers 401 and 500, a run that succeeds, report, preview,
serve with bad and good tokens and forged callbacks; and the gateway
again with each secret malformed in turn (too short, bad base64), so
that each refusal is printed.  Every line printed and every byte of
every file written is searched for each secret (and for its base64 and
hex spellings)."""
import base64
import binascii
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "http"))
sys.path.insert(0, os.path.join(HERE, "..", "email"))
from httptest import Tap, skip_all, PLUGIN_DIR, free_port, serve_start, serve_stop  # noqa: E402
from fakeprovider import FakeProvider   # noqa: E402
from smtpserver import ScriptedSMTP     # noqa: E402

HERALD = os.environ.get("HERALD", "")
if not os.access(HERALD, os.X_OK):
    skip_all("herald not built")
for so in ("email", "sms", "webhook", "outbox"):
    if not os.path.exists(os.path.join(PLUGIN_DIR, so + ".so")):
        skip_all("%s.so not built" % so)

WH = bytes(range(7, 39))
SECRETS = {
    "[tracking] secret": "TRKsecret-5d1e0a77c3b94f2a8e61",
    "[tracking] events_token": "EVTtoken-9a8b7c6d5e4f3a2b1c0d",
    "[tracking] metrics_token": "METtoken-11aa22bb33cc44dd55ee",
    "[channel.email] password": "SMTPpass-a1b2c3d4e5f6g7",
    "[channel.email] verp_secret": "VERPsecret-0f1e2d3c4b5a6978",
    "[channel.email] mailgun_signing_key": "MGkey-77665544332211aabbcc",
    "[channel.email] postmark_password": "PMpass-99887766554433",
    "[channel.sms] auth_token": "TWtoken-0123456789abcdef0123",
    "[channel.webhook] secret": "whsec_" + base64.b64encode(WH).decode(),
}
# What is searched for: each secret, and the forms it could leak in.
NEEDLES = {}
for name, v in SECRETS.items():
    NEEDLES[v.encode()] = name
    NEEDLES[base64.b64encode(v.encode()).rstrip(b"=")] = name + " (base64)"
    NEEDLES[binascii.hexlify(v.encode())] = name + " (hex)"
NEEDLES[binascii.hexlify(WH)] = "[channel.webhook] secret's key (hex)"
NEEDLES[base64.b64encode(WH).rstrip(b"=")] = "[channel.webhook] secret's key"

t = Tap(time_limit=300)
tmp = tempfile.TemporaryDirectory(prefix="herald-secrets.")
T = tmp.name
printed = []          # (what, bytes)


def write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)
    return path


def gateway(smtp_port, prov_url, port, override=None):
    s = dict(SECRETS)
    if override:
        s.update(override)
    return write(os.path.join(T, "g.ini"), """[store]
path = %(T)s/var/herald.db
[plugins]
dir = %(plug)s
[tracking]
base_url = https://t.example.com
listen = 127.0.0.1:%(port)d
secret = %(trk)s
events_token = %(evt)s
metrics_token = %(met)s
[channel.email]
plugin = email
server = 127.0.0.1:%(smtp)d
starttls = no
from = Shop <news@shop.example>
username = shop
password = %(pw)s
bounce_domain = b.shop.example
verp_secret = %(verp)s
mailgun_signing_key = %(mg)s
postmark_username = pm
postmark_password = %(pm)s
[channel.sms]
plugin = sms
provider = twilio
base_url = %(prov)s
account_sid = AC0123456789abcdef0123456789abcdef
auth_token = %(tw)s
from = +15005550006
[channel.webhook]
plugin = webhook
secret = %(wh)s
allow_private = yes
[channel.outbox]
plugin = outbox
kind = email
dir = %(T)s/var/outbox
from = Shop <news@shop.example>
""" % {"T": T, "plug": PLUGIN_DIR, "port": port, "smtp": smtp_port, "prov": prov_url,
       "trk": s["[tracking] secret"], "evt": s["[tracking] events_token"],
       "met": s["[tracking] metrics_token"], "pw": s["[channel.email] password"],
       "verp": s["[channel.email] verp_secret"],
       "mg": s["[channel.email] mailgun_signing_key"],
       "pm": s["[channel.email] postmark_password"],
       "tw": s["[channel.sms] auth_token"], "wh": s["[channel.webhook] secret"]})


def herald(*args, what=None):
    p = subprocess.run([HERALD, "-c", os.path.join(T, "g.ini")] + list(args),
                       capture_output=True, timeout=120)
    printed.append((what or " ".join(args[:2]), p.stdout + p.stderr))
    return p.returncode, p.stdout.decode(errors="replace"), p.stderr.decode(errors="replace")


write(os.path.join(T, "tpl", "email.subject.liquid"), "Hello {{ customer.id }}")
write(os.path.join(T, "tpl", "email.text.liquid"), "Hi {{ customer.id }}")
write(os.path.join(T, "tpl", "email.html.liquid"), "<p><a href=\"https://shop.example/x\">Hi</a></p>")
write(os.path.join(T, "tpl", "sms.body.liquid"), "Hi {{ customer.id }} https://shop.example/y")
write(os.path.join(T, "tpl", "webhook.body.liquid"), '{"id": {{ customer.id | json }}}')
for cid, chans in (("mail", "email, sms, webhook"), ("box", "outbox")):
    write(os.path.join(T, cid + ".ini"),
          "[campaign]\nid = %s\ntemplates = tpl\nchannels = %s\nretry_horizon = 0s\n" % (cid, chans))

with FakeProvider(rules=[
        {"match": "+15005550001", "status": 401,
         "body": {"code": 20003, "message": "Authenticate", "status": 401}},
        {"match": "+15005550002", "status": 500},
        {"path": "/hook/bad", "status": 500},
        ]) as fp:
    smtp = ScriptedSMTP(auth=("shop", "not-the-password"), auth_required=True)
    port = free_port()
    try:
        gateway(smtp.port, fp.url, port)
        custs = [
            {"id": "e1", "email": "e1@example.com", "consent": {"email": True}},
            {"id": "s1", "phone": "+15005550001", "consent": {"sms": True}},
            {"id": "s2", "phone": "+15005550002", "consent": {"sms": True}},
            {"id": "w1", "webhook": fp.url + "/hook/1", "consent": {"webhook": True}},
            {"id": "w2", "webhook": fp.url + "/hook/bad", "consent": {"webhook": True}},
        ]
        write(os.path.join(T, "c.jsonl"), "".join(json.dumps(c) + "\n" for c in custs))
        for args in (["lint", os.path.join(T, "mail.ini")], ["plugins"],
                     ["customers", "import", os.path.join(T, "c.jsonl")],
                     ["run", "--dry-run", os.path.join(T, "mail.ini")]):
            rc, out, err = herald(*args)
            t.ok(rc == 0, "%s: exit 0" % args[0], out + err)
        # The SMTP server refuses the password; Twilio says 401 and 500;
        # a webhook receiver 500.
        rc, out, err = herald("run", os.path.join(T, "mail.ini"), what="run (failing)")
        t.ok(rc == 1 and ("535" in err or "530" in err), "a run whose SMTP server refuses the password fails, saying so",
             out + err)
        t.ok(len([q for q in fp.requests if q["path"].endswith("/Messages.json")]) >= 1
             and any(q["path"].startswith("/hook/") for q in fp.requests),
             "... and its SMS and webhooks reached the fake provider")
        # The password right: the e-mail goes.
        smtp.stop()
        smtp = ScriptedSMTP(auth=("shop", SECRETS["[channel.email] password"]), auth_required=True)
        gateway(smtp.port, fp.url, port)
        rc, out, err = herald("run", os.path.join(T, "mail.ini"), what="run (again)")
        t.ok(len(smtp.messages) == 1, "with the right password, the e-mail is sent", out + err)
        rc, out, err = herald("run", os.path.join(T, "box.ini"), what="run (outbox)")
        t.ok(rc == 0, "a run into a Maildir outbox: exit 0", out + err)
        for args in (["report", "mail"], ["report", "mail", "--json"],
                     ["preview", os.path.join(T, "mail.ini"), "--customer", "e1"]):
            rc, out, err = herald(*args)
            t.eq(rc, 0, "%s: exit 0" % " ".join(args[:2]))

        # serve: wrong tokens, forged callbacks, then the right tokens.
        base = "http://127.0.0.1:%d" % port
        srv, up = serve_start(HERALD, os.path.join(T, "g.ini"), base)
        t.ok(up, "serve answers /healthz")

        def req(method, path, body=None, headers=None):
            r = urllib.request.Request(base + path, data=body, method=method,
                                       headers=headers or {})
            try:
                with urllib.request.urlopen(r, timeout=10) as resp:
                    return resp.status, resp.read()
            except urllib.error.HTTPError as e:
                return e.code, e.read()

        answers = []
        for method, path, body, headers in (
                ("GET", "/metrics", None, {"Authorization": "Bearer wrong"}),
                ("GET", "/metrics", None, {"Authorization": "Bearer " + SECRETS["[tracking] metrics_token"]}),
                ("POST", "/events", b'{"customer":"e1","type":"x","at":"2026-01-01T00:00:00Z"}\n',
                 {"Authorization": "Bearer nope"}),
                ("POST", "/events", b'{"customer":"e1","type":"visited","at":"2026-01-01T00:00:00Z"}\n',
                 {"Authorization": "Bearer " + SECRETS["[tracking] events_token"]}),
                ("POST", "/events", b'{"customer":"e1","type":7}\n',
                 {"Authorization": "Bearer " + SECRETS["[tracking] events_token"]}),
                ("POST", "/inbound/email/mailgun", b'{"signature":{"timestamp":"1","token":"t","signature":"00"},"event-data":{}}',
                 {"Content-Type": "application/json"}),
                ("POST", "/inbound/email/postmark", b'{}', {"Authorization": "Basic cG06d3Jvbmc="}),
                ("POST", "/inbound/sms/status", b'MessageSid=SM1&MessageStatus=delivered',
                 {"Content-Type": "application/x-www-form-urlencoded", "X-Twilio-Signature": "AAAA"}),
                ("GET", "/u/forged-token", None, None),
                ("GET", "/c/forged-token", None, None),
                ("GET", "/healthz", None, None)):
            st, b = req(method, path, body, headers)
            answers.append((method, path, st))
            printed.append(("serve answered %s %s" % (method, path), b))
        rc, out, err = serve_stop(srv)
        printed.append(("serve's output", out + err))
        t.ok(dict(((m, p), s) for m, p, s in answers).get(("GET", "/healthz")) == 200
             and [s for m, p, s in answers if p == "/metrics"] == [401, 200],
             "serve answered (metrics: wrong token 401, right token 200)", answers)

        # Each secret malformed in turn: each refusal printed.
        bad = {
            "[tracking] secret": "TRKshort9",
            "[tracking] events_token": "EVTshrt",
            "[tracking] metrics_token": "METshrt",
            "[channel.email] verp_secret": "VERPshort77",
            "[channel.webhook] secret": "whsec_!!" + SECRETS["[channel.webhook] secret"][8:],
        }
        for name, v in bad.items():
            gateway(smtp.port, fp.url, port, {name: v})
            NEEDLES[v.encode()] = name + " (malformed)"
            rc, out, err = herald("lint", os.path.join(T, "mail.ini"), what="lint, %s malformed" % name)
            t.ok(rc == 1, "%s malformed: lint refuses it" % name, out + err)
            rc, out, err = herald("run", os.path.join(T, "mail.ini"), what="run, %s malformed" % name)
            t.ok(rc != 0, "%s malformed: run refuses it" % name, out + err)
        gateway(smtp.port, fp.url, port)
    finally:
        smtp.stop()

# Every line printed.
leaks = []
for what, data in printed:
    for needle, name in NEEDLES.items():
        if needle in data:
            leaks.append("%s printed %s" % (what, name))
t.ok(not leaks, "no secret in anything %d commands and serve printed" % len(printed),
     "\n".join(leaks[:20]))

# Every file written (but the gateway file, which holds them).
files = 0
leaks = []
for root, dirs, names in os.walk(T):
    for n in names:
        path = os.path.join(root, n)
        if path == os.path.join(T, "g.ini"):
            continue
        files += 1
        with open(path, "rb") as f:
            data = f.read()
        for needle, name in NEEDLES.items():
            if needle in data:
                leaks.append("%s holds %s" % (os.path.relpath(path, T), name))
t.ok(files >= 5 and not leaks, "no secret in the %d files written (store, its log, Maildir, outbox)"
     % files, "\n".join(leaks[:20]))
t.done()
