"""herald customers import: good files (JSONL, CSV with RFC 4180 quoting),
each bad field's exact message with nothing imported, --skip-bad, upsert,
usage and exit codes.  A JSON line or CSV record over 1 MiB is a bad line
named FILE:LINE with the limit, at the byte: exactly 1 MiB imports (with
LF or CRLF), one byte more does not; a 30 MB line is refused without
being held (the import's peak RSS stays under the line's size).  A
message shows a value's line breaks, control characters and bytes that are
not UTF-8 escaped, on one line."""
import json
import resource
import subprocess
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from storetest import *  # noqa: E402,F401,F403

EXPECTED = "id, email, phone, push, webhook, timezone, locale, consent, preferred_channels, attributes"

# ---- good files ----------------------------------------------------------
db = tmp("good.db")
rc, out, err = run("customers", "import", "--store", db,
                   os.path.join(DATA, "customers-good.jsonl"))
eq((rc, err), (0, ""), "good JSONL imports")
eq(out, "imported 6 customers from %s\n" % os.path.join(DATA, "customers-good.jsonl"),
   "summary line")
eq(count(db, "customers"), 6, "six customers stored")
rec = json.loads(query(db, "SELECT record FROM customers WHERE id = 'cust-001'")[0][0])
eq(rec["attributes"]["tags"], ["vip"], "attributes kept as JSON")
eq(query(db, "SELECT email, phone, timezone, locale FROM customers WHERE id = 'cust-001'"),
   [("ana@example.com", "+33612345678", "Europe/Paris", "fr-FR")], "indexed columns filled")
eq(json.loads(query(db, "SELECT record FROM customers WHERE id = 'cust-001'")[0][0])["consent"],
   {"email": True, "sms": True, "push": False}, "consent kept in the record")
eq(count(db, "consent"), 0, "imported consent is not an explicit change")
rec = json.loads(query(db, "SELECT record FROM customers WHERE id = 'cust-005'")[0][0])
ok("phone" not in rec, "a null field is dropped")
eq(query(db, "SELECT count(*) FROM customers WHERE id = '日本-006'"), [(1,)], "UTF-8 id")

# Upsert: the same id again replaces the record.
p = write("upsert.jsonl", '{"id": "cust-002", "email": "ben@new.example.org", "consent": {"sms": true}}\n')
rc, out, err = run("customers", "import", "--store", db, p)
eq(rc, 0, "re-import of an existing id")
eq(count(db, "customers"), 6, "upsert: still six customers")
eq(query(db, "SELECT email FROM customers WHERE id = 'cust-002'"), [("ben@new.example.org",)],
   "upsert: record replaced")
eq(json.loads(query(db, "SELECT record FROM customers WHERE id = 'cust-002'")[0][0])["consent"],
   {"sms": True}, "upsert: imported consent replaced")

# CSV: quoting, embedded newlines, JSON cells, extra columns as attributes.
rc, out, err = run("customers", "import", "--store", db, os.path.join(DATA, "customers-good.csv"))
eq((rc, err), (0, ""), "good CSV imports")
eq(out, "imported 3 customers from %s\n" % os.path.join(DATA, "customers-good.csv"), "CSV summary")
r1 = json.loads(query(db, "SELECT record FROM customers WHERE id = 'csv-001'")[0][0])
eq(r1["attributes"], {"first_name": "Eve", "plan": "gold", "note": 'likes commas, and "quotes"'},
   "CSV: doubled quotes and commas in a quoted field; extra columns become attributes")
eq(r1["consent"], {"email": True, "sms": True}, "CSV: JSON cell")
r2 = json.loads(query(db, "SELECT record FROM customers WHERE id = 'csv-002'")[0][0])
eq(r2["attributes"]["note"], "two\nlines", "CSV: a line break inside quotes")
ok("phone" not in r2 and "push" not in r2, "CSV: an empty cell is an absent field")
r3 = json.loads(query(db, "SELECT record FROM customers WHERE id = 'csv-003'")[0][0])
eq(r3["push"], [{"platform": "android", "token": "t-3"}], "CSV: push list from JSON text")
ok("attributes" not in r3, "CSV: no attributes when every extra cell is empty")
rc, out, err = run("customers", "import", "--store", db, os.path.join(DATA, "customers-crlf.csv"))
eq((rc, count(db, "customers")), (0, 11), "CSV with CRLF line ends")
eq(query(db, "SELECT email FROM customers WHERE id = 'csv-crlf-2'"), [("h@example.com",)],
   "CSV CRLF: quoted id, no stray carriage return")
rc, out, err = run("customers", "import", "--store", db, os.path.join(DATA, "customers-bom.csv"))
eq((rc, query(db, "SELECT email FROM customers WHERE id = 'csv-bom-1'")),
   (0, [("i@example.com",)]), "CSV with a UTF-8 byte order mark")

p = write("bom.jsonl", '\ufeff{"id": "bom-1"}\r\n{"id": "bom-2"}\r\n')
rc, out, err = run("customers", "import", "--store", db, p)
eq((rc, err, query(db, "SELECT count(*) FROM customers WHERE id LIKE 'bom-%'")), (0, "", [(2,)]),
   "JSONL with a byte order mark and CRLF line ends")

# ---- bad lines: exact message, nothing of the file imported ------------
GOOD = '{"id": "ok-1", "email": "ok1@example.com"}\n{"id": "ok-2"}\n'
bad_cases = [
    ('{"email": "x@example.com"}', "id: required"),
    ('{"id": null}', "id: required"),
    ('{"id": ""}', "id: must be a non-empty string, not ''"),
    ('{"id": 17}', "id: must be a non-empty string, not 17"),
    ('{"id": "b", "email": "no-at.example.com"}',
     "email: 'no-at.example.com' is not an email address: no @"),
    ('{"id": "b", "email": "a b@example.com"}',
     "email: 'a b@example.com' is not an email address: a space"),
    ('{"id": "b", "email": "a@b@example.com"}',
     "email: 'a@b@example.com' is not an email address: more than one @"),
    ('{"id": "b", "phone": "12345"}', "phone: '12345' is not E.164 (+ and 8 to 15 digits): no + at the start"),
    ('{"id": "b", "phone": "+1234567890123456"}',
     "phone: '+1234567890123456' is not E.164 (+ and 8 to 15 digits): 16 digits (at most 15)"),
    ('{"id": "b", "phone": "+33 6 12 34 56 78"}',
     "phone: '+33 6 12 34 56 78' is not E.164 (+ and 8 to 15 digits): a space"),
    ('{"id": "b", "phone": "+0123456789"}',
     "phone: '+0123456789' is not E.164 (+ and 8 to 15 digits): the first digit is 0 "
     "(no country code starts with 0)"),
    ('{"id": "b", "email": "a>b@example.com"}',
     "email: 'a>b@example.com' is not an email address: '>' is not allowed"),
    ('{"id": "b", "phone": 33612345678}', "phone: must be a string, not 33612345678"),
    ('{"id": "b", "timezone": "Mars/Olympus_Mons"}',
     "timezone: 'Mars/Olympus_Mons' is not an IANA time zone (like Europe/Paris or UTC)"),
    ('{"id": "b", "locale": "english please"}',
     "locale: 'english please' is not a locale tag (like en or pt-BR)"),
    ('{"id": "b", "consent": {"email": "yes"}}',
     "consent.email: 'yes' is not a boolean (true or false)"),
    ('{"id": "b", "consent": {"sms": 1}}', "consent.sms: 1 is not a boolean (true or false)"),
    ('{"id": "b", "consent": {"fax": true}}',
     "consent: unknown channel 'fax' (expected email, sms, push, webhook)"),
    ('{"id": "b", "consent": ["email"]}',
     'consent: must be an object like {"email": true}, not ["email"]'),
    ('{"id": "b", "preferred_channels": ["email", "pigeon"]}',
     "preferred_channels: 'pigeon' is not a channel (expected email, sms, push, webhook)"),
    ('{"id": "b", "preferred_channels": ["sms", "sms"]}',
     "preferred_channels: 'sms' is listed twice"),
    ('{"id": "b", "preferred_channels": "email"}',
     "preferred_channels: must be a list of channel names, not 'email'"),
    ('{"id": "b", "push": "tok"}', 'push: must be a list of {"platform", "token"}, not \'tok\''),
    ('{"id": "b", "push": [{"platform": "ios"}]}', "push[0]: needs both platform and token"),
    ('{"id": "b", "push": [{"platform": "ios", "token": ""}]}',
     "push[0].token: must be a non-empty string, not ''"),
    ('{"id": "b", "push": [{"platform": "ios", "token": "t", "badge": 1}]}',
     "push[0]: unknown field 'badge' (expected platform, token)"),
    ('{"id": "b", "webhook": "ftp://example.com/x"}',
     "webhook: 'ftp://example.com/x' is not an http or https URL: not http:// or https://"),
    ('{"id": "b", "webhook": "https://"}', "webhook: 'https://' is not an http or https URL: no host"),
    ('{"id": "b", "attributes": [1, 2]}',
     "attributes: must be an object (of any JSON values), not [1,2]"),
    ('{"id": "b", "nickname": "Bo"}', "nickname: unknown field (expected %s)" % EXPECTED),
    ('{"id": "b", "id": "c"}', None),        # duplicate key: invalid JSON
    ('{"id": "b",', None),                    # truncated line
    ('["b"]', "not a JSON object"),
    # Hostile: a NUL escaped or raw, nesting past
    # jansson's depth limit (2048): refused by the parser, line and column.
    ('{"id": "b\\u0000c"}', "invalid JSON at column 17: \\u0000 is not allowed near '\"b\\u0000c\"'"),
    ('{"id": "b\x00c"}', None),
    ('{"id": "b", "attributes": {"x": ' + '[' * 100000 + ']' * 100000 + '}}', None),
    # What the scheduler cannot read back (jsoncheck_load, 512 levels) is
    # refused here, not at every run after (found by tests/fuzz/fuzz_json).
    ('{"id": "b", "attributes": {"deep": %s%s}}' % ("[" * 511, "]" * 511),
     "attributes: nested deeper than 511 levels of arrays and objects"),
]
for i, (line, msg) in enumerate(bad_cases):
    name = "bad%02d.jsonl" % i
    p = write(name, GOOD + line + "\n")
    bdb = tmp("bad%02d.db" % i)
    rc, out, err = run("customers", "import", "--store", bdb, name)
    first = err.splitlines()[0] if err else ""
    if msg is None:
        ok(first.startswith(name + ":3: invalid JSON at column "),
           "bad line %s: invalid JSON reported" % line, first)
    else:
        eq(first, "%s:3: %s" % (name, msg), "bad line %s" % line)
    eq((rc, out, count(bdb, "customers")), (1, "", 0),
       "  ... exit 1, nothing imported")

# One message per bad line, all listed; the last line says nothing happened.
p = write("many-bad.jsonl", GOOD + '{"id": "b", "phone": "1"}\n{"id": "c"}\n{"id": ""}\n')
rc, out, err = run("customers", "import", "--store", tmp("many.db"), "many-bad.jsonl")
eq(err.splitlines(), [
    "many-bad.jsonl:3: phone: '1' is not E.164 (+ and 8 to 15 digits): no + at the start",
    "many-bad.jsonl:5: id: must be a non-empty string, not ''",
    "herald: nothing imported from many-bad.jsonl: 2 bad lines (--skip-bad imports the others)",
], "every bad line listed, then 'nothing imported'")

# A failing file leaves an earlier import alone.
before = count(db, "customers")
rc, out, err = run("customers", "import", "--store", db, "many-bad.jsonl")
eq((rc, count(db, "customers")), (1, before), "a bad file changes nothing in an existing store")

# --skip-bad imports the rest and lists the bad.
rc, out, err = run("customers", "import", "--store", tmp("skip.db"), "--skip-bad", "many-bad.jsonl")
eq(rc, 0, "--skip-bad: exit 0")
eq(out, "imported 3 customers from many-bad.jsonl (2 bad lines skipped)\n", "--skip-bad summary")
eq(err.splitlines(), [
    "many-bad.jsonl:3: phone: '1' is not E.164 (+ and 8 to 15 digits): no + at the start",
    "many-bad.jsonl:5: id: must be a non-empty string, not ''",
], "--skip-bad lists the bad lines")
eq(sorted(r[0] for r in query(tmp("skip.db"), "SELECT id FROM customers")), ["c", "ok-1", "ok-2"],
   "--skip-bad imported the good lines")

# ---- bad CSV -----------------------------------------------------------
csv_cases = [
    ('id,email\nx1,a@example.com\nx2,bad"quote@example.com\n',
     "3: field 2: quote inside an unquoted field (RFC 4180: quote the whole field and double the quote)"),
    ('id,email\nx1,"a@example.com"x\n',
     "2: field 2: text after the closing quote (RFC 4180: double a quote inside a quoted field)"),
    ('id,note\nx1,"open\nand never\nclosed\n', "5: unterminated quoted field (opened on line 2)"),
    ('id,email\nx1,a@example.com,extra\n', "2: 3 fields, but the header has 2"),
    ('id,note\nx1,"two\nlines"\nx2,ok\nx3,"a","b"\n', "5: 3 fields, but the header has 2"),
    ('id,phone\nx1,+33612345678\nx2,0612345678\n',
     "3: phone: '0612345678' is not E.164 (+ and 8 to 15 digits): no + at the start"),
    ('id,consent\nx1,"{""email"": maybe}"\n', None),
    ('id,consent\nx1,"{""fax"": true}"\n',
     "2: consent: unknown channel 'fax' (expected email, sms, push, webhook)"),
    ('id,attributes,plan\nx1,"{""plan"": ""a""}",b\n', "2: plan: set both as a column and in attributes"),
    ('email,phone\na@example.com,+33612345678\n', "1: no 'id' column in the header"),
    ('id,email,email\nx,a@example.com,b@example.com\n', "1: column 'email' appears twice"),
    ('', "1: empty file (expected a header line)"),
]
for i, (text, msg) in enumerate(csv_cases):
    name = "bad%02d.csv" % i
    write(name, text)
    bdb = tmp("badcsv%02d.db" % i)
    rc, out, err = run("customers", "import", "--store", bdb, name)
    first = err.splitlines()[0] if err else ""
    if msg is None:
        ok(first.startswith(name + ":2: consent: invalid JSON: "), "bad CSV JSON cell reported", first)
    else:
        eq(first, "%s:%s" % (name, msg), "bad CSV: %s" % msg)
    eq((rc, count(bdb, "customers")), (1, 0), "  ... exit 1, nothing imported")

# ---- what a message shows of a value: escaped, one line each -----------
# A value can hold a line break, a carriage return or a terminal escape
# (JSON escapes them; a quoted CSV cell holds them raw), or, in CSV, bytes
# that are not UTF-8: a message shows them as \n, \r, \xNN, \uNNNN, so a
# crafted file cannot write lines of its own into a terminal or a log.
ESC_CASES = [
    ("esc-lf.jsonl", GOOD + '{"id": "b", "locale": "en\\nherald: imported 9 customers from x"}\n',
     "esc-lf.jsonl:3: locale: 'en\\nherald: imported 9 customers from x' is not a locale tag "
     "(like en or pt-BR)"),
    ("esc-cr.jsonl", GOOD + '{"id": "b", "locale": "en\\r"}\n',
     "esc-cr.jsonl:3: locale: 'en\\r' is not a locale tag (like en or pt-BR)"),
    ("esc-esc.jsonl", GOOD + '{"id": "b", "timezone": "\\u001b[2J\\u001b[1;1HUTC"}\n',
     "esc-esc.jsonl:3: timezone: '\\x1b[2J\\x1b[1;1HUTC' is not an IANA time zone "
     "(like Europe/Paris or UTC)"),
    ("esc-c1.jsonl", GOOD + '{"id": "b", "locale": "\\u009b2J\\u202een"}\n',
     "esc-c1.jsonl:3: locale: '\\u009b2J\\u202een' is not a locale tag (like en or pt-BR)"),
    ("esc-key.jsonl", GOOD + '{"id": "b", "\\u001b[31mnick\\n": 1}\n',
     "esc-key.jsonl:3: \\x1b[31mnick\\n: unknown field (expected %s)" % EXPECTED),
    ("esc-cell.csv", 'id,locale\nx1,en\nx2,"en\r\nherald: \x1b[32mok"\n',
     "esc-cell.csv:3: locale: 'en\\r\\nherald: \\x1b[32mok' is not a locale tag "
     "(like en or pt-BR)"),
    ("esc-bytes.csv", b'id,locale\nx1,en\nx2,ab\xff\xfecd\n',
     "esc-bytes.csv:3: locale: 'ab\\xff\\xfecd' is not UTF-8 text"),
    ("esc-column.csv", 'id,n\x1b[8mote,n\x1b[8mote\nx1,a,b\n',
     "esc-column.csv:1: column 'n\\x1b[8mote' appears twice"),
]
for name, text, want in ESC_CASES:
    if isinstance(text, bytes):
        write(name, text, "wb")
    else:
        write(name, text)
    rc, out, err = run("customers", "import", "--store", tmp("esc.db"), name)
    eq((rc, err.splitlines()[0] if err else ""), (1, want), "escaped in the message: %s" % name)
    ok(not any(c in err for c in "\r\x1b\x9b\u202e") and len(err.splitlines()) == 2,
       "  ... one line, then 'nothing imported': no control character gets through", err)
# Bytes that are not UTF-8 in a JSON line: jansson's message quotes them.
write("esc-bytes.jsonl", GOOD.encode() + b'{"id": "b", "locale": "a\x1b\xff\xfe"}\n', "wb")
rc, out, err = run("customers", "import", "--store", tmp("esc.db"), "esc-bytes.jsonl")
ok(rc == 1 and err.startswith("esc-bytes.jsonl:3: invalid JSON at column ")
   and all(32 <= ord(c) < 127 for c in err.replace("\n", "")),
   "bytes that are not UTF-8 in a JSON line: refused, shown as text", err)
eq(count(tmp("esc.db"), "customers"), 0, "  ... nothing imported from any of them")
# A NUL byte: jansson reads past one between two tokens, but the line was
# stored cut there, and every run failed on it; a CSV field was cut
# without a word (found by tests/fuzz/fuzz_import).
write("nul.jsonl", GOOD.encode() + b'{"id": "b", "attributes": {"n": 42\0}}\n', "wb")
rc, out, err = run("customers", "import", "--store", tmp("nul.db"), "nul.jsonl")
eq((rc, err.splitlines()[0] if err else ""),
   (1, "nul.jsonl:3: invalid JSON at column 35: a NUL byte"),
   "a NUL byte between two JSON tokens: refused, naming line and column")
write("nul.csv", b'id,email,plan\nx1,a@example.com\0junk,gold\nx2,b@example.com,x\n', "wb")
rc, out, err = run("customers", "import", "--store", tmp("nul.db"), "nul.csv")
eq((rc, err.splitlines()[0] if err else ""), (1, "nul.csv:2: email: a NUL byte (not text)"),
   "a NUL byte in a CSV field: refused, naming line and field")
eq(count(tmp("nul.db"), "customers"), 0, "  ... nothing imported from either")

# ---- a line or record over the limit (1 MiB) --------------------------
LIMIT = 1024 * 1024
LIMIT_MSG = "longer than the limit of 1 MiB (1048576 bytes)"


def json_line(cid, size):
    """A customer JSON line of exactly SIZE bytes (no line break)."""
    empty = json.dumps({"id": cid, "attributes": {"pad": ""}})
    return json.dumps({"id": cid, "attributes": {"pad": "x" * (size - len(empty))}})


def peak_rss_kb(*args):
    """Run store-cli ARGS in a child of a child: (exit code, stderr, the
    peak RSS in KiB of that run alone)."""
    prog = ("import resource, subprocess, sys\n"
            "p = subprocess.run(sys.argv[1:], capture_output=True, text=True, cwd=%r)\n"
            "sys.stdout.write('%%d %%d\\n' %% (p.returncode, "
            "resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss))\n"
            "sys.stdout.write(p.stderr)\n" % TMP)
    p = subprocess.run([sys.executable, "-c", prog, CLI] + list(args), capture_output=True,
                       text=True, timeout=120)
    first, _, err = p.stdout.partition("\n")
    rc, kb = (int(x) for x in first.split())
    return rc, err, kb


big = 30 * 1024 * 1024
# The peak RSS of an import of a few small lines: what the program costs
# before any line (much more under AddressSanitizer than without).
write("small.jsonl", GOOD)
_, _, base = peak_rss_kb("customers", "import", "--store", tmp("small.db"), "small.jsonl")
write("huge.jsonl", GOOD + json_line("huge", big) + "\n" + '{"id": "after"}\n')
rc, err, kb = peak_rss_kb("customers", "import", "--store", tmp("huge.db"), "huge.jsonl")
eq((rc, err.splitlines()[0] if err else ""), (1, "huge.jsonl:3: line " + LIMIT_MSG),
   "a 30 MB line: FILE:LINE names it and the limit")
eq(count(tmp("huge.db"), "customers"), 0, "  ... nothing imported")
ok((kb - base) * 1024 < big, "  ... the line is never held: peak RSS %d KiB, %d KiB over a small "
   "import's, under the line's 30 MiB" % (kb, kb - base))
rc, out, err = run("customers", "import", "--store", tmp("huge-skip.db"), "--skip-bad", "huge.jsonl")
eq((rc, out, err), (0, "imported 3 customers from huge.jsonl (1 bad line skipped)\n",
                    "huge.jsonl:3: line " + LIMIT_MSG + "\n"), "--skip-bad skips it, lists it")
eq(sorted(r[0] for r in query(tmp("huge-skip.db"), "SELECT id FROM customers")),
   ["after", "ok-1", "ok-2"], "  ... and imports the lines around it")
for name, text, want in [
        ("exact.jsonl", json_line("exact", LIMIT) + "\n", 0),
        ("exact-crlf.jsonl", json_line("exact", LIMIT) + "\r\n", 0),
        ("exact-eof.jsonl", json_line("exact", LIMIT), 0),
        ("over.jsonl", json_line("over", LIMIT + 1) + "\n", 1),
        ("over-crlf.jsonl", json_line("over", LIMIT + 1) + "\r\n", 1)]:
    write(name, text)
    rc, out, err = run("customers", "import", "--store", tmp("lim.db"), name)
    if want == 0:
        eq((rc, err), (0, ""), "a line of exactly 1 MiB imports (%s)" % name)
    else:
        eq((rc, err.splitlines()[0] if err else ""), (1, name + ":1: line " + LIMIT_MSG),
           "1 MiB and one byte is refused (%s)" % name)

# CSV: the record's bytes, quotes and line breaks inside it included.
csv_pad = "y" * (big // 2) + "\n" + "y" * (big // 2)      # a quoted line break
write("huge.csv", 'id,note\nc1,one\nc2,"%s"\nc3,three\n' % csv_pad)
rc, err, kb = peak_rss_kb("customers", "import", "--store", tmp("hugecsv.db"), "huge.csv")
eq((rc, err.splitlines()[0] if err else ""), (1, "huge.csv:3: record " + LIMIT_MSG),
   "CSV: a 30 MB record: FILE:LINE (its first line) names it and the limit")
eq(count(tmp("hugecsv.db"), "customers"), 0, "  ... nothing imported")
ok((kb - base) * 1024 < big, "  ... the record is never held: peak RSS %d KiB, %d KiB over a "
   "small import's, under its 30 MiB" % (kb, kb - base))
write("huge2.csv", 'id,note\nc1,one\nc2,"%s"\nc3,three\nc4,"bad"x\n' % csv_pad)
rc, out, err = run("customers", "import", "--store", tmp("hugecsv2.db"), "--skip-bad", "huge2.csv")
eq(err.splitlines()[:2], ["huge2.csv:3: record " + LIMIT_MSG,
                          "huge2.csv:6: field 2: text after the closing quote (RFC 4180: "
                          "double a quote inside a quoted field)"],
   "CSV --skip-bad: the reader goes on after the long record, counting its lines")
rec = "c9," + '"' + "z" * (LIMIT - 5) + '"'
for name, text, want in [("exact.csv", "id,note\n" + rec + "\n", 0),
                         ("exact-crlf.csv", "id,note\r\n" + rec + "\r\n", 0),
                         ("over.csv", "id,note\nc9,\"" + "z" * (LIMIT - 4) + "\"\n", 1),
                         ("header.csv", "id," + "h" * LIMIT + "\nc1,x\n", 2)]:
    write(name, text)
    rc, out, err = run("customers", "import", "--store", tmp("limcsv.db"), name)
    if want == 0:
        eq((rc, err), (0, ""), "CSV: a record of exactly 1 MiB imports (%s)" % name)
    elif want == 1:
        eq((rc, err.splitlines()[0] if err else ""), (1, name + ":2: record " + LIMIT_MSG),
           "CSV: 1 MiB and one byte is refused")
    else:
        eq((rc, err.splitlines()[0] if err else ""), (1, name + ":1: header " + LIMIT_MSG),
           "CSV: a header over the limit is refused")
os.unlink(tmp("huge.jsonl"))
os.unlink(tmp("huge.csv"))
os.unlink(tmp("huge2.csv"))

# ---- usage -------------------------------------------------------------
rc, out, err = run("customers", "import", "--help")
ok(rc == 0 and out.startswith("Usage: herald customers import"), "--help: exit 0, usage on stdout")
rc, out, err = run("customers", "--help")
eq(rc, 0, "customers --help: exit 0")
rc, out, err = run("customers", "import")
eq(rc, 2, "no file: exit 2")
rc, out, err = run("customers", "import", "--bogus", "x.jsonl")
eq((rc, err.splitlines()[0]), (2, "herald customers import: unknown option '--bogus'"), "unknown option: exit 2")
rc, out, err = run("customers", "export")
eq(rc, 2, "unknown subcommand: exit 2")
rc, out, err = run("customers", "import", "--store", tmp("x.db"), "no-such-file.jsonl")
eq((rc, err), (1, "herald: no-such-file.jsonl: No such file or directory\n"), "missing file: exit 1, named")
rc, out, err = run("customers", "import", "--store", tmp("no/dir/x.db"),
                   os.path.join(DATA, "customers-good.jsonl"))
ok(rc == 1 and tmp("no/dir/x.db") in err and "does not exist" in err, "missing store folder: named", err)

# Without --store: the gateway configuration's [store] path (relative to
# the INI file's folder).
os.makedirs(tmp("gw/var"), exist_ok=True)
write("gw/herald.ini", "[store]\npath = var/customers.db\n")
rc, out, err = run("-c", tmp("gw/herald.ini"), "customers", "import",
                   os.path.join(DATA, "customers-good.jsonl"))
eq((rc, count(tmp("gw/var/customers.db"), "customers")), (0, 6), "store path from the gateway INI")
rc, out, err = run("-c", tmp("gw/missing.ini"), "customers", "import",
                   os.path.join(DATA, "customers-good.jsonl"))
ok(rc == 1 and "missing.ini" in err, "a missing gateway INI is named", err)

# The same command through the real herald.
herald = os.environ.get("HERALD") or os.path.join(BUILDDIR, "herald")
p = subprocess.run([herald, "customers", "import", "--store", tmp("herald.db"),
                    os.path.join(DATA, "customers-good.jsonl")], capture_output=True, text=True)
eq((p.returncode, count(tmp("herald.db"), "customers")), (0, 6), "herald customers import works")

done()
