"""tests/http/httptest.py: TAP output and a tests/plugin-run driver shared by
the HTTP plugin tests.  Every test has a hard time limit (SIGALRM) and runs
plugin-run with a timeout, so a hung plugin fails the test instead of the
whole suite.
"""
import json
import os
import signal
import subprocess
import sys

SRCDIR = os.environ.get("HERALD_SRCDIR", os.path.join(os.path.dirname(__file__), "..", ".."))
BUILDDIR = os.environ.get("HERALD_BUILDDIR", ".")
PLUGIN_DIR = os.environ.get("HERALD_PLUGIN_DIR", os.path.join(BUILDDIR, "plugins", ".libs"))
PLUGIN_RUN = os.path.join(BUILDDIR, "tests", "plugin-run")


class Tap:
    def __init__(self, time_limit=120):
        self.n = 0
        self.failed = 0
        self.lines = []
        signal.signal(signal.SIGALRM, self._timeout)
        signal.alarm(time_limit)

    def _timeout(self, *a):
        self.out("not ok %d - test hit its time limit" % (self.n + 1))
        self.n += 1
        self.failed += 1
        self.done()

    def out(self, s):
        self.lines.append(s)

    def ok(self, cond, name, diag=None):
        self.n += 1
        if cond:
            self.out("ok %d - %s" % (self.n, name))
        else:
            self.failed += 1
            self.out("not ok %d - %s" % (self.n, name))
            if diag is not None:
                for line in str(diag).splitlines():
                    self.out("#   " + line)
        return cond

    def eq(self, got, want, name):
        return self.ok(got == want, name, "got:  %r\nwant: %r" % (got, want))

    def done(self):
        # The plan goes first, once the count is known: the tests are
        # data-driven and the count depends on the cases.
        print("1..%d" % self.n)
        for l in self.lines:
            print(l)
        sys.stdout.flush()
        os._exit(1 if self.failed else 0)


def free_port():
    """A TCP port on 127.0.0.1 that nobody listens on now."""
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def http(method, url, body=None, headers=None, timeout=10):
    """One request through urllib: (status, body as text).  An HTTP error
    status is returned, not raised; a connection error is raised."""
    import urllib.error
    import urllib.request
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def request(method, url, body=None, headers=None, timeout=10):
    """One HTTP request, redirects not followed: (status, headers, body as
    bytes).  OSError when nothing listens."""
    import http.client
    import urllib.parse
    u = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=timeout)
    try:
        conn.request(method, (u.path or "/") + ("?" + u.query if u.query else ""),
                     body=body, headers=headers or {})
        r = conn.getresponse()
        return r.status, r.headers, r.read()
    finally:
        conn.close()


def die_with_parent():
    """For Popen's preexec_fn: the child gets SIGKILL when the thread that
    started it ends (the test's time limit exits at once), so no server is
    left behind.  Start it from the test's main thread."""
    import ctypes
    ctypes.CDLL(None, use_errno=True).prctl(1, 9)    # PR_SET_PDEATHSIG, SIGKILL


def serve_start(herald, ini, base, deadline=30, env=None):
    """Start `herald -c INI serve`: (the process, whether BASE/healthz
    answered "ok" before DEADLINE seconds or the process ended)."""
    import time
    p = subprocess.Popen([herald, "-c", ini, "serve"], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, env=env)
    end = time.monotonic() + deadline
    while time.monotonic() < end and p.poll() is None:
        try:
            st, _, body = request("GET", base + "/healthz")
            return p, (st, body) == (200, b"ok\n")
        except OSError:
            time.sleep(0.05)
    return p, False


def serve_stop(p):
    """SIGTERM, then (exit code, stdout, stderr) as bytes; SIGKILL after
    10 s."""
    p.send_signal(signal.SIGTERM)
    try:
        out, err = p.communicate(timeout=10)
    except subprocess.TimeoutExpired:
        p.kill()
        out, err = p.communicate()
    return p.returncode, out, err


def skip_all(reason):
    print("1..0 # SKIP %s" % reason)
    sys.exit(0)


def require(plugin):
    so = os.path.join(PLUGIN_DIR, plugin + ".so")
    if not os.access(PLUGIN_RUN, os.X_OK):
        skip_all("tests/plugin-run not built (make check builds it)")
    if not os.path.exists(so):
        skip_all("%s not built" % so)
    return so


def message(key, to, parts, channel, attempt=1, created=1700000000, **kw):
    m = {"key": key, "campaign": key.split(":")[0], "customer": key.split(":")[-1],
         "channel": channel, "variant": "", "to": to, "parts": parts,
         "created": created, "attempt": attempt}
    m.update(kw)
    return m


def run(so, keys, messages=None, name="test", batch=None, tracking=None,
        inbound=None, headers=(), env=None, timeout=120):
    """Run plugin-run; return (rc, list of JSON output lines, stderr)."""
    # HERALD_TEST_WRAPPER="valgrind --log-file=/tmp/vg.%p" runs every
    # plugin-run under a checker.
    argv = os.environ.get("HERALD_TEST_WRAPPER", "").split()
    argv += [PLUGIN_RUN, so, "-n", name]
    for k, v in keys.items():
        argv += ["-k", "%s=%s" % (k, v)]
    if batch:
        argv += ["-b", str(batch)]
    if tracking:
        argv += ["-t", tracking]
    if inbound:
        argv += ["--inbound"] + list(inbound)
        for h in headers:
            argv += ["-H", h]
    stdin = "".join(json.dumps(m) + "\n" for m in (messages or []))
    e = dict(os.environ)
    if env:
        e.update(env)
    p = subprocess.run(argv, input=stdin.encode(), stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=timeout, env=e)
    out = []
    for line in p.stdout.decode("utf-8", "replace").splitlines():
        line = line.strip()
        if line:
            try:
                out.append(json.loads(line))
            except ValueError:
                out.append({"unparsed": line})
    return p.returncode, out, p.stderr.decode("utf-8", "replace")


def by_key(results):
    return {r.get("key"): r for r in results if "key" in r}
