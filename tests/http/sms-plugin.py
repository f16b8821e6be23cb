"""tests/http/sms-plugin.py: the sms plugin against a loopback fake Twilio
and Vonage, and its inbound parser on recorded Twilio callback bodies
(signed here with an independent implementation of X-Twilio-Signature)."""
import base64
import hashlib
import hmac
import json
import os
import sys
import tempfile
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fakeprovider import FakeProvider          # noqa: E402
from httptest import Tap, require, run, message, by_key   # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
SID = "AC0123456789abcdef0123456789abcdef"
TOKEN = "tok-9f8e7d6c5b4a39281706f5e4d3c2b1a0"
TRACK = "https://track.example.com"
FROM = "+15005550006"


def smsg(key, to, body="Hello from Herald", **kw):
    return message(key, to, {"sms.body": body}, "sms", **kw)


def twilio_sig(token, url, body):
    """X-Twilio-Signature as Twilio's documentation describes it."""
    params = urllib.parse.parse_qsl(body, keep_blank_values=True)
    data = url + "".join(k + v for k, v in sorted(params))
    return base64.b64encode(hmac.new(token.encode(), data.encode(), hashlib.sha1).digest()).decode()


def twilio_keys(fp, **extra):
    k = {"provider": "twilio", "base_url": fp.url, "account_sid": SID,
         "auth_token": TOKEN, "from": FROM}
    k.update(extra)
    return k


def twilio_err(code, msg, status=400, headers=None):
    return {"status": status, "body": {"code": code, "message": msg, "status": status,
                                      "more_info": "https://www.twilio.com/docs/errors/%d" % code},
            "headers": headers or {}}


t = Tap(time_limit=150)
so = require("sms")
path = "/2010-04-01/Accounts/%s/Messages.json" % SID

rules = [
    dict(twilio_err(21211, "The 'To' number +15005550001 is not a valid phone number."), match="+15005550001"),
    dict(twilio_err(21610, "Attempt to send to unsubscribed recipient"), match="+15005550002"),
    dict(twilio_err(20429, "Too Many Requests", 429, {"Retry-After": "3"}), match="+15005550003"),
    dict(twilio_err(20500, "Internal Server Error", 500), match="+15005550004"),
    dict(twilio_err(21408, "Permission to send an SMS has not been enabled for the region"), match="+15005550005"),
    {"match": "+15005550007", "hang": 1.5},
    dict(twilio_err(20003, "Authenticate", 401), match="+15005550008"),
    {"match": "+15005550009", "reset": True},
    {"match": "+15005550010", "status": 201, "body": {"sid": "SMcut", "status": "queued"},
     "truncate": 7},
    {"match": "+15005550011", "status": 503, "headers": {"Retry-After": "90"}, "body": "busy"},
    # An HTTP-date in the year 2012042928: its milliseconds overflowed
    # (found by tests/fuzz/fuzz_sms); capped at 30 days as seconds are.
    {"match": "+15005550012", "status": 503,
     "headers": {"Retry-After": "Wed, 21 Oct 2012042928 07:28:00 GMT"}, "body": "busy"},
]
with FakeProvider(rules=rules) as fp:
    # 1. The exact Twilio request.
    rc, out, err = run(so, twilio_keys(fp), [smsg("spring:0:c1", "+15005550100")],
                       name="sms-main", tracking=TRACK)
    t.eq(rc, 0, "plugin-run exits 0")
    r = out[0] if out else {}
    q = fp.requests[0] if fp.requests else {"headers": {}, "form": {}}
    t.eq(r.get("status"), "sent", "201 is sent")
    t.ok(r.get("provider_id", "").startswith("SM") and len(r["provider_id"]) == 34,
         "provider_id is the message SID", r)
    t.eq(q.get("method"), "POST", "POST")
    t.eq(q.get("path"), path, "Messages.json path under the account")
    t.eq(q["headers"].get("authorization"),
         "Basic " + base64.b64encode(("%s:%s" % (SID, TOKEN)).encode()).decode(),
         "HTTP Basic AccountSid:AuthToken")
    t.eq(q["headers"].get("content-type"), "application/x-www-form-urlencoded", "form encoded")
    t.eq(q.get("form"), {"To": "+15005550100", "From": FROM, "Body": "Hello from Herald",
                         "StatusCallback": TRACK + "/inbound/sms-main/status"},
         "form fields To, From, Body, StatusCallback")
    t.eq(json.loads(r.get("detail") or "{}"), {"segments": 1, "encoding": "GSM-7"},
         "detail records one GSM-7 segment")

    # 2. Segments: sent whole, counted per encoding.
    fp.reset()
    cases = [
        ("seg:0:160", "a" * 160, 1, "GSM-7"),
        ("seg:0:161", "a" * 161, 2, "GSM-7"),
        ("seg:0:306", "b" * 306, 2, "GSM-7"),
        ("seg:0:307", "b" * 307, 3, "GSM-7"),
        ("seg:0:euro80", "€" * 80, 1, "GSM-7"),      # 2 septets each: 160
        ("seg:0:euro81", "€" * 81, 2, "GSM-7"),      # 162 > 160; 76 a part
        ("seg:0:escsplit", "ab" + "€" * 152, 3, "GSM-7"),   # 306, but an escape never splits
        ("seg:0:accents", "Ça coûte 5€ à Zürich", 1, "UCS-2"),   # û is not GSM
        ("seg:0:gsmacc", "Café Zürich: 5€ {ok}", 1, "GSM-7"),
        ("seg:0:u70", "é" * 10 + "ы" * 60, 1, "UCS-2"),
        ("seg:0:u71", "ы" * 71, 2, "UCS-2"),
        ("seg:0:emoji35", "👍" * 35, 1, "UCS-2"),   # 70 UTF-16 units: one part
        ("seg:0:emoji36", "👍" * 36, 2, "UCS-2"),   # 72 units: 67 a part
        ("seg:0:pairsplit", "ab" + "👍" * 66, 3, "UCS-2"),  # 134, but a pair never splits
    ]
    rc, out, err = run(so, twilio_keys(fp), [smsg(k, "+15005550100", b) for k, b, _, _ in cases],
                       batch=20)
    res = by_key(out)
    for k, b, segs, enc in cases:
        d = json.loads(res.get(k, {}).get("detail") or "{}")
        t.eq((d.get("segments"), d.get("encoding")), (segs, enc), "%s: %d %s segment(s)" % (k, segs, enc))
    bodies = sorted(q["form"]["Body"] for q in fp.requests)
    t.eq(bodies, sorted(b for _, b, _, _ in cases), "every body sent whole, not split")

    # 3. Errors.
    fp.reset()
    msgs = [smsg("e:0:21211", "+15005550001"), smsg("e:0:21610", "+15005550002"),
            smsg("e:0:20429", "+15005550003"), smsg("e:0:500", "+15005550004"),
            smsg("e:0:21408", "+15005550005"), smsg("e:0:hang", "+15005550007"),
            smsg("e:0:auth", "+15005550008"), smsg("e:0:notnum", "5550100"),
            smsg("e:0:reset", "+15005550009"), smsg("e:0:cut", "+15005550010"),
            smsg("e:0:503", "+15005550011"), smsg("e:0:far", "+15005550012"),
            smsg("e:0:letters", "+1500555ABCD"),
            message("e:0:nobody", "+15005550100", {"email.text": "x"}, "sms"),
            smsg("e:0:long", "+15005550100", "x" * 1601)]
    rc, out, err = run(so, twilio_keys(fp, timeout_ms="800"), msgs, batch=20)
    r = by_key(out)
    st = {k: v["status"] for k, v in r.items()}
    t.eq(st.get("e:0:21211"), "invalid_address", "21211: invalid address")
    t.ok("21211" in r.get("e:0:21211", {}).get("error", ""), "keeps the code")
    t.eq(st.get("e:0:21610"), "invalid_address", "21610: invalid address (opt-out)")
    d = json.loads(r.get("e:0:21610", {}).get("detail") or "{}")
    t.eq((d.get("opt_out"), d.get("code"), d.get("segments")), (True, 21610, 1),
         "21610 detail says opt_out and keeps segments")
    t.eq(st.get("e:0:20429"), "retry", "429/20429: retry")
    t.eq(r.get("e:0:20429", {}).get("retry_after_ms"), 3000, "Retry-After honoured")
    t.eq(st.get("e:0:500"), "retry", "500: retry")
    t.eq(st.get("e:0:21408"), "rejected", "21408: rejected")
    t.ok("21408" in r.get("e:0:21408", {}).get("error", "") and "Permission" in r["e:0:21408"]["error"],
         "rejection keeps code and text", r.get("e:0:21408"))
    t.eq(st.get("e:0:hang"), "retry", "no answer: retry")
    t.eq(st.get("e:0:reset"), "retry", "connection reset before an answer: retry")
    t.eq(st.get("e:0:cut"), "retry", "a 201 whose body is cut short: retry (its SID unknown)")
    t.eq((st.get("e:0:503"), r.get("e:0:503", {}).get("retry_after_ms")), ("retry", 90000),
         "503 with Retry-After: 90: retry after 90 s")
    t.eq((st.get("e:0:far"), r.get("e:0:far", {}).get("retry_after_ms")), ("retry", 30 * 86400000),
         "503 with a Retry-After date thousands of years ahead: retry after 30 days")
    t.eq(st.get("e:0:auth"), "channel_error", "401/20003: channel error")
    t.ok(TOKEN not in json.dumps(out) and TOKEN not in err, "auth token in no result or message")
    t.eq(st.get("e:0:notnum"), "invalid_address", "not E.164: invalid address")
    t.eq(st.get("e:0:letters"), "invalid_address", "letters: invalid address")
    t.eq(st.get("e:0:nobody"), "rejected", "no sms.body: rejected")
    t.eq(st.get("e:0:long"), "rejected", "over 1600 characters: rejected")
    # The reset one twice: libcurl sends a request again, once, on a fresh
    # connection when a reused one dies before any answer (it cannot tell
    # a stale keep-alive connection from a crash after the request).
    tos = sorted(q.get("form", {}).get("To", "") for q in fp.requests)
    t.ok(len(tos) == 12 and tos.count("+15005550009") == 2,
         "no request for the refused messages (the reset one tried twice, by libcurl)", tos)

    # 4. Variants: messaging service, no callback, token from a file.
    fp.reset()
    with tempfile.NamedTemporaryFile("w", delete=False) as f:
        f.write(TOKEN + "\n")
    try:
        k = twilio_keys(fp, messaging_service_sid="MG0123", status_callback="no",
                        auth_token_file=f.name)
        del k["from"], k["auth_token"]
        rc, out, err = run(so, k, [smsg("v:0:1", "+15005550100")], tracking=TRACK)
        q = fp.requests[0] if fp.requests else {"form": {}, "headers": {}}
        t.eq(q["form"], {"To": "+15005550100", "MessagingServiceSid": "MG0123",
                         "Body": "Hello from Herald"}, "MessagingServiceSid, no StatusCallback")
        t.ok(q["headers"].get("authorization", "").endswith(
            base64.b64encode(("%s:%s" % (SID, TOKEN)).encode()).decode()), "token read from auth_token_file")
    finally:
        os.unlink(f.name)
    fp.reset()
    rc, out, err = run(so, twilio_keys(fp), [smsg("v:0:2", "+15005550100")])
    t.ok(fp.requests and "StatusCallback" not in fp.requests[0]["form"],
         "no tracking base URL: no StatusCallback")

    # 5. Configuration errors never show the secret.
    rc, out, err = run(so, {"provider": "twilio", "auth_token": TOKEN, "from": FROM})
    t.ok(rc != 0 and "account_sid" in err and TOKEN not in err, "missing account_sid named", err)
    rc, out, err = run(so, {"provider": "twilio", "account_sid": SID, "from": FROM})
    t.ok(rc != 0 and "auth_token" in err, "missing auth_token named", err)
    rc, out, err = run(so, {"provider": "carrier-pigeon"})
    t.ok(rc != 0 and "provider" in err, "unknown provider refused", err)
    rc, out, err = run(so, {"provider": "twilio", "account_sid": SID, "from": FROM,
                            "auth_token_file": "/nonexistent/token"})
    t.ok(rc != 0 and "auth_token_file" in err and "/nonexistent/token" in err,
         "unreadable auth_token_file named", err)

# 6. Vonage legacy SMS: HTTP 200 with a status per message.
vrules = [
    {"match": "to=15005550301", "status": 200, "body": {"message-count": "1", "messages": [
        {"status": "1", "error-text": "Throughput Rate Exceeded - please wait [ 30 ] and retry"}]}},
    {"match": "to=15005550302", "status": 200, "body": {"message-count": "1", "messages": [
        {"status": "2", "error-text": "Missing from param"}]}},
    {"match": "to=15005550303", "status": 200, "body": {"message-count": "1", "messages": [
        {"status": "4", "error-text": "Bad Credentials"}]}},
    {"match": "to=15005550304", "status": 200, "body": {"message-count": "1", "messages": [
        {"status": "7", "error-text": "Number barred"}]}},
    {"match": "to=15005550305", "status": 200, "body": {"message-count": "1", "messages": [
        {"status": "5", "error-text": "Internal Error"}]}},
    {"match": "to=15005550306", "status": 200, "body": {"message-count": "2", "messages": [
        {"status": "0", "message-id": "0A0000001234567A"},
        {"status": "0", "message-id": "0A0000001234567B"}]}},
]
with FakeProvider(rules=vrules) as fp:
    vk = {"provider": "vonage", "base_url": fp.url + "/", "api_key": "abcd1234",
          "api_secret": "vsecret-XYZZY", "from": "Herald"}
    msgs = [smsg("vo:0:ok", "+15005550300"), smsg("vo:0:uni", "+15005550300", "Привет"),
            smsg("vo:0:thr", "+15005550301"), smsg("vo:0:miss", "+15005550302"),
            smsg("vo:0:cred", "+15005550303"), smsg("vo:0:barred", "+15005550304"),
            smsg("vo:0:int", "+15005550305"), smsg("vo:0:multi", "+15005550306", "m" * 200)]
    rc, out, err = run(so, vk, msgs, batch=10)
    r = by_key(out)
    st = {k: v["status"] for k, v in r.items()}
    forms = {q["form"].get("client-ref"): q for q in fp.requests}
    q = forms.get("vo:0:ok", {"form": {}, "path": None})
    t.eq(q.get("path"), "/sms/json", "POST /sms/json (trailing slash of base_url dropped)")
    t.eq(q["form"], {"api_key": "abcd1234", "api_secret": "vsecret-XYZZY", "from": "Herald",
                     "to": "15005550300", "text": "Hello from Herald", "client-ref": "vo:0:ok"},
         "vonage form fields (to without '+')")
    t.eq(forms.get("vo:0:uni", {"form": {}})["form"].get("type"), "unicode",
         "non-GSM text sent as type=unicode")
    t.eq(st.get("vo:0:ok"), "sent", "status 0: sent")
    t.ok(r.get("vo:0:ok", {}).get("provider_id", "").startswith("VG"), "message-id kept")
    t.eq(st.get("vo:0:thr"), "retry", "status 1 (throttled): retry")
    t.eq(st.get("vo:0:miss"), "rejected", "status 2: rejected")
    t.ok("Missing from param" in r.get("vo:0:miss", {}).get("error", ""), "error-text kept")
    t.eq(st.get("vo:0:cred"), "channel_error", "status 4 (bad credentials): channel error")
    t.eq(st.get("vo:0:barred"), "invalid_address", "status 7 (barred): invalid address")
    t.eq(st.get("vo:0:int"), "retry", "status 5 (internal): retry")
    t.eq((st.get("vo:0:multi"), r.get("vo:0:multi", {}).get("provider_id")),
         ("sent", "0A0000001234567A"), "multipart: sent, first part's id")
    t.ok("XYZZY" not in json.dumps(out) and "XYZZY" not in err, "api_secret in no result")

# 7. Inbound: recorded Twilio callbacks, signed with the auth token.
URL = TRACK + "/inbound/sms-main/status"
RURL = TRACK + "/inbound/sms-main/reply"
keys = {"provider": "twilio", "account_sid": SID, "auth_token": TOKEN, "from": FROM}


def inbound(fixture, url, sig=True, method="POST", tamper=None):
    fn = os.path.join(HERE, "fixtures", fixture)
    body = open(fn).read()
    hdrs = []
    if sig:
        hdrs = ["X-Twilio-Signature: " + (sig if isinstance(sig, str) else twilio_sig(TOKEN, url, body))]
    if tamper:
        tmp = tempfile.NamedTemporaryFile("w", delete=False)
        tmp.write(tamper(body))
        tmp.close()
        fn = tmp.name
    try:
        rc, out, err = run(so, keys, name="sms-main", inbound=(method, url, fn), headers=hdrs)
    finally:
        if tamper:
            os.unlink(fn)
    resp = next((o["response"] for o in out if "response" in o), {})
    events = [o["event"] for o in out if "event" in o]
    return resp, events


resp, ev = inbound("twilio-status-delivered.form", URL)
t.eq(resp.get("status"), 200, "delivered callback: 200")
t.eq([(e["type"], e["provider_id"], e["address"]) for e in ev],
     [("delivered", "SM5d1a5c0e7f3e4d1a9c7b2f0e1d2c3b4a", "+15005550100")],
     "delivered event with the message SID and the recipient")
resp, ev = inbound("twilio-status-undelivered.form", URL)
t.eq([(e["type"], json.loads(e["detail"] or "{}")) for e in ev],
     [("failed", {"status": "undelivered", "error_code": "30003"})],
     "undelivered: failed event with the error code")
resp, ev = inbound("twilio-status-sent.form", URL)
t.eq((resp.get("status"), ev), (200, []), "intermediate status: acknowledged, no event")
resp, ev = inbound("twilio-status-delivered.form", URL, sig="bm90IGEgc2lnbmF0dXJl")
t.eq((resp.get("status"), ev), (403, []), "bad signature: 403, no event")
resp, ev = inbound("twilio-status-delivered.form", URL, sig=False)
t.eq((resp.get("status"), ev), (403, []), "no signature: 403, no event")
resp, ev = inbound("twilio-status-delivered.form", URL,
                   tamper=lambda b: b.replace("delivered", "undelivered"))
t.eq((resp.get("status"), ev), (403, []), "tampered body: 403, no event")
resp, ev = inbound("twilio-status-delivered.form", URL + "x")
t.eq((resp.get("status"), len(ev)), (200, 1), "signature covers the URL given (query strings included)")
resp, ev = inbound("twilio-status-delivered.form", URL, sig=twilio_sig(TOKEN, URL + "x", open(
    os.path.join(HERE, "fixtures", "twilio-status-delivered.form")).read()))
t.eq(resp.get("status"), 403, "signature for another URL: 403")

for fixture, want, kw in [("twilio-reply-stop.form", "unsubscribed", "STOP"),
                          ("twilio-reply-unsubscribe.form", "unsubscribed", "UNSUBSCRIBE"),
                          ("twilio-reply-cancel.form", "unsubscribed", "CANCEL"),
                          ("twilio-reply-end.form", "unsubscribed", "END"),
                          ("twilio-reply-quit.form", "unsubscribed", "QUIT"),
                          ("twilio-reply-start.form", "resubscribed", "START"),
                          ("twilio-reply-advanced-optout.form", "unsubscribed", "STOP")]:
    resp, ev = inbound(fixture, RURL)
    got = [(e["type"], e["address"], json.loads(e["detail"] or "{}").get("keyword")) for e in ev]
    addr = "+15005550198" if "advanced" in fixture else "+15005550199"
    t.eq(got, [(want, addr, kw)], "%s: %s %s" % (fixture, want, kw))
t.ok(resp.get("status") == 200 and resp.get("content_type") == "text/xml"
     and "<Response></Response>" in resp.get("body", ""), "reply answered with empty TwiML")
resp, ev = inbound("twilio-reply-text-stop-sentence.form", RURL)
t.eq([(e["type"], json.loads(e["detail"])["body"]) for e in ev],
     [("replied", "Stop sending me these, thanks")], "a sentence with STOP in it is a reply, not an opt-out")
resp, ev = inbound("twilio-reply-text-utf8.form", RURL)
t.eq([(e["type"], json.loads(e["detail"])["body"]) for e in ev],
     [("replied", "Danke! 👍")], "UTF-8 reply kept")
resp, ev = inbound("twilio-reply-stop.form", RURL, method="GET")
t.eq((resp.get("status"), ev), (405, []), "GET refused")

t.done()
