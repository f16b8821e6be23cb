# webhooks.py: the email plugin's provider webhooks through herald serve
# (plugins/email/webhooks.c), end to end on loopback.
#
# A campaign goes out through the email plugin to aiosmtpd with VERP
# envelope senders; then the recorded payloads of tests/email/webhooks/
# (each provider's documented shape), filled in with the real messages'
# recipients, VERP senders and Message-IDs and signed here with keys the
# test makes, are POSTed to {base_url}/inbound/email/PROVIDER:
#  - Mailgun (HMAC-SHA256 in the body): permanent and temporary failures,
#    a complaint, a delivery; forged, stale, replayed and unsigned
#    requests;
#  - Postmark (HTTP Basic): a hard bounce, a spam complaint, a delivery;
#    no or wrong credentials;
#  - SES through SNS (RSA signatures, versions 1 and 2, with the
#    certificate fetched from a local HTTPS server that only ses_ca_file
#    trusts, on the ses_cert_host set on purpose): a subscription
#    confirmed by fetching its SubscribeURL, a permanent bounce, a
#    complaint; a forged signature, a certificate URL on another host, an
#    http:// one, a foreign topic;
#  - SendGrid (ECDSA P-256): bounce, blocked, spam report, delivered;
#    forged and unsigned requests.
# It checks the store (events with their campaign and message key,
# suppressions, consent) with sqlite3, that every refused or malformed
# request (401/403, 400 naming the field) changed nothing, that a retried
# callback changed nothing, that a soft bounce suppresses only at
# [bounces] soft_limit, that no secret reached the log, and that the next
# campaign skips exactly the bounced and complaining addresses.
import base64
import datetime
import email
import hashlib
import hmac
import http.client
import http.server
import json
import os
import sqlite3
import ssl
import subprocess
import sys
import tempfile
import threading
import time
from email import policy

HERE = os.path.join(os.environ['HERALD_SRCDIR'], 'tests')
sys.path.insert(0, os.path.join(HERE, 'email'))
sys.path.insert(0, os.path.join(HERE, 'http'))
from httptest import Tap, skip_all, free_port, serve_start, serve_stop  # noqa: E402

try:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
    from cryptography.x509.oid import NameOID
except ImportError:
    skip_all('python3-cryptography is not installed')
try:
    from smtpserver import ScriptedSMTP  # noqa: E402
except ImportError:
    skip_all('python3-aiosmtpd is not installed')

HERALD = os.environ['HERALD']
PLUGDIR = os.environ['HERALD_PLUGIN_DIR']
FIXTURES = os.path.join(HERE, 'email', 'webhooks')
t = Tap(time_limit=240)
tmp = tempfile.TemporaryDirectory(prefix='herald-webhooks.')
T = tmp.name
PORT = free_port()
BASE = 'http://127.0.0.1:%d' % PORT
VERP_SECRET = 'verp-secret-for-the-webhook-test-01'
MAILGUN_KEY = 'key-mailgun-signing-0123456789abcdef'
PM_USER, PM_PASS = 'postmark-hook', 'pm-pass-0123456789'
TOPIC = 'arn:aws:sns:us-east-1:123456789012:herald-ses'


def fill(name, **values):
    """The fixture NAME with each {{KEY}} replaced: strings JSON-escaped
    (they sit inside quotes), numbers as they are."""
    with open(os.path.join(FIXTURES, name)) as f:
        text = f.read()
    for k, v in values.items():
        text = text.replace('{{%s}}' % k, json.dumps(v)[1:-1] if isinstance(v, str)
                            else json.dumps(v))
    assert '{{' not in text, (name, text[text.index('{{'):][:40])
    return json.loads(text)


def post(path, body, headers=None):
    if isinstance(body, (dict, list)):
        body = json.dumps(body).encode()
    c = http.client.HTTPConnection('127.0.0.1', PORT, timeout=30)
    try:
        h = {'Content-Type': 'application/json'}
        h.update(headers or {})
        c.request('POST', '/inbound/email/' + path, body=body, headers=h)
        r = c.getresponse()
        return r.status, r.read().decode()
    finally:
        c.close()


def rows(sql, args=()):
    db = sqlite3.connect(os.path.join(T, 'herald.db'))
    try:
        return db.execute(sql, args).fetchall()
    finally:
        db.close()


def snapshot():
    return (rows('SELECT customer, channel, type, at, campaign, message_key, detail '
                 'FROM events ORDER BY id'),
            rows('SELECT channel, address, reason FROM suppressions ORDER BY address'),
            rows('SELECT customer, channel, granted, at, source FROM consent '
                 'ORDER BY customer'))


def herald(*args, timeout=120):
    p = subprocess.run([HERALD, '-c', os.path.join(T, 'g.ini')] + list(args),
                       capture_output=True, timeout=timeout)
    return p.returncode, p.stdout.decode(), p.stderr.decode()


def refused(name, path, body, headers, codes, needle=None):
    """PATH refuses BODY with one of CODES (and NEEDLE in the answer), and
    the store is unchanged."""
    before = snapshot()
    st, text = post(path, body, headers)
    t.ok(st in codes and (needle is None or needle in text),
         '%s: %s' % (name, '/'.join(map(str, codes))), '%d %s' % (st, text))
    t.ok(snapshot() == before, '%s: nothing recorded' % name)


def events_of(customer):
    return [(r[2], r[4], r[5]) for r in
            rows('SELECT customer, channel, type, at, campaign, message_key '
                 'FROM events WHERE customer = ? ORDER BY id', (customer,))]


def at_of(customer, etype):
    """The times of CUSTOMER's ETYPE events."""
    return [r[0] for r in rows('SELECT at FROM events WHERE customer = ? AND type = ?',
                               (customer, etype))]


def matched_by(customer, etype):
    r = rows('SELECT detail FROM events WHERE customer = ? AND type = ?', (customer, etype))
    return json.loads(r[0][0]).get('matched_by') if r else None


def suppressed(addr):
    return bool(rows('SELECT 1 FROM suppressions WHERE channel = ? AND address = ?',
                     ('email', addr)))


def consent(customer):
    r = rows("SELECT granted FROM consent WHERE customer = ? AND channel = 'email'",
             (customer,))
    return r[0][0] if r else None


# ---- keys and the HTTPS server of the SNS certificate --------------------

def make_cert(subject, key, issuer_name, issuer_key, san=None, ca=False):
    now = datetime.datetime.utcnow()
    b = (x509.CertificateBuilder()
         .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
         .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer_name)]))
         .public_key(key.public_key())
         .serial_number(x509.random_serial_number())
         .not_valid_before(now - datetime.timedelta(days=1))
         .not_valid_after(now + datetime.timedelta(days=30))
         .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if san:
        b = b.add_extension(x509.SubjectAlternativeName([x509.DNSName(san)]),
                            critical=False)
    return b.sign(issuer_key, hashes.SHA256())


def pem(cert):
    return cert.public_bytes(serialization.Encoding.PEM)


ca_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
ca_cert = make_cert('herald test CA', ca_key, 'herald test CA', ca_key, ca=True)
tls_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
tls_cert = make_cert('localhost', tls_key, 'herald test CA', ca_key, san='localhost')
sns_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
sns_cert = make_cert('sns.amazonaws.com', sns_key, 'sns.amazonaws.com', sns_key)
evil_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
evil_cert = make_cert('sns.amazonaws.com', evil_key, 'sns.amazonaws.com', evil_key)
with open(os.path.join(T, 'ca.pem'), 'wb') as f:
    f.write(pem(ca_cert))
with open(os.path.join(T, 'tls.pem'), 'wb') as f:
    f.write(pem(tls_cert) + tls_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption()))

hits = []


class CertHandler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        hits.append(self.path)
        if self.path == '/SimpleNotificationService-test.pem':
            body = pem(sns_cert)
        elif self.path == '/slow.pem':
            time.sleep(2)
            body = pem(sns_cert)
        elif self.path == '/evil.pem':
            body = pem(evil_cert)
        elif self.path.startswith('/?Action=ConfirmSubscription'):
            body = b'<ConfirmSubscriptionResponse/>'
        else:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header('Content-Length', str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *a):
        pass


httpd = http.server.ThreadingHTTPServer(('127.0.0.1', 0), CertHandler)
sctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
sctx.load_cert_chain(os.path.join(T, 'tls.pem'))
httpd.socket = sctx.wrap_socket(httpd.socket, server_side=True)
CERT_HOST = 'localhost:%d' % httpd.server_address[1]
threading.Thread(target=httpd.serve_forever, daemon=True).start()

sg_key = ec.generate_private_key(ec.SECP256R1())
sg_other = ec.generate_private_key(ec.SECP256R1())
SG_PUB = base64.b64encode(sg_key.public_key().public_bytes(
    serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)).decode()

# ---- the campaign -------------------------------------------------------

srv = ScriptedSMTP()
with open(os.path.join(T, 'g.ini'), 'w') as f:
    f.write(f"""[store]
path = {T}/herald.db
[plugins]
dir = {PLUGDIR}
[tracking]
base_url = {BASE}
secret = webhook-test-tracking-secret-0123
listen = 127.0.0.1:{PORT}
[channel.email]
plugin = email
server = 127.0.0.1:{srv.port}
from = News <news@example.com>
starttls = no
timeout_ms = 10000
bounce_domain = b.example.com
verp_secret = {VERP_SECRET}
mailgun_signing_key = {MAILGUN_KEY}
postmark_username = {PM_USER}
postmark_password = {PM_PASS}
ses_topic_arn = {TOPIC}
ses_cert_host = {CERT_HOST}
ses_ca_file = {T}/ca.pem
sendgrid_public_key = {SG_PUB}
[bounces]
soft_limit = 2
soft_window = 7d
""")
os.makedirs(os.path.join(T, 'tpl'))
for name, text in {'email.subject': 'Offers for {{ customer.id }}',
                   'email.text': 'Hello {{ customer.id }}\n'}.items():
    with open(os.path.join(T, 'tpl', name + '.liquid'), 'w') as f:
        f.write(text)
for cid in ('one', 'two'):
    with open(os.path.join(T, cid + '.ini'), 'w') as f:
        f.write('[campaign]\nid = %s\ntemplates = tpl\nchannels = email\n'
                'retry_horizon = 0s\n' % cid)
custs = ['c%02d' % i for i in range(1, 16)]
with open(os.path.join(T, 'c.jsonl'), 'w') as f:
    for c in custs:
        f.write('{"id": "%s", "email": "%s@example.org", "consent": {"email": true}}\n'
                % (c, c))
rc, out, err = herald('customers', 'import', os.path.join(T, 'c.jsonl'))
t.ok(rc == 0, 'customers imported', err)
rc, out, err = herald('run', os.path.join(T, 'one.ini'))
t.ok(rc == 0 and len(srv.messages) == len(custs),
     'campaign one: %d messages over SMTP' % len(srv.messages), out + err)
sent = {}
for m in srv.messages:
    msg = email.message_from_bytes(m['data'], policy=policy.default)
    rcpt = m['rcpt_tos'][0]
    sent[rcpt.split('@')[0]] = {'verp': m['mail_from'], 'rcpt': rcpt,
                                'mid': msg['Message-ID'].strip('<>')}
keys = dict((c, k) for k, c in rows("SELECT key, customer FROM outbox WHERE campaign = 'one'"))
t.ok(all(sent[c]['verp'].startswith('b+') for c in custs), 'VERP envelope senders')

p, up = serve_start(HERALD, os.path.join(T, 'g.ini'), BASE)
t.ok(up, 'herald serve is up')
if not up:
    srv.stop()
    t.done()
NOW = int(time.time())


def bounced_as(customer, etype, campaign='one'):
    """CUSTOMER has an ETYPE event of its message of CAMPAIGN."""
    return (etype, campaign, keys[customer]) in events_of(customer)


# ---- Mailgun -------------------------------------------------------------

tok_n = [0]


def mailgun(fixture, customer, ts=None, token=None, key=MAILGUN_KEY, **kw):
    tok_n[0] += 1
    ts = str(NOW if ts is None else ts)
    token = token or hashlib.sha256(b'tok%d' % tok_n[0]).hexdigest()[:50]
    sig = hmac.new(key.encode(), (ts + token).encode(), hashlib.sha256).hexdigest()
    s = sent[customer]
    vals = dict(SIG_TIMESTAMP=ts, SIG_TOKEN=token, SIG=sig, RECIPIENT=s['rcpt'],
                MESSAGE_ID=s['mid'], VERP=s['verp'])
    vals.update(kw)
    return fill(fixture, **vals)


def failed(customer, severity, at, attempt=1, **kw):
    code, status = (550, '5.1.1') if severity == 'permanent' else (452, '4.2.2')
    return mailgun('mailgun-failed.json', customer, SEVERITY=severity,
                   TIMESTAMP=at + 0.5, CODE=code, STATUS=status, ATTEMPT=attempt,
                   SMTP_MESSAGE='%d %s mailbox problem' % (code, status), **kw)


st, text = post('mailgun', failed('c01', 'permanent', NOW - 100))
t.eq((st, text), (200, 'ok\n'), 'mailgun: permanent failure taken')
t.ok(bounced_as('c01', 'bounced'), 'mailgun: c01 bounced, with its campaign and key',
     events_of('c01'))
t.ok(suppressed('c01@example.org'), 'mailgun: hard bounce suppresses c01')
t.eq(at_of('c01', 'bounced'), [NOW - 100], "mailgun: the event is at event-data's timestamp")
det = json.loads(rows("SELECT detail FROM events WHERE customer='c01' AND type='bounced'")[0][0])
t.ok(det.get('matched_by') == 'verp' and det.get('status') == '5.1.1'
     and det.get('source') == 'mailgun webhook', 'mailgun: detail says how and why', det)

before = snapshot()
st, text = post('mailgun', failed('c01', 'permanent', NOW - 100))
t.ok(st == 200 and snapshot() == before,
     'mailgun: the same event retried (a new signature) changes nothing', (st, text))

st, _ = post('mailgun', mailgun('mailgun-complained.json', 'c02', TIMESTAMP=NOW - 90.25))
t.ok(st == 200 and bounced_as('c02', 'complained'), 'mailgun: complaint recorded',
     events_of('c02'))
t.ok(suppressed('c02@example.org') and consent('c02') == 0,
     'mailgun: complaint suppresses c02 and withdraws its consent')

st, _ = post('mailgun', failed('c03', 'temporary', NOW - 3000))
t.ok(st == 200 and bounced_as('c03', 'soft_bounced'), 'mailgun: temporary failure is a soft bounce',
     events_of('c03'))
t.ok(not suppressed('c03@example.org'), 'mailgun: one soft bounce does not suppress')
before = snapshot()
st, text = post('mailgun', failed('c03', 'temporary', NOW - 2000, attempt=2))
t.ok(st == 200 and snapshot() == before,
     "mailgun: Mailgun's next attempt of the same message does not count again", (st, text))
st, _ = post('mailgun', failed('c03', 'temporary', NOW - 80))
t.ok(st == 200 and suppressed('c03@example.org'),
     'mailgun: the second soft bounce within soft_window suppresses c03')
t.eq(rows("SELECT reason FROM suppressions WHERE address='c03@example.org'"),
     [('soft_bounced',)], 'mailgun: suppressed for soft bounces')

st, _ = post('mailgun', mailgun('mailgun-delivered.json', 'c04', TIMESTAMP=NOW - 70.1))
t.ok(st == 200 and bounced_as('c04', 'delivered') and not suppressed('c04@example.org'),
     'mailgun: delivery recorded, nothing suppressed', events_of('c04'))

refused('mailgun: forged signature', 'mailgun',
        failed('c04', 'permanent', NOW - 60, key='not-the-signing-key'), {}, (403,),
        'signature: invalid')
st, _ = post('mailgun', mailgun('mailgun-delivered.json', 'c04', TIMESTAMP=NOW - 70.1,
                                token='fixed-token'))
t.ok(st == 200, 'mailgun: a token is taken once')
refused('mailgun: replayed token', 'mailgun',
        failed('c04', 'permanent', NOW - 60, token='fixed-token'), {}, (403,),
        'already used')
refused('mailgun: stale timestamp', 'mailgun',
        failed('c04', 'permanent', NOW - 60, ts=NOW - 3600), {}, (403,), 'timestamp')
refused('mailgun: timestamp from the future', 'mailgun',
        failed('c04', 'permanent', NOW - 60, ts=NOW + 3600), {}, (403,), 'timestamp')
unsigned = failed('c04', 'permanent', NOW - 60)
del unsigned['signature']
refused('mailgun: unsigned', 'mailgun', unsigned, {}, (401,), 'signature: missing')
refused('mailgun: malformed body', 'mailgun', b'{"signature": ', {}, (400,), 'not JSON')
nosev = failed('c04', 'permanent', NOW - 60)
del nosev['event-data']['severity']
zero = failed('c04', 'permanent', NOW - 60)
zero['event-data']['timestamp'] = 0
refused('mailgun: event-data.timestamp 0', 'mailgun', zero, {}, (400,), 'event-data.timestamp')
refused('mailgun: another path', 'nope', failed('c04', 'permanent', NOW - 60), {}, (404,),
        '/mailgun, /postmark, /ses and /sendgrid')
refused('mailgun: failed without severity', 'mailgun', nosev, {}, (400,),
        'event-data.severity')

# ---- Postmark ------------------------------------------------------------

def basic(u, pw):
    return {'Authorization': 'Basic ' + base64.b64encode(('%s:%s' % (u, pw)).encode()).decode()}


def pm_at(sec):
    return datetime.datetime.utcfromtimestamp(sec).strftime('%Y-%m-%dT%H:%M:%S.9070259Z')


pm_bounce = fill('postmark-bounce.json', TYPE='HardBounce', TYPE_CODE=1, NAME='Hard bounce',
                 RECIPIENT=sent['c05']['rcpt'], AT=pm_at(NOW - 50))
refused('postmark: no credentials', 'postmark', pm_bounce, {}, (401,), 'Basic')
refused('postmark: wrong password', 'postmark', pm_bounce, basic(PM_USER, 'guess'), (401,))
refused('postmark: wrong user', 'postmark', pm_bounce, basic('someone', PM_PASS), (401,))
refused('postmark: malformed body', 'postmark', b'not json', basic(PM_USER, PM_PASS),
        (400,), 'not JSON')
st, _ = post('postmark', pm_bounce, basic(PM_USER, PM_PASS))
t.ok(st == 200 and ('bounced', None, None) in events_of('c05')
     and suppressed('c05@example.org'), 'postmark: hard bounce recorded and suppressed',
     events_of('c05'))
t.eq(at_of('c05', 'bounced'), [NOW - 50], 'postmark: the event is at BouncedAt')
det = json.loads(rows("SELECT detail FROM events WHERE customer='c05' AND type='bounced'")[0][0])
t.ok(det.get('matched_by') == 'address'
     and det.get('provider_message_id') == '883953f4-6105-42a2-a16a-77a8eac79483'
     and det.get('type') == 'HardBounce', 'postmark: matched by address, its MessageID kept', det)
before = snapshot()
st, _ = post('postmark', pm_bounce, basic(PM_USER, PM_PASS))
t.ok(st == 200 and snapshot() == before, 'postmark: retried bounce changes nothing')
st, _ = post('postmark', fill('postmark-spamcomplaint.json', RECIPIENT=sent['c06']['rcpt'],
                              AT=pm_at(NOW - 40)), basic(PM_USER, PM_PASS))
t.ok(st == 200 and ('complained', None, None) in events_of('c06')
     and suppressed('c06@example.org') and consent('c06') == 0,
     'postmark: spam complaint suppresses and withdraws consent', events_of('c06'))
st, _ = post('postmark', fill('postmark-bounce.json', TYPE='SoftBounce', TYPE_CODE=4096,
                              NAME='Soft bounce', RECIPIENT=sent['c13']['rcpt'],
                              AT=pm_at(NOW - 35)), basic(PM_USER, PM_PASS))
t.ok(st == 200 and ('soft_bounced', None, None) in events_of('c13')
     and not suppressed('c13@example.org'), 'postmark: one soft bounce, not suppressed')
st, _ = post('postmark', fill('postmark-delivery.json', RECIPIENT=sent['c14']['rcpt'],
                              AT=pm_at(NOW - 30)), basic(PM_USER, PM_PASS))
t.ok(st == 200 and ('delivered', None, None) in events_of('c14'),
     'postmark: delivery recorded', events_of('c14'))
before = snapshot()
st, text = post('postmark', fill('postmark-bounce.json', TYPE='Transient', TYPE_CODE=2,
                                 NAME='Message delayed', RECIPIENT=sent['c14']['rcpt'],
                                 AT=pm_at(NOW - 33)), basic(PM_USER, PM_PASS))
t.ok((st, text) == (200, 'ignored\n') and snapshot() == before,
     'postmark: a Transient (delay) notice is no bounce: answered, nothing recorded', (st, text))
notype = dict(pm_bounce)
del notype['BouncedAt']
refused('postmark: bounce without BouncedAt', 'postmark', notype, basic(PM_USER, PM_PASS),
        (400,), 'BouncedAt')

# ---- SES through SNS -----------------------------------------------------

CERT_URL = 'https://%s/SimpleNotificationService-test.pem' % CERT_HOST


def sns_sign(d, key=sns_key):
    if d['Type'] == 'Notification':
        names = ['Message', 'MessageId', 'Subject', 'Timestamp', 'TopicArn', 'Type']
    else:
        names = ['Message', 'MessageId', 'SubscribeURL', 'Timestamp', 'Token',
                 'TopicArn', 'Type']
    canon = ''.join('%s\n%s\n' % (n, d[n]) for n in names if n in d)
    h = hashes.SHA1() if d['SignatureVersion'] == '1' else hashes.SHA256()
    d['Signature'] = base64.b64encode(key.sign(canon.encode(), padding.PKCS1v15(), h)).decode()
    return d


def iso(sec):
    return datetime.datetime.utcfromtimestamp(sec).strftime('%Y-%m-%dT%H:%M:%S.237Z')


sns_n = [0]


def sns_notification(ses_fixture, customer, at, version='1', cert_url=CERT_URL,
                     topic=TOPIC, key=sns_key, **kw):
    s = sent[customer]
    ses = fill(ses_fixture, RECIPIENT=s['rcpt'], VERP=s['verp'], MESSAGE_ID=s['mid'],
               AT=iso(at), **kw)
    sns_n[0] += 1
    d = fill('sns-notification.json', SNS_MESSAGE_ID='22b80b92-fdea-4c2c-8f9d-%012d' % sns_n[0],
             TOPIC_ARN=topic, MESSAGE=json.dumps(ses), TIMESTAMP=iso(at),
             SIGNATURE_VERSION=version, SIGNATURE='', SIGNING_CERT_URL=cert_url)
    return sns_sign(d, key)


sub = fill('sns-subscription.json', TOPIC_ARN=TOPIC, TIMESTAMP=iso(NOW),
           SUBSCRIBE_URL='https://%s/?Action=ConfirmSubscription&TopicArn=%s&Token=2336412f'
           % (CERT_HOST, TOPIC), SIGNATURE_VERSION='1', SIGNATURE='',
           SIGNING_CERT_URL=CERT_URL)
st, text = post('ses', sns_sign(sub), {'x-amz-sns-message-type': 'SubscriptionConfirmation'})
t.ok(st == 200 and any(h.startswith('/?Action=ConfirmSubscription') for h in hits),
     'ses: a signed subscription confirmation of our topic is confirmed (SubscribeURL fetched)',
     (st, text, hits))
forged_sub = fill('sns-subscription.json', TOPIC_ARN=TOPIC, TIMESTAMP=iso(NOW),
                  SUBSCRIBE_URL='https://%s/?Action=ConfirmSubscription&forged=1' % CERT_HOST,
                  SIGNATURE_VERSION='1', SIGNATURE='', SIGNING_CERT_URL=CERT_URL)
sns_sign(forged_sub, evil_key)
n_hits = len(hits)
st, _ = post('ses', forged_sub)
t.ok(st == 403 and not any('forged' in h for h in hits),
     'ses: a forged subscription confirmation is refused, its URL never fetched', (st, hits))

other_sub = fill('sns-subscription.json', TOPIC_ARN=TOPIC, TIMESTAMP=iso(NOW),
                 SUBSCRIBE_URL='https://127.0.0.1:%d/?Action=ConfirmSubscription&elsewhere=1'
                 % httpd.server_address[1], SIGNATURE_VERSION='2', SIGNATURE='',
                 SIGNING_CERT_URL=CERT_URL)
st, _ = post('ses', sns_sign(other_sub))
t.ok(st == 403 and not any('elsewhere' in h for h in hits),
     'ses: a signed subscription whose SubscribeURL is on another host is refused, '
     'never fetched', (st, hits))

refused('ses: forged signature (another key)', 'ses',
        sns_notification('ses-bounce.json', 'c07', NOW - 20, key=evil_key,
                         BOUNCE_TYPE='Permanent', STATUS='5.1.1', STATUS_CODE='550'),
        {}, (403,), 'Signature: invalid')
good = sns_notification('ses-bounce.json', 'c07', NOW - 20, BOUNCE_TYPE='Permanent',
                        STATUS='5.1.1', STATUS_CODE='550')
changed = dict(good, Message=good['Message'].replace('Permanent', 'Transient'))
refused('ses: a Message changed after signing', 'ses', changed, {}, (403,))
n_hits = len(hits)
refused('ses: certificate URL on another host', 'ses',
        sns_notification('ses-bounce.json', 'c07', NOW - 20, key=evil_key,
                         cert_url='https://evil.example.com/evil.pem',
                         BOUNCE_TYPE='Permanent', STATUS='5.1.1', STATUS_CODE='550'),
        {}, (403,), 'SigningCertURL')
refused('ses: certificate URL on a host that only ends like SNS\'s', 'ses',
        sns_notification('ses-bounce.json', 'c07', NOW - 20, key=evil_key,
                         cert_url='https://sns.us-east-1.amazonaws.com.evil.example/x.pem',
                         BOUNCE_TYPE='Permanent', STATUS='5.1.1', STATUS_CODE='550'),
        {}, (403,), 'SigningCertURL')
refused('ses: http:// certificate URL', 'ses',
        sns_notification('ses-bounce.json', 'c07', NOW - 20, key=evil_key,
                         cert_url='http://%s/evil.pem' % CERT_HOST,
                         BOUNCE_TYPE='Permanent', STATUS='5.1.1', STATUS_CODE='550'),
        {}, (403,), 'SigningCertURL')
t.ok(len(hits) == n_hits, 'ses: no refused certificate URL was fetched', hits[n_hits:])
refused('ses: another topic', 'ses',
        sns_notification('ses-bounce.json', 'c07', NOW - 20,
                         topic='arn:aws:sns:us-east-1:999999999999:theirs',
                         BOUNCE_TYPE='Permanent', STATUS='5.1.1', STATUS_CODE='550'),
        {}, (403,), 'TopicArn')
unsigned = dict(good)
del unsigned['Signature']
refused('ses: unsigned', 'ses', unsigned, {}, (401,), 'Signature: missing')
refused('ses: malformed body', 'ses', b'{"Type": "Notification"', {}, (400,), 'not JSON')
bad_msg = sns_sign(dict(good, Message='not json at all'))
refused('ses: a signed Message that is not JSON', 'ses', bad_msg, {}, (400,),
        'Message: not JSON')

st, text = post('ses', good)
t.ok(st == 200 and bounced_as('c07', 'bounced') and suppressed('c07@example.org'),
     'ses: permanent bounce (signature version 1) recorded by VERP and suppressed',
     (st, text, events_of('c07')))
t.eq((at_of('c07', 'bounced'), matched_by('c07', 'bounced')), ([NOW - 20], 'verp'),
     "ses: at bounce.timestamp, matched by mail.source's VERP address")
before = snapshot()
st, _ = post('ses', good)
t.ok(st == 200 and snapshot() == before, 'ses: the same notification again changes nothing')
st, text = post('ses', sns_notification('ses-complaint.json', 'c08', NOW - 15, version='2'))
t.ok(st == 200 and bounced_as('c08', 'complained') and suppressed('c08@example.org')
     and consent('c08') == 0,
     'ses: complaint (signature version 2) suppresses and withdraws consent',
     (st, text, events_of('c08')))
before = snapshot()
st, text = post('ses', sns_notification('ses-bounce.json', 'c14', NOW - 14, version='2',
                                        BOUNCE_TYPE='Undetermined', STATUS='5.0.0',
                                        STATUS_CODE='550'))
t.ok((st, text) == (200, 'ignored\n') and snapshot() == before,
     'ses: an Undetermined bounce is not guessed at: answered, nothing recorded', (st, text))
st, text = post('ses', sns_notification('ses-bounce.json', 'c15', NOW - 14, version='2',
                                        BOUNCE_TYPE='Transient', STATUS='4.4.7',
                                        STATUS_CODE='451'))
t.ok(st == 200 and bounced_as('c15', 'soft_bounced') and not suppressed('c15@example.org'),
     'ses: transient bounce is one soft bounce', (st, text, events_of('c15')))

# While herald serve fetches a certificate (2 s here), the store is not
# locked: the transaction begins with the first event, after the checks.
slow = sns_notification('ses-bounce.json', 'c04', NOW - 13, version='2',
                        cert_url='https://%s/slow.pem' % CERT_HOST,
                        BOUNCE_TYPE='Transient', STATUS='4.4.7', STATUS_CODE='451')
res = []
th = threading.Thread(target=lambda: res.append(post('ses', slow)))
th.start()
time.sleep(0.8)
try:
    db = sqlite3.connect(os.path.join(T, 'herald.db'), timeout=0.3)
    db.execute('BEGIN IMMEDIATE')
    db.rollback()
    db.close()
    locked = None
except sqlite3.OperationalError as e:
    locked = str(e)
th.join()
t.ok(locked is None, 'ses: the store is not locked while the certificate is fetched', locked)
t.ok(res and res[0][0] == 200 and bounced_as('c04', 'soft_bounced'),
     'ses: the notification whose certificate came slowly is recorded', res)

# ---- SendGrid ------------------------------------------------------------

def sendgrid_body():
    d = fill('sendgrid-events.json', TIMESTAMP=NOW - 10,
             BOUNCE_RECIPIENT=sent['c09']['rcpt'], BOUNCE_MESSAGE_ID=sent['c09']['mid'],
             BLOCKED_RECIPIENT=sent['c11']['rcpt'], BLOCKED_MESSAGE_ID=sent['c11']['mid'],
             SPAM_RECIPIENT=sent['c10']['rcpt'], SPAM_MESSAGE_ID=sent['c10']['mid'],
             DELIVERED_RECIPIENT=sent['c12']['rcpt'],
             DELIVERED_MESSAGE_ID=sent['c12']['mid'])
    return json.dumps(d).encode()


def sg_headers(body, key=sg_key, ts=None):
    ts = str(NOW if ts is None else ts)
    sig = key.sign(ts.encode() + body, ec.ECDSA(hashes.SHA256()))
    return {'X-Twilio-Email-Event-Webhook-Signature': base64.b64encode(sig).decode(),
            'X-Twilio-Email-Event-Webhook-Timestamp': ts}


sgb = sendgrid_body()
refused('sendgrid: forged signature (another key)', 'sendgrid', sgb,
        sg_headers(sgb, sg_other), (403,), 'Signature: invalid')
h = sg_headers(sgb)
refused('sendgrid: a body changed after signing', 'sendgrid',
        sgb.replace(b'"bounce"', b'"bounce" '), h, (403,))
refused('sendgrid: timestamp changed after signing', 'sendgrid', sgb,
        dict(h, **{'X-Twilio-Email-Event-Webhook-Timestamp': str(NOW + 1)}), (403,))
refused('sendgrid: unsigned', 'sendgrid', sgb, {}, (401,), 'Signature')
mal = b'[{"event": "bounce"'
refused('sendgrid: malformed (signed) body', 'sendgrid', mal, sg_headers(mal), (400,),
        'not JSON')
noemail = json.dumps([{'event': 'bounce', 'timestamp': NOW}]).encode()
refused('sendgrid: an event without email', 'sendgrid', noemail, sg_headers(noemail),
        (400,), 'email: missing')
st, text = post('sendgrid', sgb, sg_headers(sgb))
t.ok(st == 200 and bounced_as('c09', 'bounced') and suppressed('c09@example.org'),
     'sendgrid: bounce recorded by its Message-ID and suppressed', (st, text, events_of('c09')))
t.eq((at_of('c09', 'bounced'), matched_by('c09', 'bounced')), ([NOW - 10], 'message-id'),
     'sendgrid: at the event timestamp, matched by smtp-id')
t.ok(bounced_as('c11', 'soft_bounced') and not suppressed('c11@example.org'),
     'sendgrid: blocked is one soft bounce', events_of('c11'))
t.ok(bounced_as('c10', 'complained') and suppressed('c10@example.org') and consent('c10') == 0,
     'sendgrid: spam report suppresses and withdraws consent', events_of('c10'))
t.ok(bounced_as('c12', 'delivered') and len(events_of('c12')) == 1,
     'sendgrid: delivered recorded, processed not', events_of('c12'))
before = snapshot()
st, _ = post('sendgrid', sgb, sg_headers(sgb))
t.ok(st == 200 and snapshot() == before, 'sendgrid: the same batch again changes nothing')

# ---- refused keys --------------------------------------------------------

def open_error(extra):
    """herald serve with the email channel's keys plus EXTRA: (exit code,
    stderr)."""
    with open(os.path.join(T, 'g.ini')) as f:
        text = f.read()
    with open(os.path.join(T, 'bad.ini'), 'w') as f:
        f.write(text.replace('listen = 127.0.0.1:%d' % PORT, 'listen = 127.0.0.1:%d' % free_port())
                .replace('postmark_username = %s\n' % PM_USER, '')
                .replace('sendgrid_public_key = %s\n' % SG_PUB, extra))
    try:
        r = subprocess.run([HERALD, '-c', os.path.join(T, 'bad.ini'), 'serve'],
                           capture_output=True, timeout=20)
    except subprocess.TimeoutExpired:
        return 0, 'herald serve took the keys and ran'
    return r.returncode, r.stderr.decode()


rc, err = open_error('')
t.ok(rc != 0 and 'postmark_password: set, but postmark_username is not' in err
     and PM_PASS not in err, 'postmark_password without postmark_username: refused, named',
     (rc, err))
rc, err = open_error('postmark_username = %s\nsendgrid_public_key = bm90IGEga2V5\n' % PM_USER)
t.ok(rc != 0 and 'sendgrid_public_key: not the base64 of a DER EC public key' in err,
     'sendgrid_public_key that is no key: refused, named', (rc, err))

# ---- what the log says, and the next campaign -----------------------------

rc, out, err = serve_stop(p)
log = (out + err).decode(errors='replace')
t.ok(all(s not in log for s in (MAILGUN_KEY, PM_PASS, VERP_SECRET)),
     'no secret in the log of herald serve', log)
t.ok('invalid signature' in log, 'refusals are logged', log)

want_skipped = {'c01', 'c02', 'c03', 'c05', 'c06', 'c07', 'c08', 'c09', 'c10'}
n0 = len(srv.messages)
rc, out, err = herald('run', os.path.join(T, 'two.ini'))
got = set(m['rcpt_tos'][0].split('@')[0] for m in srv.messages[n0:])
t.ok(rc == 0 and got == set(custs) - want_skipped,
     'campaign two skips exactly the bounced and complaining addresses',
     'sent to %s\n%s' % (sorted(got), out + err))
srv.stop()
httpd.shutdown()
t.done()
