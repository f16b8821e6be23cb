"""Two processes on one store: while another connection holds the write lock
(an import, a campaign run), the store still opens and reads (WAL), and a
writer waits for the busy timeout, then fails cleanly with nothing written."""
import os
import sqlite3
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from storetest import *  # noqa: E402,F401,F403

db = tmp("locks.db")
rc, out, err = run("customers", "import", "--store", db, os.path.join(DATA, "customers-good.jsonl"))
eq(rc, 0, "customers imported")

holder = sqlite3.connect(db, isolation_level=None, timeout=0)
holder.execute("BEGIN IMMEDIATE")
holder.execute("INSERT INTO customers (id, record, updated) VALUES ('held', '{\"id\":\"held\"}', 0)")

t0 = time.time()
rc, out, err = run("report", "--store", db, "spring")
took = time.time() - t0
ok(rc == 1 and "unknown campaign 'spring'" in err and took < 5,
   "a reader opens the store and reads while the write lock is held (%.1f s)" % took, err)

t0 = time.time()
rc, out, err = run("customers", "import", "--store", db, os.path.join(DATA, "customers-good.csv"))
took = time.time() - t0
eq(rc, 1, "a writer gives up after the busy timeout: exit 1")
ok(took >= 9, "  ... after waiting for the lock (%.1f s)" % took)
ok("database is locked" in err and db in err, "  ... names the store and the lock", err)

holder.execute("ROLLBACK")
holder.close()
eq(count(db, "customers"), 6, "nothing of the failed import was written")
rc, out, err = run("customers", "import", "--store", db, os.path.join(DATA, "customers-good.csv"))
eq((rc, count(db, "customers")), (0, 9), "with the lock released the import goes through")
done()
