"""Write tests/bounces/corpus/: one file per bounce shape of shapes.py,
with VERP tokens signed with SECRET (parse.py's and the fuzzer's seeds).
Run it again after changing shapes.py; the files are kept in git.
    /usr/bin/python3 tests/bounces/make-corpus.py"""
import base64
import hashlib
import hmac
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import shapes  # noqa: E402

SECRET = 'bounce-corpus-secret-0123456789'
DOMAIN = 'b.example.com'


def verp(key, secret=SECRET):
    k = hmac.new(secret.encode(), b'herald verp v1', hashlib.sha256).digest()
    h = hashlib.sha256(key.encode()).digest()[:16]
    mac = hmac.new(k, h, hashlib.sha256).digest()[:9]
    return 'b+%s@%s' % (base64.b32encode(h + mac).decode().lower(), DOMAIN), h.hex()


def msgid(key):
    return '<%s.herald@example.com>' % hashlib.sha256(key.encode()).digest()[:16].hex()


def corpus():
    """name -> bytes."""
    d = shapes.date(1796637600)          # Mon, 07 Dec 2026 10:00:00 GMT
    out = {}
    for i, (name, (build, _)) in enumerate(sorted(shapes.SHAPES.items())):
        key = 'corpus:1:c%d' % i
        out[name] = build(verp(key)[0], 'user%d@example.org' % i, msgid(key), d)
    key = 'corpus:1:forged'
    out['forged'] = shapes.dsn(shapes.forge(verp(key)[0]), 'forged@example.org', msgid(key), d)
    key = 'corpus:1:delayed'
    out['dsn-delayed'] = shapes.dsn(verp(key)[0], 'slow@example.org', msgid(key), d,
                                    status='4.4.1', action='delayed',
                                    diagnostic='smtp; 451 4.4.1 try again later')
    key = 'corpus:1:delivered'
    out['dsn-delivered'] = shapes.dsn(verp(key)[0], 'ok@example.org', msgid(key), d,
                                      status='2.0.0', action='delivered',
                                      diagnostic='smtp; 250 2.0.0 OK')
    key = 'corpus:1:headers'
    out['dsn-headers'] = shapes.dsn(verp(key)[0], 'gone@example.org', msgid(key), d,
                                    attach='headers')
    key = 'corpus:1:redacted'
    out['arf-redacted'] = shapes.arf(verp(key)[0], 'redacted@example.org', msgid(key), d,
                                     redact_return_path=True)
    key = 'corpus:1:notspam'
    out['arf-not-spam'] = shapes.arf(verp(key)[0], 'fine@example.org', msgid(key), d,
                                     feedback_type='not-spam')
    key = 'corpus:1:vacation'
    out['vacation'] = shapes.vacation(verp(key)[0], 'away@example.org', msgid(key), d)
    out['garbage'] = shapes.garbage()
    # A report that claims to be a DSN but carries no status part, and one
    # whose recipient failed without saying how.
    key = 'corpus:1:broken'
    broken = shapes.dsn(verp(key)[0], 'x@example.org', msgid(key), d)
    out['dsn-broken'] = broken.replace(b'Content-Type: message/delivery-status',
                                       b'Content-Type: text/plain', 1)
    key = 'corpus:1:nostatus'
    out['dsn-nostatus'] = shapes.dsn(verp(key)[0], 'y@example.org', msgid(key), d,
                                     status='', diagnostic='x-local; it did not work')
    return out


if __name__ == '__main__':
    here = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'corpus')
    os.makedirs(here, exist_ok=True)
    for name, data in sorted(corpus().items()):
        with open(os.path.join(here, name + '.eml'), 'wb') as f:
            f.write(data)
    print('%d files in %s' % (len(corpus()), here))
