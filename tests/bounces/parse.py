# parse.py: what core/bounce.c reads in each bounce shape of
# tests/bounces/corpus (made by make-corpus.py from shapes.py), through
# tests/bounces/bounce-parse: the kind (hard, soft, complaint, not a bounce,
# unparseable), the status, the failed recipient, the VERP token and the
# returned message's Message-ID; then the same files as a Maildir and as an
# mbox, and the corpus made again from shapes.py is the one in git.
import hashlib
import json
import mailbox
import os
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.join(os.environ['HERALD_SRCDIR'], 'tests', 'bounces')
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(os.environ['HERALD_SRCDIR'], 'tests', 'email'))
from smtpserver import Tap  # noqa: E402
import importlib.util  # noqa: E402

spec = importlib.util.spec_from_file_location('make_corpus', os.path.join(HERE, 'make-corpus.py'))
mc = importlib.util.module_from_spec(spec)
spec.loader.exec_module(mc)

TOOL = os.path.join(os.environ['HERALD_BUILDDIR'], 'tests', 'bounces', 'bounce-parse')
CORPUS = os.path.join(HERE, 'corpus')
t = Tap()
tmp = tempfile.TemporaryDirectory(prefix='herald-bounce-parse.')
T = tmp.name


def parse(*paths):
    p = subprocess.run([TOOL] + list(paths), capture_output=True, timeout=60)
    return p.returncode, [json.loads(l) for l in p.stdout.decode().splitlines()], p.stderr.decode()


def tok(key):
    return mc.verp(key)[0].split('@')[0]


def mid(key):
    return '%s.herald@example.com' % hashlib.sha256(key.encode()).digest()[:16].hex()


# name: (kind, format, status, recipient, key whose token and Message-ID it names)
shape_keys = {name: 'corpus:1:c%d' % i for i, name in enumerate(sorted(mc.shapes.SHAPES))}
WANT = {
    'dsn-hard': ('hard', 'dsn', '5.1.1', 'user%d@example.org'),
    'dsn-soft': ('soft', 'dsn', '4.2.2', 'user%d@example.org'),
    'arf': ('complaint', 'arf', '', 'user%d@example.org'),
    'postfix': ('hard', 'dsn', '5.1.1', 'user%d@example.org'),
    'exchange': ('hard', 'dsn', '5.1.10', 'user%d@example.org'),
    'gmail': ('hard', 'text', '5.1.1', 'user%d@example.org'),
    'yahoo': ('hard', 'text', '554', 'user%d@example.org'),
    'qmail': ('hard', 'qmail', '5.1.1', 'user%d@example.org'),
    'qmail-soft': ('soft', 'qmail', '4.2.2', 'user%d@example.org'),
}

got = {}
for name in sorted(os.listdir(CORPUS)):
    rc, out, err = parse(os.path.join(CORPUS, name))
    got[name[:-4]] = out[0] if out else {}
    t.ok(rc == 0 and len(out) == 1, '%s: read, one message' % name, err)

for name, (kind, fmt, status, rcpt) in sorted(WANT.items()):
    g = got.get(name, {})
    key = shape_keys[name]
    i = int(key.rsplit('c', 1)[1])
    t.ok((g.get('kind'), g.get('format'), g.get('status'), g.get('recipient'))
         == (kind, fmt, status, rcpt % i),
         '%s: %s, status %r, recipient %s' % (name, kind, status, rcpt % i), g)
    t.ok(g.get('tokens') == [tok(key)] and g.get('message_id') == mid(key),
         '%s: names the message by its VERP token and Message-ID' % name, g)
    t.ok(g.get('date') == 1796637600 and g.get('why') is None,
         '%s: the report\'s Date' % name, g)

g = got['forged']
t.ok(g.get('kind') == 'hard' and len(g.get('tokens', [])) == 1
     and g['tokens'][0] != tok('corpus:1:forged'),
     'forged: read as the hard bounce it claims to be; the token is checked later', g)
g = got['dsn-headers']
t.ok(g.get('kind') == 'hard' and g.get('message_id') == mid('corpus:1:headers')
     and g.get('tokens') == [tok('corpus:1:headers')],
     'DSN returning text/rfc822-headers: its Return-Path and Message-ID', g)
g = got['arf-redacted']
t.ok(g.get('kind') == 'complaint' and g.get('tokens') == []
     and g.get('message_id') == mid('corpus:1:redacted') and g.get('feedback_type') == 'abuse',
     'ARF without the envelope sender: only the Message-ID names the message', g)
for name, kind, why in [
        ('dsn-delayed', 'ignored', 'a delay notice (Action: delayed)'),
        ('dsn-delivered', 'ignored', 'a success notice (Action: delivered)'),
        ('arf-not-spam', 'ignored', "a feedback report of type 'not-spam', not a complaint"),
        ('vacation', 'ignored', 'an auto-reply'),
        ('dsn-broken', 'unparseable', 'report-type=delivery-status without a '
                                      'message/delivery-status part'),
        ('dsn-nostatus', 'unparseable', 'Action: failed with no Status or Diagnostic-Code'),
        ('garbage', 'unparseable', '')]:
    g = got.get(name, {})
    t.ok(g.get('kind') == kind and why in (g.get('why') or ''),
         '%s: %s (%s)' % (name, kind, g.get('why')), g)

# The same messages in a Maildir (some in cur/, one without Date: the file
# name's time) and in an mbox (one without Date: the From line's time).
files = sorted(n for n in os.listdir(CORPUS) if n != 'garbage.eml')
box = mailbox.Maildir(os.path.join(T, 'md'), create=True)
mb = mailbox.mbox(os.path.join(T, 'mb'), create=True)
for i, n in enumerate(files):
    with open(os.path.join(CORPUS, n), 'rb') as f:
        data = f.read()
    if n == 'qmail.eml':
        data = data.replace(b'Date: Mon, 07 Dec 2026 10:00:00 GMT\n', b'')
    m = mailbox.MaildirMessage(data)
    m.set_subdir('cur' if i % 2 else 'new')
    box.add(m)
    m = mailbox.mboxMessage(data)
    m.set_from('MAILER-DAEMON', (2026, 12, 8, 11, 0, 0, 1, 342, 0))
    mb.add(m)
mb.flush()
mb.close()
rc, out, err = parse(os.path.join(T, 'md'))
kinds = sorted(o.get('kind') for o in out)
t.ok(rc == 0 and kinds == sorted(got[n[:-4]]['kind'] for n in files),
     'a Maildir: every file of cur/ and new/ read as on its own', (rc, err, kinds))
t.ok(all('/cur/' in o['name'] for o in out[:len(files) // 2])
     and all('/new/' in o['name'] for o in out[len(files) // 2:]),
     'a Maildir: cur/ first, then new/, each by name')
q = [o for o in out if o.get('format') == 'qmail' and o.get('kind') == 'hard']
stamp = int(os.listdir(os.path.join(T, 'md', 'cur' if files.index('qmail.eml') % 2 else 'new'))[0]
            .split('.')[0]) if q else None
t.ok(q and 0 < q[0]['date'] and abs(q[0]['date'] - stamp) < 86400,
     'a Maildir file without Date: the time of its name', q)
rc, out, err = parse(os.path.join(T, 'mb'))
t.ok(rc == 0 and [o.get('kind') for o in out] == [got[n[:-4]]['kind'] for n in files],
     'an mbox: every message read as on its own, in order', (rc, err, out))
t.ok(all(', message %d at byte ' % (i + 1) in o['name'] for i, o in enumerate(out)),
     'an mbox: each message named by its number and byte offset', [o['name'] for o in out][:3])
q = [o for o in out if o.get('format') == 'qmail' and o.get('kind') == 'hard']
t.ok(q and q[0]['date'] == 1796727600, 'an mbox message without Date: its From line\'s time', q)

# Unreadable things are named.
os.makedirs(os.path.join(T, 'plain'))
rc, out, err = parse(os.path.join(T, 'plain'), os.path.join(T, 'missing'))
t.ok(rc == 1 and [o.get('error') for o in out] == [
    'a folder, but not a Maildir (no cur/ or new/ in it)', 'No such file or directory'],
    'a folder that is no Maildir, a missing file: named with why', out)
os.makedirs(os.path.join(T, 'fifo', 'new'))
os.mkfifo(os.path.join(T, 'fifo', 'new', '1700000000.M1.x'))
rc, out, err = parse(os.path.join(T, 'fifo'))
t.ok(rc == 1 and [o.get('error') for o in out] == ['not a regular file'],
     'a FIFO in a Maildir: refused at once, not waited on', out)
open(os.path.join(T, 'empty'), 'w').close()
rc, out, err = parse(os.path.join(T, 'empty'))
t.ok(rc == 0 and out and out[0].get('kind') == 'unparseable' and out[0].get('why') == 'an empty file',
     'an empty file: unparseable', out)

# The corpus in git is what make-corpus.py makes.
drift = [n for n, data in mc.corpus().items()
         if open(os.path.join(CORPUS, n + '.eml'), 'rb').read() != data]
t.ok(not drift and len(mc.corpus()) == len(os.listdir(CORPUS)),
     'tests/bounces/corpus is make-corpus.py\'s output', drift)
sys.exit(t.done())
