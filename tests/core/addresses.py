"""tests/core/addresses.py: herald customers import and the plugins judge
an address with the same check (lib/address.c), so an address
import takes is one send takes, and one import refuses is one send calls
invalid_address.

For each kind (e-mail, E.164, webhook URL) a table of addresses goes
  - through herald customers import --skip-bad: the refused ones are listed
    as FILE:LINE: field: '...' is not ..., with the exact message for
    a>b@example.com and +0123456789 (both passed import before);
  - through the kind's own plugin (tests/plugin-run): email (its server a
    closed port: what it takes is retried, never refused), sms against a
    fake Twilio, webhook against a loopback receiver; and through outbox,
    which stands in for any of them.
The refused set must be the same on both sides."""
import json
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "http"))
from fakeprovider import FakeProvider                          # noqa: E402
from httptest import Tap, require, run, message, free_port     # noqa: E402

HERALD = os.environ.get("HERALD", os.path.join(os.environ.get("HERALD_BUILDDIR", "."), "herald"))

t = Tap(time_limit=120)
email_so, sms_so, webhook_so, outbox_so = (require(p) for p in ("email", "sms", "webhook", "outbox"))
T = tempfile.mkdtemp(prefix="herald-addr-")

EMAIL_GOOD = ["zoe@example.com", "a.b+tag@sub.example.co.uk", "x@y", "o'hara@example.ie"]
EMAIL_BAD = ["a>b@example.com", "a<b@example.com", "no-at.example.com", "a@b@example.com",
             "a b@example.com", "@example.com", "a@", "a@.example.com", "a@example.com.",
             "zo\u00eb@example.com", "a,b@example.com", 'a"b@example.com', "a(b)@example.com",
             "a;b@example.com", "a[b]@example.com", "a\\b@example.com", "a\tb@example.com",
             "a\x1b@example.com", "x" * 250 + "@e.com"]
EMAIL_PARTS = {"email.subject": "Hi", "email.text": "hello"}
PHONE_GOOD = ["+33612345678", "+12345678", "+123456789012345"]
PHONE_BAD = ["+0123456789", "0612345678", "+1234567", "+1234567890123456",
             "+33 6 12 34 56 78", "+3361234567a", "+", "++33612345678", "+33-612345678"]


def import_verdicts(field, values):
    """Import one customer per value with --skip-bad; the set of values
    refused, and the messages (line -> message)."""
    path = os.path.join(T, field + ".jsonl")
    with open(path, "w") as f:
        for i, v in enumerate(values):
            f.write(json.dumps({"id": "%s-%d" % (field, i), field: v}) + "\n")
    p = subprocess.run([HERALD, "customers", "import", "--store", os.path.join(T, "h.db"),
                        "--skip-bad", path], capture_output=True, timeout=60)
    msgs = {}
    for line in p.stderr.decode("utf-8", "replace").splitlines():
        head, _, msg = line.partition(": ")
        if head.startswith(path + ":"):
            msgs[int(head[len(path) + 1:])] = msg
    return p.returncode, {values[n - 1] for n in msgs}, {values[n - 1]: m for n, m in msgs.items()}


def plugin_verdicts(so, keys, channel, values, parts, name="test"):
    """Send one message per value; the set refused as invalid_address, and
    the statuses by value."""
    msgs = [message("addr:0:c%d" % i, v, parts, channel) for i, v in enumerate(values)]
    rc, out, err = run(so, keys, msgs, batch=len(msgs), name=name)
    st = {r.get("key"): r.get("status") for r in out if "key" in r}
    by_value = {v: st.get("addr:0:c%d" % i) for i, v in enumerate(values)}
    return rc, {v for v, s in by_value.items() if s == "invalid_address"}, by_value, err


# ---- e-mail -----------------------------------------------------------------
values = EMAIL_GOOD + EMAIL_BAD
rc, refused, msgs = import_verdicts("email", values)
t.eq(refused, set(EMAIL_BAD), "import refuses exactly the e-mail addresses the plugin cannot send to")
t.eq(msgs.get("a>b@example.com"),
     "email: 'a>b@example.com' is not an email address: '>' is not allowed",
     "import: a>b@example.com named with its reason")
t.eq(msgs.get("zo\u00eb@example.com"),
     "email: 'zo\u00eb@example.com' is not an email address: a character outside ASCII "
     "(SMTPUTF8 is not supported)", "import: a non-ASCII address, with its reason")
t.eq(msgs.get("a\x1b@example.com"),
     "email: 'a\\x1b@example.com' is not an email address: a control character",
     "import: a control character, escaped")
closed = free_port()
rc, refused, st, err = plugin_verdicts(
    email_so, {"server": "127.0.0.1:%d" % closed, "from": "Herald <h@example.com>",
               "starttls": "no", "timeout_ms": "2000"},
    "email", values, EMAIL_PARTS, name="email")
t.eq(refused, set(EMAIL_BAD), "the email plugin: invalid_address for exactly those")
t.ok(all(st[v] == "retry" for v in EMAIL_GOOD), "the email plugin: the others go to the "
     "server (here a closed port: retry)", st)
rc, refused, st, err = plugin_verdicts(outbox_so, {"dir": os.path.join(T, "out-email")},
                                       "email", values, EMAIL_PARTS)
t.eq(refused, set(EMAIL_BAD), "outbox (email): invalid_address for exactly those")
t.ok(all(st[v] == "sent" for v in EMAIL_GOOD), "outbox (email): the others are sent", st)

# ---- E.164 ------------------------------------------------------------------
values = PHONE_GOOD + PHONE_BAD
rc, refused, msgs = import_verdicts("phone", values)
t.eq(refused, set(PHONE_BAD), "import refuses exactly the numbers the sms plugin refuses")
t.eq(msgs.get("+0123456789"),
     "phone: '+0123456789' is not E.164 (+ and 8 to 15 digits): the first digit is 0 "
     "(no country code starts with 0)", "import: +0123456789 named with its reason")
t.eq(msgs.get("+1234567"),
     "phone: '+1234567' is not E.164 (+ and 8 to 15 digits): 7 digits (at least 8)",
     "import: 7 digits")
t.eq(msgs.get("+33 6 12 34 56 78"),
     "phone: '+33 6 12 34 56 78' is not E.164 (+ and 8 to 15 digits): a space", "import: spaces")
with FakeProvider() as fp:
    rc, refused, st, err = plugin_verdicts(
        sms_so, {"provider": "twilio", "base_url": fp.url,
                 "account_sid": "AC0123456789abcdef0123456789abcdef",
                 "auth_token": "tok-0123456789", "from": "+15005550006"},
        "sms", values, {"sms.body": "hello"})
    t.eq(refused, set(PHONE_BAD), "the sms plugin: invalid_address for exactly those")
    t.ok(all(st[v] == "sent" for v in PHONE_GOOD), "the sms plugin: the others are sent", st)
    t.eq(sorted(q["form"]["To"] for q in fp.requests), sorted(PHONE_GOOD),
         "the sms plugin: no request for a refused number")
rc, refused, st, err = plugin_verdicts(outbox_so, {"dir": os.path.join(T, "out-sms")},
                                       "sms", values, {"sms.body": "hello"})
t.eq(refused, set(PHONE_BAD), "outbox (sms): invalid_address for exactly those")

# ---- webhook URLs -----------------------------------------------------------
with FakeProvider() as fp:
    host = fp.url.split("://", 1)[1]
    good = [fp.url + "/hook", "HTTP://" + host + "/hook?a=b", "Http://" + host]
    bad = ["ftp://example.com/x", "https://", "http:///path", "https://exa mple.com/",
           "https://?q", "example.com/hook", "mailto:a@example.com", "http://:80/x"]
    values = good + bad
    rc, refused, msgs = import_verdicts("webhook", values)
    t.eq(refused, set(bad), "import refuses exactly the URLs the webhook plugin refuses")
    t.eq(msgs.get("https://"), "webhook: 'https://' is not an http or https URL: no host",
         "import: no host, named")
    rc, refused, st, err = plugin_verdicts(
        webhook_so, {"allow_private": "yes",
                     "secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"},
        "webhook", values, {"webhook.body": '{"a":1}'})
    t.eq(refused, set(bad), "the webhook plugin: invalid_address for exactly those")
    t.ok(all(st[v] == "sent" for v in good), "the webhook plugin: the others are sent "
         "(the scheme in any case)", st)
rc, refused, st, err = plugin_verdicts(outbox_so, {"dir": os.path.join(T, "out-webhook")},
                                       "webhook", values, {"webhook.body": '{"a":1}'})
t.eq(refused, set(bad), "outbox (webhook): invalid_address for exactly those")

subprocess.run(["rm", "-rf", T])
t.done()
