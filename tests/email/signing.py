# signing.py: the email plugin signs every message with DKIM (RFC 6376), and
# an independent verifier accepts the signatures.  Keys are made here with
# openssl (RSA 2048 and Ed25519); messages go through tests/plugin-run to
# an aiosmtpd server on loopback; the raw DATA bytes it received are
# checked with Python's dkim module (dkimpy), its DNS lookups answered
# from the test's own keys.  Covered: plain ASCII, UTF-8 subject and
# display names (RFC 2047), long lines and a long HTML body, body lines
# that start with a dot (SMTP dot-stuffing must not reach the signature),
# List-Unsubscribe headers, the signed header list (h=), ed25519-sha256
# (RFC 8463) or its refusal where libopendkim leaks; a tampered copy (one body byte, the Subject, an added From or
# List-Unsubscribe) fails; and open refuses every bad configuration with
# file, line and key.
import base64
import os
import re
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.environ['HERALD_SRCDIR'], 'tests', 'email'))
from smtpserver import ScriptedSMTP, Tap, plugin_run  # noqa: E402

try:
    import dkim
except ImportError:
    print('1..0 # SKIP python3-dkim is not installed')
    sys.exit(0)

t = Tap()
tmp = tempfile.TemporaryDirectory(prefix='herald-dkim.')
T = tmp.name
DOMAIN, SELECTOR = 'example.com', 'herald2026'


def openssl(*args, stdin=None):
    return subprocess.run(['openssl'] + list(args), input=stdin, check=True,
                          capture_output=True, timeout=60).stdout


def key_file(name, cmd, *args, mode=0o600):
    path = os.path.join(T, name)
    openssl(cmd, '-out', path, *args)
    os.chmod(path, mode)
    return path


rsa = key_file('rsa.pem', 'genrsa', '2048')
ed = key_file('ed.pem', 'genpkey', '-algorithm', 'ed25519')
# The DNS TXT records (RFC 6376 section 3.6.1; RFC 8463 section 4: the raw
# 32-byte Ed25519 public key, the last 32 bytes of its DER SubjectPublicKeyInfo).
rsa_p = base64.b64encode(openssl('pkey', '-in', rsa, '-pubout', '-outform', 'DER')).decode()
ed_p = base64.b64encode(openssl('pkey', '-in', ed, '-pubout', '-outform', 'DER')[-32:]).decode()
RECORDS = {}


def dnsfunc(name, timeout=5):
    return RECORDS.get(name.decode() if isinstance(name, bytes) else name)


def use_key(k, p):
    RECORDS.clear()
    RECORDS['%s._domainkey.%s.' % (SELECTOR, DOMAIN)] = \
        ('v=DKIM1; k=%s; p=%s' % (k, p)).encode()


def verify(data):
    try:
        return dkim.verify(data, dnsfunc=dnsfunc)
    except Exception:                   # noqa: BLE001 (a failure to report)
        return False


def sig_tags(data):
    """The tags of the first DKIM-Signature of DATA, unfolded."""
    m = re.match(rb'DKIM-Signature: (.*?)\r\n(?![ \t])', data, re.S)
    if not m:
        return None
    v = re.sub(rb'\s+', b'', m.group(1)).decode()
    return dict(kv.split('=', 1) for kv in v.split(';') if kv)


KEYS = {'server': None, 'starttls': 'no', 'timeout_ms': '10000',
        'from': 'Herald Café <news@example.com>',
        'dkim_domain': DOMAIN, 'dkim_selector': SELECTOR, 'dkim_key_file': rsa}
LONG_LINE = 'A long line without a break: ' + 'lorem ipsum dolor sit amet ' * 120
# About 30 kB of HTML (plugin-run reads message lines of up to 64 kB of JSON).
HTML = ('<html><body>' + ''.join('<p class="row%d">Paragraph %d: %s, %s</p>\n'
                                 % (i, i, 'é' * 8, 'lorem ipsum ' * 6) for i in range(200))
        + '<p>' + 'x' * 3000 + '</p></body></html>')
MESSAGES = [
    ('ascii', {'key': 'dk:1:ascii', 'to': 'ascii@example.org',
               'parts': {'email.subject': 'Hello', 'email.text': 'Hi there.\nBye.\n'}}),
    ('utf8', {'key': 'dk:1:utf8', 'to': 'zoe@example.org', 'to_name': 'Zoë Ångström-Ñúñez',
              'parts': {'email.subject': 'Grüße aus Köln – été ☕ ' + 'ünïcödé ' * 12,
                        'email.text': 'Grüße, Zoë!\n', 'email.html': '<p>Grüße, Zoë!</p>'}}),
    ('long', {'key': 'dk:1:long', 'to': 'long@example.org',
              'parts': {'email.subject': 'Long', 'email.text': LONG_LINE + '\n' + LONG_LINE,
                        'email.html': HTML}}),
    ('dots', {'key': 'dk:1:dots', 'to': 'dots@example.org',
              'parts': {'email.subject': 'Dots',
                        'email.text': '.hidden\n.\n..two\n' + 'y' * 75 + '.x\nend'}}),
    ('unsub', {'key': 'dk:1:unsub', 'to': 'unsub@example.org',
               'unsubscribe_url': 'https://t.example.com/u/' + 'Ab-_' * 30,
               'unsubscribe_mailto': 'unsubscribe@example.com',
               'parts': {'email.subject': 'News', 'email.html': '<p>News</p>'}}),
]
for _, m in MESSAGES:
    m['created'] = 1767225600


def run(srv, keys, messages):
    k = dict(keys)
    k['server'] = '127.0.0.1:%d' % srv.port
    rc, results, err, _ = plugin_run(k, messages)
    got = {}
    for rec in srv.messages:
        got[rec['rcpt_tos'][0]] = rec['data']
    return rc, results, err, got


srv = ScriptedSMTP()
try:
    # 1. RSA: every message verifies.
    use_key('rsa', rsa_p)
    rc, results, err, got = run(srv, KEYS, [m for _, m in MESSAGES])
    t.ok(rc == 0 and [r.get('status') for r in results] == ['sent'] * len(MESSAGES),
         'rsa: every message sent', (rc, results, err))
    for name, m in MESSAGES:
        data = got.get(m['to'], b'')
        t.ok(data.startswith(b'DKIM-Signature: '), '%s: DKIM-Signature is the first header' % name,
             data[:200])
        t.ok(verify(data), '%s: dkimpy verifies the signature on the bytes received' % name,
             data[:2000])
        tags = sig_tags(data) or {}
        want = {'v': '1', 'a': 'rsa-sha256', 'c': 'relaxed/relaxed', 'd': DOMAIN, 's': SELECTOR}
        t.ok(all(tags.get(k) == v for k, v in want.items()) and 'l' not in tags
             and 'x' not in tags and re.fullmatch(r'\d+', tags.get('t', '')),
             '%s: v=1, rsa-sha256, relaxed/relaxed, d=, s=, t=, no l= or x=' % name, tags)
        h = [x.lower() for x in tags.get('h', '').split(':')]
        present = {x.split(b':', 1)[0].decode().lower()
                   for x in data.split(b'\r\n\r\n', 1)[0].split(b'\r\n')
                   if x[:1] not in (b' ', b'\t') and b':' in x} - {'dkim-signature'}
        listed = ['from', 'to', 'subject', 'date', 'message-id', 'mime-version', 'content-type',
                  'content-transfer-encoding', 'list-unsubscribe', 'list-unsubscribe-post']
        t.ok(present <= set(listed) and all(h.count(x) == (2 if x in present else 1) for x in listed)
             and len(h) == len(listed) + len(present),
             '%s: h= signs every header present and names each listed one once more '
             '(over-signing)' % name, (h, sorted(present)))

    data = got.get('unsub@example.org', b'')
    t.ok(b'\r\nList-Unsubscribe: <https://' in data and b'\r\nList-Unsubscribe-Post: ' in data,
         'unsub: the signed message carries List-Unsubscribe and List-Unsubscribe-Post')
    data = got.get('dots@example.org', b'')
    t.ok(b'\r\n.hidden\r\n.\r\n..two\r\n' in data and b'=\r\n.x\r\n' in data,
         'dots: the server un-stuffed the dot lines (the signature covers the message, '
         'not its SMTP encoding)', data[-200:])

    # 2. Tampered copies fail.
    data = got.get('ascii@example.org', b'')
    body_at = data.index(b'\r\n\r\n') + 4
    i = data.index(b'there', body_at)
    t.ok(verify(data) and not verify(data[:i] + b'T' + data[i + 1:]),
         'tampered: one byte of the body changed fails')
    t.ok(not verify(data.replace(b'\r\nSubject: Hello\r\n', b'\r\nSubject: Hellp\r\n')),
         'tampered: a changed Subject fails')
    sig_end = data.index(b'\r\nDate: ') + 2
    t.ok(not verify(data[:sig_end] + b'From: Mallory <m@example.net>\r\n' + data[sig_end:]),
         'tampered: a second From added fails (over-signed)')
    t.ok(not verify(data[:sig_end] + b'List-Unsubscribe: <https://evil.example/u>\r\n'
                    + data[sig_end:]),
         'tampered: a List-Unsubscribe added to a message without one fails (over-signed)')
    use_key('rsa', base64.b64encode(openssl('pkey', '-pubout', '-outform', 'DER',
                                            stdin=openssl('genrsa', '2048'))).decode())
    t.ok(not verify(data), 'another public key in DNS: fails')

    # 3. Ed25519 (RFC 8463): signed and verified where libopendkim frees
    # what an Ed25519 signature takes; else refused at open.  Debian 12's
    # 2.11.0~beta2 signs correctly but leaks the key of every Ed25519
    # signature; the probe at open leaks it once before refusing, so this
    # one run is not leak-checked under AddressSanitizer.
    srv.messages.clear()
    use_key('ed25519', ed_p)
    saved = os.environ.get('ASAN_OPTIONS')
    os.environ['ASAN_OPTIONS'] = (saved + ':' if saved else '') + 'detect_leaks=0'
    try:
        rc, results, err, got = run(srv, dict(KEYS, dkim_key_file=ed),
                                    [m for _, m in MESSAGES[:3]])
    finally:
        if saved is None:
            del os.environ['ASAN_OPTIONS']
        else:
            os.environ['ASAN_OPTIONS'] = saved
    if rc == 1:
        t.ok("test.ini:8: [channel.email] dkim_key_file: '%s' is an Ed25519 key, and this "
             "libopendkim leaks memory on every Ed25519 signature" % ed in err and not got,
             'ed25519: refused at open, saying why (this libopendkim leaks its key '
             'on every signature)', err)
    else:
        t.ok(rc == 0 and [r.get('status') for r in results] == ['sent'] * 3,
             'ed25519: messages sent', (rc, results, err))
        for name, m in MESSAGES[:3]:
            data = got.get(m['to'], b'')
            tags = sig_tags(data) or {}
            t.ok(tags.get('a') == 'ed25519-sha256' and verify(data),
                 'ed25519: %s verifies (a=ed25519-sha256)' % name, (tags, data[:600]))

    # 4. Without the three keys nothing is signed.
    srv.messages.clear()
    plain = {k: v for k, v in KEYS.items() if not k.startswith('dkim_')}
    rc, results, err, got = run(srv, plain, [MESSAGES[0][1]])
    t.ok(rc == 0 and got and not any(b'DKIM-Signature' in d for d in got.values()),
         'no dkim_* keys: sent unsigned', (rc, results, err))
finally:
    srv.stop()

# 5. Configuration errors: open refuses, naming file, line and key
# (plugin-run puts key N of the command line on line N+1 of test.ini).
BASE = {'server': '127.0.0.1:25', 'from': 'N <n@example.com>'}


def refused(keys, want, what):
    rc, results, err, _ = plugin_run(dict(BASE, **keys), [])
    t.ok(rc == 1 and want in err, 'refused: %s' % what, (rc, err, want))


refused({'dkim_domain': DOMAIN, 'dkim_selector': SELECTOR},
        "test.ini:4: [channel.email] dkim_domain: set, but dkim_key_file is not",
        'domain and selector without a key file')
refused({'dkim_key_file': rsa},
        "test.ini:4: [channel.email] dkim_key_file: set, but dkim_domain and dkim_selector "
        "are not", 'a key file alone')
refused({'dkim_selector': SELECTOR, 'dkim_key_file': rsa},
        "test.ini:4: [channel.email] dkim_selector: set, but dkim_domain is not",
        'selector and key file without a domain')
refused({'dkim_domain': 'example..com', 'dkim_selector': SELECTOR, 'dkim_key_file': rsa},
        "test.ini:4: [channel.email] dkim_domain: 'example..com' is not a domain name",
        'a domain that is not a domain name')
refused({'dkim_domain': DOMAIN, 'dkim_selector': 'a_b', 'dkim_key_file': rsa},
        "test.ini:5: [channel.email] dkim_selector: 'a_b' is not a selector",
        'a selector with an underscore')
missing = os.path.join(T, 'none.pem')
refused({'dkim_domain': DOMAIN, 'dkim_selector': SELECTOR, 'dkim_key_file': missing},
        "test.ini:6: [channel.email] dkim_key_file: cannot read '%s': No such file" % missing,
        'a key file that does not exist')
for mode in (0o640, 0o604, 0o620):
    loose = key_file('loose%o.pem' % mode, 'genrsa', '2048', mode=mode)
    refused({'dkim_domain': DOMAIN, 'dkim_selector': SELECTOR, 'dkim_key_file': loose},
            "test.ini:6: [channel.email] dkim_key_file: '%s' is open to group or others "
            "(mode %04o)" % (loose, mode), 'a key file of mode %04o' % mode)
refused({'dkim_domain': DOMAIN, 'dkim_selector': SELECTOR, 'dkim_key_file': T},
        "test.ini:6: [channel.email] dkim_key_file: ", 'a directory as the key file')
notkey = os.path.join(T, 'notkey.pem')
with open(notkey, 'w') as f:
    f.write('-----BEGIN PRIVATE KEY-----\nnot base64 at all\n-----END PRIVATE KEY-----\n')
os.chmod(notkey, 0o600)
refused({'dkim_domain': DOMAIN, 'dkim_selector': SELECTOR, 'dkim_key_file': notkey},
        "test.ini:6: [channel.email] dkim_key_file: '%s' is not an unencrypted PEM private key"
        % notkey, 'a key file that holds no key')
pub = os.path.join(T, 'pub.pem')
with open(pub, 'wb') as f:
    f.write(openssl('pkey', '-in', rsa, '-pubout'))
os.chmod(pub, 0o600)
refused({'dkim_domain': DOMAIN, 'dkim_selector': SELECTOR, 'dkim_key_file': pub},
        "dkim_key_file: '%s' is not an unencrypted PEM private key" % pub, 'a public key')
enc = key_file('enc.pem', 'genpkey', '-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048',
               '-aes-128-cbc', '-pass', 'pass:secret')
rc, _, err, _ = plugin_run(dict(BASE, dkim_domain=DOMAIN, dkim_selector=SELECTOR,
                                dkim_key_file=enc), [])
t.ok(rc == 1 and "is not an unencrypted PEM private key" in err and 'pass' not in err.lower(),
     'refused: an encrypted key, without asking for a passphrase', err)
small = key_file('small.pem', 'genrsa', '768')
refused({'dkim_domain': DOMAIN, 'dkim_selector': SELECTOR, 'dkim_key_file': small},
        "dkim_key_file: '%s' is an RSA key of 768 bits: DKIM needs at least 1024" % small,
        'an RSA key of 768 bits')
ec = key_file('ec.pem', 'genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256')
refused({'dkim_domain': DOMAIN, 'dkim_selector': SELECTOR, 'dkim_key_file': ec},
        "dkim_key_file: '%s' is neither an RSA nor an Ed25519 key" % ec, 'an EC P-256 key')
rc, _, err, _ = plugin_run(dict(BASE, dkim_domain=DOMAIN, dkim_selector=SELECTOR,
                                dkim_key_file=rsa), [])
t.ok(rc == 0, 'good DKIM keys open', err)
with open(rsa) as f:
    secret_line = f.read().splitlines()[1]
t.ok(all(secret_line not in e for e in (err,)), 'the private key never shows in the output')
sys.exit(t.done())
