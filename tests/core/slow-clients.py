"""tests/core/slow-clients.py: herald serve keeps answering under a
slow-connection attack, and lets go of the slow connections.

1. One client address (127.0.0.2) opens 2,000 connections and sends one
   byte of a request head on each.  Meanwhile /healthz and /u/ answer
   127.0.0.1, and the server closes all 2,000 (those past the
   per-client limit at once, the rest when their head is overdue).
2. The per-client limit: 40 connections from 127.0.0.3, each sending a
   POST head, held open, then its body: exactly connections_per_client
   (32 by default) are answered, the others closed unanswered.
3. 2,000 connections from 100 addresses (127.0.0.10 to 127.0.0.109, 20
   each, under the per-client limit), one byte each: /healthz and /u/
   still answer, and the server closes all 2,000.
4. A head sent one byte every half second (never idle, so an
   inactivity timeout never fires) is closed; so is a body sent one byte
   every half second.  A bad connections_per_client is refused.
Every wait is on a condition with a generous deadline; each phase prints
what it tried.  The test raises its RLIMIT_NOFILE (herald serve raises
its own) and skips if the hard limit is too low."""
import os
import resource
import select
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "http"))
from httptest import Tap, skip_all, free_port, PLUGIN_DIR, http, serve_start, serve_stop  # noqa: E402

HERALD = os.environ.get("HERALD", "")
if not os.access(HERALD, os.X_OK):
    skip_all("herald not built")
N = 2000
PER_CLIENT = 32
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
want = N + 256
if soft != resource.RLIM_INFINITY and soft < want:
    if hard != resource.RLIM_INFINITY and hard < want:
        skip_all("RLIMIT_NOFILE hard limit %d < %d: cannot open %d connections" % (hard, want, N))
    resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
try:
    probe = socket.socket()
    probe.bind(("127.0.0.109", 0))
    probe.close()
except OSError as e:
    skip_all("cannot bind 127.0.0.109 (%s): loopback is not 127.0.0.0/8 here" % e)

t = Tap(time_limit=300)
tmp = tempfile.TemporaryDirectory(prefix="herald-slow.")
T = tmp.name
PORT = free_port()
BASE = "http://127.0.0.1:%d" % PORT
with open(os.path.join(T, "g.ini"), "w") as f:
    f.write("""[store]
path = %s/herald.db
[plugins]
dir = %s
[tracking]
base_url = %s
secret = slow-secret-0123456789abcdef
listen = 127.0.0.1:%d
""" % (T, PLUGIN_DIR, BASE, PORT))


def note(text):
    t.out("# " + text)


def open_slow(sources, per_source, first=b"G"):
    """PER_SOURCE connections from each address of SOURCES, each sending
    FIRST.  A connection the server refuses may fail to send: it counts."""
    socks = []
    for src in sources:
        for _ in range(per_source):
            s = socket.socket()
            s.settimeout(10)
            s.bind((src, 0))
            s.connect(("127.0.0.1", PORT))
            try:
                s.send(first)
            except OSError:
                pass
            socks.append(s)
    return socks


def closed_by_server(s):
    """Whether the server has closed S (EOF or reset); never blocks."""
    timeout = s.gettimeout()
    s.setblocking(False)
    try:
        while True:
            if not s.recv(4096):
                return True
    except BlockingIOError:
        return False
    except OSError:
        return True
    finally:
        s.settimeout(timeout)


def wait_closed(socks, deadline):
    """Wait until the server has closed every socket of SOCKS, or DEADLINE
    seconds.  Returns how many it closed; closes them all on our side."""
    left = {s.fileno(): s for s in socks}
    end = time.monotonic() + deadline
    p = select.poll()
    for fd in left:
        p.register(fd, select.POLLIN)
    while left and time.monotonic() < end:
        for fd, _ in p.poll(1000):
            if fd in left and closed_by_server(left[fd]):
                p.unregister(fd)
                del left[fd]
    for s in socks:
        s.close()
    return len(socks) - len(left)


def still_answers(what):
    """/healthz and /u/ from 127.0.0.1, each within 10 s."""
    try:
        h = http("GET", BASE + "/healthz", timeout=10)
    except OSError as e:
        h = ("no answer", str(e))
    t.eq(h, (200, "ok\n"), "%s: /healthz answers" % what)
    try:
        st, page = http("GET", BASE + "/u/not-a-signed-token", timeout=10)
        u = (st, "not valid" in page)
    except OSError as e:
        u = ("no answer", str(e))
    t.eq(u, (404, True), "%s: /u/ answers (its page for a bad token)" % what)


srv, up = serve_start(HERALD, os.path.join(T, "g.ini"), BASE)
try:
    t.ok(up, "herald serve is up")

    # 1. One client, 2,000 connections, one byte each.
    t0 = time.monotonic()
    socks = open_slow(["127.0.0.2"], N)
    note("phase 1: opened %d connections from 127.0.0.2 in %.1f s, each sent 1 byte ('G')"
         % (len(socks), time.monotonic() - t0))
    still_answers("2,000 slow connections from one client")
    early = sum(closed_by_server(s) for s in socks)
    n = wait_closed(socks, 60)
    note("phase 1: %d were closed by the server by the time /healthz had answered; all %d "
         "closed %.1f s after the first was opened" % (early, n, time.monotonic() - t0))
    t.eq(n, N, "the server closes all 2,000 of them")

    # 2. The per-client limit, counted.  Each connection sends a request
    # head that announces a body, so that the server holds it (30 s for
    # the body) while the others are opened; then the body, and each is
    # answered, or was refused.
    t0 = time.monotonic()
    socks = open_slow(["127.0.0.3"], PER_CLIENT + 8,
                      b"POST /u/not-a-signed-token HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                      b"Content-Length: 2\r\n\r\n")
    answered = refused = 0
    for s in socks:
        got = b""
        try:
            s.send(b"x=")
            while b"</html>" not in got:
                r = s.recv(4096)
                if not r:
                    break
                got += r
        except OSError:
            pass
        if got.startswith(b"HTTP/1.1 404 "):
            answered += 1
        elif not got:
            refused += 1
    for s in socks:
        s.close()
    note("phase 2: %d connections from 127.0.0.3, each a POST /u/ head, then its body: "
         "%d answered, %d closed unanswered, in %.1f s"
         % (len(socks), answered, refused, time.monotonic() - t0))
    t.eq((answered, refused), (PER_CLIENT, 8),
         "connections_per_client: %d answered, the 8 past the limit refused" % PER_CLIENT)

    # 3. Many clients, under the per-client limit each.
    sources = ["127.0.0.%d" % i for i in range(10, 110)]
    t0 = time.monotonic()
    socks = open_slow(sources, N // len(sources))
    note("phase 3: opened %d connections from %d addresses (%s to %s, %d each) in %.1f s, "
         "each sent 1 byte" % (len(socks), len(sources), sources[0], sources[-1],
                               N // len(sources), time.monotonic() - t0))
    still_answers("2,000 slow connections from 100 clients")
    n = wait_closed(socks, 60)
    note("phase 3: all %d closed by the server %.1f s after the first was opened"
         % (n, time.monotonic() - t0))
    t.eq(n, N, "the server closes all 2,000 of them")

    # 4. Never idle, never done: a byte every half second.
    head = socket.create_connection(("127.0.0.1", PORT), timeout=10)
    body = socket.create_connection(("127.0.0.1", PORT), timeout=10)
    body.sendall(b"POST /events HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 60000\r\n\r\n")
    head.sendall(b"GET /healthz HTTP/1.1\r\n")
    sent = {"head": 0, "body": 0}
    closed = {}
    t0 = time.monotonic()
    while len(closed) < 2 and time.monotonic() - t0 < 90:
        for name, s in (("head", head), ("body", body)):
            if name in closed:
                continue
            if closed_by_server(s):
                closed[name] = time.monotonic() - t0
                continue
            try:
                s.send(b"X-Slow: 1\r\n"[sent[name] % 11:][:1] if name == "head" else b"\n")
                sent[name] += 1
            except OSError:
                closed[name] = time.monotonic() - t0
        # The pace of the attack; a socket the server closes wakes this up.
        select.select([s for n, s in (("head", head), ("body", body)) if n not in closed],
                      [], [], 0.5)
    head.close()
    body.close()
    note("phase 4: a request head sent one byte every 0.5 s: %s after %d bytes; a body likewise: "
         "%s after %d bytes" % ("closed %.1f s in" % closed["head"] if "head" in closed else "open",
                                sent["head"],
                                "closed %.1f s in" % closed["body"] if "body" in closed else "open",
                                sent["body"]))
    t.ok("head" in closed, "a head trickled a byte at a time is closed", sent)
    t.ok("body" in closed, "a body trickled a byte at a time is closed", sent)
    still_answers("after all that")
finally:
    rc, out, err = serve_stop(srv)
t.eq(rc, 0, "SIGTERM stops it, exit 0")
t.ok(b"32 per client address" in out and b"head must arrive within 5 s" in out,
     "it says its limits when it starts", out)
lines = err.decode(errors="replace").splitlines()
note("herald serve wrote %d lines on stderr, for example: %s" % (len(lines), lines[:3]))
t.ok(len(lines) < 1000, "its log is rate-limited (%d lines for 4,000 slow connections)" % len(lines))

# A bad connections_per_client is refused with its file and line.
with open(os.path.join(T, "g.ini")) as f:
    text = f.read()
with open(os.path.join(T, "bad.ini"), "w") as f:
    f.write(text.replace("[tracking]\n", "[tracking]\nconnections_per_client = lots\n"))
p = subprocess.run([HERALD, "-c", os.path.join(T, "bad.ini"), "serve"], capture_output=True,
                   timeout=60)
t.ok(p.returncode == 1 and b"bad.ini:6: [tracking] connections_per_client: 'lots' is not a number"
     in p.stderr, "a bad connections_per_client: file, line and key", p.stderr)

tmp.cleanup()
t.done()
