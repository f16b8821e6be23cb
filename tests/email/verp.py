# verp.py: with bounce_domain, every message goes out with its own
# envelope sender b+TOKEN@BOUNCE_DOMAIN (VERP), TOKEN signed with a key
# derived from verp_secret.  The SMTP server on loopback records MAIL FROM
# for each message; the test recomputes each token with Python's hmac and
# hashlib (not Herald's code) and checks:
#  - MAIL FROM is exactly b+TOKEN@b.example.com, the local part a dot-atom
#    of 42 lower-case letters and digits (under 64), whatever the key;
#  - the token's first 16 bytes are the hex of the Message-ID and of the
#    provider id: a bounce maps to its message through the store;
#  - the From header is unchanged, and a DKIM signature still verifies;
#  - without bounce_domain, MAIL FROM is the From address;
#  - open refuses bad values with file, line and key, never printing the
#    secret.
import base64
import hashlib
import hmac
import os
import re
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.environ['HERALD_SRCDIR'], 'tests', 'email'))
from smtpserver import ScriptedSMTP, Tap, plugin_run  # noqa: E402

t = Tap()
tmp = tempfile.TemporaryDirectory(prefix='herald-verp.')
T = tmp.name
SECRET = 'verp-test-secret-0123456789abcdef'


def token(key):
    """The token of message KEY, as herald-email(5) defines it."""
    k = hmac.new(SECRET.encode(), b'herald verp v1', hashlib.sha256).digest()
    h = hashlib.sha256(key.encode()).digest()[:16]
    mac = hmac.new(k, h, hashlib.sha256).digest()[:9]
    return base64.b32encode(h + mac).decode().lower(), h.hex()


KEYS = {'server': None, 'starttls': 'no', 'timeout_ms': '10000',
        'from': 'News <news@example.com>', 'bounce_domain': 'b.example.com',
        'verp_secret': SECRET}
MSG_KEYS = ['welcome:0:c1', 'welcome:0:c2', 'welcome:1:c1',
            'spring-sale-2026:3:' + 'customer-with-a-very-long-id-' * 20,
            'newsletter:0:zoë@example.org']
messages = [{'key': k, 'to': 'r%d@example.org' % i, 'created': 1767225600,
             'parts': {'email.subject': 'Hi', 'email.text': 'Hello %d\n' % i}}
            for i, k in enumerate(MSG_KEYS)]

srv = ScriptedSMTP()
try:
    keys = dict(KEYS, server='127.0.0.1:%d' % srv.port)
    rc, results, err, _ = plugin_run(keys, messages)
    t.ok(rc == 0 and [r.get('status') for r in results] == ['sent'] * len(messages),
         'every message sent', (rc, results, err))
    by_rcpt = {m['rcpt_tos'][0]: m for m in srv.messages}
    by_key = {r['key']: r for r in results}
    for i, key in enumerate(MSG_KEYS):
        rec = by_rcpt.get('r%d@example.org' % i)
        tok, hexh = token(key)
        want = 'b+%s@b.example.com' % tok
        got = rec['mail_from'] if rec else None
        t.ok(got == want, 'key %d (%d bytes): MAIL FROM is b+TOKEN@b.example.com with the '
             'token recomputed independently' % (i, len(key.encode())), (got, want))
        local = (got or '').split('@')[0]
        t.ok(len(local) == 42 and len(local) <= 64 and re.fullmatch(r'b\+[a-z2-7]{40}', local),
             'key %d: the local part is 42 lower-case base32 characters after b+ '
             '(a dot-atom under 64)' % i, local)
        pid = by_key.get(key, {}).get('provider_id', '')
        data = rec['data'] if rec else b''
        t.ok(pid == '%s.herald@example.com' % hexh
             and ('\r\nMessage-ID: <%s.herald@example.com>\r\n' % hexh).encode() in data,
             'key %d: the token carries the hash of the Message-ID and the provider id '
             '(how a bounce finds its message)' % i, (pid, hexh))
        t.ok(b'\r\nFrom: "News" <news@example.com>\r\n' in data,
             'key %d: the From header is unchanged' % i)
    t.ok(len({m['mail_from'] for m in srv.messages}) == len(MSG_KEYS),
         'each message has its own envelope sender')

    # Same keys, same tokens: a retry bounces to the same address.
    srv.messages.clear()
    rc, results, err, _ = plugin_run(keys, messages[:1])
    t.ok(srv.messages and srv.messages[0]['mail_from'] == 'b+%s@b.example.com'
         % token(MSG_KEYS[0])[0], 'a resend has the same envelope sender')

    # Without bounce_domain: the From address, as before.
    srv.messages.clear()
    plain = {k: v for k, v in keys.items() if k not in ('bounce_domain', 'verp_secret')}
    rc, results, err, _ = plugin_run(plain, messages[:1])
    t.ok(rc == 0 and srv.messages and srv.messages[0]['mail_from'] == 'news@example.com',
         'no bounce_domain: MAIL FROM is the From address', (rc, err))

    # With DKIM too: the signature is over the message, the envelope is not in it.
    try:
        import dkim
    except ImportError:
        dkim = None
    if dkim is not None:
        key = os.path.join(T, 'dkim.pem')
        subprocess.run(['openssl', 'genrsa', '-out', key, '2048'], check=True,
                       capture_output=True, timeout=60)
        os.chmod(key, 0o600)
        p = base64.b64encode(subprocess.run(['openssl', 'pkey', '-in', key, '-pubout', '-outform',
                                             'DER'], check=True, capture_output=True,
                                            timeout=60).stdout).decode()
        srv.messages.clear()
        rc, results, err, _ = plugin_run(dict(keys, dkim_domain='example.com', dkim_selector='s1',
                                              dkim_key_file=key), messages[:2])
        rec = {'s1._domainkey.example.com.': ('v=DKIM1; k=rsa; p=%s' % p).encode()}
        ok = [dkim.verify(m['data'], dnsfunc=lambda n, timeout=5: rec.get(n.decode()))
              and m['mail_from'].startswith('b+') for m in srv.messages]
        t.ok(rc == 0 and ok == [True, True], 'with DKIM: VERP senders and valid signatures',
             (rc, ok, err))
    else:
        t.ok(True, '# SKIP python3-dkim is not installed')
finally:
    srv.stop()

# Configuration errors (key N on line N+1 of test.ini).
BASE = {'server': '127.0.0.1:25', 'from': 'N <n@example.com>'}


def refused(keys, want, what):
    rc, _, err, _ = plugin_run(dict(BASE, **keys), [])
    t.ok(rc == 1 and want in err and SECRET not in err, 'refused: %s' % what, (rc, err))


refused({'bounce_domain': 'b.example.com'},
        'test.ini:4: [channel.email] bounce_domain: set, but verp_secret is not',
        'bounce_domain without verp_secret')
refused({'verp_secret': SECRET},
        'test.ini:4: [channel.email] verp_secret: set, but bounce_domain is not',
        'verp_secret without bounce_domain')
refused({'bounce_domain': 'b.example.com', 'verp_secret': 'short'},
        'test.ini:5: [channel.email] verp_secret: too short (at least 16 characters)',
        'a short secret')
refused({'bounce_domain': 'b@example.com', 'verp_secret': SECRET},
        "test.ini:4: [channel.email] bounce_domain: 'b@example.com' is not a domain name",
        'an address as bounce_domain')
long_domain = '.'.join(['a' * 63] * 3) + '.' + 'b' * 20
refused({'bounce_domain': long_domain, 'verp_secret': SECRET},
        "bounce_domain: '%s' is not a domain name of at most 211 octets" % long_domain,
        'a domain too long for a 256-octet path (RFC 5321)')
rc, _, err, _ = plugin_run(dict(BASE, bounce_domain='b.example.com', verp_secret=SECRET), [])
t.ok(rc == 0, 'good values open', err)
sys.exit(t.done())
