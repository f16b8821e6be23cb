#!/usr/bin/python3
"""bench/serve/triggers.py: how fast herald serve turns events into
journeys, and what a big timer queue costs it in memory.  Run on demand
only (never by make check):

    /usr/bin/python3 bench/serve/triggers.py [BUILDDIR]   (default: . or $HERALD_BUILDDIR)

Environment: N (events, default 100000), ROUNDS (default 3), TIMERS
(pending steps for the memory figure, default 1000000; 0 skips it).

1. Throughput.  N customers, a campaign triggered by `cart_abandoned` with
   delay = 0s into the outbox plugin.  N events are POSTed to /events
   (keep-alive, requests under the 64 KiB limit); the figure is the time
   from the first request to every journey's first message recorded sent.
   Its peer, measured in the same round on the same customers: `herald run`
   of the same campaign without its [trigger] (the batch path: planning,
   rendering, the outbox and the plugin, without events or timers).
   Medians of ROUNDS, and their ratio.
2. Memory.  TIMERS customers and as many events imported with a delay of a
   day: serve's peak RSS (VmHWM) with the queue empty, then after it has
   queued every one of them (they all stay pending)."""
import http.client
import json
import os
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time

BUILD = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else os.environ.get("HERALD_BUILDDIR", "."))
HERALD = os.path.join(BUILD, "herald")
PLUGDIR = os.path.join(BUILD, "plugins", ".libs")
N = int(os.environ.get("N", "100000"))
ROUNDS = int(os.environ.get("ROUNDS", "3"))
TIMERS = int(os.environ.get("TIMERS", "1000000"))
TOKEN = "bench-events-token-0123456789"
for f in (HERALD, os.path.join(PLUGDIR, "outbox.so")):
    if not os.path.exists(f):
        sys.exit("missing %s (build first)" % f)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def setup(d, port, triggered_delay):
    with open(os.path.join(d, "herald.ini"), "w") as f:
        f.write("""[store]
path = %(d)s/herald.db
[plugins]
dir = %(plug)s
[tracking]
secret = bench-secret-0123456789abcdef
listen = 127.0.0.1:%(port)d
events_token = %(token)s
[channel.email]
plugin = outbox
dir = %(d)s/out
from = Shop <news@shop.example>
""" % {"d": d, "plug": PLUGDIR, "port": port, "token": TOKEN})
    os.makedirs(os.path.join(d, "tpl"))
    with open(os.path.join(d, "tpl", "email.subject.liquid"), "w") as f:
        f.write("Your {{ event.item | default: 'cart' }} is waiting, {{ customer.name }}")
    with open(os.path.join(d, "tpl", "email.text.liquid"), "w") as f:
        f.write("Hello {{ customer.name }}, you left {{ event.item | default: 'it' }}.\n")
    base = "[campaign]\nid = %s\ntemplates = tpl\nchannels = email\nretry_horizon = 0s\n"
    with open(os.path.join(d, "cart.ini"), "w") as f:
        f.write(base % "cart" + "[trigger]\nevent = cart_abandoned\ndelay = %s\n" % triggered_delay)
    with open(os.path.join(d, "batch.ini"), "w") as f:
        f.write(base % "batch")


def customers(d, n):
    path = os.path.join(d, "customers.jsonl")
    with open(path, "w") as f:
        for i in range(n):
            f.write('{"id":"c%07d","email":"c%07d@example.com","consent":{"email":true},'
                    '"attributes":{"name":"Customer %d"}}\n' % (i, i, i))
    return path


def herald(d, *args):
    p = subprocess.run([HERALD, "-c", os.path.join(d, "herald.ini")] + list(args),
                       capture_output=True, text=True)
    if p.returncode != 0:
        sys.exit("herald %s: %s" % (" ".join(args), p.stderr))
    return p.stdout


def start_serve(d, port, *campaigns):
    p = subprocess.Popen([HERALD, "-c", os.path.join(d, "herald.ini"), "serve"] + list(campaigns),
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    for _ in range(400):
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            c.request("GET", "/healthz")
            if c.getresponse().status == 200:
                return p
        except OSError:
            time.sleep(0.05)
    sys.exit("serve did not start: %s" % p.stderr.read().decode())


def stop(p):
    p.send_signal(signal.SIGTERM)
    p.communicate(timeout=60)


def sent(d, campaign):
    db = sqlite3.connect(os.path.join(d, "herald.db"), timeout=30)
    n = db.execute("SELECT count(*) FROM outbox WHERE campaign = ? AND state = 'sent'",
                   (campaign,)).fetchone()[0]
    db.close()
    return n


def post_events(port, n, at):
    """N cart_abandoned events in requests just under 64 KiB."""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    body, requests = [], 0

    def flush():
        nonlocal body, requests
        c.request("POST", "/events", "".join(body).encode(),
                  {"Authorization": "Bearer " + TOKEN})
        r = c.getresponse()
        r.read()
        if r.status != 200:
            sys.exit("POST /events: %d" % r.status)
        body, requests = [], requests + 1
    size = 0
    for i in range(n):
        line = ('{"customer":"c%07d","type":"cart_abandoned","at":"%s",'
                '"properties":{"item":"item %d"}}\n' % (i, at, i))
        if size + len(line) > 60000:
            flush()
            size = 0
        body.append(line)
        size += len(line)
    if body:
        flush()
    return requests


def vmhwm(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


def iso_now():
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


# ---- 1. throughput -----------------------------------------------------------
trig, batch = [], []
for rnd in range(ROUNDS):
    d = tempfile.mkdtemp(prefix="herald-bench-triggers.")
    try:
        port = free_port()
        setup(d, port, "0s")
        herald(d, "customers", "import", customers(d, N))
        # The batch peer first, on the same customers and store.
        t0 = time.monotonic()
        herald(d, "run", os.path.join(d, "batch.ini"))
        batch.append(time.monotonic() - t0)
        if sent(d, "batch") != N:
            sys.exit("batch: %d of %d sent" % (sent(d, "batch"), N))
        p = start_serve(d, port, os.path.join(d, "cart.ini"))
        t0 = time.monotonic()
        reqs = post_events(port, N, iso_now())
        while sent(d, "cart") < N:
            if p.poll() is not None:
                sys.exit("serve died: %s" % p.stderr.read().decode())
            time.sleep(0.05)
        trig.append(time.monotonic() - t0)
        stop(p)
        print("round %d: %d events in %d requests, every journey's message sent in %.2f s; "
              "herald run of the same campaign %.2f s" % (rnd + 1, N, reqs, trig[-1], batch[-1]),
              flush=True)
    finally:
        shutil.rmtree(d, ignore_errors=True)
mt, mb = statistics.median(trig), statistics.median(batch)
print("triggers: %d events to %d sent messages: median %.2f s (%.0f journeys/s); "
      "herald run of the same campaign: median %.2f s (%.0f messages/s); ratio %.2f"
      % (N, N, mt, N / mt, mb, N / mb, (N / mt) / (N / mb)))

# ---- 2. memory with a big timer queue --------------------------------------
if TIMERS:
    d = tempfile.mkdtemp(prefix="herald-bench-timers.")
    try:
        port = free_port()
        setup(d, port, "1d")
        herald(d, "customers", "import", customers(d, TIMERS))
        p = start_serve(d, port, os.path.join(d, "cart.ini"))
        time.sleep(1)
        empty = vmhwm(p.pid)
        at = iso_now()
        path = os.path.join(d, "events.jsonl")
        with open(path, "w") as f:
            for i in range(TIMERS):
                f.write('{"customer":"c%07d","type":"cart_abandoned","at":"%s",'
                        '"properties":{"item":"item %d"}}\n' % (i, at, i))
        t0 = time.monotonic()
        herald(d, "events", "import", path)
        while True:
            db = sqlite3.connect(os.path.join(d, "herald.db"), timeout=30)
            n = db.execute("SELECT count(*) FROM timers WHERE state = 'waiting'").fetchone()[0]
            db.close()
            if n >= TIMERS or p.poll() is not None:
                break
            time.sleep(0.5)
        queued = time.monotonic() - t0
        full = vmhwm(p.pid)
        stop(p)
        print("timers: %d pending steps queued in %.1f s (import included); serve's peak RSS "
              "%.1f MiB with them, %.1f MiB with an empty queue" % (n, queued, full / 1024,
                                                                    empty / 1024))
    finally:
        shutil.rmtree(d, ignore_errors=True)
