# connect.py: connect_timeout_ms bounds the TCP connect that libESMTP makes
# with a blocking connect(2).  The server is a listening socket whose
# accept queue is full (backlog 0, filled, never accepted): the kernel
# drops further SYNs, as a firewalled or overloaded host does, and without
# the timeout a connect waits about two minutes.  Unprivileged, on
# loopback.
import os
import signal
import sys

sys.path.insert(0, os.path.join(os.environ['HERALD_SRCDIR'], 'tests', 'email'))
from smtpserver import FullBacklog, ScriptedSMTP, Tap, plugin_run  # noqa: E402

signal.alarm(100)
t = Tap()
FROM = 'Herald <news@herald.example>'


def msg(key, to):
    return dict(key=key, to=to, parts={'email.subject': 'S ' + key,
                                       'email.text': 'Body\n'})


b = FullBacklog()
try:
    if b.answers():
        print('1..0 # SKIP a full accept queue still completes handshakes '
              'here')
        sys.exit(0)
    keys = {'server': '127.0.0.1:%d' % b.port, 'from': FROM,
            'starttls': 'no', 'timeout_ms': '60000',
            'connect_timeout_ms': '1500'}
    msgs = [msg('k:%d' % i, 'k%d@example.com' % i) for i in range(3)]
    rc, res, err, dt = plugin_run(keys, msgs, timeout=60)
    t.ok(rc == 0 and [r['status'] for r in res] == ['retry'] * 3,
         'no handshake: every message of the batch is retry', (err, res))
    e = res[0]['error'] if res else ''
    t.ok('127.0.0.1:%d' % b.port in e and 'connect_timeout_ms = 1500' in e
         and 'timed out' in e, 'the error names the server and the timeout',
         e)
    # At least the timeout (a property of the code); at most the timeout
    # plus a margin far below the two minutes of an unbounded connect.
    t.ok(1.45 <= dt < 1.5 + 8, 'gave up after connect_timeout_ms, not '
         'before and not much after (%.2fs for 1500 ms)' % dt)

finally:
    b.stop()

# A server that answers is not held up by the watchdog, and a connect
# that succeeded is never interrupted later: a 1 ms connect timeout still
# sends over a slow-paced session that lasts far longer than 1 ms.
s = ScriptedSMTP()
try:
    keys = {'server': '127.0.0.1:%d' % s.port, 'from': FROM,
            'starttls': 'no', 'timeout_ms': '10000', 'rate': '10',
            'connect_timeout_ms': '50'}
    msgs = [msg('a:%d' % i, 'a%d@example.com' % i) for i in range(5)]
    rc, res, err, dt = plugin_run(keys, msgs, timeout=60)
    t.ok([r['status'] for r in res] == ['sent'] * 5 and len(s.messages) == 5,
         'connected within the timeout: the session runs past it (%.2fs)'
         % dt, (err, res))
finally:
    s.stop()

sys.exit(t.done())
