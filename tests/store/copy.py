"""tests/store/copy.py: `herald store copy --to URL`, an SQLite store into
an empty PostgreSQL store (a server of the test's own, tests/pgserver.py).

The SQLite store is made by herald's own commands: customers import (a
UTF-8 name, a link with a backslash, a quote and %FF in it), a campaign
run through the outbox plugin (SMS short links, an e-mail, a follow-up
step waiting in the timer queue), events import (an unsubscribe: consent;
a bounce: a suppression; a conversion), and `herald serve` with a
triggered campaign (its cursor in meta, a journey that fired step 1 and
waits for step 2) and a click on a short link.  A few rows are then
added with sqlite3 that herald could not make but a copy must keep: text
with every control character, backslashes, a value that is exactly \\N
and one that is \\., NULL beside '', and a link whose URL is not UTF-8.

Then: the copy exits 0 and prints each table with its row count and the
first 16 hex digits of its checksum, which must be the SHA-256 computed
here from the SQLite rows as copy.c documents it; psql finds the same
counts, the same bytes (record, URLs, odd texts), the same ids, the
sequences past them and the same indexes as a freshly migrated store;
`herald report` prints the same text on both stores; a `herald run`
on the copy sends nothing again.

Refusals, each copying nothing: a database not migrated (the hint to
migrate), a store that is not empty (the tables named), a server that
cannot be reached (no password in the message), a source text that is
not UTF-8 (table, key and column named), a table that differs after the
copy (a trigger on the target changes a row: rolled back), a source file
that does not exist (and is not created), usage errors."""
import hashlib
import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "http"))
sys.path.insert(0, os.path.join(HERE, ".."))
from httptest import Tap, skip_all, free_port, request, PLUGIN_DIR   # noqa: E402
from pgserver import PgServer                                      # noqa: E402

HERALD = os.environ.get("HERALD", "")
if not os.access(HERALD, os.X_OK):
    skip_all("herald not built")
if not os.path.exists(os.path.join(PLUGIN_DIR, "outbox.so")):
    skip_all("outbox.so not built")
srv = PgServer()
if not srv.available():
    skip_all("PostgreSQL is not installed (scripts/install-deps.sh installs it)")

t = Tap(time_limit=240)
tmp = tempfile.TemporaryDirectory(prefix="herald-copy.")
T = tmp.name
os.chmod(T, 0o755)
PORT = free_port()
BASE = "http://127.0.0.1:%d" % PORT
DB = os.path.join(T, "herald.db")
BROWSER = {"User-Agent": "Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0"}

# The tables store_copy copies, their columns (key first) and which hold
# integers, and the rows copied: copy.c's specs.
TABLES = [
    ("customers", ["id"], "id email phone timezone locale webhook record updated", "updated"),
    ("consent", ["customer", "channel"], "customer channel granted at source", "granted at"),
    ("suppressions", ["channel", "address"], "channel address reason at", "at"),
    ("events", ["id"], "id customer channel type at campaign message_key detail machine at_ms",
     "id at at_ms"),
    ("outbox", ["key"], "key campaign step customer channel instance variant state reason "
     "attempts next_at created updated sent_at provider_id error detail address parts trace "
     "journey", "step attempts next_at created updated sent_at journey"),
    ("campaigns", ["id"], "id name status runs first_started last_started finished",
     "runs first_started last_started finished"),
    ("timers", ["id"], "id campaign customer instance step due state reason entered event "
     "created updated", "id instance step due entered created updated"),
    ("links", ["id"], "id message_key url", "id"),
    ("meta", ["key"], "key value", ""),
]


def write(name, text):
    path = os.path.join(T, name)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)
    return path


def gateway(name, store):
    return write(name, """[store]
%(store)s
[plugins]
dir = %(plugdir)s
[tracking]
base_url = %(base)s
secret = copy-secret-0123456789abcdef
listen = 127.0.0.1:%(port)d
machine_window = 0
[channel.email]
plugin = outbox
dir = %(T)s/out-email
from = Shop <news@shop.example>
[channel.sms]
plugin = outbox
dir = %(T)s/out-sms
track_links = yes
""" % {"store": store, "plugdir": PLUGIN_DIR, "base": BASE, "port": PORT, "T": T})


def herald(gw, *args, timeout=120):
    p = subprocess.run([HERALD, "-c", gw] + list(args), capture_output=True, timeout=timeout)
    return p.returncode, p.stdout.decode(errors="replace"), p.stderr.decode(errors="replace")


def sq(sql, *args, db=DB):
    con = sqlite3.connect(db)
    con.text_factory = bytes
    try:
        return con.execute(sql, args).fetchall()
    finally:
        con.close()


def sq_exec(sql, *args, db=DB):
    con = sqlite3.connect(db)
    try:
        con.execute(sql, args)
        con.commit()
    finally:
        con.close()


def canon_checksum(db, table, keys, cols, where=None):
    """The checksum copy.c prints, from the SQLite rows: each value as
    its length, ':' and its bytes (an integer in decimal), NULL as '-',
    '\\n' after each row, in key order; SHA-256."""
    sql = "SELECT %s FROM %s%s ORDER BY %s" % (", ".join(cols.split()), table,
                                               " WHERE " + where if where else "",
                                               ", ".join(keys))
    h = hashlib.sha256()
    for row in sq(sql, db=db):
        b = b""
        for v in row:
            if v is None:
                b += b"-"
            else:
                if isinstance(v, int):
                    v = str(v).encode()
                b += str(len(v)).encode() + b":" + v
        h.update(b + b"\n")
    return h.hexdigest()


def where_of(table):
    return "key <> 'schema_version'" if table == "meta" else None


def sq_count(table, db=DB):
    w = where_of(table)
    return sq("SELECT count(*) FROM %s%s" % (table, " WHERE " + w if w else ""), db=db)[0][0]


def pg(db, sql):
    return srv.psql(db, sql).rstrip("\n")


def pg_counts(db):
    return {tb: int(pg(db, "SELECT count(*) FROM %s%s" % (tb, " WHERE " + where_of(tb)
                                                         if where_of(tb) else "")))
            for tb, _, _, _ in TABLES}


def lines(path):
    if not os.path.exists(path):
        return 0
    with open(path) as f:
        return sum(1 for _ in f)


try:
    url = srv.start()

    def dburl(name):
        return srv.url(name)

    GW = gateway("g.ini", "path = %s" % DB)
    GWPG = gateway("g-pg.ini", "url = %s" % url)

    # ---- an SQLite store with real content -----------------------------
    write("tpl/sms.body.liquid", "Hi {{ customer.name }}: {{ customer.link }} and "
          "https://shop.example/sale?from=sms")
    write("tpl/email.subject.liquid", "Spring for {{ customer.name }}")
    write("tpl/email.html.liquid", "<html><body><p>{{ customer.name }}</p>"
          "<a href=\"https://shop.example/spring?c={{ customer.id }}\">shop</a></body></html>")
    write("tpl2/sms.body.liquid", "Still spring, {{ customer.name }}")
    write("tpl2/email.subject.liquid", "Still spring")
    write("tpl2/email.html.liquid", "<html><body>again</body></html>")
    SPRING = write("spring.ini", """[campaign]
id = spring
name = Spring, with a follow-up
templates = tpl
channels = sms, email
retry_horizon = 0s

[step.2]
after = 1d
unless = converted
templates = tpl2
""")
    CART = write("cart.ini", """[campaign]
id = cart
templates = tpl2
channels = email

[trigger]
event = cart_abandoned
delay = 1s

[step.2]
after = 1d
""")
    ZOE_NAME = "Zoë Ærøskøbing 東京 \\N \\. tab\there \"quoted\""
    ZOE_LINK = "https://shop.example/Zoë/a\\b?q='x'&p=%FF"
    customers = [
        {"id": "zoe", "phone": "+33612345678", "email": "zoe@example.com",
         "consent": {"sms": True, "email": True},
         "attributes": {"name": ZOE_NAME, "link": ZOE_LINK}},
        {"id": "bob", "phone": "+33612345679", "consent": {"sms": True},
         "attributes": {"name": "Bob", "link": "https://shop.example/bob"}},
        {"id": "carol", "email": "carol@example.com", "consent": {"email": True},
         "attributes": {"name": "Carol"}},
        {"id": "dave", "email": "dave@example.com", "consent": {"email": True},
         "attributes": {"name": "Dave"}},
        {"id": "erin", "email": "erin@example.com", "consent": {"email": True},
         "attributes": {"name": "Erin"}},
        {"id": "frank", "attributes": {"name": "Frank"}},
    ]
    write("customers.jsonl", "".join(json.dumps(c, ensure_ascii=False) + "\n"
                                     for c in customers))
    rc, out, err = herald(GW, "customers", "import", os.path.join(T, "customers.jsonl"))
    t.eq((rc, err), (0, ""), "customers imported into SQLite")
    rc, out, err = herald(GW, "run", SPRING)
    t.ok(rc == 0, "spring ran into the outbox plugin", out + err)
    now = time.time()

    def iso(ts):
        return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))

    write("events.jsonl", "".join(json.dumps(e) + "\n" for e in [
        {"customer": "carol", "type": "unsubscribed", "channel": "email", "campaign": "spring",
         "at": iso(now - 60)},
        {"customer": "dave", "type": "bounced", "channel": "email", "at": iso(now - 50),
         "properties": {"smtp": "550 5.1.1 no such user\tat all"}},
        {"customer": "zoe", "type": "converted", "channel": "sms", "campaign": "spring",
         "at": iso(now - 40),
         "properties": {"total": 89.9, "item": "chaussures \\ rouges"}},
    ]))
    rc, out, err = herald(GW, "events", "import", os.path.join(T, "events.jsonl"))
    t.eq((rc, err), (0, ""), "events imported (an unsubscribe, a bounce, a conversion)")

    # herald serve with the triggered campaign: its cursor goes into meta;
    # erin's cart_abandoned fires step 1 and queues step 2; a click on
    # zoe's short link is an event with its millisecond.
    p = subprocess.Popen([HERALD, "-c", GW, "serve", CART], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)
    try:
        up = False
        end = time.monotonic() + 20
        while time.monotonic() < end and p.poll() is None and not up:
            try:
                up = request("GET", BASE + "/healthz")[0] == 200
            except OSError:
                time.sleep(0.05)
        t.ok(up, "herald serve is up with the triggered campaign")
        end = time.monotonic() + 10
        while time.monotonic() < end and not sq("SELECT 1 FROM meta WHERE key = "
                                                "'journey_cursor:cart'"):
            time.sleep(0.1)
        write("cart.jsonl", json.dumps({"customer": "erin", "type": "cart_abandoned",
                                        "at": iso(time.time()),
                                        "properties": {"item": "red shoes"}}) + "\n")
        rc, out, err = herald(GW, "events", "import", os.path.join(T, "cart.jsonl"))
        t.eq(rc, 0, "erin's cart_abandoned imported while serve runs")
        body = ""
        with open(os.path.join(T, "out-sms", "messages.jsonl")) as f:
            for line in f:
                m = json.loads(line)
                if m.get("customer") == "zoe" or "zoe" in m.get("id", ""):
                    body = json.dumps(m)
        tok = re.search(r"/s/([A-Za-z0-9_-]+)", body)
        st = request("GET", BASE + "/s/" + tok.group(1), headers=BROWSER)[0] if tok else None
        t.eq(st, 302, "a click on zoe's short link redirects")
        end = time.monotonic() + 20
        while time.monotonic() < end and not sq("SELECT 1 FROM timers WHERE campaign = 'cart' "
                                                "AND step = 2"):
            time.sleep(0.1)
    finally:
        p.send_signal(signal.SIGTERM)
        try:
            p.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            p.kill()
            p.communicate()

    # Rows herald would not write but a copy must keep as they are.
    sq_exec("INSERT INTO suppressions VALUES ('email', 'odd@example.com', ?, 1)",
            "".join(chr(c) for c in range(1, 32)) + "\x7f\\ \\\\ \\N \\. end\\")
    sq_exec("INSERT INTO suppressions VALUES ('sms', '+10000000001', '\\N', 2)")
    sq_exec("INSERT INTO suppressions VALUES ('sms', '+10000000002', '\\.', 3)")
    sq_exec("INSERT INTO suppressions VALUES ('sms', '+10000000003', '', 4)")
    sq_exec("INSERT INTO suppressions VALUES ('sms', '+10000000004', NULL, 5)")
    ODD_URL = b"https://x.example/\x80\xff\\N\t\n\r.\\."
    maxlink = sq("SELECT max(id) FROM links")[0][0] or 0
    key = sq("SELECT message_key FROM links ORDER BY id LIMIT 1")
    sq_exec("INSERT INTO links (id, message_key, url) VALUES (?, ?, CAST(? AS TEXT))",
            maxlink + 1, key[0][0].decode() if key else "spring:1:zoe", ODD_URL)

    counts = {tb: sq_count(tb) for tb, _, _, _ in TABLES}
    t.ok(all(counts[tb] > 0 for tb in counts),
         "the SQLite store has rows in every table: %s" % counts, counts)
    before_links = lines(os.path.join(T, "out-sms", "messages.jsonl")) \
        + lines(os.path.join(T, "out-email", "messages.jsonl"))

    # ---- the copy ------------------------------------------------------
    rc, out, err = herald(GW, "store", "copy", "--to", url)
    t.ok(rc != 0 and "run 'herald store migrate'" in err and "/herald?" in err,
         "a database that was never migrated is refused, with the hint", err)
    rc, out, err = herald(GW, "store", "migrate", "--store", url)
    t.eq(rc, 0, "herald store migrate")
    srv.create_db("fresh")
    herald(GW, "store", "migrate", "--store", dburl("fresh"))
    start = time.monotonic()
    rc, out, err = herald(GW, "store", "copy", "--to", url)
    took = time.monotonic() - start
    t.eq((rc, err), (0, ""), "herald store copy exits 0 (%.2f s)" % took)
    printed = {}
    for line in out.splitlines():
        m = re.match(r"^(\w+) +(\d+) rows  checksum ([0-9a-f]{16}) ok$", line)
        if m:
            printed[m.group(1)] = (int(m.group(2)), m.group(3))
    t.eq(list(printed), [tb for tb, _, _, _ in TABLES],
         "a line per table, in order, each 'ok'")
    for tb, keys, cols, _ in TABLES:
        want = (counts[tb], canon_checksum(DB, tb, keys, cols, where_of(tb))[:16])
        t.eq(printed.get(tb), want, "%s: %d rows, and the checksum of its SQLite rows "
             "as copy.c documents it" % (tb, counts[tb]))
    t.eq(pg_counts("herald"), counts, "psql counts the same rows in every table")

    # Byte for byte.
    def sqhex(sql):
        return [r[0].hex() if r[0] is not None else None for r in sq(sql)]

    def pghex(sql):
        return pg("herald", sql).split("\n")

    zoe = sq("SELECT record FROM customers WHERE id = 'zoe'")[0][0]
    t.eq(json.loads(zoe)["attributes"]["name"], ZOE_NAME, "zoe's record holds her UTF-8 name")
    t.eq(pghex("SELECT encode(convert_to(record, 'UTF8'), 'hex') FROM customers "
               "WHERE id = 'zoe'"), sqhex("SELECT record FROM customers WHERE id = 'zoe'"),
         "zoe's record: the same bytes in PostgreSQL")
    t.eq(pghex("SELECT encode(url, 'hex') FROM links ORDER BY id"),
         sqhex("SELECT CAST(url AS BLOB) FROM links ORDER BY id"),
         "every link's URL: the same bytes")
    t.ok(ZOE_LINK.encode().hex() in pghex("SELECT encode(url, 'hex') FROM links"),
         "including zoe's link with a backslash, a quote and %FF")
    t.eq(pg("herald", "SELECT encode(url, 'hex') FROM links WHERE id = %d" % (maxlink + 1)),
         ODD_URL.hex(), "and the URL that is not UTF-8")
    t.eq(pghex("SELECT encode(convert_to(coalesce(reason, 'NULL!'), 'UTF8'), 'hex') "
               "FROM suppressions ORDER BY channel, address"),
         sqhex("SELECT CAST(coalesce(reason, 'NULL!') AS BLOB) FROM suppressions "
               "ORDER BY channel, address"),
         "suppressions' reasons: every control character, backslashes, \\N, \\. as they were")
    t.eq(pg("herald", "SELECT address, coalesce(reason, 'IS NULL') FROM suppressions "
            "WHERE channel = 'sms' ORDER BY address"),
         "+10000000001|\\N\n+10000000002|\\.\n+10000000003|\n+10000000004|IS NULL",
         "a text \\N stays text, '' stays '', NULL stays NULL")
    t.eq(pg("herald", "SELECT string_agg(id || ':' || type, ',' ORDER BY id) FROM events"),
         ",".join("%d:%s" % (i, ty.decode()) for i, ty in
                  sq("SELECT id, type FROM events ORDER BY id")),
         "the events keep their ids")
    t.eq(pg("herald", "SELECT count(*) FROM events WHERE at_ms IS NOT NULL AND type = 'clicked'"),
         "1", "the click keeps its millisecond")
    t.eq(pg("herald", "SELECT string_agg(id || ':' || campaign || ':' || step || ':' || state, "
            "',' ORDER BY id) FROM timers"),
         ",".join("%d:%s:%d:%s" % (i, c.decode(), s, st.decode()) for i, c, s, st in
                  sq("SELECT id, campaign, step, state FROM timers ORDER BY id")),
         "the timers keep their ids, steps and states")
    t.eq(pg("herald", "SELECT key || '=' || value FROM meta WHERE key <> 'schema_version'"),
         "\n".join("%s=%s" % (k.decode(), v.decode()) for k, v in
                   sq("SELECT key, value FROM meta WHERE key <> 'schema_version'")),
         "the journey's cursor is in meta")
    t.eq(pg("herald", "SELECT value FROM meta WHERE key = 'schema_version'"), "6",
         "and the schema version is the target's own")
    seqs = pg("herald", "SELECT sequencename || '=' || last_value FROM pg_sequences "
              "ORDER BY 1")
    want = "\n".join("%s_id_seq=%d" % (tb, sq("SELECT max(id) FROM %s" % tb)[0][0])
                     for tb in ("events", "links", "timers"))
    t.eq(seqs, want, "each identity's sequence is at its table's largest id")
    idx = "SELECT indexrelid::regclass || ' ' || pg_get_indexdef(indexrelid) FROM pg_index " \
          "WHERE indrelid::regclass::text IN ('customers', 'events', 'outbox', 'timers', " \
          "'links', 'consent', 'suppressions', 'campaigns', 'meta', 'plan_chunks') ORDER BY 1"
    t.eq(pg("herald", idx), pg("fresh", idx),
         "the indexes are those of a freshly migrated store (dropped and built again)")

    # The copy works as a store.
    for c in ("spring", "cart"):
        r1 = herald(GW, "report", c)
        r2 = herald(GWPG, "report", c)
        t.ok(r1[0] == 0 and r1 == r2, "herald report %s prints the same on both stores" % c,
             "sqlite:\n%s%s\npg:\n%s%s" % (r1[1], r1[2], r2[1], r2[2]))
    states = pg("herald", "SELECT key || ' ' || state FROM outbox ORDER BY key")
    rc, out, err = herald(GWPG, "run", SPRING)
    after_links = lines(os.path.join(T, "out-sms", "messages.jsonl")) \
        + lines(os.path.join(T, "out-email", "messages.jsonl"))
    t.ok(rc == 0 and after_links == before_links,
         "herald run spring on the copy sends nothing again (%d messages before and after)"
         % before_links, out + err)
    t.eq(pg("herald", "SELECT key || ' ' || state FROM outbox ORDER BY key"), states,
         "and changes no message")
    write("late.jsonl", json.dumps({"customer": "bob", "type": "opened", "channel": "sms",
                                    "at": iso(time.time())}) + "\n")
    maxev = sq("SELECT max(id) FROM events")[0][0]
    rc, out, err = herald(GWPG, "events", "import", os.path.join(T, "late.jsonl"))
    t.eq((rc, pg("herald", "SELECT max(id) FROM events")), (0, str(maxev + 1)),
         "a new event on the copy takes the id after the copied ones")

    # ---- refusals: each copies nothing ---------------------------------
    rc, out, err = herald(GW, "store", "copy", "--to", url)
    t.ok(rc == 1 and re.search(r"the store is not empty: tables customers, consent, "
                               r"suppressions, events, outbox, campaigns, timers, links, "
                               r"meta(, plan_chunks)? have rows", err),
         "a second copy into it: refused, naming the tables that have rows", err)
    srv.create_db("one")
    herald(GW, "store", "migrate", "--store", dburl("one"))
    pg("one", "INSERT INTO suppressions VALUES ('email', 'x@example.com', 'manual', 1)")
    rc, out, err = herald(GW, "store", "copy", "--to", dburl("one"))
    t.ok(rc == 1 and "not empty: table suppressions has rows" in err,
         "one table with a row: refused, naming it", err)
    t.eq(pg("one", "SELECT count(*) FROM customers"), "0", "and nothing was copied")

    bad_url = "postgresql://herald:s3cret@/herald?host=%s/nowhere&password=s3cret" % T
    rc, out, err = herald(GW, "store", "copy", "--to", bad_url)
    t.ok(rc == 1 and "cannot connect to the store" in err and "postgresql://herald@/herald"
         in err, "a server that cannot be reached: exit 1, naming the store", err)
    t.ok("s3cret" not in out + err, "without the password")

    # A text that is not UTF-8.
    BAD = os.path.join(T, "bad.db")
    shutil.copy(DB, BAD)
    for ext in ("-wal", "-shm"):
        if os.path.exists(DB + ext):
            shutil.copy(DB + ext, BAD + ext)
    sq_exec("UPDATE customers SET email = CAST(X'626f62ff40782e6578616d706c65' AS TEXT) "
            "WHERE id = 'bob'", db=BAD)
    srv.create_db("bad")
    herald(GW, "store", "migrate", "--store", dburl("bad"))
    rc, out, err = herald(GW, "store", "copy", "--store", BAD, "--to", dburl("bad"))
    t.ok(rc == 1 and "customers id 'bob': email 'bob\\xff@x.example' is not UTF-8" in err
         and BAD in err and "nothing was copied" in err,
         "a text that is not UTF-8: exit 1, naming the table, the key and the column", err)
    t.eq(pg_counts("bad"), {tb: 0 for tb, _, _, _ in TABLES}, "and nothing was copied")
    sq_exec("UPDATE customers SET email = NULL WHERE id = 'bob'", db=BAD)
    sq_exec("UPDATE events SET detail = CAST(X'7b7d00' AS TEXT) WHERE id = 2", db=BAD)
    rc, out, err = herald(GW, "store", "copy", "--store", BAD, "--to", dburl("bad"))
    t.ok(rc == 1 and "events id 2: detail '{}\\x00' holds a NUL byte" in err,
         "a NUL in a text: exit 1, naming the event", err)
    sq_exec("UPDATE events SET detail = NULL WHERE id = 2", db=BAD)
    sq_exec("UPDATE outbox SET attempts = 'many' WHERE key = (SELECT min(key) FROM outbox)",
            db=BAD)
    rc, out, err = herald(GW, "store", "copy", "--store", BAD, "--to", dburl("bad"))
    t.ok(rc == 1 and re.search(r"outbox key '[^']+': attempts 'many' is not an integer", err),
         "a text in an integer column: exit 1, naming the row", err)
    t.eq(pg_counts("bad"), {tb: 0 for tb, _, _, _ in TABLES}, "still nothing copied")

    # A table that differs after the copy: a trigger on the target changes
    # one row as it goes in.
    srv.create_db("trig")
    herald(GW, "store", "migrate", "--store", dburl("trig"))
    pg("trig", "CREATE FUNCTION shout() RETURNS trigger LANGUAGE plpgsql AS "
       "$$BEGIN IF NEW.address = 'dave@example.com' THEN NEW.reason := 'changed'; END IF; "
       "RETURN NEW; END$$; CREATE TRIGGER shout BEFORE INSERT ON suppressions "
       "FOR EACH ROW EXECUTE FUNCTION shout()")
    rc, out, err = herald(GW, "store", "copy", "--to", dburl("trig"))
    t.ok(rc == 1 and "table suppressions differs after the copy: 6 rows" in err
         and "rolled back: nothing was copied" in err,
         "a table that differs after the copy: rolled back, naming it", err)
    t.eq(pg_counts("trig"), {tb: 0 for tb, _, _, _ in TABLES}, "and nothing is there")

    # The source.
    missing = os.path.join(T, "missing.db")
    rc, out, err = herald(GW, "store", "copy", "--store", missing, "--to", dburl("fresh"))
    t.ok(rc == 1 and "missing.db: cannot read the store: No such file" in err
         and not os.path.exists(missing),
         "a source that does not exist: exit 1, and it is not created", err)
    rc, out, err = herald(GW, "store", "copy", "--store", url, "--to", dburl("fresh"))
    t.ok(rc == 1 and "copies an SQLite store" in err, "a PostgreSQL source is refused", err)
    rc, out, err = herald(GW, "store", "copy")
    t.ok(rc == 2 and "--to URL is required" in err, "no --to: usage, exit 2", err)
    rc, out, err = herald(GW, "store", "copy", "--to", "host=db password=hush")
    t.ok(rc == 2 and "must name a PostgreSQL store" in err and "hush" not in err,
         "--to that is not a PostgreSQL store: usage, exit 2, not echoed", err)
    rc, out, err = herald(GW, "store", "copy", "--help")
    t.ok(rc == 0 and "herald store copy --to URL" in out, "--help shows it")
finally:
    srv.stop()
    tmp.cleanup()
t.done()
