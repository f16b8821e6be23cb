# email-run.py: herald run end to end with the real email plugin against a
# scripted SMTP server on loopback.  Checks that every customer's message
# arrives once, parses cleanly with Python's email package, decodes to
# exactly what herald preview rendered, that a 5xx falls back to SMS, that a
# 4xx is retried later, and that the outbox plugin's Maildir file for the
# same message holds the same bytes the SMTP server received.
import json
import os
import subprocess
import sys
import tempfile
import email
from email import policy

sys.path.insert(0, os.path.join(os.environ['HERALD_SRCDIR'], 'tests', 'email'))
from smtpserver import ScriptedSMTP, Tap  # noqa: E402

HERALD = os.environ['HERALD']
t = Tap()
tmp = tempfile.TemporaryDirectory(prefix='herald-email-run.')
T = tmp.name
plugdir = os.environ['HERALD_PLUGIN_DIR']


def herald(*args, env=None, timeout=120):
    p = subprocess.run([HERALD, '-c', os.path.join(T, 'g.ini')] + list(args),
                       capture_output=True, timeout=timeout, env=env)
    return p.returncode, p.stdout.decode(), p.stderr.decode()


srv = ScriptedSMTP()
try:
    with open(os.path.join(T, 'g.ini'), 'w') as f:
        f.write(f"""[store]
path = {T}/herald.db
[plugins]
dir = {plugdir}
[tracking]
base_url = https://t.example.com
secret = test-secret-0123456789abcdef
unsubscribe_mailto = unsub@example.com
[channel.email]
plugin = email
server = 127.0.0.1:{srv.port}
from = Café Herald <news@example.com>
starttls = no
timeout_ms = 10000
batch = 10
[channel.sms]
plugin = outbox
dir = {T}/sms
""")
    os.makedirs(os.path.join(T, 'tpl'))
    parts = {
        'email.subject': 'Bonjour {{ customer.first_name }} — {{ customer.points }} points ☕',
        'email.text': 'Hi {{ customer.first_name }},\nline two: {{ customer.id }}\n',
        'email.html': '<p>Hi {{ customer.first_name }} &amp; {{ customer.id }}</p>\n'
                      '<p>' + 'x' * 1200 + '</p>\n',
        'sms.body': 'Hi {{ customer.first_name }}',
    }
    for name, text in parts.items():
        with open(os.path.join(T, 'tpl', name + '.liquid'), 'w') as f:
            f.write(text)
    with open(os.path.join(T, 'c.ini'), 'w') as f:
        f.write('[campaign]\nid = mail\ntemplates = tpl\nchannels = email, sms\n'
                'retry_horizon = 0s\n')
    names = ['Zoë', 'Łukasz', '美咲', 'Ann', 'Bob']
    custs = []
    for i in range(25):
        local = 'u%d' % i
        if i == 20:
            local = 'p5xx-%d' % i      # 554 on RCPT: rejected -> SMS
        if i == 21:
            local = 't4xx-%d' % i      # 451 on RCPT: retry
        custs.append({'id': 'c%02d' % i, 'email': local + '@example.com',
                      'phone': '+3361000%04d' % i,
                      'consent': {'email': True, 'sms': True},
                      'attributes': {'first_name': names[i % 5],
                                     'name': names[i % 5] + ' Test',
                                     'points': i}})
    with open(os.path.join(T, 'c.jsonl'), 'w') as f:
        for c in custs:
            f.write(json.dumps(c, ensure_ascii=False) + '\n')
    rc, out, err = herald('customers', 'import', os.path.join(T, 'c.jsonl'))
    t.ok(rc == 0, 'customers imported', err)

    # What preview renders is what must arrive.
    expected = {}
    normal = [c for c in custs if c['id'] not in ('c20', 'c21')]
    for c in normal:
        rc, out, err = herald('preview', os.path.join(T, 'c.ini'), '--customer', c['id'])
        sections, cur = {}, None
        for line in out.split('\n'):
            if line.startswith('--- ') and line.endswith(' ---'):
                cur = line[4:-4]
                sections[cur] = []
            elif cur:
                sections[cur].append(line)
        expected[c['email']] = {k: '\n'.join(v) for k, v in sections.items()}

    rc, out, err = herald('run', os.path.join(T, 'c.ini'))
    t.ok(rc == 0, 'herald run: exit 0', out + err)
    got = {}
    for m in srv.messages:
        for r in m['rcpt_tos']:
            got.setdefault(r, []).append(m)
    t.ok(len(srv.messages) == 23, '23 messages delivered over SMTP (%d)' % len(srv.messages))
    t.ok(all(len(v) == 1 for v in got.values()), 'each delivered once')
    t.ok(max(m['session'] for m in srv.messages) <= 3,
         'messages share SMTP sessions (batch = 10)')
    bad = []
    for c in normal:
        ms = got.get(c['email'])
        if not ms:
            bad.append((c['id'], 'missing'))
            continue
        raw = ms[0]['data']
        msg = email.message_from_bytes(raw, policy=policy.default)
        defects = list(msg.defects) + [d for p in msg.walk() for d in p.defects]
        exp = expected[c['email']]
        subj = str(msg['Subject'])
        text = msg.get_body(('plain',)).get_content().replace('\r\n', '\n')
        html = msg.get_body(('html',)).get_content().replace('\r\n', '\n')
        long_lines = [l for l in raw.split(b'\r\n') if len(l) > 998]
        if defects:
            bad.append((c['id'], 'defects %r' % defects))
        if subj != exp['email.subject']:
            bad.append((c['id'], 'subject %r != %r' % (subj, exp['email.subject'])))
        if text.rstrip('\n') != exp['email.text'].rstrip('\n'):
            bad.append((c['id'], 'text %r != %r' % (text, exp['email.text'])))
        if html.rstrip('\n') != exp['email.html'].rstrip('\n'):
            bad.append((c['id'], 'html differs'))
        if long_lines:
            bad.append((c['id'], 'line over 998 octets'))
        if msg['To'].addresses[0].display_name != c['attributes']['name']:
            bad.append((c['id'], 'display name %r' % msg['To'].addresses[0].display_name))
    t.ok(not bad, 'every message parses without defects and decodes to the preview', bad[:5])

    with open(os.path.join(T, 'sms', 'messages.jsonl')) as f:
        sms = [json.loads(l) for l in f]
    t.ok([m['id'] for m in sms] == ['mail:1:c20'],
         '5xx on RCPT: the message fell back to SMS, same key', sms)
    rc, out, err = herald('report', 'mail', '--json')
    states = json.loads(out)['states'] if rc == 0 else {}
    t.ok(states.get('retry') == 1 and states.get('sent') == 24,
         '4xx on RCPT: retry scheduled; everything else sent', states)

    # The outbox plugin writes the very bytes the email plugin sent.
    with open(os.path.join(T, 'g.ini')) as f:
        g = f.read()
    ob = g.replace('plugin = email\n', 'plugin = outbox\ndir = %s/ob\n' % T)
    for k in ('server', 'starttls', 'timeout_ms', 'batch'):
        ob = '\n'.join(l for l in ob.split('\n') if not l.startswith(k + ' ='))
    with open(os.path.join(T, 'g2.ini'), 'w') as f:
        f.write(ob.replace(T + '/herald.db', T + '/h2.db'))
    subprocess.run([HERALD, '-c', os.path.join(T, 'g2.ini'), 'customers', 'import',
                    os.path.join(T, 'c.jsonl')], capture_output=True)
    created = None
    p = subprocess.run([HERALD, '-c', os.path.join(T, 'g2.ini'), 'run',
                        os.path.join(T, 'c.ini')], capture_output=True)
    t.ok(p.returncode == 0, 'outbox run: exit 0', p.stderr.decode())
    files = os.listdir(os.path.join(T, 'ob', 'new'))
    t.ok(len(files) == 25, 'outbox: 25 Maildir files (%d)' % len(files))
    smtp_by_id = {}
    for m in srv.messages:
        mid = email.message_from_bytes(m['data'], policy=policy.default)['Message-ID']
        smtp_by_id[mid] = m['data']
    same = 0
    for fn in files:
        with open(os.path.join(T, 'ob', 'new', fn), 'rb') as f:
            data = f.read()
        mid = email.message_from_bytes(data, policy=policy.default)['Message-ID']
        if mid in smtp_by_id:
            a = [l for l in smtp_by_id[mid].split(b'\r\n') if not l.startswith(b'Date:')]
            b = [l for l in data.split(b'\r\n') if not l.startswith(b'Date:')]
            same += a == b
    t.ok(same == 23, 'outbox Maildir bytes equal the SMTP bytes, Date aside (%d/23)' % same)
finally:
    srv.stop()
sys.exit(t.done())
