"""tests/http/fakeprovider.py: a fake SMS/push/webhook provider for the HTTP
plugin tests (Python stdlib only).

It listens on 127.0.0.1 on a free port, speaks enough of each provider's wire
format (Twilio Messages API, Vonage legacy SMS, Google OAuth token endpoint,
FCM HTTP v1, APNs, plain webhooks), records every request, and answers by
rules so a test can script 429 + Retry-After, 500, permanent errors, dead
tokens or no answer at all.  It never reaches beyond loopback.

Use from a test:
    with FakeProvider(rules=[...]) as fp:
        ... fp.url ... fp.requests ...
Or standalone (manual runs): python3 fakeprovider.py [--rules FILE]
    [--port-file FILE] [--log FILE] [--timeout SECONDS]

A rule is a dict; the first that matches answers:
    match:   substring searched in "PATH\\nBODY" (BODY also URL-decoded)
    path:    path prefix the request must have
    header:  [name, substring] a request header must contain
    times:   how many requests it answers (default: all)
    status, headers (dict), body (str, or dict/list sent as JSON)
    delay:   seconds to wait before answering
    hang:    seconds to hold the connection, then close it without answer
    reset:   true: reset the connection (RST) instead of answering
    truncate: N: answer the status and headers announcing the body's
             length, send its first N bytes, and close
"""
import hashlib
import http.server
import json
import socket
import socketserver
import struct
import sys
import threading
import time
import urllib.parse


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"   # keep-alive, so connection reuse shows

    def log_message(self, fmt, *args):   # quiet: TAP owns stdout
        pass

    def _handle(self):
        fp = self.server.fp
        n = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(n) if n else b""
        body = raw.decode("utf-8", "replace")
        parsed = urllib.parse.urlsplit(self.path)
        req = {
            "method": self.command,
            "path": parsed.path,
            "query": parsed.query,
            "headers": {k.lower(): v for k, v in self.headers.items()},
            "header_list": list(self.headers.items()),
            "body": body,
            "raw": raw,
            "conn": self.client_address[1],
            "t": time.monotonic(),
        }
        ctype = req["headers"].get("content-type", "")
        if ctype.startswith("application/x-www-form-urlencoded"):
            req["form"] = dict(urllib.parse.parse_qsl(body, keep_blank_values=True))
        elif ctype.startswith("application/json"):
            try:
                req["json"] = json.loads(body)
            except ValueError:
                req["json"] = None
        with fp.lock:
            fp.requests.append(req)
            fp.in_flight += 1
            fp.max_in_flight = max(fp.max_in_flight, fp.in_flight)
            rule = fp._pick(req)
            if fp.log:
                rec = {k: v for k, v in req.items() if k != "raw"}
                fp.log.write(json.dumps(rec) + "\n")
                fp.log.flush()
        counted = True
        try:
            if rule and rule.get("hang"):
                time.sleep(rule["hang"])
                self.close_connection = True
                return
            if rule and rule.get("reset"):
                # SO_LINGER 0: close sends RST, as a crashed peer would.
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                           struct.pack("ii", 1, 0))
                self.close_connection = True
                return
            if rule and rule.get("delay"):
                time.sleep(rule["delay"])
            if rule and "status" in rule:
                status = rule["status"]
                headers = dict(rule.get("headers", {}))
                rbody = rule.get("body", "")
                if not isinstance(rbody, str):
                    rbody = json.dumps(rbody)
                    headers.setdefault("Content-Type", "application/json")
            else:
                status, headers, rbody = fp._default(req)
            data = rbody.encode()
            # Out of flight before the answer leaves: the client may start
            # its next request the moment it has read this one.
            with fp.lock:
                fp.in_flight -= 1
                counted = False
            self.send_response(status)
            for k, v in headers.items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if rule and "truncate" in rule:
                self.wfile.write(data[:rule["truncate"]])
                self.wfile.flush()
                self.close_connection = True
                return
            self.wfile.write(data)
        finally:
            if counted:
                with fp.lock:
                    fp.in_flight -= 1

    do_POST = _handle
    do_GET = _handle
    do_PUT = _handle


class _Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128


class FakeProvider:
    def __init__(self, rules=None, log=None):
        self.rules = [dict(r) for r in (rules or [])]
        self.requests = []
        self.lock = threading.Lock()
        self.in_flight = 0
        self.max_in_flight = 0
        self.counter = 0
        self.log = log
        self.server = _Server(("127.0.0.1", 0), _Handler)
        self.server.fp = self
        self.port = self.server.server_address[1]
        self.url = "http://127.0.0.1:%d" % self.port
        self.thread = None

    def start(self):
        self.thread = threading.Thread(target=self.server.serve_forever,
                                       kwargs={"poll_interval": 0.05},
                                       daemon=True)
        self.thread.start()
        return self

    def stop(self):
        if self.thread:
            self.server.shutdown()
            self.thread = None
        self.server.server_close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def wait_idle(self, timeout=10):
        """Wait until no request is being answered (a hang rule may still
        hold one from an earlier case)."""
        end = time.monotonic() + timeout
        while self.in_flight and time.monotonic() < end:
            time.sleep(0.02)

    def reset(self, rules=None):
        self.wait_idle()
        with self.lock:
            self.requests = []
            self.max_in_flight = 0
            if rules is not None:
                self.rules = [dict(r) for r in rules]

    def _pick(self, req):
        hay = req["path"] + "\n" + req["body"]
        hay2 = urllib.parse.unquote_plus(hay)
        for r in self.rules:
            if r.get("times", 1) <= 0:
                continue
            if "path" in r and not req["path"].startswith(r["path"]):
                continue
            if "match" in r and r["match"] not in hay and r["match"] not in hay2:
                continue
            if "header" in r:
                name, sub = r["header"]
                if sub not in req["headers"].get(name.lower(), ""):
                    continue
            if "times" in r:
                r["times"] -= 1
            return r
        return None

    def _default(self, req):
        """The provider's success answer for a request no rule took."""
        self.counter += 1
        p = req["path"]
        h = hashlib.sha1((p + req["body"]).encode()).hexdigest()
        js = {"Content-Type": "application/json"}
        if p.startswith("/2010-04-01/Accounts/") and p.endswith("/Messages.json"):
            f = req.get("form", {})
            return 201, js, json.dumps({
                "sid": "SM" + h[:32], "status": "queued",
                "to": f.get("To"), "from": f.get("From"), "body": f.get("Body")})
        if p == "/sms/json":
            f = req.get("form", {})
            return 200, js, json.dumps({"message-count": "1", "messages": [{
                "to": f.get("to", ""), "message-id": "VG" + h[:14],
                "status": "0", "remaining-balance": "10.0",
                "message-price": "0.05", "network": "23410"}]})
        if p.endswith("/token"):
            return 200, js, json.dumps({
                "access_token": "ya29.fake-%d" % self.counter,
                "expires_in": 3599, "token_type": "Bearer"})
        if p.startswith("/v1/projects/") and p.endswith("/messages:send"):
            proj = p.split("/")[3]
            return 200, js, json.dumps(
                {"name": "projects/%s/messages/0:%s" % (proj, h[:16])})
        if p.startswith("/3/device/"):
            return 200, {"apns-id": req["headers"].get("apns-id", h[:8])}, ""
        return 200, {"Content-Type": "text/plain"}, "ok"


def main(argv):
    import argparse
    ap = argparse.ArgumentParser()
    ap.add_argument("--rules")
    ap.add_argument("--port-file")
    ap.add_argument("--log")
    ap.add_argument("--timeout", type=float, default=300)
    a = ap.parse_args(argv)
    rules = json.load(open(a.rules)) if a.rules else []
    log = open(a.log, "a") if a.log else None
    fp = FakeProvider(rules, log).start()
    if a.port_file:
        with open(a.port_file + ".tmp", "w") as f:
            f.write("%d\n" % fp.port)
        import os
        os.rename(a.port_file + ".tmp", a.port_file)
    else:
        print(fp.port, flush=True)
    try:
        time.sleep(a.timeout)   # hard time limit
    except KeyboardInterrupt:
        pass
    fp.stop()


if __name__ == "__main__":
    main(sys.argv[1:])
