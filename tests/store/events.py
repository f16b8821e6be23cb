"""herald events import: good file, side effects (unsubscribed withdraws
consent; bounced and complained suppress the address), bad lines, and a
line over the 1 MiB limit (named with the limit; skipped by --skip-bad)."""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from storetest import *  # noqa: E402,F401,F403

db = tmp("ev.db")
rc, out, err = run("customers", "import", "--store", db, os.path.join(DATA, "customers-good.jsonl"))
eq(rc, 0, "customers imported first")

ev = os.path.join(DATA, "events-good.jsonl")
rc, out, err = run("events", "import", "--store", db, ev)
eq((rc, err), (0, ""), "good events import")
eq(out, "imported 9 events from %s\n" % ev, "events summary")
eq(count(db, "events"), 9, "nine events stored")
eq(query(db, "SELECT at FROM events WHERE type = 'opened' ORDER BY id"),
   [(1793523900,), (1793530800,)], "RFC 3339 times with offsets in unix seconds")
eq(query(db, "SELECT campaign, message_key FROM events WHERE type = 'clicked'"),
   [(None, "spring:0:cust-001")], "optional campaign absent, message key kept")

# The same file again: nothing new.
rc, out, err = run("events", "import", "--store", db, ev)
eq((rc, out), (0, "imported 0 events from %s (9 already recorded)\n" % ev), "re-import: all already recorded")
eq(count(db, "events"), 9, "  ... still nine events")

# Side effects.
eq(query(db, "SELECT granted, source, at FROM consent WHERE customer = 'cust-003' AND channel = 'sms'"),
   [(0, "unsubscribed event", 1793529060)], "unsubscribed: consent withdrawn, explicitly, at the event's time")
eq(query(db, "SELECT channel, address, reason FROM suppressions ORDER BY address"),
   [("email", "ben@example.org", "bounced"), ("email", "dee+news@example.co.uk", "complained")],
   "bounced and complained: the addresses are suppressed")

# A later customer import does not give the withdrawn consent back.
p = write("reimport.jsonl", '{"id": "cust-003", "phone": "+14155550123", "consent": {"sms": true}}\n')
rc, out, err = run("customers", "import", "--store", db, p)
eq(query(db, "SELECT granted FROM consent WHERE customer = 'cust-003' AND channel = 'sms'"), [(0,)],
   "re-import does not override an unsubscribe")

# Bad lines.
GOOD = '{"customer": "cust-001", "channel": "email", "type": "opened", "at": "2026-11-01T10:00:00Z"}\n'
cases = [
    ('{"customer": "nobody", "channel": "email", "type": "opened", "at": "2026-11-01T10:00:00Z"}',
     "customer: 'nobody' is not a known customer (import customers first)"),
    ('{"customer": "cust-001", "channel": "fax", "type": "opened", "at": "2026-11-01T10:00:00Z"}',
     "channel: 'fax' is not a channel (expected email, sms, push, webhook)"),
    ('{"customer": "cust-001", "channel": "email", "type": "Liked!", "at": "2026-11-01T10:00:00Z"}',
     "type: 'Liked!' is not an event type (delivered, opened, clicked, replied, converted, "
     "bounced, complained, unsubscribed, or one of your own: [a-z][a-z0-9_.-]*, at most 64)"),
    ('{"customer": "cust-001", "type": "%s", "at": "2026-11-01T10:00:00Z"}' % ("x" * 65),
     "type: '%s...' is not an event type (delivered, opened, clicked, replied, converted, "
     "bounced, complained, unsubscribed, or one of your own: [a-z][a-z0-9_.-]*, at most 64)" % ("x" * 60)),
    ('{"customer": "cust-001", "type": "opened", "at": "2026-11-01T10:00:00Z"}',
     "channel: required for a 'opened' event (your own event types may leave it out)"),
    ('{"customer": "cust-001", "type": "cart_abandoned", "at": "2026-11-01T10:00:00Z", "properties": "red"}',
     "properties: must be an object (of any JSON values), not 'red'"),
    ('{"customer": "cust-001", "channel": "email", "type": "opened", "at": "yesterday"}',
     "at: 'yesterday' is not an RFC 3339 time (like 2026-11-01T10:00:00Z)"),
    ('{"customer": "cust-001", "channel": "email", "type": "opened", "at": 1793527500}',
     "at: must be a non-empty string, not 1793527500"),
    ('{"customer": "cust-001", "channel": "email", "type": "opened"}', "at: required"),
    ('{"channel": "email", "type": "opened", "at": "2026-11-01T10:00:00Z"}', "customer: required"),
    ('{"customer": "cust-001", "channel": "email", "type": "opened", "at": "2026-11-01T10:00:00Z", "ip": "1.2.3.4"}',
     "ip: unknown field (expected customer, channel, type, at, campaign, message, properties)"),
    ('{"customer": "cust-001", "channel": "email", "type": "opened", "at": "2026-11-01T10:00:00Z", "campaign": 7}',
     "campaign: must be a non-empty string, not 7"),
]
for i, (line, msg) in enumerate(cases):
    name = "evbad%02d.jsonl" % i
    write(name, GOOD + GOOD + line + "\n")
    n0 = count(db, "events")
    rc, out, err = run("events", "import", "--store", db, name)
    eq(err.splitlines()[0] if err else "", "%s:3: %s" % (name, msg), "bad event: %s" % msg)
    eq((rc, count(db, "events")), (1, n0), "  ... exit 1, nothing imported")

# Nothing of a bad file: not even the side effects of its good lines.
write("evbad-side.jsonl",
      '{"customer": "cust-001", "channel": "email", "type": "unsubscribed", "at": "2026-11-03T00:00:00Z"}\n'
      '{"customer": "cust-001", "channel": "email", "type": "bounced", "at": "2026-11-03T00:00:00Z"}\n'
      '{"customer": "cust-001", "channel": "email", "type": "No pe", "at": "2026-11-03T00:00:00Z"}\n')
rc, out, err = run("events", "import", "--store", db, "evbad-side.jsonl")
eq(rc, 1, "bad file with an unsubscribe and a bounce: exit 1")
eq(query(db, "SELECT granted FROM consent WHERE customer = 'cust-001' AND channel = 'email'"), [],
   "  ... consent untouched")
eq(query(db, "SELECT count(*) FROM suppressions WHERE address = 'ana@example.com'"), [(0,)],
   "  ... nothing suppressed")
rc, out, err = run("events", "import", "--store", db, "--skip-bad", "evbad-side.jsonl")
eq((rc, out), (0, "imported 2 events from evbad-side.jsonl (1 bad line skipped)\n"), "--skip-bad")
eq(query(db, "SELECT count(*) FROM suppressions WHERE address = 'ana@example.com'"), [(1,)],
   "  ... the bounce suppressed ana's address")

# Your own event types: no channel needed, properties kept as the detail.
write("evcustom.jsonl",
      '{"customer": "cust-001", "type": "cart_abandoned", "at": "2026-11-05T00:00:00Z", '
      '"properties": {"item": "red shoes", "total": 89.9, "tags": ["a", "b"]}}\n'
      '{"customer": "cust-001", "type": "order.placed-2", "at": "2026-11-05T00:00:01Z", '
      '"channel": "email", "properties": {}}\n')
rc, out, err = run("events", "import", "--store", db, "evcustom.jsonl")
eq((rc, out, err), (0, "imported 2 events from evcustom.jsonl\n", ""), "custom event types import")
eq(query(db, "SELECT type, channel, detail FROM events WHERE type IN ('cart_abandoned', "
             "'order.placed-2') ORDER BY at"),
   [("cart_abandoned", None,
     '{"properties":{"item":"red shoes","total":89.9,"tags":["a","b"]}}'),
    ("order.placed-2", "email", None)],
   "  ... with no channel, and the properties in the detail (none when empty)")

# A line over the limit: 30 MB in the campaign field.
write("evhuge.jsonl", GOOD + json.dumps({"customer": "cust-001", "channel": "email", "type": "clicked",
                                         "at": "2026-11-04T00:00:00Z", "campaign": "z" * (30 << 20)})
      + "\n" + GOOD.replace("opened", "clicked"))
n0 = count(db, "events")
rc, out, err = run("events", "import", "--store", db, "evhuge.jsonl")
eq((rc, err.splitlines()[0] if err else "", count(db, "events")),
   (1, "evhuge.jsonl:2: line longer than the limit of 1 MiB (1048576 bytes)", n0),
   "a 30 MB event line: FILE:LINE and the limit, nothing imported")
rc, out, err = run("events", "import", "--store", db, "--skip-bad", "evhuge.jsonl")
eq((rc, out), (0, "imported 2 events from evhuge.jsonl (1 bad line skipped)\n"),
   "  ... --skip-bad imports the others")
os.unlink(tmp("evhuge.jsonl"))

rc, out, err = run("events", "import", "--help")
ok(rc == 0 and out.startswith("Usage: herald events import"), "events import --help")
rc, out, err = run("events", "import", "--store", db, "x.csv")
eq(rc, 1, "events from CSV: refused")
rc, out, err = run("events")
eq(rc, 2, "events without a subcommand: exit 2")
done()
