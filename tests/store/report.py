"""herald report: per channel and variant outcomes from the outbox and
engagement from events (by campaign id or message key), text and JSON;
unknown campaign."""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from storetest import *  # noqa: E402,F401,F403

db = tmp("rep.db")
rc, out, err = run("customers", "import", "--store", db, os.path.join(DATA, "customers-good.jsonl"))
eq(rc, 0, "customers imported")

# Outbox rows as the scheduler would leave them (written directly: the
# scheduler is not part of this test).
con = sqlite3.connect(db)
rows = [
    ("spring:0:cust-001", "cust-001", "email", "A", "sent", None),
    ("spring:0:cust-002", "cust-002", "email", "B", "failed", None),
    ("spring:0:cust-003", "cust-003", "sms", "A", "sent", None),
    ("spring:0:cust-004", "cust-004", "webhook", "A", "sent", None),
    ("spring:0:cust-005", "cust-005", None, None, "skipped", "no consent"),
    ("spring:0:日本-006", "日本-006", "email", "A", "skipped", "suppressed"),
    ("other:0:cust-001", "cust-001", "email", "A", "sent", None),
]
for key, cust, ch, var, state, reason in rows:
    con.execute("INSERT INTO outbox (key, campaign, step, customer, channel, instance, variant, state, "
                "reason, created, updated, sent_at) VALUES (?, ?, 0, ?, ?, ?, ?, ?, ?, 1, 1, ?)",
                (key, key.split(":")[0], cust, ch, ch, var, state, reason, 1 if state == "sent" else None))
con.execute("INSERT INTO campaigns (id, name, status, runs, first_started, last_started, finished) "
            "VALUES ('spring', 'Spring sale', 'done', 1, 1, 1, 2)")
con.commit()
con.close()
rc, out, err = run("events", "import", "--store", db, os.path.join(DATA, "events-good.jsonl"))
eq(rc, 0, "events imported")

rc, out, err = run("report", "--store", db, "spring", "--json")
eq((rc, err), (0, ""), "report --json")
r = json.loads(out)
eq((r["campaign"], r["name"], r["status"], r["total"]), ("spring", "Spring sale", "done", 6),
   "header fields")
g = {(x["channel"], x["variant"]): x for x in r["groups"]}
eq(sorted(g, key=lambda k: (k[0] or "", k[1] or "")),
   [(None, None), ("email", "A"), ("email", "B"), ("sms", "A"), ("webhook", "A")],
   "one group per channel and variant, sorted")
ea = g[("email", "A")]
eq((ea["sent"], ea["skipped"], ea["skipped_by_reason"]), (1, 1, {"suppressed": 1}), "email A outcomes")
eq(ea["engagement"]["opened"], {"messages": 1, "events": 2},
   "opens: by message key and by campaign id, counted once per message")
eq(ea["engagement"]["clicked"], {"messages": 1, "events": 1}, "a click joined by message key only")
eq(ea["engagement"]["delivered"]["messages"], 1, "delivered")
eq((g[("email", "B")]["failed"], g[("email", "B")]["engagement"]["bounced"]["messages"]), (1, 1),
   "email B: failed, bounced")
eq((g[("sms", "A")]["engagement"]["replied"]["messages"],
    g[("sms", "A")]["engagement"]["unsubscribed"]["messages"]), (1, 1), "sms: replied, unsubscribed")
eq(g[("webhook", "A")]["engagement"]["converted"]["messages"], 1,
   "a conversion with campaign id and no message key joins the customer's row")
eq(g[(None, None)]["skipped_by_reason"], {"no consent": 1}, "skipped before a channel was chosen")
ok(all(x["engagement"]["opened"]["events"] == 0 for k, x in g.items() if k != ("email", "A")),
   "the other campaign's row does not leak in")

rc, out, err = run("report", "--store", db, "spring")
eq(rc, 0, "text report")
lines = out.splitlines()
eq(lines[0], "Campaign spring (Spring sale): done, 1 run, 6 messages", "text header")
ok(any(l.split() == ["email", "A", "1", "0", "1", "0", "1", "1", "1", "0", "0", "0"] for l in lines),
   "text row for email A", out)
ok(any(l.split() == ["total", "3", "1", "2", "0", "1", "1", "1", "1", "1", "1"] for l in lines),
   "text total row", out)
ok("Skipped, by reason:" in lines and any(l.split()[-2:] == ["consent", "1"] for l in lines),
   "skipped by reason listed", out)

# Opens and clicks the tracking server took for machines': apart, and not
# in the rates.
con = sqlite3.connect(db)
for type_, ms, why in (("opened", 5000, "agent"), ("clicked", 5100, "head"), ("clicked", 5200, "head")):
    con.execute("INSERT INTO events (customer, channel, type, at, campaign, message_key, at_ms, machine) "
                "VALUES ('cust-004', 'webhook', ?, 5, 'spring', 'spring:0:cust-004', ?, ?)", (type_, ms, why))
con.commit()
con.close()
rc, out, err = run("report", "--store", db, "spring", "--json")
g = {(x["channel"], x["variant"]): x for x in json.loads(out)["groups"]}
wa = g[("webhook", "A")]
eq(wa["machine"], {"opened": {"messages": 1, "events": 1}, "clicked": {"messages": 1, "events": 2}},
   "machines' opens and clicks counted apart")
eq((wa["engagement"]["opened"]["events"], wa["engagement"]["clicked"]["events"],
    wa["rates"]["opened"], wa["rates"]["clicked"]), (0, 0, 0.0, 0.0),
   "and not in the people's engagement or the rates")
eq(ea["machine"], {"opened": {"messages": 0, "events": 0}, "clicked": {"messages": 0, "events": 0}},
   "a group without machines' events: zeros")
rc, out, err = run("report", "--store", db, "spring")
lines = out.splitlines()
ok("Left out of the rates: opened and clicked by machines (mail scanners," in lines
   and any(l.split() == ["webhook", "A", "1", "1"] for l in lines),
   "the text report shows them apart", out)
ok(any(l.split() == ["webhook", "A", "0.0%", "0.0%", "0.0%", "0.0%", "100.0%", "0.0%",
                      "0.0%", "0.0%"] for l in lines),
   "text rates of webhook A unchanged", out)

rc, out, err = run("report", "--store", db, "winter")
eq((rc, out), (1, ""), "unknown campaign: exit 1")
eq(err, "herald report: unknown campaign 'winter': the store %s has never run it\n" % db,
   "unknown campaign: clear message")
rc, out, err = run("report", "--store", db)
eq(rc, 2, "no campaign: exit 2")
rc, out, err = run("report", "--help")
ok(rc == 0 and out.startswith("Usage: herald report"), "report --help")
done()
