"""tests/http/h2-plugin.py: HTTP/2 over TLS.  The push plugin (APNs) and
the webhook plugin against nginx with TLS and HTTP/2 on loopback, trusted
through ca_file: requests must travel as HTTP/2, multiplexed on one
connection.  Skips when nginx or openssl is missing."""
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from httptest import Tap, require, run, message, by_key, skip_all, free_port   # noqa: E402

NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if os.access("/usr/sbin/nginx", os.X_OK) else None)
OPENSSL = shutil.which("openssl")
if not NGINX or not OPENSSL:
    skip_all("nginx or openssl not found")
push_so = require("push")
wh_so = require("webhook")


def sh(*argv):
    return subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)


tmp = tempfile.mkdtemp(prefix="herald-h2-test.")
os.chmod(tmp, 0o755)
pidfile = os.path.join(tmp, "nginx.pid")


def stop_nginx():
    try:
        pid = int(open(pidfile).read())
        os.kill(pid, signal.SIGTERM)
        for _ in range(50):
            os.kill(pid, 0)
            time.sleep(0.05)
    except (OSError, ValueError):
        pass


t = Tap(time_limit=90)
try:
    cert, key = os.path.join(tmp, "cert.pem"), os.path.join(tmp, "key.pem")
    p = sh(OPENSSL, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
           "-nodes", "-keyout", key, "-out", cert, "-days", "2", "-subj", "/CN=localhost",
           "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1")
    ec = os.path.join(tmp, "apns.p8")
    sh(OPENSSL, "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", ec)
    port = free_port()
    log = os.path.join(tmp, "access.log")
    conf = os.path.join(tmp, "nginx.conf")
    open(conf, "w").write("""
worker_processes 1;
pid %(tmp)s/nginx.pid;
error_log %(tmp)s/error.log warn;
events { worker_connections 256; }
http {
  log_format h2 '$connection $server_protocol $request_method $uri $http_apns_topic $http_webhook_id';
  access_log %(tmp)s/access.log h2;
  client_body_temp_path %(tmp)s/body;
  server {
    listen 127.0.0.1:%(port)d ssl http2;
    ssl_certificate %(cert)s;
    ssl_certificate_key %(key)s;
    # Proxied so that nginx reads each request body: a bare "return" over
    # HTTP/2 resets the stream before the body is in, which no provider does.
    location / { proxy_pass http://127.0.0.1:%(back)d; proxy_http_version 1.1; }
  }
  server {
    listen 127.0.0.1:%(back)d;
    access_log off;
    location /3/device/ { add_header apns-id $http_apns_id; return 200; }
    location = /hook { return 204; }
  }
}
""" % {"tmp": tmp, "port": port, "back": free_port(), "cert": cert, "key": key})
    p = sh(NGINX, "-p", tmp, "-e", os.path.join(tmp, "error.log"), "-c", conf)
    t.ok(p.returncode == 0, "nginx with TLS and HTTP/2 started", p.stderr.decode())
    for _ in range(50):
        if os.path.exists(pidfile):
            break
        time.sleep(0.05)
    base = "https://localhost:%d" % port

    tokens = ["%064x" % (i + 1) for i in range(20)]
    msgs = [message("h2:0:c%d" % i, [{"type": "ios", "value": tok}],
                    {"push.title": "Hi", "push.body": "there"}, "push")
            for i, tok in enumerate(tokens)]
    rc, out, err = run(push_so, {"provider": "apns", "base_url": base, "ca_file": cert,
                                 "key_file": ec, "key_id": "K1", "team_id": "T1",
                                 "topic": "com.example.h2", "concurrency": "8"}, msgs, batch=20)
    t.eq([o["status"] for o in out], ["sent"] * 20, "20 APNs pushes sent over TLS", )
    t.ok(all(o["provider_id"] for o in out), "apns-id echoed back")
    # nginx writes its access log after it has answered: wait (30 s at
    # most) for the 20 lines instead of guessing how long that takes.
    def device_lines():
        try:
            return [l.split() for l in open(log).read().splitlines() if "/3/device/" in l]
        except OSError:
            return []
    end = time.monotonic() + 30
    while len(device_lines()) < 20 and time.monotonic() < end:
        time.sleep(0.05)
    lines = device_lines()
    t.eq(len(lines), 20, "20 requests reached nginx")
    t.eq(set(l[1] for l in lines), {"HTTP/2.0"}, "every request was HTTP/2")
    t.eq(len(set(l[0] for l in lines)), 1, "multiplexed on one connection")
    t.eq(set(l[4] for l in lines), {"com.example.h2"}, "apns-topic sent")

    rc, out, err = run(wh_so, {"secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "url": base + "/hook",
                               "ca_file": cert, "concurrency": "4"},
                       [message("wh:0:c%d" % i, "x", {"webhook.body": "{}"}, "webhook") for i in range(6)],
                       batch=6)
    t.eq([o["status"] for o in out], ["sent"] * 6, "webhooks sent over HTTP/2")

    rc, out, err = run(wh_so, {"secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "url": base + "/hook"},
                       [message("wh:0:untrusted", "x", {"webhook.body": "{}"}, "webhook")])
    t.eq([o["status"] for o in out], ["retry"], "without ca_file the self-signed server is not trusted")
    t.ok(out and ("certificate" in out[0]["error"] or "SSL" in out[0]["error"]),
         "the error says why", out)
    rc, out, err = run(wh_so, {"secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "url": base + "/hook",
                               "ca_file": os.path.join(tmp, "missing.pem")}, [])
    t.ok(rc != 0 and "ca_file" in err, "a missing ca_file is a configuration error", err)
finally:
    stop_nginx()
    shutil.rmtree(tmp, ignore_errors=True)

t.done()
