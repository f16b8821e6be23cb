# headers.py: no header line can be injected through a field that ends up
# in a header.  Customers whose name (attributes.name, or first_name and
# last_name) and subject text hold CR, LF and CRLF followed by "Bcc:" and
# other header lines, and a gateway whose From display name holds a bare
# CR, are run through herald run twice: into the outbox plugin (its
# Maildir files) and through the email plugin to an SMTP server on
# loopback (the DATA bytes it received).  In the raw bytes of every
# message: every line ends in CRLF, the header block holds exactly the
# headers Herald writes, each once, every other header line is a folded
# continuation (even for a reader that breaks lines at a bare CR or
# LF), no line passes 998 octets (a subject with a long word and a long
# run of spaces), and the display names and subject decode to the text
# with each line break turned into a space.  An address with CRLF is
# refused by the import, and by both plugins when handed one directly,
# with a one-line error; a NUL in a name is refused by the import.
import email
import json
import os
import re
import subprocess
import sys
import tempfile
from email import policy

sys.path.insert(0, os.path.join(os.environ['HERALD_SRCDIR'], 'tests', 'email'))
sys.path.insert(0, os.path.join(os.environ['HERALD_SRCDIR'], 'tests', 'http'))
from smtpserver import ScriptedSMTP, Tap, plugin_run  # noqa: E402
import httptest  # noqa: E402

HERALD = os.environ['HERALD']
plugdir = os.environ['HERALD_PLUGIN_DIR']
t = Tap()
tmp = tempfile.TemporaryDirectory(prefix="herald-headers.")
T = tmp.name

# What Herald writes in a message's header block, each exactly once.
HEADERS = {'Date', 'From', 'To', 'Subject', 'Message-ID', 'MIME-Version',
           'List-Unsubscribe', 'List-Unsubscribe-Post', 'Content-Type'}
HEADERS_SINGLE_PART = HEADERS | {'Content-Transfer-Encoding'}
INJECT = 'Bcc: evil@attacker.example'
FROM_NAME = 'News\r' + INJECT           # a bare CR survives an INI line
customers = [
    {'id': 'crlf', 'email': 'crlf@example.com',
     'attributes': {'name': 'Eve\r\n' + INJECT, 'subj': 'Hello\r\n' + INJECT + '\r\n\r\nbody?'}},
    {'id': 'lf', 'email': 'lf@example.com',
     'attributes': {'name': 'Zoë\n' + INJECT + '\nX-Injected: 1',
                    'subj': 'Bonjour Zoë\n' + INJECT}},
    {'id': 'cr', 'email': 'cr@example.com',
     'attributes': {'name': 'Cy\r' + INJECT, 'subj': 'Hi\r' + INJECT + '\r'}},
    {'id': 'parts', 'email': 'parts@example.com',
     'attributes': {'first_name': 'Ann\r\nX-Injected: 1', 'last_name': 'Lee\n' + INJECT,
                    'subj': '\r\n' + INJECT}},
    {'id': 'long', 'email': 'long@example.com',
     'attributes': {'name': ('Long Name ' * 12) + '\r\n' + INJECT,
                    'subj': ('word ' * 30) + '\r\n' + INJECT + ' ' + 'x' * 200}},
    # A long word, then a long run of spaces: the spaces stayed on the
    # word's line, 1,108 octets (found by tests/fuzz/fuzz_mime).
    {'id': 'spaces', 'email': 'spaces@example.com',
     'attributes': {'name': 'Sp\r\n' + INJECT,
                    'subj': 'Hi\r\n' + INJECT + ' ' + 'A' * 900 + ' ' * 200 + 'B'}},
]
for c in customers:
    c['consent'] = {'email': True}


def flat(s):
    """A header text as Herald writes it: trailing line breaks dropped,
    each CRLF, CR or LF inside one space."""
    s = s.rstrip('\r\n')
    return s.replace('\r\n', ' ').replace('\r', ' ').replace('\n', ' ')


def display_name(c):
    a = c['attributes']
    return a['name'] if 'name' in a else a['first_name'] + ' ' + a['last_name']


def check(where, data, c):
    """The raw bytes DATA of C's message, received at WHERE."""
    what = '%s, %s' % (where, c['id'])
    rest = data.replace(b'\r\n', b'')
    t.ok(b'\r' not in rest and b'\n' not in rest, '%s: every line ends in CRLF' % what)
    t.ok(b'\0' not in data and max(len(l) for l in data.split(b'\r\n')) <= 998,
         '%s: no NUL, no line over 998 octets (RFC 5322 section 2.1.1)' % what,
         max(len(l) for l in data.split(b'\r\n')))
    head = data.split(b'\r\n\r\n', 1)[0]
    # Lines as a lenient reader would split them: at CRLF, a bare CR or LF.
    lines = re.split(rb'\r\n|\r|\n', head)
    names, bad = [], []
    for line in lines:
        if line[:1] in (b' ', b'\t'):
            continue                      # a folded continuation
        name = line.split(b':', 1)[0].decode('ascii', 'replace')
        names.append(name)
        if name not in HEADERS_SINGLE_PART:
            bad.append(line)
    t.ok(not bad and len(names) == len(set(names)) and {'Date', 'From', 'To', 'Subject'} <= set(names),
         '%s: only the headers Herald writes, each once' % what, (names, bad))
    t.ok(not any(l.lstrip().lower().startswith((b'bcc:', b'x-injected:')) for l in lines),
         '%s: no Bcc: or X-Injected: header line' % what)
    try:
        msg = email.message_from_bytes(data, policy=policy.default)
        defects = list(msg.defects) + [d for p in msg.walk() for d in p.defects]
        got = (msg['To'].addresses[0].display_name, msg['To'].addresses[0].addr_spec,
               str(msg['Subject']), msg['From'].addresses[0].display_name)
        body = msg.get_body(('plain',)).get_content()
    except Exception as e:              # noqa: BLE001 (a failure to report)
        defects, got, body = ['does not parse: %r' % e], None, ''
    t.ok(not defects, '%s: parses without defects' % what, defects)
    want = (flat(display_name(c)), c['email'], flat(c['attributes']['subj']), flat(FROM_NAME))
    t.ok(got == want, '%s: To name, address, Subject and From name decode to the text, '
         'line breaks as spaces' % what, 'got:  %r\nwant: %r' % (got, want))
    t.ok('body?' not in body, '%s: nothing of the subject reached the body' % what, body)


def write_gateway(path, channel):
    with open(path, 'w', newline='') as f:
        f.write('[store]\npath = %s/%s.db\n[plugins]\ndir = %s\n'
                '[tracking]\nbase_url = https://t.example.com\n'
                'secret = test-secret-0123456789abcdef\n'
                'unsubscribe_mailto = unsub@example.com\n'
                '[channel.email]\n%s\nfrom = %s <news@example.com>\n'
                % (T, os.path.basename(path), plugdir, channel, FROM_NAME))


def herald(ini, *args):
    p = subprocess.run([HERALD, '-c', ini] + list(args), capture_output=True, timeout=120)
    return p.returncode, p.stdout.decode(), p.stderr.decode()


os.makedirs(os.path.join(T, 'tpl'))
for name, text in {'email.subject': '{{ customer.subj }}',
                   'email.text': 'Hi {{ customer.id }}\n'}.items():
    with open(os.path.join(T, 'tpl', name + '.liquid'), 'w') as f:
        f.write(text)
with open(os.path.join(T, 'c.ini'), 'w') as f:
    f.write('[campaign]\nid = hdr\ntemplates = tpl\nchannels = email\nretry_horizon = 0s\n')
with open(os.path.join(T, 'c.jsonl'), 'w') as f:
    for c in customers:
        f.write(json.dumps(c, ensure_ascii=False) + '\n')

# 1. The outbox plugin: the Maildir files' bytes.
ob = os.path.join(T, 'ob.ini')
write_gateway(ob, 'plugin = outbox\ndir = %s/ob' % T)
rc, out, err = herald(ob, 'customers', 'import', os.path.join(T, 'c.jsonl'))
t.ok(rc == 0, 'customers with line breaks in name and subject imported', err)
rc, out, err = herald(ob, 'run', os.path.join(T, 'c.ini'))
t.ok(rc == 0, 'outbox run: exit 0', out + err)
by_to = {}
for fn in os.listdir(os.path.join(T, 'ob', 'new')):
    with open(os.path.join(T, 'ob', 'new', fn), 'rb') as f:
        data = f.read()
    for c in customers:                   # by the raw bytes: parsing may fail
        if ('<%s>' % c['email']).encode() in data:
            by_to[c['email']] = data
t.ok(sorted(by_to) == sorted(c['email'] for c in customers), 'outbox: one Maildir file each',
     sorted(by_to))
for c in customers:
    if c['email'] in by_to:
        check('Maildir', by_to[c['email']], c)

# 2. The email plugin: the bytes an SMTP server received.
srv = ScriptedSMTP()
try:
    sm = os.path.join(T, 'smtp.ini')
    write_gateway(sm, 'plugin = email\nserver = 127.0.0.1:%d\nstarttls = no\ntimeout_ms = 10000'
                  % srv.port)
    rc, out, err = herald(sm, 'customers', 'import', os.path.join(T, 'c.jsonl'))
    rc, out, err = herald(sm, 'run', os.path.join(T, 'c.ini'))
    t.ok(rc == 0, 'email run: exit 0', out + err)
    got = {m['rcpt_tos'][0]: m for m in srv.messages}
    t.ok(sorted(got) == sorted(c['email'] for c in customers)
         and all(len(m['rcpt_tos']) == 1 for m in srv.messages),
         'SMTP: one message each, to its one recipient (no Bcc was added to the envelope)',
         [m['rcpt_tos'] for m in srv.messages])
    for c in customers:
        if c['email'] in got:
            check('SMTP', got[c['email']]['data'], c)

    # 3. An address with a line break: refused by the import...
    bad = os.path.join(T, 'bad.jsonl')
    with open(bad, 'w') as f:
        f.write(json.dumps({'id': 'x', 'email': 'x@example.com\r\n' + INJECT}) + '\n')
    rc, out, err = herald(sm, 'customers', 'import', bad)
    t.ok(rc == 1 and 'bad.jsonl:1: email:' in err and 'is not an email address' in err,
         'an address with CRLF: the import refuses it, naming the line', err)
    # A NUL cannot reach a header: JSON's \u0000 is refused, naming line
    # and column, and so is a raw NUL byte.
    with open(bad, 'wb') as f:
        f.write(b'{"id": "y", "email": "y@example.com"}\n'
                b'{"id": "n", "email": "n@example.com", "attributes": {"name": "A\\u0000B"}}\n'
                b'{"id": "r", "email": "r@example.com", "attributes": {"name": "A\0B"}}\n')
    rc, out, err = herald(sm, 'customers', 'import', bad)
    t.ok(rc == 1 and 'bad.jsonl:2: invalid JSON at column' in err
         and 'bad.jsonl:3: invalid JSON at column' in err and '\0' not in err,
         'a NUL in a name, escaped or raw: the import refuses the line, naming it', err)
    # ... and by each plugin handed one directly.
    n0 = len(srv.messages)
    m = {'key': 'hdr:1:x', 'to': 'x@example.com\r\n' + INJECT, 'to_name': 'X',
         'parts': {'email.subject': 'S', 'email.text': 'T'}, 'created': 1767225600}
    rc, results, err, _ = plugin_run({'server': '127.0.0.1:%d' % srv.port, 'starttls': 'no',
                                      'from': 'N <n@example.com>', 'timeout_ms': '10000'}, [m])
    st = [r.get('status') for r in results]
    t.ok(st == ['invalid_address'] and len(srv.messages) == n0,
         'email plugin: an address with CRLF is invalid and nothing is sent', (st, err))
    e = results[0].get('error', '') if results else ''
    t.ok('is not an e-mail address' in e and '\r' not in e and '\n' not in e,
         'email plugin: its error says so on one line, the CR and LF escaped', e)
finally:
    srv.stop()
rc, results, err = httptest.run(os.path.join(plugdir, 'outbox.so'),
                                {'dir': os.path.join(T, 'ob2'), 'from': 'N <n@example.com>'},
                                [httptest.message('hdr:1:x', 'x@example.com\r\n' + INJECT,
                                                  {'email.subject': 'S', 'email.text': 'T'},
                                                  'email')], name='email')
st = [r.get('status') for r in results if 'status' in r]
new = os.listdir(os.path.join(T, 'ob2', 'new')) if os.path.isdir(os.path.join(T, 'ob2', 'new')) else []
t.ok(st == ['invalid_address'] and not new,
     'outbox plugin: an address with CRLF is invalid and no file is written', (st, new, err))
sys.exit(t.done())
