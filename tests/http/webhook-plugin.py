"""tests/http/webhook-plugin.py: the webhook plugin against a loopback
receiver.  Signatures are checked with an independent implementation
(Python's hmac), including the Standard Webhooks test vector."""
import base64
import hashlib
import hmac
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fakeprovider import FakeProvider          # noqa: E402
from httptest import Tap, require, run, message, by_key   # noqa: E402

VEC_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
VEC_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
VEC_TS = "1614265330"
VEC_BODY = '{"test": 2432232314}'
VEC_SIG = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
SECRET2 = "whsec_" + base64.b64encode(bytes(range(32))).decode()


def sign(secret, msg_id, ts, body):
    key = base64.b64decode(secret[len("whsec_"):])
    mac = hmac.new(key, ("%s.%s.%s" % (msg_id, ts, body)).encode(), hashlib.sha256)
    return "v1," + base64.b64encode(mac.digest()).decode()


def verify(secrets, headers, body, tolerance=300, now=None):
    """Standard Webhooks verification, written from the spec."""
    msg_id = headers["webhook-id"]
    ts = headers["webhook-timestamp"]
    now = time.time() if now is None else now
    if abs(now - int(ts)) > tolerance:
        return False
    got = headers["webhook-signature"].split(" ")
    for s in secrets:
        want = sign(s, msg_id, ts, body)
        if any(hmac.compare_digest(want, g) for g in got):
            return True
    return False


def wmsg(key, to, body='{"hello":"world"}', **kw):
    return message(key, to, {"webhook.body": body}, "webhook", **kw)


t = Tap(time_limit=120)
so = require("webhook")

# The Python signer agrees with the spec's test vector before it judges us.
t.eq(sign(VEC_SECRET, VEC_ID, VEC_TS, VEC_BODY), VEC_SIG,
     "independent signer reproduces the Standard Webhooks test vector")

BASE_RULES = [
        {"path": "/gone", "status": 410, "body": "gone"},
        {"path": "/busy", "status": 429, "headers": {"Retry-After": "7"}, "body": "slow down"},
        {"path": "/boom", "status": 500, "body": "internal"},
        {"path": "/bad", "status": 400, "body": "bad payload"},
        {"path": "/moved", "status": 302, "headers": {"Location": "http://example.invalid/"}},
        {"path": "/nocontent", "status": 204},
        {"path": "/slow", "hang": 1.5},
        {"path": "/reset", "reset": True},
        {"path": "/cut", "status": 200, "body": "accepted, all of it", "truncate": 5},
        {"path": "/unavailable", "status": 503, "headers": {"Retry-After": "120"}},
        ]
with FakeProvider(rules=BASE_RULES) as fp:
    # 1. The test vector through the plugin: fixed time, key and body.
    rc, out, err = run(so, {"allow_private": "yes", "secret": VEC_SECRET},
                       [wmsg(VEC_ID, fp.url + "/hook", VEC_BODY)],
                       env={"HERALD_FAKE_NOW": VEC_TS})
    t.eq(rc, 0, "plugin-run exits 0")
    t.eq([r["status"] for r in out], ["sent"], "vector message sent")
    req = fp.requests[0] if fp.requests else {"headers": {}, "body": ""}
    h = req["headers"]
    t.eq(req.get("method"), "POST", "method is POST")
    t.eq(req.get("path"), "/hook", "path is the customer's URL path")
    t.eq(h.get("content-type"), "application/json", "content-type")
    t.eq(h.get("webhook-id"), VEC_ID, "webhook-id is the message key")
    t.eq(h.get("webhook-timestamp"), VEC_TS, "webhook-timestamp")
    t.eq(h.get("webhook-signature"), VEC_SIG, "signature equals the PROTOCOLS.md test vector")
    t.eq(req.get("body"), VEC_BODY, "body sent byte for byte")
    t.ok("expect" not in h, "no Expect: 100-continue")
    t.eq(out[0].get("provider_id") if out else None, VEC_ID, "provider_id is the webhook-id")

    # 2. Rotation: two secrets, two signatures, each verifies alone.
    fp.reset()
    body = '{"order":{"id":42,"total":"9.99"},"name":"Zoë"}'
    rc, out, err = run(so, {"allow_private": "yes", "secret": VEC_SECRET + " " + SECRET2},
                       [wmsg("c1:0:alice", fp.url + "/hook", body)])
    h = fp.requests[0]["headers"] if fp.requests else {}
    sigs = h.get("webhook-signature", "").split(" ")
    t.eq(len(sigs), 2, "two signatures during rotation")
    t.ok(verify([VEC_SECRET], h, fp.requests[0]["body"]), "verifies with the old secret")
    t.ok(verify([SECRET2], h, fp.requests[0]["body"]), "verifies with the new secret")
    t.ok(abs(int(h.get("webhook-timestamp", 0)) - time.time()) < 60, "timestamp is now")
    t.eq(fp.requests[0]["raw"], body.encode(), "UTF-8 body sent byte for byte")
    t.ok(not verify([VEC_SECRET], dict(h, **{"webhook-id": "c1:0:bob"}), fp.requests[0]["body"]),
         "signature binds the id")

    # 3. A retry carries the same webhook-id, signed again for its timestamp.
    fp.reset()
    rc, out, err = run(so, {"allow_private": "yes", "secret": SECRET2},
                       [wmsg("c1:0:carol", fp.url + "/hook", attempt=1)],
                       env={"HERALD_FAKE_NOW": "1700000000"})
    rc, out, err = run(so, {"allow_private": "yes", "secret": SECRET2},
                       [wmsg("c1:0:carol", fp.url + "/hook", attempt=2)],
                       env={"HERALD_FAKE_NOW": "1700000300"})
    ids = [r["headers"].get("webhook-id") for r in fp.requests]
    t.eq(ids, ["c1:0:carol", "c1:0:carol"], "same webhook-id on every attempt")
    t.ok(all(verify([SECRET2], r["headers"], r["body"], now=int(r["headers"]["webhook-timestamp"]))
             for r in fp.requests), "each attempt verifies")

    # 4. Classification of answers.
    fp.reset()
    dead_port = FakeProvider()      # bound then closed: connection refused
    dead_url = dead_port.url
    dead_port.stop()
    msgs = [
        wmsg("k:0:ok", fp.url + "/hook"),
        wmsg("k:0:nocontent", fp.url + "/nocontent"),
        wmsg("k:0:gone", fp.url + "/gone"),
        wmsg("k:0:busy", fp.url + "/busy"),
        wmsg("k:0:boom", fp.url + "/boom"),
        wmsg("k:0:bad", fp.url + "/bad"),
        wmsg("k:0:moved", fp.url + "/moved"),
        wmsg("k:0:slow", fp.url + "/slow"),
        wmsg("k:0:refused", dead_url + "/hook"),
        wmsg("k:0:reset", fp.url + "/reset"),
        wmsg("k:0:cut", fp.url + "/cut"),
        wmsg("k:0:unavailable", fp.url + "/unavailable"),
        wmsg("k:0:badjson", fp.url + "/hook", body='{"a":1,}'),
        wmsg("k:0:ftp", "ftp://127.0.0.1/x"),
        message("k:0:nobody", fp.url + "/hook", {"email.text": "x"}, "webhook"),
    ]
    rc, out, err = run(so, {"allow_private": "yes", "secret": SECRET2, "timeout_ms": "800"}, msgs)
    r = by_key(out)
    st = {k: v["status"] for k, v in r.items()}
    t.eq(st.get("k:0:ok"), "sent", "200 is sent")
    t.eq(st.get("k:0:nocontent"), "sent", "204 is sent")
    t.eq(st.get("k:0:gone"), "invalid_address", "410 on the customer's URL: address invalid")
    t.eq(st.get("k:0:busy"), "retry", "429 is retry")
    t.eq(r.get("k:0:busy", {}).get("retry_after_ms"), 7000, "Retry-After: 7 honoured")
    t.eq(st.get("k:0:boom"), "retry", "500 is retry")
    t.eq(st.get("k:0:bad"), "rejected", "400 is rejected")
    t.ok("400" in r.get("k:0:bad", {}).get("error", "") and "bad payload" in r["k:0:bad"]["error"],
         "rejection keeps the code and text", r.get("k:0:bad"))
    t.eq(st.get("k:0:moved"), "rejected", "302 is not followed and fails")
    t.eq(st.get("k:0:slow"), "retry", "no answer within timeout_ms is retry")
    t.eq(st.get("k:0:refused"), "retry", "connection refused is retry")
    t.eq(st.get("k:0:reset"), "retry", "a connection reset before any answer is retry")
    t.eq(st.get("k:0:cut"), "retry",
         "a 200 whose body is cut short is retry (what the receiver did is unknown: at least once)")
    t.eq((st.get("k:0:unavailable"), r.get("k:0:unavailable", {}).get("retry_after_ms")),
         ("retry", 120000), "503 with Retry-After: 120 is retry after 120 s")
    t.eq(st.get("k:0:badjson"), "rejected", "invalid JSON body is rejected")
    t.ok("not valid JSON" in r.get("k:0:badjson", {}).get("error", ""), "error says why")
    t.eq(st.get("k:0:ftp"), "invalid_address", "non-HTTP URL is an invalid address")
    t.eq(st.get("k:0:nobody"), "rejected", "missing webhook.body is rejected")
    paths = sorted(q["path"] for q in fp.requests)
    t.eq(paths, sorted(["/hook", "/nocontent", "/gone", "/busy", "/boom", "/bad",
                        "/moved", "/slow", "/reset", "/cut", "/unavailable"]),
         "nothing sent for the invalid body, the ftp URL or the missing part")

    # 4b. The JSON check before sending: RFC 8259, strictly.
    fp.reset()
    valid = ['{}', '[]', '0', '-0.5e+10', '"x"', 'true', 'false', 'null', ' {"a":[1,2,{"b":null}]}\n',
             '{"é":"ü €"}', '"\\u00e9\\n\\/"', '1E5', '[' * 500 + ']' * 500, '{"a":{"a":{}}}']
    invalid = ['', ' ', '{"a":1,}', '[1,]', '01', '1.', '.5', '+1', 'NaN', '{"a" 1}', '{a:1}',
               '"\\x"', '"unterminated', '[1] [2]', '"\\u12"', 'tru', '{"a":1}}', '"a\u0001b"',
               '[' * 600 + ']' * 600, '{"a":1', "{'a':1}", '[1 2]', '{"a":1,"b"}', '-', '1e']
    msgs = [wmsg("j:0:v%d" % i, fp.url + "/hook", b) for i, b in enumerate(valid)]
    msgs += [wmsg("j:0:i%d" % i, fp.url + "/hook", b) for i, b in enumerate(invalid)]
    rc, out, err = run(so, {"allow_private": "yes", "secret": SECRET2}, msgs, batch=100)
    r = by_key(out)
    bad_valid = [b for i, b in enumerate(valid) if r.get("j:0:v%d" % i, {}).get("status") != "sent"]
    bad_invalid = [b for i, b in enumerate(invalid) if r.get("j:0:i%d" % i, {}).get("status") != "rejected"]
    t.eq(bad_valid, [], "every valid JSON text is sent")
    t.eq(bad_invalid, [], "every invalid JSON text is rejected before sending")
    t.eq(len(fp.requests), len(valid), "only the valid ones reached the receiver")

    # 4c. Customer URLs may not lead to loopback, private or link-local
    # addresses unless allow_private = yes (SSRF guard); the channel's own
    # url is trusted.
    fp.reset()
    port = fp.port
    guarded = [("g:0:v4", "http://127.0.0.1:%d/hook" % port),
               ("g:0:name", "http://localhost:%d/hook" % port),
               ("g:0:hex", "http://0x7f000001:%d/hook" % port),
               ("g:0:v6", "http://[::1]:%d/hook" % port),
               ("g:0:mapped", "http://[::ffff:127.0.0.1]:%d/hook" % port),
               ("g:0:meta", "http://169.254.169.254/latest/meta-data/"),
               ("g:0:rfc1918", "http://10.1.2.3:%d/hook" % port),
               ("g:0:zero", "http://0.0.0.0:%d/hook" % port)]
    rc, out, err = run(so, {"secret": SECRET2, "timeout_ms": "2000"},
                       [wmsg(k, u) for k, u in guarded], batch=20)
    r = by_key(out)
    t.eq({k: r.get(k, {}).get("status") for k, _ in guarded},
         {k: "invalid_address" for k, _ in guarded},
         "loopback, private, link-local and unspecified addresses refused")
    t.ok("allow_private" in r.get("g:0:v4", {}).get("error", ""), "the error names the key",
         r.get("g:0:v4"))
    t.eq(len(fp.requests), 0, "no request reached the loopback receiver")
    rc, out, err = run(so, {"secret": SECRET2, "url": fp.url + "/hook"}, [wmsg("g:0:fixed", "x")])
    t.eq([o["status"] for o in out], ["sent"], "the channel's own url may be loopback")

    # 4d. Retry-After as an HTTP-date (RFC 9110 10.2.3), and a bogus delay
    # capped at 30 days.
    import email.utils
    fp.reset([{"path": "/date", "status": 503,
               "headers": {"Retry-After": email.utils.formatdate(time.time() + 120, usegmt=True)}},
              {"path": "/huge", "status": 429, "headers": {"Retry-After": "99999999999"}},
              {"path": "/junk", "status": 429, "headers": {"Retry-After": "soon"}}])
    rc, out, err = run(so, {"allow_private": "yes", "secret": SECRET2},
                       [wmsg("ra:0:date", fp.url + "/date"), wmsg("ra:0:huge", fp.url + "/huge"),
                        wmsg("ra:0:junk", fp.url + "/junk")], batch=3)
    r = by_key(out)
    t.ok(110000 <= r.get("ra:0:date", {}).get("retry_after_ms", 0) <= 121000,
         "HTTP-date Retry-After: about 120 s", r.get("ra:0:date"))
    t.eq(r.get("ra:0:huge", {}).get("retry_after_ms"), 30 * 86400 * 1000, "capped at 30 days")
    t.eq((r.get("ra:0:junk", {}).get("status"), r.get("ra:0:junk", {}).get("retry_after_ms")),
         ("retry", 0), "unparsable Retry-After: the core's backoff")

    # 5. Fixed url: 410 is the channel's problem, not the customer's.
    fp.reset(BASE_RULES)
    rc, out, err = run(so, {"allow_private": "yes", "secret": SECRET2, "url": fp.url + "/gone"},
                       [wmsg("k:0:fixed", "ignored-when-url-is-set")])
    t.eq([o["status"] for o in out], ["channel_error"], "410 on the channel's url: channel_error")

    # 6. Connection reuse and the concurrency cap.
    fp.reset([{"path": "/hook", "status": 200, "delay": 0.05}])
    msgs = [wmsg("k:0:c%d" % i, fp.url + "/hook") for i in range(24)]
    rc, out, err = run(so, {"allow_private": "yes", "secret": SECRET2, "concurrency": "3"}, msgs, batch=24)
    t.eq(sum(1 for o in out if o["status"] == "sent"), 24, "24 sent")
    t.ok(fp.max_in_flight <= 3, "never more than concurrency=3 in flight",
         fp.max_in_flight)
    t.ok(fp.max_in_flight >= 2, "requests do overlap", fp.max_in_flight)
    conns = len(set(q["conn"] for q in fp.requests))
    t.ok(conns <= 3, "connections reused (%d connections for 24 requests)" % conns)

    # 7. Rate: a token bucket at 20/s spaces 10 messages over ~0.45 s.
    fp.reset()
    msgs = [wmsg("k:0:r%d" % i, fp.url + "/hook") for i in range(10)]
    rc, out, err = run(so, {"allow_private": "yes", "secret": SECRET2, "rate": "20"}, msgs, batch=10)
    times = [q["t"] for q in fp.requests]
    span = max(times) - min(times) if times else 0
    t.ok(0.4 <= span < 2.0, "rate=20 spaces 10 requests over %.2f s" % span)

    # 8. Configuration errors, and secrets kept out of messages.
    rc, out, err = run(so, {}, [])
    t.ok(rc != 0 and "secret" in err, "no secret: open fails naming the key", err)
    rc, out, err = run(so, {"allow_private": "yes", "secret": "not-a-secret-XYZZY"}, [])
    t.ok(rc != 0 and "whsec_" in err, "malformed secret refused", err)
    t.ok("XYZZY" not in err, "the secret is not echoed in the error")
    rc, out, err = run(so, {"allow_private": "yes", "secret": SECRET2, "url": "file:///etc/passwd"}, [])
    t.ok(rc != 0 and "url" in err, "non-HTTP url refused", err)
    rc, out, err = run(so, {"allow_private": "yes", "secret": SECRET2, "concurrency": "0"}, [])
    t.ok(rc != 0 and "concurrency" in err, "concurrency=0 refused", err)
    with tempfile.NamedTemporaryFile("w", suffix=".secret", delete=False) as f:
        f.write(SECRET2 + "\n")
    try:
        fp.reset()
        rc, out, err = run(so, {"allow_private": "yes", "secret_file": f.name}, [wmsg("k:0:file", fp.url + "/hook")])
        t.ok(fp.requests and verify([SECRET2], fp.requests[0]["headers"], fp.requests[0]["body"]),
             "secret_file is read")
    finally:
        os.unlink(f.name)

t.done()
