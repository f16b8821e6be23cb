# tls.py: STARTTLS (RFC 3207) against aiosmtpd with a self-signed
# certificate made here by `openssl req`: several TLS sessions in one
# process (PROTOCOLS.md defect A), verification on by default, tls_ca_file
# to trust the test's own certificate, a wrong name refused, starttls =
# required against a server without it, AUTH inside TLS.
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.environ['HERALD_SRCDIR'], 'tests', 'email'))
from smtpserver import ScriptedSMTP, Tap, plugin_run  # noqa: E402

signal.alarm(150)
if shutil.which('openssl') is None:
    print('1..0 # SKIP openssl not found')
    sys.exit(0)
t = Tap()
FROM = 'Herald <news@herald.example>'
tmp = tempfile.mkdtemp(prefix='herald-email-tls-')


def make_cert(name, san):
    cert = os.path.join(tmp, name + '.crt')
    key = os.path.join(tmp, name + '.key')
    subprocess.run(['openssl', 'req', '-x509', '-newkey', 'ec', '-pkeyopt',
                    'ec_paramgen_curve:prime256v1', '-nodes', '-days', '2',
                    '-subj', '/CN=' + san.split(',')[0].split(':')[1],
                    '-addext', 'subjectAltName=' + san,
                    '-keyout', key, '-out', cert],
                   check=True, capture_output=True, timeout=30)
    return cert, key


def msg(key, to):
    return dict(key=key, to=to, parts={'email.subject': 'TLS ' + key,
                                       'email.text': 'over TLS\n'})


def keys_for(port, **kw):
    k = {'server': '127.0.0.1:%d' % port, 'from': FROM, 'timeout_ms': '5000'}
    k.update(kw)
    return k


try:
    cert, key = make_cert('good', 'DNS:127.0.0.1,DNS:localhost')
    other, other_key = make_cert('other', 'DNS:other.example')

    s = ScriptedSMTP(tls_cert=cert, tls_key=key)
    try:
        # Two (here four) TLS sessions in one process: the second one
        # crashed with libESMTP's own SSL_CTX (defect A).
        msgs = [msg('tls:%d' % i, 'u%d@example.com' % i) for i in range(4)]
        t0 = time.monotonic()
        rc, res, err, dt = plugin_run(
            keys_for(s.port, starttls='required', tls_ca_file=cert,
                     batch='1'), msgs, timeout=60)
        t.ok(rc == 0 and [x['status'] for x in res] == ['sent'] * 4,
             'four STARTTLS sessions in one process: all sent (rc %d)' % rc,
             (err, res))
        t.ok(len(s.messages) == 4 and all(m['tls'] for m in s.messages),
             'every message arrived inside TLS')
        t.ok(sorted({m['session'] for m in s.messages}) == [1, 2, 3, 4],
             'one session per message (batch=1)')
        t.ok(dt < 15, 'no session stalled (%.2fs)' % dt)

        # Two send() calls, each a TLS batch, in the same process.
        rc, res, err, _ = plugin_run(
            keys_for(s.port, starttls='yes', tls_ca_file=cert, batch='2'),
            [msg('tls2:%d' % i, 'v%d@example.com' % i) for i in range(4)],
            batch=2)
        t.ok([x['status'] for x in res] == ['sent'] * 4,
             'two batches of two over TLS: all sent', (err, res))

        # Verification is on by default: the system CAs do not know the
        # test certificate.
        n0 = len(s.messages)
        rc, res, err, _ = plugin_run(keys_for(s.port, starttls='yes'),
                                     [msg('tls3:1', 'w1@example.com')])
        t.ok(res and res[0]['status'] == 'channel_error'
             and 'certificate' in res[0]['error'],
             'untrusted certificate: channel_error, nothing sent in clear',
             (err, res))
        print('# ' + res[0]['error'])
        t.ok(len(s.messages) == n0, 'nothing delivered')

        rc, res, err, _ = plugin_run(
            keys_for(s.port, starttls='yes', tls_verify='no'),
            [msg('tls3:2', 'w2@example.com')])
        t.ok(res and res[0]['status'] == 'sent' and s.messages[-1]['tls'],
             'tls_verify = no: sent over TLS', (err, res))
    finally:
        s.stop()

    # A trusted certificate for another name.
    s = ScriptedSMTP(tls_cert=other, tls_key=other_key)
    try:
        rc, res, err, _ = plugin_run(
            keys_for(s.port, starttls='required', tls_ca_file=other),
            [msg('tls4:1', 'x1@example.com')])
        t.ok(res and res[0]['status'] == 'channel_error'
             and 'other.example' in res[0]['error'] and not s.messages,
             'certificate for another name: channel_error', (err, res))
    finally:
        s.stop()

    # starttls = required, server without STARTTLS.
    s = ScriptedSMTP()
    try:
        rc, res, err, _ = plugin_run(keys_for(s.port, starttls='required'),
                                     [msg('tls5:1', 'y1@example.com')])
        t.ok(res and res[0]['status'] == 'channel_error' and not s.messages,
             'starttls = required without STARTTLS: channel_error',
             (err, res))
        rc, res, err, _ = plugin_run(keys_for(s.port, starttls='yes'),
                                     [msg('tls5:2', 'y2@example.com')])
        t.ok(res and res[0]['status'] == 'sent' and s.messages
             and not s.messages[-1]['tls'],
             'starttls = yes without STARTTLS: sent in clear', (err, res))
    finally:
        s.stop()

    # AUTH inside TLS, server requiring both.
    s = ScriptedSMTP(tls_cert=cert, tls_key=key, require_starttls=True,
                     auth=('herald', 'pw'), auth_required=True)
    try:
        rc, res, err, _ = plugin_run(
            keys_for(s.port, starttls='required', tls_ca_file=cert,
                     username='herald', password='pw', batch='1'),
            [msg('tls6:1', 'z1@example.com'), msg('tls6:2', 'z2@example.com')])
        t.ok([x['status'] for x in res] == ['sent'] * 2
             and all(m['tls'] and m['auth'] for m in s.messages),
             'AUTH inside STARTTLS, two sessions: sent', (err, res))
    finally:
        s.stop()

    rc, res, err, _ = plugin_run(
        keys_for(1, starttls='yes', tls_ca_file=os.path.join(tmp, 'nope')),
        [msg('tls7:1', 'q@example.com')])
    t.ok(rc != 0 and 'tls_ca_file' in err, 'unreadable tls_ca_file: open '
         'fails naming the key', err)
finally:
    shutil.rmtree(tmp, ignore_errors=True)
sys.exit(t.done())
