# mime.py: every message the email plugin sends, as received by a real SMTP
# server on loopback, parsed by Python's email package (policy.default):
# no defects, subject, names and bodies decode to exactly what was given,
# and the byte-level rules of RFC 5322 / 2045 / 2047 / 8058 hold.
import datetime
import email.header
import email.policy
import email.utils
import hashlib
import os
import re
import signal
import sys

sys.path.insert(0, os.path.join(os.environ['HERALD_SRCDIR'], 'tests', 'email'))
from smtpserver import ScriptedSMTP, Tap, plugin_run  # noqa: E402

signal.alarm(120)
t = Tap()
FROM_NAME = 'Hérald Nëws 📣'
FROM_ADDR = 'news@herald.example'
FROM = '%s <%s>' % (FROM_NAME, FROM_ADDR)
CREATED = 1767225600 + 3 * 86400 + 3723   # 2026-01-04 01:02:03 UTC

long_html = ('<html><body><p>' + 'Zoë 漢字 😀 = x ' * 400 + '</p>\n'
             + '<p>' + 'y' * 3000 + '</p></body></html>\n')
tricky_text = ('Hello Zoë,\n'
               'trailing spaces   \n'
               'trailing tab\t\n'
               '.a line starting with a dot\n'
               '.\n'
               'From the start of a line\n'
               'a=b and =?not-encoded?= and =\n'
               + 'x' * 75 + '\n' + 'y' * 76 + '\n' + 'z' * 77 + '\n'
               + 'é' * 40 + '\n'
               'no final newline')

cases = [
    dict(key='mime:1:unicode', to='zoe@example.com', to_name='Zoë 漢字 😀',
         parts={'email.subject': 'Bonjour Zoë — 漢字 😀 offre spéciale',
                'email.text': 'Bonjour Zoë,\n漢字 😀\n', 'email.html': long_html},
         unsubscribe_url='https://t.herald.example/u/tok3n?c=spring&x=1',
         unsubscribe_mailto='mailto:unsub+tok3n@herald.example'),
    dict(key='mime:1:longascii', to='a@example.com', to_name='Plain Name',
         parts={'email.subject': ' '.join(['word%d' % i for i in range(60)])
                + '  two  spaces',
                'email.text': tricky_text, 'email.html': '<p>short</p>'},
         unsubscribe_url='https://t.herald.example/u/a',
         unsubscribe_mailto='unsub@herald.example'),
    dict(key='mime:1:longcjk', to='b@example.com',
         to_name='漢字' * 40,   # several encoded-words
         parts={'email.subject': '漢字かなカナ😀' * 30,
                'email.text': tricky_text}),
    dict(key='mime:1:htmlonly', to='c@example.com',
         to_name='Jane "JJ" O\'Neil \\ x',
         parts={'email.subject': 'has =?utf-8?q?x?= inside',
                'email.html': '<p>only html, no newline</p>'},
         unsubscribe_url='https://t.herald.example/u/c'),
    dict(key='mime:1:crlf', to=[{'type': 'email', 'value': 'd1@example.com'},
                                {'type': 'email', 'value': 'd2@example.com'}],
         to_name='First Only',
         parts={'email.subject': '', 'email.text': 'crlf\r\nlines\r\n',
                'email.html': '<p>crlf</p>\r\n'}),
    dict(key='mime:1:newline', to='e@example.com',
         parts={'email.subject': 'line one\nline two\r\n',
                'email.text': '\n\nstarts with blank lines\n'}),
    dict(key='mime:1:latin', to='g@example.com',
         to_name='Zoë Ægir-Łukasz Ñúñez Öberg',   # one Q encoded-word
         parts={'email.subject': 'Ça coûte 10 € — “quoted” ?=_',
                'email.text': 'x\n'}),
    dict(key='mime:1:spaces', to='f@example.com',
         parts={'email.subject': '  leading and trailing  ',
                'email.text': 'x'}),
]
for c in cases:
    c['created'] = CREATED


def unfold(v):
    return re.sub(r'\r\n(?=[ \t])', '', v)


def want_subject(s):
    # mime.h: final line breaks dropped, inner ones become one space.
    s = s.rstrip('\r\n')
    return s.replace('\r\n', ' ').replace('\r', ' ').replace('\n', ' ')


def rfc2047_name(raw):
    """The display name as RFC 2047 section 6.2 decodes it (whitespace
    between adjacent encoded-words ignored).  Python's policy.default keeps
    that whitespace inside phrases, so a name too long for one encoded-word
    is checked with email.header, which follows the RFC."""
    v = unfold(raw).strip()
    v = v[:v.rindex('<')].strip()
    out = ''
    for b, cs in email.header.decode_header(v):
        out += b.decode(cs or 'ascii') if isinstance(b, bytes) else b
    return out


def norm(s):
    return s.replace('\r\n', '\n')


def raw_headers(data):
    head = data.split(b'\r\n\r\n', 1)[0].decode('ascii')
    out = []
    for line in head.split('\r\n'):
        if line[:1] in (' ', '\t'):
            out[-1] = (out[-1][0], out[-1][1] + '\r\n' + line)
        else:
            k, v = line.split(':', 1)
            out.append((k, v))
    return out


def check(case, rec):
    data = rec['data']
    name = case['key'].split(':')[-1]
    parts = case['parts']
    tos = case['to'] if isinstance(case['to'], list) else [
        {'value': case['to']}]
    msg = email.message_from_bytes(data, policy=email.policy.default)

    defects = [(p.get_content_type(), p.defects) for p in msg.walk()
               if p.defects]
    t.ok(not defects, '%s: no defects on any part' % name, defects)
    t.ok(rec['mail_from'] == FROM_ADDR
         and rec['rcpt_tos'] == [x['value'] for x in tos],
         '%s: envelope MAIL FROM and RCPT TO' % name,
         (rec['mail_from'], rec['rcpt_tos']))

    # Octets: CRLF everywhere, 7-bit, lines within limits.
    lines = data.split(b'\r\n')
    t.ok(b'\n' not in data.replace(b'\r\n', b'')
         and b'\r' not in data.replace(b'\r\n', b''),
         '%s: every line ends in CRLF' % name)
    t.ok(data.endswith(b'\r\n'), '%s: ends with CRLF' % name)
    t.ok(all(b < 128 for b in data), '%s: 7-bit only' % name)
    t.ok(max(len(l) for l in lines) <= 998, '%s: lines <= 998 octets' % name)
    head, body = data.split(b'\r\n\r\n', 1)
    t.ok(max(len(l) for l in body.split(b'\r\n')) <= 76,
         '%s: body lines <= 76 (quoted-printable)' % name,
         max(len(l) for l in body.split(b'\r\n')))
    t.ok(max(len(l) for l in head.split(b'\r\n')) <= 998,
         '%s: header lines <= 998' % name)
    long_hdr = [l for l in head.split(b'\r\n') if len(l) > 78
                and not l.startswith((b'List-Unsubscribe', b' <'))]
    t.ok(not long_hdr, '%s: header lines folded within 78' % name, long_hdr)
    ews = re.findall(rb'=\?[^?]*\?[bBqQ]\?[^?]*\?=', head)
    t.ok(all(len(w) <= 75 for w in ews),
         '%s: encoded-words <= 75 characters' % name)

    hdrs = raw_headers(data)
    names = [k.lower() for k, _ in hdrs]
    t.ok('bcc' not in names, '%s: no Bcc' % name)
    t.ok(all(names.count(h) == 1 for h in ('date', 'from', 'to', 'subject',
                                           'message-id', 'mime-version')),
         '%s: exactly one Date, From, To, Subject, Message-ID, '
         'MIME-Version' % name, names)

    # Date from message->created, Message-ID from the key: byte for byte.
    want_date = email.utils.format_datetime(
        datetime.datetime.fromtimestamp(CREATED, datetime.timezone.utc))
    want_date = want_date.replace('-0000', '+0000')
    t.ok(b'\r\nDate: ' + want_date.encode() + b'\r\n' in b'\r\n' + head + b'\r\n',
         '%s: Date is created (%s)' % (name, want_date))
    want_id = '<%s.herald@herald.example>' % hashlib.sha256(
        case['key'].encode()).hexdigest()[:32]
    t.ok(b'\r\nMessage-ID: ' + want_id.encode() + b'\r\n'
         in b'\r\n' + head + b'\r\n', '%s: Message-ID from the key' % name)
    t.ok(b'\r\nMIME-Version: 1.0\r\n' in b'\r\n' + head + b'\r\n',
         '%s: MIME-Version: 1.0' % name)

    # Decoded headers.
    t.ok(str(msg['subject']) == want_subject(parts['email.subject']),
         '%s: subject decodes to the rendered subject' % name,
         repr(str(msg['subject'])))
    fa = msg['from'].addresses
    t.ok(len(fa) == 1 and fa[0].display_name == FROM_NAME
         and fa[0].addr_spec == FROM_ADDR, '%s: From name and address' % name,
         fa)
    ta = msg['to'].addresses
    want_name = want_subject(case.get('to_name') or '')
    raw_to = [v for k, v in hdrs if k.lower() == 'to'][0]
    one_word = len(re.findall(r'=\?', raw_to)) <= 1
    t.ok([a.addr_spec for a in ta] == [x['value'] for x in tos]
         and (ta[0].display_name == want_name if one_word
              else rfc2047_name(raw_to.split(',')[0]) == want_name),
         '%s: To names and addresses' % name, ta)

    # List-Unsubscribe (RFC 2369, RFC 8058).
    lu = [v for k, v in hdrs if k.lower() == 'list-unsubscribe']
    lup = [v for k, v in hdrs if k.lower() == 'list-unsubscribe-post']
    https = case.get('unsubscribe_url')
    mailto = case.get('unsubscribe_mailto')
    if mailto and not mailto.startswith('mailto:'):
        mailto = 'mailto:' + mailto
    if https or mailto:
        want = ', '.join('<%s>' % u for u in (https, mailto) if u)
        t.ok(len(lu) == 1 and unfold(lu[0]).strip() == want,
             '%s: one List-Unsubscribe %s' % (name, want), lu)
    else:
        t.ok(not lu, '%s: no List-Unsubscribe without URLs' % name)
    if https:
        t.ok(b'\r\nList-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n'
             in b'\r\n' + head + b'\r\n' and len(lup) == 1,
             '%s: List-Unsubscribe-Post one-click' % name)
    else:
        t.ok(not lup, '%s: no List-Unsubscribe-Post without https' % name)

    # Structure and bodies.
    text, html = parts.get('email.text'), parts.get('email.html')
    if text is not None and html is not None:
        sub = list(msg.iter_parts())
        t.ok(msg.get_content_type() == 'multipart/alternative'
             and [p.get_content_type() for p in sub]
             == ['text/plain', 'text/html'],
             '%s: multipart/alternative, text then html' % name)
    else:
        sub = [msg]
        t.ok(not msg.is_multipart() and msg.get_content_type()
             == ('text/plain' if text is not None else 'text/html'),
             '%s: single part' % name)
    for p, want in zip(sub, [x for x in (text, html) if x is not None]):
        t.ok(p.get_content_charset() == 'utf-8'
             and p['content-transfer-encoding'] == 'quoted-printable',
             '%s: %s UTF-8 quoted-printable' % (name, p.get_content_type()))
        got = p.get_content()
        t.ok(norm(got) == norm(want), '%s: %s decodes to the rendered part'
             % (name, p.get_content_type()), '%r\n%r' % (got[:300], want[:300]))


s = ScriptedSMTP()
try:
    keys = {'server': '127.0.0.1:%d' % s.port, 'from': FROM,
            'starttls': 'no', 'timeout_ms': '5000'}
    rc, res, err, _ = plugin_run(keys, cases)
    t.ok(rc == 0 and len(res) == len(cases)
         and all(r['status'] == 'sent' for r in res),
         'all %d messages sent' % len(cases), (rc, err, res))
    by_key = {}
    for m in s.messages:
        mid = re.search(rb'Message-ID: <([0-9a-f]{32})', m['data'])
        by_key[mid.group(1).decode() if mid else None] = m
    for c in cases:
        h = hashlib.sha256(c['key'].encode()).hexdigest()[:32]
        rec = by_key.get(h)
        if not t.ok(rec is not None, '%s: received' % c['key']):
            continue
        check(c, rec)
        r = [x for x in res if x['key'] == c['key']]
        t.ok(r and r[0]['provider_id'] == '%s.herald@herald.example' % h,
             '%s: provider id is the Message-ID' % c['key'], r)

    # A resend (attempt 2, later) gives the same bytes: Date and Message-ID
    # come from the message, not the clock.
    again = dict(cases[0], attempt=2)
    n0 = len(s.messages)
    rc, res, err, _ = plugin_run(keys, [again])
    t.ok(len(s.messages) == n0 + 1 and s.messages[-1]['data']
         == by_key[hashlib.sha256(cases[0]['key'].encode())
                   .hexdigest()[:32]]['data'],
         'a resend is byte-for-byte identical')
finally:
    s.stop()
sys.exit(t.done())
