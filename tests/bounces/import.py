# import.py: herald bounces import end to end.  A campaign goes out through
# the email plugin to an SMTP server on loopback (aiosmtpd), with VERP
# envelope senders; the test builds bounces for some of the messages from
# the envelope senders the server saw (every shape of shapes.py: DSN hard
# and soft, ARF, Postfix, Exchange, Gmail, Yahoo, qmail), plus a forged
# token, a signed token of no message, garbage and a vacation reply; puts
# them in a Maildir and an mbox; imports both and checks:
#  - the summary and the listed files (unmatched, unparseable, not bounces);
#  - the store: events per type (herald report --json), suppressions and
#    consent (read with sqlite3, or psql);
#  - soft bounces suppress only at [bounces] soft_limit within soft_window;
#  - importing again changes nothing (every event already recorded);
#  - a second campaign skips exactly the suppressed addresses;
#  - an unreadable path: exit 1, named.
# All of it on an SQLite store, then on PostgreSQL (tests/pgserver.py)
# when it is installed.
import base64
import email
import hashlib
import hmac
import json
import mailbox
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from email import policy

HERE = os.path.join(os.environ['HERALD_SRCDIR'], 'tests')
sys.path.insert(0, os.path.join(HERE, 'email'))
sys.path.insert(0, os.path.join(HERE, 'bounces'))
sys.path.insert(0, HERE)
from smtpserver import ScriptedSMTP, Tap  # noqa: E402
from pgserver import PgServer  # noqa: E402
import shapes  # noqa: E402

HERALD = os.environ['HERALD']
t = Tap()
SECRET = 'verp-secret-for-the-bounce-test-0123'
plugdir = os.environ['HERALD_PLUGIN_DIR']


def scenario(backend, store_ini, rows, T):
    """The whole test on one store: STORE_INI is the gateway's [store]
    section, ROWS(sql) the store's rows as tuples of strings."""
    def ok(cond, name, diag=None):
        return t.ok(cond, '%s: %s' % (backend, name), diag)

    def herald(*args, timeout=120):
        p = subprocess.run([HERALD, '-c', os.path.join(T, 'g.ini')] + list(args),
                           capture_output=True, timeout=timeout)
        return p.returncode, p.stdout.decode(), p.stderr.decode()

    def snapshot():
        return (rows('SELECT customer, channel, type, at, campaign, message_key, detail '
                     'FROM events ORDER BY id'),
                rows('SELECT channel, address, reason FROM suppressions ORDER BY address'),
                rows('SELECT customer, channel, granted, at, source FROM consent '
                     'ORDER BY customer'))

    def engagement(campaign):
        rc, out, err = herald('report', campaign, '--json')
        tot = {}
        for g in json.loads(out)['groups'] if rc == 0 else []:
            for k, v in g['engagement'].items():
                tot[k] = tot.get(k, 0) + v['events']
        return tot

    srv = ScriptedSMTP()
    try:
        steps(srv, ok, herald, snapshot, engagement, rows, store_ini, T)
    finally:
        srv.stop()


def steps(srv, ok, herald, snapshot, engagement, rows, store_ini, T):
    with open(os.path.join(T, 'g.ini'), 'w') as f:
        f.write(f"""{store_ini}
[plugins]
dir = {plugdir}
[channel.email]
plugin = email
server = 127.0.0.1:{srv.port}
from = News <news@example.com>
starttls = no
timeout_ms = 10000
bounce_domain = b.example.com
verp_secret = {SECRET}
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
    if 'url = ' in store_ini:
        rc, out, err = herald('store', 'migrate')
        ok(rc == 0, 'herald store migrate', out + err)
    rc, out, err = herald('customers', 'import', os.path.join(T, 'c.jsonl'))
    ok(rc == 0, 'customers imported', err)

    rc, out, err = herald('run', os.path.join(T, 'one.ini'))
    ok(rc == 0 and len(srv.messages) == len(custs),
       'campaign one: %d messages over SMTP' % len(srv.messages), out + err)
    sent = {}
    for m in srv.messages:
        msg = email.message_from_bytes(m['data'], policy=policy.default)
        sent[m['rcpt_tos'][0].split('@')[0]] = (m['mail_from'], m['rcpt_tos'][0],
                                                msg['Message-ID'])
    ok(all(v[0].startswith('b+') and v[0].endswith('@b.example.com') for v in sent.values()),
       'every envelope sender is a VERP address')

    base = int(time.time()) - 86400
    day = 86400
    box = mailbox.Maildir(os.path.join(T, 'Maildir'), create=True)
    mb = mailbox.mbox(os.path.join(T, 'bounces.mbox'), create=True)

    def add(where, data, subdir='new', from_time=None):
        if where == 'maildir':
            m = mailbox.MaildirMessage(data)
            m.set_subdir(subdir)
            box.add(m)
        else:
            m = mailbox.mboxMessage(data)
            m.set_from('MAILER-DAEMON', time.gmtime(from_time or base))
            mb.add(m)

    def shape(name, cust, when, where, **kw):
        build = shapes.SHAPES[name][0]
        v, r, i = sent[cust]
        add(where, build(v, r, i, shapes.date(when)), **kw)

    # Hard bounces of every shape, a complaint, soft bounces.
    shape('dsn-hard', 'c01', base + 100, 'maildir')
    shape('postfix', 'c02', base + 200, 'maildir', subdir='cur')
    shape('exchange', 'c03', base + 300, 'mbox')
    shape('gmail', 'c04', base + 400, 'mbox')
    shape('yahoo', 'c05', base + 500, 'maildir')
    shape('qmail', 'c06', base + 600, 'mbox')
    shape('arf', 'c07', base + 700, 'maildir')
    # c08: two soft bounces within 7 days (soft_limit = 2): suppressed.
    shape('dsn-soft', 'c08', base - 3 * day, 'maildir')
    shape('qmail-soft', 'c08', base, 'mbox')
    # c09: two soft bounces 10 days apart: counted, not suppressed.
    shape('dsn-soft', 'c09', base - 10 * day, 'maildir')
    shape('dsn-soft', 'c09', base, 'mbox')
    # c14: two soft bounces 2 days apart, the later one read first (the
    # Maildir before the mbox): suppressed all the same.
    shape('dsn-soft', 'c14', base + 2 * day, 'maildir')
    shape('qmail-soft', 'c14', base, 'mbox')
    # c10: a forged token: unmatched, never recorded.
    v, r, i = sent['c10']
    add('maildir', shapes.dsn(shapes.forge(v), r, i, shapes.date(base + 1000)))
    # c11: a vacation reply to its envelope sender: no bounce.
    v, r, i = sent['c11']
    add('maildir', shapes.vacation(v, r, i, shapes.date(base + 1100)))
    # c12: an ARF whose feedback loop removed the envelope sender: found by
    # the returned message's Message-ID.
    v, r, i = sent['c12']
    add('mbox', shapes.arf(v, r, i, shapes.date(base + 1200), redact_return_path=True))
    # A token signed with the secret, of a message never sent.
    k = hmac.new(SECRET.encode(), b'herald verp v1', hashlib.sha256).digest()
    h = hashlib.sha256(b'one:1:nobody').digest()[:16]
    ghost = 'b+%s@b.example.com' % base64.b32encode(
        h + hmac.new(k, h, hashlib.sha256).digest()[:9]).decode().lower()
    add('mbox', shapes.dsn(ghost, 'nobody@example.org', '<x@example.org>',
                           shapes.date(base + 1300)))
    # c13: a qmail bounce without Date, in the mbox: its From line's time.
    v, r, i = sent['c13']
    nodate = shapes.qmail(v, r, i, 'X').replace(b'Date: X\n', b'')
    add('mbox', nodate, from_time=base + 1400)
    # Garbage.
    add('maildir', shapes.garbage())
    mb.flush()
    mb.close()
    hard = {'c01', 'c02', 'c03', 'c04', 'c05', 'c06', 'c13'}
    complained = {'c07', 'c12'}
    suppressed = hard | complained | {'c08', 'c14'}

    rc, out, err = herald('bounces', 'import', os.path.join(T, 'Maildir'),
                          os.path.join(T, 'bounces.mbox'))
    ok(rc == 0, 'import: exit 0', out + err)
    want = ('read 11 files (19 messages): 7 hard, 6 soft, 2 complaints, 2 unmatched, '
            '1 unparseable, 1 not a bounce, 0 already recorded; 2 addresses suppressed after '
            '2 soft bounces within 7d')
    ok(out.strip() == want, 'the summary counts every kind', out + err)
    lines = err.strip().split('\n')
    ok(sum(': unmatched: ' in l and 'not signed with the verp_secret' in l for l in lines) == 1,
       'the forged token is listed as unmatched, with why', err)
    ok(sum(': unmatched: ' in l and 'signed, but no message of this store' in l for l in lines) == 1,
       'the token of no message is listed as unmatched', err)
    ok(sum(': unparseable: ' in l and ('no header' in l or 'could not read' in l)
           for l in lines) == 1,
       'the garbage is listed as unparseable', err)
    ok(sum(': not a bounce: ' in l and 'auto-reply' in l for l in lines) == 1,
       'the vacation reply is listed as not a bounce', err)
    ok(all(l.startswith(T) for l in lines) and len(lines) == 4,
       'each listed line names its file (or mbox message)', err)

    ev = engagement('one')
    ok((ev.get('bounced'), ev.get('complained'), ev.get('soft_bounced')) == (7, 2, 6),
       'report: 7 bounced, 2 complained, 6 soft_bounced events', ev)
    rc, out, err = herald('report', 'one', '--json')
    em = [g for g in json.loads(out)['groups'] if g.get('channel') == 'email'] if rc == 0 else []
    ok(em and em[0]['sent'] > 0
       and abs(em[0]['rates']['bounced']
               - em[0]['engagement']['bounced']['messages'] / em[0]['sent']) < 1e-9
       and abs(em[0]['rates']['complained']
               - em[0]['engagement']['complained']['messages'] / em[0]['sent']) < 1e-9
       and em[0]['rates']['complained'] > 0,
       'report: the bounce and complaint rates (messages over messages sent)',
       em[0]['rates'] if em else out)
    rc, out, err = herald('report', 'one')
    ok(rc == 0 and 'BOUNCED COMPLAINED' in ' '.join(out.split()), 'the text report has '
       'BOUNCED and COMPLAINED columns', out)
    sup = {a.split('@')[0] for (a,) in rows("SELECT address FROM suppressions WHERE channel = 'email'")}
    ok(sup == suppressed, 'suppressed: the hard bounces, the complaints, c08 and c14 (2 soft '
       'bounces in 7 days, in either order), not c09 (10 days apart)', sorted(sup ^ suppressed))
    reasons = dict((a.split('@')[0], r) for a, r in rows('SELECT address, reason FROM suppressions'))
    ok(reasons.get('c08') == 'soft_bounced' and reasons.get('c01') == 'bounced'
       and reasons.get('c07') == 'complained', 'suppression reasons', reasons)
    cons = rows("SELECT customer, granted, source FROM consent WHERE channel = 'email'")
    ok(sorted(cons) == [('c07', '0', 'complaint'), ('c12', '0', 'complaint')],
       'the complainers\' e-mail consent is withdrawn', cons)
    at = dict(rows("SELECT customer, at FROM events WHERE type = 'bounced'"))
    ok(at.get('c01') == str(base + 100) and at.get('c13') == str(base + 1400),
       'an event is at the report\'s Date, else the mbox From line\'s time', at)
    det = rows("SELECT detail FROM events WHERE customer = 'c03' AND type = 'bounced'")
    ok(det and '"status":"5.1.10"' in det[0][0] and '"matched_by":"verp"' in det[0][0],
       'the detail keeps the status and how the message was found', det)
    det = rows("SELECT detail, message_key FROM events WHERE customer = 'c12'")
    ok(det and '"matched_by":"message-id"' in det[0][0] and det[0][1] == 'one:1:c12',
       'the redacted complaint was found by its Message-ID', det)

    before = snapshot()
    rc, out, err = herald('bounces', 'import', '--verbose', os.path.join(T, 'Maildir'),
                          os.path.join(T, 'bounces.mbox'))
    ok(rc == 0 and '0 hard, 0 soft, 0 complaints' in out and '15 already recorded' in out,
       'importing again: everything already recorded', out + err)
    ok(': matched: hard bounce (5.1.10) of one:1:c03: already recorded\n' in out
       and ': matched: complaint (abuse) of one:1:c12, found by its Message-ID: '
           'already recorded\n' in out
       and out.count(': matched: ') == 15,
       '--verbose lists each bounce with its message', out)
    ok(snapshot() == before, 'importing again changes nothing in the store')

    # One mbox again, on its own, after the Maildir's files moved to cur/.
    for key in list(box.keys()):
        m = box.get_message(key)
        if m.get_subdir() == 'new':
            m.set_subdir('cur')
            m.add_flag('S')
            box[key] = m
    rc, out, err = herald('bounces', 'import', os.path.join(T, 'Maildir'))
    ok(rc == 0 and '0 hard, 0 soft, 0 complaints' in out and snapshot() == before,
       'a mail reader moving the files to cur/ changes nothing either', out + err)

    srv.messages.clear()
    rc, out, err = herald('run', os.path.join(T, 'two.ini'))
    got = {m['rcpt_tos'][0].split('@')[0] for m in srv.messages}
    ok(rc == 0 and got == set(custs) - suppressed,
       'campaign two skips exactly the suppressed addresses (%d sent)' % len(got),
       (out + err, sorted(got ^ (set(custs) - suppressed))))
    rc, out, err = herald('report', 'two', '--json')
    skipped = {}
    for g in json.loads(out)['groups'] if rc == 0 else []:
        for k, v in g.get('skipped_by_reason', {}).items():
            skipped[k] = skipped.get(k, 0) + v
    ok(sum(skipped.values()) == len(suppressed), 'campaign two: %d skipped' % len(suppressed),
       skipped)

    rc, out, err = herald('bounces', 'import', os.path.join(T, 'nowhere'),
                          os.path.join(T, 'bounces.mbox'))
    ok(rc == 1 and (T + '/nowhere: No such file or directory') in err
       and 'read 1 file (' in out and 'could not be read' in out,
       'a path that cannot be read: named, the others read, exit 1', out + err)
    rc, out, err = herald('bounces', 'import')
    ok(rc == 2, 'no mailbox: usage error', err)


tmp = tempfile.TemporaryDirectory(prefix='herald-bounces.')
db = os.path.join(tmp.name, 'sqlite', 'herald.db')
os.makedirs(os.path.dirname(db))


def sqlite_rows(sql):
    con = sqlite3.connect('file:%s?mode=ro' % db, uri=True)
    try:
        return [tuple('' if v is None else str(v) for v in r)
                for r in con.execute(sql).fetchall()]
    finally:
        con.close()


scenario('sqlite', '[store]\npath = %s' % db, sqlite_rows, os.path.dirname(db))

pg = PgServer()
if not pg.available():
    t.ok(True, '# SKIP PostgreSQL is not installed: the PostgreSQL store untested')
else:
    try:
        url = pg.start()

        def pg_rows(sql):
            # Unit and record separators: a detail may hold '|' or a newline.
            p = subprocess.run(['psql', '-X', '-q', '-A', '-t', '-F', '\x1f', '-R', '\x1e',
                                '-v', 'ON_ERROR_STOP=1', '-d', url, '-c', sql],
                               capture_output=True, timeout=120)
            if p.returncode != 0:
                raise RuntimeError(p.stderr.decode())
            out = p.stdout.decode().rstrip('\n')
            return [tuple(r.split('\x1f')) for r in out.split('\x1e') if r != '']

        os.makedirs(os.path.join(tmp.name, 'pg'))
        scenario('postgresql', '[store]\nurl = %s' % url, pg_rows,
                 os.path.join(tmp.name, 'pg'))
    finally:
        pg.stop()
sys.exit(t.done())
