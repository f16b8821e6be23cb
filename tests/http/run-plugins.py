"""tests/http/run-plugins.py: herald run end to end with the real sms and
webhook plugins against the loopback fake provider: every customer's
message arrives once, signed, with the message key as webhook-id; Twilio
gets its StatusCallback from [tracking] base_url; 21610 and 410 come back
as invalid addresses; a 429 is scheduled for retry; a second run sends
nothing twice."""
import base64
import hashlib
import hmac
import json
import os
import subprocess
import sys
import tempfile
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fakeprovider import FakeProvider          # noqa: E402
from httptest import Tap, skip_all, PLUGIN_DIR   # noqa: E402

HERALD = os.environ.get("HERALD", "")
if not os.access(HERALD, os.X_OK):
    skip_all("herald not built")
for so in ("sms", "webhook"):
    if not os.path.exists(os.path.join(PLUGIN_DIR, so + ".so")):
        skip_all("%s.so not built" % so)

SECRET = "whsec_" + base64.b64encode(bytes(range(32))).decode()
SID = "AC0123456789abcdef0123456789abcdef"
t = Tap(time_limit=150)
tmp = tempfile.TemporaryDirectory(prefix="herald-run-plugins.")
T = tmp.name


def herald(*args):
    p = subprocess.run([HERALD, "-c", os.path.join(T, "g.ini")] + list(args),
                       capture_output=True, timeout=120)
    return p.returncode, p.stdout.decode(), p.stderr.decode()


def verify(h, body):
    key = base64.b64decode(SECRET[6:])
    mac = hmac.new(key, ("%s.%s.%s" % (h["webhook-id"], h["webhook-timestamp"], body)).encode(),
                   hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode() in h.get("webhook-signature", "").split(" ")


with FakeProvider(rules=[
        {"path": "/hook/gone", "status": 410},
        {"path": "/hook/busy", "status": 429, "headers": {"Retry-After": "3600"}},
        {"match": "+15005550002", "status": 400,
         "body": {"code": 21610, "message": "Attempt to send to unsubscribed recipient", "status": 400}},
        ]) as fp:
    with open(os.path.join(T, "g.ini"), "w") as f:
        f.write("""[store]
path = %(T)s/herald.db
[plugins]
dir = %(plugdir)s
[tracking]
base_url = https://t.example.com
secret = test-secret-0123456789abcdef
[channel.webhook]
plugin = webhook
secret = %(secret)s
allow_private = yes
concurrency = 4
[channel.sms]
plugin = sms
provider = twilio
base_url = %(url)s
account_sid = %(sid)s
auth_token = tok-secret-0123
from = +15005550006
""" % {"T": T, "plugdir": PLUGIN_DIR, "secret": SECRET, "url": fp.url, "sid": SID})
    os.makedirs(os.path.join(T, "tpl"))
    for name, text in {"webhook.body": '{"customer":"{{ customer.id }}","points":{{ customer.points }}}',
                       "sms.body": "Hi {{ customer.first_name }}, {{ customer.points }} points"}.items():
        with open(os.path.join(T, "tpl", name + ".liquid"), "w") as f:
            f.write(text)
    with open(os.path.join(T, "c.ini"), "w") as f:
        f.write("[campaign]\nid = spring\ntemplates = tpl\nchannels = webhook, sms\nretry_horizon = 0s\n")
    custs = []
    for i in range(12):
        c = {"id": "c%02d" % i, "consent": {"webhook": True, "sms": True},
             "attributes": {"first_name": "Zoë" if i % 2 else "Ann", "points": i}}
        if i < 8:
            c["webhook"] = fp.url + "/hook/%d" % i
        else:
            c["phone"] = "+150055501%02d" % i
        custs.append(c)
    custs[6]["webhook"] = fp.url + "/hook/gone"
    custs[7]["webhook"] = fp.url + "/hook/busy"
    custs[11]["phone"] = "+15005550002"
    with open(os.path.join(T, "c.jsonl"), "w") as f:
        for c in custs:
            f.write(json.dumps(c, ensure_ascii=False) + "\n")
    rc, out, err = herald("customers", "import", os.path.join(T, "c.jsonl"))
    t.ok(rc == 0, "customers imported", err)

    rc, out, err = herald("run", os.path.join(T, "c.ini"))
    t.ok(rc == 0, "herald run exits 0", out + err)
    hooks = [q for q in fp.requests if q["path"].startswith("/hook/")]
    sms = [q for q in fp.requests if q["path"].endswith("/Messages.json")]
    ids = sorted(q["headers"].get("webhook-id", "") for q in hooks)
    t.eq(len(hooks), 8, "8 webhooks sent")
    t.eq(len(set(ids)), 8, "each once, a distinct webhook-id each")
    t.ok(all(i.startswith("spring:") and i.endswith(":c%02d" % int(i[-2:])) for i in ids),
         "webhook-id is the message key campaign:step:customer", ids)
    t.ok(all(verify(q["headers"], q["body"]) for q in hooks), "every webhook signature verifies")
    t.ok(all(json.loads(q["body"])["customer"] == "c%s" % q["path"].split("/")[-1].zfill(2)
             for q in hooks if q["path"][-1].isdigit()), "each body rendered for its customer")
    t.eq(len(sms), 4, "4 SMS sent to Twilio")
    t.ok(all(q["form"].get("StatusCallback") == "https://t.example.com/inbound/sms/status" for q in sms),
         "StatusCallback from [tracking] base_url and the channel name",
         [q["form"].get("StatusCallback") for q in sms])
    t.ok(any(q["form"].get("Body") == "Hi Zoë, 9 points" for q in sms), "SMS body rendered, UTF-8 intact")
    t.ok("tok-secret-0123" not in out + err, "the auth token is not printed")

    rc, out, err = herald("report", "spring", "--json")
    rep = json.loads(out) if rc == 0 and out.strip().startswith("{") else {}
    t.ok(rep.get("states", {}).get("sent") == 9 and rep.get("states", {}).get("retry") == 1,
         "9 sent, 1 scheduled for retry (429)", rep.get("states"))

    before = len(fp.requests)
    rc, out, err = herald("run", os.path.join(T, "c.ini"))
    t.ok(rc == 0, "second run exits 0", out + err)
    t.eq(len(fp.requests), before, "a second run sends nothing again (the retry is not due yet)")

    # A webhook.body that renders to invalid JSON for some customers: those
    # messages fail with the template, line and column; the others go out.
    os.makedirs(os.path.join(T, "tpl2"))
    with open(os.path.join(T, "tpl2", "webhook.body.liquid"), "w") as f:
        f.write('{\n  "customer": "{{ customer.id }}",\n'
                '  "name": {% if customer.points > 3 %}{{ customer.first_name }}'
                '{% else %}"ok"{% endif %}\n}\n')
    with open(os.path.join(T, "bad.ini"), "w") as f:
        f.write("[campaign]\nid = badjson\ntemplates = tpl2\nchannels = webhook\nretry_horizon = 0s\n")
    before = len(fp.requests)
    rc, out, err = herald("run", os.path.join(T, "bad.ini"))
    t.ok(rc == 0, "a campaign with some bad renders still runs", out + err)
    sent = [q for q in fp.requests[before:] if q["path"].startswith("/hook/")]
    t.eq(sorted(json.loads(q["body"])["customer"] for q in sent),
         ["c00", "c01", "c02", "c03"], "the valid bodies are sent")
    import sqlite3
    db = sqlite3.connect(os.path.join(T, "herald.db"))
    rows = db.execute("SELECT customer, state, reason, error FROM outbox WHERE campaign = 'badjson' "
                      "AND state = 'failed' ORDER BY customer").fetchall()
    db.close()
    t.eq([(c, st, rs) for c, st, rs, _ in rows], [("c04", "failed", "render_error"), ("c05", "failed", "render_error"),
                                                    ("c07", "failed", "render_error")],
         "the invalid ones are recorded failed with reason render_error (c06's 410 address is suppressed)")
    t.ok(all(e.endswith("tpl2/webhook.body.liquid: rendered text is not valid JSON (line 3, column 11: invalid token)")
             for _, _, _, e in rows), "the error names the template, line and column", rows)
    t.ok("render_error" in out, "the summary counts them", out)

    rc, out, err = herald("plugins")
    t.ok(rc == 0 and "webhook" in out and "sms" in out and "push" in out, "herald plugins lists them", out + err)
    t.ok("tok-secret-0123" not in out and SECRET not in out, "no secret in herald plugins")

tmp.cleanup()
t.done()
