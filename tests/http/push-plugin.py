"""tests/http/push-plugin.py: the push plugin against a loopback fake FCM
(with its OAuth token endpoint) and APNs.  The JWTs it produces are
verified with OpenSSL's command line against keys generated here."""
import base64
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fakeprovider import FakeProvider          # noqa: E402
from httptest import Tap, require, run, message, by_key, skip_all   # noqa: E402

OPENSSL = shutil.which("openssl")
if not OPENSSL:
    skip_all("openssl command not found")
so = require("push")
t = Tap(time_limit=150)
tmp = tempfile.mkdtemp(prefix="herald-push-test.")


def sh(*argv, **kw):
    return subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30, **kw)


def b64url_decode(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def jwt_parts(jwt):
    h, c, sig = jwt.split(".")
    return json.loads(b64url_decode(h)), json.loads(b64url_decode(c)), (h + "." + c).encode(), b64url_decode(sig)


def der_from_raw(raw):
    def der_int(b):
        b = b.lstrip(b"\0") or b"\0"
        if b[0] & 0x80:
            b = b"\0" + b
        return b"\x02" + bytes([len(b)]) + b
    body = der_int(raw[:32]) + der_int(raw[32:])
    return b"\x30" + bytes([len(body)]) + body


def openssl_verify(pub, data, sig):
    d, s = os.path.join(tmp, "data"), os.path.join(tmp, "sig")
    open(d, "wb").write(data)
    open(s, "wb").write(sig)
    p = sh(OPENSSL, "dgst", "-sha256", "-verify", pub, "-signature", s, d)
    return p.returncode == 0 and b"Verified OK" in p.stdout


def uuid_of(key):
    b = bytearray(hashlib.sha256(key.encode()).digest()[:16])
    b[6] = (b[6] & 0x0F) | 0x80
    b[8] = (b[8] & 0x3F) | 0x80
    h = b.hex()
    return "%s-%s-%s-%s-%s" % (h[:8], h[8:12], h[12:16], h[16:20], h[20:])


def pmsg(key, tokens, title="Sale", body="25% off today", data=None, **kw):
    parts = {}
    if title is not None:
        parts["push.title"] = title
    if body is not None:
        parts["push.body"] = body
    if data is not None:
        parts["push.data"] = data if isinstance(data, str) else json.dumps(data)
    to = [{"type": p, "value": v} for p, v in tokens]
    return message(key, to, parts, "push", **kw)


try:
    rsa, rsa_pub = os.path.join(tmp, "rsa.pem"), os.path.join(tmp, "rsa.pub")
    ec, ec_pub = os.path.join(tmp, "AuthKey_ABC123DEFG.p8"), os.path.join(tmp, "ec.pub")
    ok = (sh(OPENSSL, "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", rsa).returncode == 0
          and sh(OPENSSL, "pkey", "-in", rsa, "-pubout", "-out", rsa_pub).returncode == 0
          and sh(OPENSSL, "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", ec).returncode == 0
          and sh(OPENSSL, "pkey", "-in", ec, "-pubout", "-out", ec_pub).returncode == 0)
    t.ok(ok, "test keys generated with openssl genpkey")

    with FakeProvider() as fp:
        sa = os.path.join(tmp, "service-account.json")
        json.dump({"type": "service_account", "project_id": "herald-test",
                   "private_key_id": "k1", "private_key": open(rsa).read(),
                   "client_email": "herald@herald-test.iam.gserviceaccount.com",
                   "token_uri": fp.url + "/token"}, open(sa, "w"))
        fcm = {"provider": "fcm", "base_url": fp.url, "service_account_file": sa}
        NOW = "1767225600"

        # 1. Token exchange and the exact FCM request.
        data = {"offer": "SPRING25", "discount": 25, "vip": True, "meta": {"a": [1, 2]}, "none": None}
        rc, out, err = run(so, fcm, [pmsg("spring:0:c1", [("android", "tokA")], data=data)],
                           env={"HERALD_FAKE_NOW": NOW})
        t.eq(rc, 0, "plugin-run exits 0")
        reqs = fp.requests
        t.eq([(q["method"], q["path"]) for q in reqs],
             [("POST", "/token"), ("POST", "/v1/projects/herald-test/messages:send")],
             "token exchange, then messages:send")
        tokf = reqs[0].get("form", {}) if reqs else {}
        t.eq(tokf.get("grant_type"), "urn:ietf:params:oauth:grant-type:jwt-bearer", "jwt-bearer grant")
        h, c, signed, sig = jwt_parts(tokf.get("assertion", "e30.e30.")) if tokf.get("assertion") else ({}, {}, b"", b"")
        t.eq(h, {"alg": "RS256", "typ": "JWT"}, "JWT header RS256")
        t.eq(c, {"iss": "herald@herald-test.iam.gserviceaccount.com",
                 "scope": "https://www.googleapis.com/auth/firebase.messaging",
                 "aud": fp.url + "/token", "iat": int(NOW), "exp": int(NOW) + 3600},
             "JWT claims iss, scope, aud = token URI, iat, exp = iat + 3600")
        t.ok(openssl_verify(rsa_pub, signed, sig), "RS256 signature verifies with openssl dgst")
        send = reqs[1] if len(reqs) > 1 else {"headers": {}, "json": None}
        t.eq(send["headers"].get("authorization"), "Bearer ya29.fake-1", "bearer token from the exchange")
        t.eq(send.get("json"), {"message": {
            "token": "tokA", "notification": {"title": "Sale", "body": "25% off today"},
            "data": {"offer": "SPRING25", "discount": "25", "vip": "true",
                     "meta": '{"a":[1,2]}', "none": ""}}},
            "FCM v1 body; data values as strings")
        t.eq([(o["status"], o["provider_id"], o["to_invalid"]) for o in out],
             [("sent", "projects/herald-test/messages/0:" + hashlib.sha1(
                 (send.get("path", "") + send.get("body", "")).encode()).hexdigest()[:16], [0])],
             "sent with the FCM message name")

        # 2. Token cached across batches; several tokens per customer.
        fp.reset([{"match": "tokDead", "status": 404, "body": {"error": {
                      "code": 404, "message": "Requested entity was not found.", "status": "NOT_FOUND",
                      "details": [{"@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError",
                                   "errorCode": "UNREGISTERED"}]}}},
                  {"match": "tokOther", "status": 403, "body": {"error": {
                      "code": 403, "message": "SenderId mismatch", "status": "PERMISSION_DENIED",
                      "details": [{"@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError",
                                   "errorCode": "SENDER_ID_MISMATCH"}]}}},
                  {"match": "tokQuota", "status": 429, "body": {"error": {
                      "code": 429, "status": "RESOURCE_EXHAUSTED", "message": "quota",
                      "details": [{"errorCode": "QUOTA_EXCEEDED"}]}}},
                  {"match": "tokBusy", "status": 503, "headers": {"Retry-After": "10"},
                   "body": {"error": {"code": 503, "status": "UNAVAILABLE", "message": "busy"}}},
                  {"match": "tokBad", "status": 400, "body": {"error": {
                      "code": 400, "status": "INVALID_ARGUMENT", "message": "Invalid value at 'message.data'",
                      "details": [{"errorCode": "INVALID_ARGUMENT"}]}}},
                  {"match": "tokHang", "hang": 1.5}])
        msgs = [pmsg("m:0:multi", [("android", "tokDead"), ("web", "tokB"), ("android", "tokOther"),
                                    ("ios", "apnsHexNotForFcm")]),
                pmsg("m:0:alldead", [("android", "tokDead"), ("android", "tokOther")]),
                pmsg("m:0:quota", [("android", "tokQuota")]),
                pmsg("m:0:busy", [("android", "tokBusy")]),
                pmsg("m:0:bad", [("android", "tokBad")]),
                pmsg("m:0:hang", [("android", "tokHang")]),
                pmsg("m:0:mixed", [("android", "tokBad"), ("android", "tokBusy")]),
                pmsg("m:0:iosonly", [("ios", "abcdef")]),
                pmsg("m:0:nodata", [("android", "tokC")], title=None, body=None),
                pmsg("m:0:baddata", [("android", "tokC")], data="[1,2]"),
                pmsg("m:0:big", [("android", "tokC")], body="x" * 5000)]
        rc, out, err = run(so, dict(fcm, timeout_ms="800"), msgs, batch=3)
        r = by_key(out)
        t.eq(sum(1 for q in fp.requests if q["path"] == "/token"), 1, "one token for every batch (cached)")
        t.eq((r.get("m:0:multi", {}).get("status"), r.get("m:0:multi", {}).get("to_invalid")),
             ("sent", [1, 0, 1, 0]), "several tokens: sent, UNREGISTERED and SENDER_ID_MISMATCH marked dead")
        t.eq(json.loads(r.get("m:0:multi", {}).get("detail") or "{}"), {"tokens": 3, "sent": 1, "invalid": 2},
             "detail counts tokens (the ios token is not this channel's)")
        t.eq((r.get("m:0:alldead", {}).get("status"), r.get("m:0:alldead", {}).get("to_invalid")),
             ("invalid_address", [1, 1]), "every token dead: invalid address")
        t.eq((r.get("m:0:quota", {}).get("status"), r.get("m:0:quota", {}).get("retry_after_ms")),
             ("retry", 60000), "QUOTA_EXCEEDED: retry after at least a minute")
        t.eq((r.get("m:0:busy", {}).get("status"), r.get("m:0:busy", {}).get("retry_after_ms")),
             ("retry", 10000), "UNAVAILABLE: retry, Retry-After honoured")
        t.eq(r.get("m:0:bad", {}).get("status"), "rejected", "INVALID_ARGUMENT: rejected")
        t.ok("INVALID_ARGUMENT" in r.get("m:0:bad", {}).get("error", ""), "keeps the error code", r.get("m:0:bad"))
        t.eq(r.get("m:0:hang", {}).get("status"), "retry", "no answer: retry")
        t.eq(r.get("m:0:mixed", {}).get("status"), "retry", "one rejected, one retryable: retry")
        t.eq(r.get("m:0:iosonly", {}).get("status"), "rejected", "no token for the channel's platforms: rejected")
        t.eq(r.get("m:0:nodata", {}).get("status"), "rejected", "no title, body or data: rejected")
        t.eq(r.get("m:0:baddata", {}).get("status"), "rejected", "push.data not an object: rejected")
        t.eq(r.get("m:0:big", {}).get("status"), "rejected", "payload over 4096 bytes: rejected")
        t.ok(not any("tokC" in q["body"] for q in fp.requests), "nothing sent for refused payloads")

        # 3. A plain 401 refreshes the token once and resends.
        fp.reset([{"header": ["authorization", "fake-"], "path": "/v1/", "times": 1, "status": 401,
                   "body": {"error": {"code": 401, "status": "UNAUTHENTICATED", "message": "expired"}}}])
        rc, out, err = run(so, fcm, [pmsg("a:0:1", [("android", "tokA")])])
        t.eq([q["path"] for q in fp.requests],
             ["/token", "/v1/projects/herald-test/messages:send", "/token",
              "/v1/projects/herald-test/messages:send"], "401: new token, one resend")
        t.ok(len(fp.requests) == 4 and fp.requests[1]["headers"]["authorization"]
             != fp.requests[3]["headers"]["authorization"], "resent with the new token")
        t.eq([o["status"] for o in out], ["sent"], "sent after the refresh")
        fp.reset([{"path": "/v1/", "status": 401, "body": {"error": {"code": 401, "status": "UNAUTHENTICATED"}}}])
        rc, out, err = run(so, fcm, [pmsg("a:0:2", [("android", "tokA")])])
        t.eq(([o["status"] for o in out], len(fp.requests)), (["channel_error"], 4),
             "401 again after the refresh: channel error, no loop")
        fp.reset([{"path": "/token", "status": 400, "body": {"error": "invalid_grant",
                                                             "error_description": "Invalid JWT Signature."}}])
        rc, out, err = run(so, fcm, [pmsg("a:0:3", [("android", "tokA")])])
        t.eq([o["status"] for o in out], ["channel_error"], "token endpoint refuses: channel error")
        t.ok(out and "invalid_grant" in out[0]["error"], "its error kept", out)
        fp.reset([{"path": "/token", "status": 503}])
        rc, out, err = run(so, fcm, [pmsg("a:0:4", [("android", "tokA")])])
        t.eq([o["status"] for o in out], ["retry"], "token endpoint down: retry")

        # 4. APNs.
        apns = {"provider": "apns", "base_url": fp.url, "key_file": ec, "key_id": "ABC123DEFG",
                "team_id": "TEAM123456", "topic": "com.example.app"}
        T1, T2, T3, T4 = "a1" * 32, "b2" * 32, "c3" * 32, "d4" * 32
        fp.reset([{"match": T2, "status": 410, "body": {"reason": "Unregistered", "timestamp": 1767225000000}},
                  {"match": T3, "status": 400, "body": {"reason": "BadDeviceToken"}},
                  {"match": T4, "status": 400, "body": {"reason": "PayloadEmpty"}}])
        rc, out, err = run(so, apns, [pmsg("spring:0:c9", [("ios", T1), ("ios", T2), ("ios", T3),
                                                            ("android", "fcmtok")],
                                           data={"deeplink": "app://offer/25", "aps": "ignored"}),
                                      pmsg("spring:0:c10", [("ios", T4)]),
                                      pmsg("spring:0:c11", [("ios", "not-hex!")])],
                           env={"HERALD_FAKE_NOW": NOW})
        r = by_key(out)
        q = next((q for q in fp.requests if T1 in q["path"]), {"headers": {}, "path": ""})
        t.eq(q.get("path"), "/3/device/" + T1, "POST /3/device/TOKEN")
        hd = q["headers"]
        t.eq((hd.get("apns-topic"), hd.get("apns-push-type"), hd.get("apns-priority")),
             ("com.example.app", "alert", "10"), "apns-topic, apns-push-type, apns-priority")
        t.eq(hd.get("apns-id"), uuid_of("spring:0:c9"), "apns-id is a UUID derived from the message key")
        t.eq(json.loads(q.get("body") or "{}"), {"aps": {"alert": {"title": "Sale", "body": "25% off today"},
                                                         "sound": "default"},
                                                 "deeplink": "app://offer/25"},
             "APNs payload: aps.alert plus custom keys")
        auth = hd.get("authorization", "")
        t.ok(auth.startswith("bearer "), "bearer provider token")
        try:
            h, c, signed, sig = jwt_parts(auth[7:])
        except Exception:
            h, c, signed, sig = {}, {}, b"", b""
        t.eq(h, {"alg": "ES256", "kid": "ABC123DEFG"}, "JWT header ES256 with kid")
        t.eq(c, {"iss": "TEAM123456", "iat": int(NOW)}, "JWT claims iss = team, iat")
        t.eq(len(sig), 64, "JWS signature is raw R||S (64 bytes), not DER")
        t.ok(openssl_verify(ec_pub, signed, der_from_raw(sig)), "ES256 signature verifies with openssl dgst")
        t.eq((r.get("spring:0:c9", {}).get("status"), r.get("spring:0:c9", {}).get("to_invalid"),
              r.get("spring:0:c9", {}).get("provider_id")),
             ("sent", [0, 1, 1, 0], uuid_of("spring:0:c9")),
             "410 Unregistered and BadDeviceToken marked dead; sent on the live token")
        t.eq(r.get("spring:0:c10", {}).get("status"), "rejected", "other 400: rejected")
        t.ok("PayloadEmpty" in r.get("spring:0:c10", {}).get("error", ""), "reason kept")
        t.eq((r.get("spring:0:c11", {}).get("status"), r.get("spring:0:c11", {}).get("to_invalid")),
             ("invalid_address", [1]), "non-hex token: dead without a request")
        t.eq(len(fp.requests), 4, "one request per iOS token; none for the android or non-hex one")
        ids = set(q["headers"].get("apns-id") for q in fp.requests if "/3/device/" in q["path"])
        t.eq(len(ids), 2, "one apns-id per message")

        fp.reset([{"match": T1, "times": 1, "status": 403, "body": {"reason": "ExpiredProviderToken"}},
                  {"match": T2, "status": 429, "headers": {"Retry-After": "5"}, "body": {"reason": "TooManyRequests"}},
                  {"match": T3, "status": 403, "body": {"reason": "InvalidProviderToken"}}])
        rc, out, err = run(so, dict(apns, push_type="background"),
                           [pmsg("b:0:1", [("ios", T1)], title=None, body=None, data={"sync": 1}),
                            pmsg("b:0:2", [("ios", T2)]), pmsg("b:0:3", [("ios", T3)])])
        r = by_key(out)
        q = next((q for q in fp.requests if T1 in q["path"]), {"headers": {}, "body": "{}"})
        t.eq((q["headers"].get("apns-push-type"), q["headers"].get("apns-priority"), json.loads(q["body"])),
             ("background", "5", {"aps": {"content-available": 1}, "sync": 1}), "background push: priority 5")
        t.eq(r.get("b:0:1", {}).get("status"), "sent", "ExpiredProviderToken: new JWT, resent, sent")
        t.eq(sum(1 for q in fp.requests if T1 in q["path"]), 2, "exactly one resend")
        t.eq((r.get("b:0:2", {}).get("status"), r.get("b:0:2", {}).get("retry_after_ms")), ("retry", 5000),
             "429: retry after Retry-After")
        t.eq(r.get("b:0:3", {}).get("status"), "channel_error", "InvalidProviderToken: channel error")

        # After 429/500/503 the next requests go on a new connection.
        fp.reset([{"match": T2, "status": 503, "body": {"reason": "ServiceUnavailable"}}])
        rc, out, err = run(so, apns, [pmsg("n:0:1", [("ios", T1)]), pmsg("n:0:2", [("ios", T1)]),
                                      pmsg("n:0:3", [("ios", T2)]), pmsg("n:0:4", [("ios", T1)])],
                           batch=1)
        conns = [q["conn"] for q in fp.requests]
        t.eq([o["status"] for o in out], ["sent", "sent", "retry", "sent"], "503: retry")
        t.ok(len(conns) == 4 and conns[0] == conns[1] == conns[2] != conns[3],
             "connection kept across batches, replaced after the 503", conns)

    # 5. Configuration errors.
    rc, out, err = run(so, {"provider": "apns", "key_file": rsa, "key_id": "K", "team_id": "T", "topic": "x"})
    t.ok(rc != 0 and "key_file" in err and "P-256" in err, "APNs refuses a non-P-256 key", err)
    rc, out, err = run(so, {"provider": "apns", "key_file": ec, "key_id": "K", "team_id": "T", "topic": "x",
                            "jwt_refresh_s": "600"})
    t.ok(rc != 0 and "jwt_refresh_s" in err, "JWT refresh under 20 minutes refused", err)
    rc, out, err = run(so, {"provider": "fcm", "service_account_file": ec})
    t.ok(rc != 0 and "service_account_file" in err, "FCM refuses a file that is not a service account", err)
    rc, out, err = run(so, {"provider": "fcm"})
    t.ok(rc != 0 and "service_account_file" in err, "FCM needs service_account_file", err)
    t.ok("PRIVATE KEY" not in err, "no key material in messages")
finally:
    shutil.rmtree(tmp, ignore_errors=True)

t.done()
