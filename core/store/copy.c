/* copy.c: 'herald store copy', an SQLite store's rows into an empty
 * PostgreSQL store at the same schema version, in one PostgreSQL
 * transaction (COPY FROM STDIN per table), verified before it commits:
 * rows and a checksum per table, computed on both sides.  It reads the
 * SQLite file through a read-only connection of its own, in one snapshot.
 * It must never write to the SQLite file (store_open migrates an older
 * one first, as for every command), never leave the target's schema other
 * than herald store migrate made it, and never commit a copy that
 * differs. */
#include <config.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <libpq-fe.h>
#include <openssl/evp.h>
#include <sqlite3.h>

#include "../store.h"
#include "../util.h"

/* A column: its name, and what it holds: 'i' an integer, 't' text (UTF-8
 * without NUL on PostgreSQL), 'b' bytes (BYTEA on PostgreSQL, TEXT that
 * may be any bytes on SQLite). */
struct col {
  const char *name;
  char type;
};

/* A table to copy.  Its key is its first NKEY columns: rows are copied
 * and checksummed in that order, and a bad value is named by it. */
struct spec {
  const char *table;
  int nkey;
  const char *where;         /* the rows copied (NULL: all) */
  int identity;              /* the key is an identity column (PostgreSQL
                                draws new ids after the largest copied) */
  struct col cols[22];       /* ends with { NULL, 0 } */
};

/* The tables and columns of schema version 6 common to both backends
 * (sqlite.c's migrations, pg.c's pg_migrations).  PostgreSQL's own
 * additions start empty: plan_chunks, and the leases of outbox rows
 * (a row left "sending" has no lease, so any worker's recovery takes it
 * back, as after a crash on SQLite).  meta: the journeys' cursors
 * ("journey_cursor:CAMPAIGN", event ids, kept with the events' ids), not
 * the schema version, which the target has of its own. */
_Static_assert (STORE_SCHEMA_VERSION == 6,
                "a new schema version: check the columns copied here");
static const struct spec specs[STORE_COPY_TABLES] = {
  { "customers", 1, NULL, 0,
    { { "id", 't' }, { "email", 't' }, { "phone", 't' }, { "timezone", 't' },
      { "locale", 't' }, { "webhook", 't' }, { "record", 't' },
      { "updated", 'i' } } },
  { "consent", 2, NULL, 0,
    { { "customer", 't' }, { "channel", 't' }, { "granted", 'i' },
      { "at", 'i' }, { "source", 't' } } },
  { "suppressions", 2, NULL, 0,
    { { "channel", 't' }, { "address", 't' }, { "reason", 't' },
      { "at", 'i' } } },
  { "events", 1, NULL, 1,
    { { "id", 'i' }, { "customer", 't' }, { "channel", 't' }, { "type", 't' },
      { "at", 'i' }, { "campaign", 't' }, { "message_key", 't' },
      { "detail", 't' }, { "machine", 't' }, { "at_ms", 'i' } } },
  { "outbox", 1, NULL, 0,
    { { "key", 't' }, { "campaign", 't' }, { "step", 'i' },
      { "customer", 't' }, { "channel", 't' }, { "instance", 't' },
      { "variant", 't' }, { "state", 't' }, { "reason", 't' },
      { "attempts", 'i' }, { "next_at", 'i' }, { "created", 'i' },
      { "updated", 'i' }, { "sent_at", 'i' }, { "provider_id", 't' },
      { "error", 't' }, { "detail", 't' }, { "address", 't' },
      { "parts", 't' }, { "trace", 't' }, { "journey", 'i' } } },
  { "campaigns", 1, NULL, 0,
    { { "id", 't' }, { "name", 't' }, { "status", 't' }, { "runs", 'i' },
      { "first_started", 'i' }, { "last_started", 'i' },
      { "finished", 'i' } } },
  { "timers", 1, NULL, 1,
    { { "id", 'i' }, { "campaign", 't' }, { "customer", 't' },
      { "instance", 'i' }, { "step", 'i' }, { "due", 'i' }, { "state", 't' },
      { "reason", 't' }, { "entered", 'i' }, { "event", 't' },
      { "created", 'i' }, { "updated", 'i' } } },
  { "links", 1, NULL, 1,
    { { "id", 'i' }, { "message_key", 't' }, { "url", 'b' } } },
  { "meta", 1, "key <> 'schema_version'", 0,
    { { "key", 't' }, { "value", 't' } } },
};

/* Tables that must be empty besides those copied: PostgreSQL's own. */
static const char *const target_only[] = { "plan_chunks", NULL };

/* The COPY data is sent in pieces of about this size: large enough that
 * the per-call cost vanishes, small enough to stay in cache. */
#define SEND_AT 65536

struct copy {
  const char *from;          /* the SQLite file */
  char *to;                  /* the PostgreSQL store, without password */
  sqlite3 *db;
  PGconn *conn;
  char *err;
  size_t errlen;
  struct strbuf out;         /* COPY data not sent yet */
  struct strbuf row;         /* a row's canonical text */
  struct strbuf val;         /* a value read back, unescaped */
  EVP_MD_CTX *md;
};

static int
fail (struct copy *c, const char *fmt, ...)
  __attribute__ ((format (printf, 2, 3)));

static int
fail (struct copy *c, const char *fmt, ...)
{
  va_list ap;
  va_start (ap, fmt);
  vsnprintf (c->err, c->errlen, fmt, ap);
  va_end (ap);
  return -1;
}

static int
first_line (const char *m)
{
  size_t n = strcspn (m, "\n");
  return n > 1000 ? 1000 : (int) n;
}

/* The server's message for RES (may be NULL: the connection's), while
 * doing WHAT, and where in a COPY it happened. */
static int
pg_fail (struct copy *c, PGresult *res, const char *what)
{
  const char *m = res ? PQresultErrorField (res, PG_DIAG_MESSAGE_PRIMARY)
                      : NULL;
  const char *ctx = res ? PQresultErrorField (res, PG_DIAG_CONTEXT) : NULL;

  if (!m || !*m)
    m = PQerrorMessage (c->conn);
  if (!m || !*m)
    m = "unknown error";
  if (ctx && *ctx)
    return fail (c, "%s: %s: %.*s (%.*s)", c->to, what, first_line (m), m,
                 first_line (ctx), ctx);
  return fail (c, "%s: %s: %.*s", c->to, what, first_line (m), m);
}

static int
sq_fail (struct copy *c, const char *what)
{
  return fail (c, "%s: %s: %s", c->from, what, sqlite3_errmsg (c->db));
}

/* Run SQL on the target, which returns no rows or rows that are not
 * wanted. */
static int
pg_exec (struct copy *c, const char *sql, const char *what)
{
  PGresult *res = PQexec (c->conn, sql);
  ExecStatusType s = PQresultStatus (res);
  int r = 0;

  if (s != PGRES_COMMAND_OK && s != PGRES_TUPLES_OK)
    r = pg_fail (c, res, what);
  PQclear (res);
  return r;
}

/* SQL that returns one row of one column: its value (malloc'ed, NULL for
 * SQL NULL) into *V_R.  0 or -1. */
static int
pg_value (struct copy *c, const char *sql, const char *what, char **v_r)
{
  PGresult *res = PQexec (c->conn, sql);
  int r = 0;

  *v_r = NULL;
  if (PQresultStatus (res) != PGRES_TUPLES_OK || PQntuples (res) != 1
      || PQnfields (res) != 1)
    r = pg_fail (c, res, what);
  else if (!PQgetisnull (res, 0, 0))
    *v_r = xstrdup (PQgetvalue (res, 0, 0));
  PQclear (res);
  return r;
}

static void
quiet_notices (void *arg, const char *message)
{
  (void) arg;
  (void) message;
}

/* A connection to the target as pg.c makes one (LOCATION a URI, or "pg:"
 * and a keyword string): UTF-8, a commit durable when it returns, and
 * BYTEA read back as hex whatever the server's default. */
static int
connect_target (struct copy *c, const char *location)
{
  static const char *const keys[] = {
    "dbname", "client_encoding", "fallback_application_name", NULL
  };
  const char *values[] = { location, "UTF8", "herald", NULL };
  char *sync = NULL;
  int r;

  if (strncmp (location, "pg:", 3) == 0)
    values[0] = location + 3;
  c->conn = PQconnectdbParams (keys, values, 1);
  if (!c->conn)
    return fail (c, "%s: cannot connect to the store: out of memory", c->to);
  if (PQstatus (c->conn) != CONNECTION_OK) {
    const char *m = PQerrorMessage (c->conn);
    return fail (c, "%s: cannot connect to the store: %.*s", c->to,
                 first_line (m), m);
  }
  PQsetNoticeProcessor (c->conn, quiet_notices, NULL);
  if (pg_value (c, "SELECT current_setting ('synchronous_commit')",
                "reading synchronous_commit", &sync) < 0)
    return -1;
  r = sync && strcmp (sync, "off") == 0
      ? pg_exec (c, "SET synchronous_commit = on",
                 "setting synchronous_commit") : 0;
  free (sync);
  if (r < 0)
    return -1;
  return pg_exec (c, "SET bytea_output = 'hex'", "setting bytea_output");
}

/* ---- SQL text of a table ----------------------------------------- */

static void
add_cols (struct strbuf *b, const struct spec *sp)
{
  int i;
  for (i = 0; sp->cols[i].name; i++) {
    if (i)
      strbuf_adds (b, ", ");
    strbuf_adds (b, sp->cols[i].name);
  }
}

/* " WHERE ... ORDER BY key": PostgreSQL's keys are COLLATE "C" already;
 * saying so keeps the order SQLite's (bytes, memcmp) whatever happens to
 * the schema. */
static void
add_where_order (struct strbuf *b, const struct spec *sp, int pg)
{
  int i;
  if (sp->where)
    strbuf_addf (b, " WHERE %s", sp->where);
  strbuf_adds (b, " ORDER BY ");
  for (i = 0; i < sp->nkey; i++) {
    if (i)
      strbuf_adds (b, ", ");
    strbuf_adds (b, sp->cols[i].name);
    if (pg && sp->cols[i].type == 't')
      strbuf_adds (b, " COLLATE \"C\"");
  }
}

/* ---- the canonical text of a row -------------------------------- */

/* Each value as its length in decimal, ':' and its bytes (an integer as
 * its decimal digits), a NULL as '-', and '\n' after the row: the same
 * for the rows read from SQLite and those read back from PostgreSQL, and
 * no two rows of different values have the same text.  The checksum of a
 * table is the SHA-256 of its rows' texts in key order. */
static void
canon_value (struct strbuf *b, const char *v, size_t n)
{
  strbuf_addf (b, "%zu:", n);
  strbuf_add (b, v, n);
}

static int
digest_begin (struct copy *c)
{
  if (!c->md && !(c->md = EVP_MD_CTX_new ()))
    return fail (c, "cannot compute checksums: out of memory");
  if (EVP_DigestInit_ex (c->md, EVP_sha256 (), NULL) != 1)
    return fail (c, "cannot compute checksums: OpenSSL's SHA-256 failed");
  return 0;
}

static int
digest_row (struct copy *c)
{
  strbuf_addc (&c->row, '\n');
  if (EVP_DigestUpdate (c->md, c->row.s, c->row.len) != 1)
    return fail (c, "cannot compute checksums: OpenSSL's SHA-256 failed");
  strbuf_reset (&c->row);
  return 0;
}

static int
digest_end (struct copy *c, unsigned char sum[32])
{
  unsigned n = 0;
  if (EVP_DigestFinal_ex (c->md, sum, &n) != 1 || n != 32)
    return fail (c, "cannot compute checksums: OpenSSL's SHA-256 failed");
  return 0;
}

static void
hex (char *out, const unsigned char *p, size_t n)
{
  static const char digits[] = "0123456789abcdef";
  size_t i;
  for (i = 0; i < n; i++) {
    out[2 * i] = digits[p[i] >> 4];
    out[2 * i + 1] = digits[p[i] & 15];
  }
  out[2 * n] = '\0';
}

/* ---- SQLite to COPY ---------------------------------------------- */

/* V[0..N) as a value of COPY's text format: a backslash, newline,
 * carriage return and tab (the delimiter) escaped with a backslash, as
 * PostgreSQL's COPY documentation ("File Formats", Text Format) says;
 * every other byte as it is (client_encoding is UTF8). */
static void
copy_escape (struct strbuf *b, const char *v, size_t n)
{
  size_t i;
  char *w;

  strbuf_grow (b, 2 * n);
  w = b->s + b->len;
  for (i = 0; i < n; i++) {
    char ch = v[i];
    switch (ch) {
    case '\\': *w++ = '\\'; *w++ = '\\'; break;
    case '\n': *w++ = '\\'; *w++ = 'n'; break;
    case '\r': *w++ = '\\'; *w++ = 'r'; break;
    case '\t': *w++ = '\\'; *w++ = 't'; break;
    default: *w++ = ch;
    }
  }
  b->len = (size_t) (w - b->s);
  b->s[b->len] = '\0';
}

/* S[0..N) shown in a message: escaped (util.h), at most 60 bytes of it. */
static void
add_shown (struct strbuf *b, const char *s, size_t n)
{
  strbuf_addc (b, '\'');
  strbuf_add_escaped (b, s, n > 60 ? 60 : n);
  strbuf_adds (b, n > 60 ? "...'" : "'");
}

/* The row's key for a message: "id 'c1'", "customer 'c1' channel
 * 'email'", "id 17". */
static void
add_key (struct strbuf *b, const struct spec *sp, sqlite3_stmt *s)
{
  int i;
  for (i = 0; i < sp->nkey; i++) {
    if (i)
      strbuf_addc (b, ' ');
    strbuf_adds (b, sp->cols[i].name);
    strbuf_addc (b, ' ');
    if (sqlite3_column_type (s, i) == SQLITE_INTEGER)
      strbuf_addf (b, "%lld", (long long) sqlite3_column_int64 (s, i));
    else
      add_shown (b, (const char *) sqlite3_column_blob (s, i),
                 (size_t) sqlite3_column_bytes (s, i));
  }
}

/* Column COL of the row S cannot go into PostgreSQL: WHY, naming the
 * table, the row's key and the column. */
static int
bad_value (struct copy *c, const struct spec *sp, sqlite3_stmt *s, int col,
           const char *why)
{
  struct strbuf b = STRBUF_INIT;

  strbuf_addf (&b, "%s: %s ", c->from, sp->table);
  add_key (&b, sp, s);
  strbuf_addf (&b, ": %s ", sp->cols[col].name);
  add_shown (&b, (const char *) sqlite3_column_blob (s, col),
             (size_t) sqlite3_column_bytes (s, col));
  strbuf_addf (&b, " %s", why);
  fail (c, "%s", b.s);
  strbuf_free (&b);
  return -1;
}

static int
send_out (struct copy *c, const struct spec *sp)
{
  if (c->out.len && PQputCopyData (c->conn, c->out.s, (int) c->out.len) != 1) {
    char what[64];
    snprintf (what, sizeof what, "copying table %s", sp->table);
    return pg_fail (c, NULL, what);
  }
  strbuf_reset (&c->out);
  return 0;
}

/* The row S of SP's table into the COPY data and the checksum. */
static int
put_row (struct copy *c, const struct spec *sp, sqlite3_stmt *s)
{
  int i;

  for (i = 0; sp->cols[i].name; i++) {
    int type = sqlite3_column_type (s, i);
    const char *v;
    size_t n;
    char num[24];

    if (i)
      strbuf_addc (&c->out, '\t');
    if (type == SQLITE_NULL) {
      strbuf_adds (&c->out, "\\N");
      strbuf_addc (&c->row, '-');
      continue;
    }
    switch (sp->cols[i].type) {
    case 'i':
      if (type != SQLITE_INTEGER)
        return bad_value (c, sp, s, i, "is not an integer");
      n = (size_t) snprintf (num, sizeof num, "%lld",
                             (long long) sqlite3_column_int64 (s, i));
      strbuf_add (&c->out, num, n);
      canon_value (&c->row, num, n);
      break;
    case 't':
      v = (const char *) sqlite3_column_text (s, i);
      n = (size_t) sqlite3_column_bytes (s, i);
      if (!v)
        return sq_fail (c, "reading a value");
      if (utf8_check (v, n) != n)
        return bad_value (c, sp, s, i, "is not UTF-8, and PostgreSQL "
                          "keeps only UTF-8 text");
      if (memchr (v, '\0', n))
        return bad_value (c, sp, s, i, "holds a NUL byte, which "
                          "PostgreSQL's text cannot");
      copy_escape (&c->out, v, n);
      canon_value (&c->row, v, n);
      break;
    default:                 /* 'b': BYTEA's hex input, "\x..." */
      v = (const char *) sqlite3_column_blob (s, i);
      n = (size_t) sqlite3_column_bytes (s, i);
      strbuf_adds (&c->out, "\\\\x");
      strbuf_grow (&c->out, 2 * n);
      hex (c->out.s + c->out.len, (const unsigned char *) v, n);
      c->out.len += 2 * n;
      canon_value (&c->row, n ? v : "", n);
      break;
    }
  }
  strbuf_addc (&c->out, '\n');
  if (digest_row (c) < 0)
    return -1;
  return c->out.len >= SEND_AT ? send_out (c, sp) : 0;
}

/* End the COPY in progress: MSG NULL to finish it (0, or -1 with the
 * server's error), else to abort it with MSG (the transaction then
 * fails). */
static int
copy_end (struct copy *c, const struct spec *sp, const char *msg)
{
  PGresult *res;
  int r = 0;
  char what[64];

  snprintf (what, sizeof what, "copying table %s", sp->table);
  if (PQputCopyEnd (c->conn, msg) != 1)
    r = msg ? -1 : pg_fail (c, NULL, what);
  while ((res = PQgetResult (c->conn))) {
    if (r == 0 && !msg && PQresultStatus (res) != PGRES_COMMAND_OK)
      r = pg_fail (c, res, what);
    PQclear (res);
  }
  return msg ? -1 : r;
}

/* Copy SP's table: its rows in key order into the COPY, counted into
 * *ROWS_R and checksummed into SUM. */
static int
copy_table (struct copy *c, const struct spec *sp, int64_t *rows_r,
            unsigned char sum[32])
{
  struct strbuf sql = STRBUF_INIT;
  sqlite3_stmt *s = NULL;
  PGresult *res;
  int rc, r = -1, copying = 0;
  char what[64];

  *rows_r = 0;
  snprintf (what, sizeof what, "reading table %s", sp->table);
  strbuf_adds (&sql, "SELECT ");
  add_cols (&sql, sp);
  strbuf_addf (&sql, " FROM %s", sp->table);
  add_where_order (&sql, sp, 0);
  if (sqlite3_prepare_v2 (c->db, sql.s, -1, &s, NULL) != SQLITE_OK) {
    sq_fail (c, what);
    goto out;
  }
  strbuf_reset (&sql);
  strbuf_addf (&sql, "COPY %s (", sp->table);
  add_cols (&sql, sp);
  strbuf_adds (&sql, ") FROM STDIN");
  res = PQexec (c->conn, sql.s);
  if (PQresultStatus (res) != PGRES_COPY_IN) {
    snprintf (what, sizeof what, "copying table %s", sp->table);
    pg_fail (c, res, what);
    PQclear (res);
    goto out;
  }
  PQclear (res);
  copying = 1;
  if (digest_begin (c) < 0)
    goto out;
  strbuf_reset (&c->out);
  strbuf_reset (&c->row);
  while ((rc = sqlite3_step (s)) == SQLITE_ROW) {
    if (put_row (c, sp, s) < 0)
      goto out;
    ++*rows_r;
  }
  if (rc != SQLITE_DONE) {
    sq_fail (c, what);
    goto out;
  }
  if (send_out (c, sp) < 0 || digest_end (c, sum) < 0)
    goto out;
  copying = 0;
  r = copy_end (c, sp, NULL);
out:
  if (copying)
    copy_end (c, sp, "herald store copy: stopped");
  sqlite3_finalize (s);
  strbuf_free (&sql);
  return r;
}

/* ---- reading back from PostgreSQL -------------------------------- */

static int
hexval (int ch)
{
  if (ch >= '0' && ch <= '9')
    return ch - '0';
  if (ch >= 'a' && ch <= 'f')
    return ch - 'a' + 10;
  if (ch >= 'A' && ch <= 'F')
    return ch - 'A' + 10;
  return -1;
}

/* A value of COPY's text format, F[0..N), unescaped into C->val: \b \f \n
 * \r \t \v, \ and 1 to 3 octal digits, \x and 1 or 2 hex digits, and a
 * backslash before any other character stands for that character. */
static void
unescape (struct copy *c, const char *f, size_t n)
{
  size_t i = 0;
  char *w;

  strbuf_reset (&c->val);
  strbuf_grow (&c->val, n);
  w = c->val.s;
  while (i < n) {
    char ch = f[i++];
    if (ch != '\\' || i == n) {
      *w++ = ch;
      continue;
    }
    ch = f[i++];
    switch (ch) {
    case 'b': *w++ = '\b'; break;
    case 'f': *w++ = '\f'; break;
    case 'n': *w++ = '\n'; break;
    case 'r': *w++ = '\r'; break;
    case 't': *w++ = '\t'; break;
    case 'v': *w++ = '\v'; break;
    case 'x':
      if (i < n && hexval (f[i]) >= 0) {
        int v = hexval (f[i++]);
        if (i < n && hexval (f[i]) >= 0)
          v = v * 16 + hexval (f[i++]);
        *w++ = (char) v;
      }
      else
        *w++ = 'x';
      break;
    default:
      if (ch >= '0' && ch <= '7') {
        int v = ch - '0', k;
        for (k = 1; k < 3 && i < n && f[i] >= '0' && f[i] <= '7'; k++)
          v = v * 8 + (f[i++] - '0');
        *w++ = (char) v;
      }
      else
        *w++ = ch;
    }
  }
  c->val.len = (size_t) (w - c->val.s);
  c->val.s[c->val.len] = '\0';
}

/* One row of COPY TO's text format, LINE[0..N), into C->row's canonical
 * text.  0, or -1 when it does not have SP's columns. */
static int
canon_line (struct copy *c, const struct spec *sp, const char *line, size_t n)
{
  const char *p = line, *end = line + n;
  int i;

  if (p < end && end[-1] == '\n')
    end--;
  for (i = 0; sp->cols[i].name; i++) {
    const char *f, *fe;

    if (i && p++ >= end)     /* past the tab before this value */
      return -1;
    f = p;
    fe = memchr (f, '\t', (size_t) (end - f));
    if (!fe)
      fe = end;
    p = fe;
    if (fe - f == 2 && f[0] == '\\' && f[1] == 'N') {
      strbuf_addc (&c->row, '-');
      continue;
    }
    unescape (c, f, (size_t) (fe - f));
    if (sp->cols[i].type == 'b') {
      /* BYTEA as hex (bytea_output, set on connecting): "\x" and two
       * digits a byte, decoded in place. */
      size_t k, m = c->val.len;
      if (m < 2 || c->val.s[0] != '\\' || c->val.s[1] != 'x' || m % 2)
        return -1;
      for (k = 2; k < m; k += 2) {
        int hi = hexval (c->val.s[k]), lo = hexval (c->val.s[k + 1]);
        if (hi < 0 || lo < 0)
          return -1;
        c->val.s[k / 2 - 1] = (char) (hi << 4 | lo);
      }
      c->val.len = m / 2 - 1;
    }
    canon_value (&c->row, c->val.s, c->val.len);
  }
  return p == end ? 0 : -1;
}

/* SP's table as the target holds it now: its rows (count (*)) into
 * *ROWS_R, and the checksum of the rows read back in key order into
 * SUM.  Rows read back that are not count (*) rows are an error. */
static int
read_back (struct copy *c, const struct spec *sp, int64_t *rows_r,
           unsigned char sum[32])
{
  struct strbuf sql = STRBUF_INIT;
  PGresult *res;
  char *buf = NULL, *count = NULL, what[64];
  int n, r = -1, bad = 0;
  int64_t read = 0;

  *rows_r = 0;
  snprintf (what, sizeof what, "counting the rows of table %s", sp->table);
  strbuf_addf (&sql, "SELECT count (*) FROM %s", sp->table);
  if (sp->where)
    strbuf_addf (&sql, " WHERE %s", sp->where);
  if (pg_value (c, sql.s, what, &count) < 0)
    goto out;
  if (!count || parse_int64 (count, 0, INT64_MAX, rows_r) < 0) {
    fail (c, "%s: %s: not a count: '%s'", c->to, what,
          count ? count : "NULL");
    goto out;
  }
  snprintf (what, sizeof what, "reading back table %s", sp->table);
  strbuf_reset (&sql);
  strbuf_adds (&sql, "COPY (SELECT ");
  add_cols (&sql, sp);
  strbuf_addf (&sql, " FROM %s", sp->table);
  add_where_order (&sql, sp, 1);
  strbuf_adds (&sql, ") TO STDOUT");
  res = PQexec (c->conn, sql.s);
  if (PQresultStatus (res) != PGRES_COPY_OUT) {
    pg_fail (c, res, what);
    PQclear (res);
    goto out;
  }
  PQclear (res);
  if (digest_begin (c) < 0)
    bad = 1;
  strbuf_reset (&c->row);
  /* Read to the end even after a bad row: the connection is usable
   * only once the COPY is over. */
  while ((n = PQgetCopyData (c->conn, &buf, 0)) > 0) {
    if (!bad && canon_line (c, sp, buf, (size_t) n) < 0) {
      fail (c, "%s: %s: a row read back is not %s's columns", c->to, what,
            sp->table);
      bad = 1;
    }
    else if (!bad && digest_row (c) < 0)
      bad = 1;
    read++;
    PQfreemem (buf);
  }
  if (n == -2)
    pg_fail (c, NULL, what);
  while ((res = PQgetResult (c->conn))) {
    if (n != -2 && PQresultStatus (res) != PGRES_COMMAND_OK) {
      pg_fail (c, res, what);
      n = -2;
    }
    PQclear (res);
  }
  if (n == -2 || bad || digest_end (c, sum) < 0)
    goto out;
  if (read != *rows_r) {
    fail (c, "%s: table %s: count (*) says %lld rows, %lld were read back",
          c->to, sp->table, (long long) *rows_r, (long long) read);
    goto out;
  }
  r = 0;
out:
  free (count);
  strbuf_free (&sql);
  return r;
}

/* ---- the target: locked, at our version, empty ------------------- */

static int
check_target (struct copy *c)
{
  struct strbuf sql = STRBUF_INIT, names = STRBUF_INIT;
  PGresult *res = NULL;
  char *v = NULL, tables[512];
  int i, r = -1, nt = 0;
  int64_t version = 0;

  /* Writers wait for the copy (readers do not); a herald writing to the
   * store already makes the copy wait up to lock_timeout, then fail
   * rather than hang.  The events' turn first, as every event writer
   * takes it (pg.c, Q_EVENTS_LOCK) before its table lock: the other
   * order could deadlock with one. */
  tables[0] = '\0';
  for (i = 0; i < STORE_COPY_TABLES; i++)
    snprintf (tables + strlen (tables), sizeof tables - strlen (tables),
              "%s%s", i ? ", " : "", specs[i].table);
  for (i = 0; target_only[i]; i++)
    snprintf (tables + strlen (tables), sizeof tables - strlen (tables),
              ", %s", target_only[i]);
  strbuf_addf (&sql, "LOCK TABLE %s IN EXCLUSIVE MODE", tables);
  if (pg_exec (c, "SET LOCAL lock_timeout = '10s'", "setting lock_timeout") < 0
      || pg_exec (c, "SELECT pg_advisory_xact_lock (1213352005)",
                  "waiting for other herald processes' events") < 0
      || pg_exec (c, sql.s, "waiting for other herald processes to leave "
                  "the store's tables") < 0)
    goto out;
  if (pg_value (c, "SELECT value FROM meta WHERE key = 'schema_version'",
                "reading the schema version", &v) < 0)
    goto out;
  if (!v || parse_int64 (v, 0, INT32_MAX, &version) < 0
      || version != STORE_SCHEMA_VERSION) {
    fail (c, "%s: the store is at schema version %s, this herald needs %d: "
          "run 'herald store migrate'", c->to, v ? v : "0",
          STORE_SCHEMA_VERSION);
    goto out;
  }
  /* Every table at once: the message names all that have rows. */
  strbuf_reset (&sql);
  for (i = 0; i < STORE_COPY_TABLES + 1; i++) {
    const char *t = i < STORE_COPY_TABLES ? specs[i].table : target_only[0];
    const char *w = i < STORE_COPY_TABLES ? specs[i].where : NULL;
    strbuf_addf (&sql, "%sSELECT '%s' WHERE EXISTS (SELECT 1 FROM %s%s%s)",
                 i ? " UNION ALL " : "", t, t, w ? " WHERE " : "", w ? w : "");
  }
  res = PQexec (c->conn, sql.s);
  if (PQresultStatus (res) != PGRES_TUPLES_OK) {
    pg_fail (c, res, "checking that the store is empty");
    goto out;
  }
  nt = PQntuples (res);
  for (i = 0; i < nt; i++)
    strbuf_addf (&names, "%s%s", i ? ", " : "", PQgetvalue (res, i, 0));
  if (nt) {
    fail (c, "%s: the store is not empty: table%s %s %s rows (herald store "
          "copy fills an empty store only)", c->to, nt > 1 ? "s" : "",
          names.s, nt > 1 ? "have" : "has");
    goto out;
  }
  r = 0;
out:
  PQclear (res);
  free (v);
  strbuf_free (&sql);
  strbuf_free (&names);
  return r;
}

/* New ids of SP's table (an identity key) come after the largest copied,
 * and after any the sequence gave before (rolled-back rows'). */
static int
set_identity (struct copy *c, const struct spec *sp)
{
  char *sql, what[64];
  int r;

  snprintf (what, sizeof what, "setting the next id of table %s",
            sp->table);
  sql = xasprintf ("SELECT setval (s, greatest (m, coalesce "
                   "(pg_sequence_last_value (s), 0))) FROM (SELECT "
                   "pg_get_serial_sequence ('%s', '%s')::regclass AS s, "
                   "(SELECT max (%s) FROM %s) AS m) x WHERE m IS NOT NULL",
                   sp->table, sp->cols[0].name, sp->cols[0].name, sp->table);
  r = pg_exec (c, sql, what);
  free (sql);
  return r;
}

/* The secondary indexes of the copied tables, dropped before the rows go
 * in and built again after, in the transaction: building an index once
 * by sorting beats inserting every row into it (100,000 customers and
 * 200,000 events: 4.6 s with the indexes in place, 2.3 s this way).  The
 * definitions are the server's own (pg_get_indexdef), so the schema
 * after the commit is the one herald store migrate made.  Indexes that
 * back a constraint (the primary keys, UNIQUE) stay, and so do all
 * indexes of a table this role does not own (it may not drop them): the
 * copy is then slower, not refused.  Into *DEFS_R (malloc'ed strings in
 * a malloc'ed array; the caller frees both) and *N_R. */
static int
drop_indexes (struct copy *c, char ***defs_r, int *n_r)
{
  struct strbuf sql = STRBUF_INIT, drop = STRBUF_INIT;
  PGresult *res;
  int i, n, r = -1;

  *defs_r = NULL;
  *n_r = 0;
  strbuf_adds (&sql, "SELECT i.oid::regclass::text, pg_get_indexdef (i.oid) "
               "FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid "
               "JOIN pg_class t ON t.oid = x.indrelid "
               "WHERE x.indrelid IN (");
  for (i = 0; i < STORE_COPY_TABLES; i++)
    strbuf_addf (&sql, "%s'%s'::regclass", i ? ", " : "", specs[i].table);
  strbuf_adds (&sql, ") AND NOT EXISTS (SELECT 1 FROM pg_constraint k "
               "WHERE k.conindid = i.oid) "
               "AND pg_has_role (t.relowner, 'USAGE') ORDER BY 1");
  res = PQexec (c->conn, sql.s);
  if (PQresultStatus (res) != PGRES_TUPLES_OK) {
    pg_fail (c, res, "reading the tables' indexes");
    goto out;
  }
  n = PQntuples (res);
  *defs_r = xcalloc ((size_t) n + 1, sizeof **defs_r);
  for (i = 0; i < n; i++) {
    (*defs_r)[i] = xstrdup (PQgetvalue (res, i, 1));
    strbuf_addf (&drop, "%s%s", i ? ", " : "DROP INDEX ",
                 PQgetvalue (res, i, 0));
  }
  *n_r = n;
  r = n ? pg_exec (c, drop.s, "dropping the indexes to build them after "
                   "the copy") : 0;
out:
  PQclear (res);
  strbuf_free (&sql);
  strbuf_free (&drop);
  return r;
}

/* Build again the indexes drop_indexes dropped: DEFS[0..N). */
static int
build_indexes (struct copy *c, char **defs, int n)
{
  int i;

  for (i = 0; i < n; i++)
    if (pg_exec (c, defs[i], "building an index after the copy") < 0) {
      size_t len = strlen (c->err);
      snprintf (c->err + len, c->errlen - len, " (%s)", defs[i]);
      return -1;
    }
  return 0;
}

/* The SQLite file's snapshot: a read transaction, at this herald's
 * schema version (store_open migrated it just before; a newer herald may
 * not have since). */
static int
open_source (struct copy *c)
{
  sqlite3_stmt *s = NULL;
  int rc, v = -1;

  if (sqlite3_open_v2 (c->from, &c->db, SQLITE_OPEN_READONLY, NULL)
      != SQLITE_OK)
    return fail (c, "%s: cannot open the store: %s", c->from,
                 c->db ? sqlite3_errmsg (c->db) : "out of memory");
  sqlite3_busy_timeout (c->db, 10000);
  if (sqlite3_exec (c->db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK)
    return sq_fail (c, "starting a read transaction");
  if (sqlite3_prepare_v2 (c->db, "SELECT value FROM meta WHERE key = "
                          "'schema_version'", -1, &s, NULL) != SQLITE_OK)
    return sq_fail (c, "reading the schema version");
  rc = sqlite3_step (s);
  if (rc == SQLITE_ROW)
    v = sqlite3_column_int (s, 0);
  sqlite3_finalize (s);
  if (rc != SQLITE_ROW && rc != SQLITE_DONE)
    return sq_fail (c, "reading the schema version");
  if (v != STORE_SCHEMA_VERSION)
    return fail (c, "%s: the store is at schema version %d, this herald "
                 "copies version %d", c->from, v, STORE_SCHEMA_VERSION);
  return 0;
}

int
store_copy (const char *from, const char *to,
            struct store_copy_table tables_r[STORE_COPY_TABLES],
            char *err, size_t errlen)
{
  struct copy c = { 0 };
  struct store *st = NULL;
  struct stat sb;
  unsigned char sums[STORE_COPY_TABLES][32], back[32];
  int64_t rows[STORE_COPY_TABLES], n;
  int i, r = -1, began = 0, copying = 0, nidx = 0;
  char **idx = NULL;

  c.from = from;
  c.err = err;
  c.errlen = errlen;
  err[0] = '\0';
  if (store_location_is_url (from))
    return fail (&c, "%s: herald store copy copies an SQLite store, and "
                 "this is a PostgreSQL one", from);
  if (!store_location_is_url (to))
    return fail (&c, "herald store copy copies into a PostgreSQL store "
                 "(a postgresql:// URL), not a file");
  /* store_open would create a missing file: a typo would copy nothing,
   * successfully. */
  if (stat (from, &sb) < 0)
    return fail (&c, "%s: cannot read the store: %s", from, strerror (errno));
  /* The source at this herald's schema version (a file is migrated when
   * opened); the target reachable and migrated, named without its
   * password.  Their messages are store_open's. */
  if (!(st = store_open (from, err, errlen)))
    goto out;
  store_close (st);
  if (!(st = store_open (to, err, errlen)))
    goto out;
  c.to = xstrdup (store_name (st));
  store_close (st);
  st = NULL;
  if (connect_target (&c, to) < 0 || open_source (&c) < 0)
    goto out;
  if (pg_exec (&c, "BEGIN ISOLATION LEVEL READ COMMITTED",
               "starting the transaction") < 0)
    goto out;
  began = 1;
  if (check_target (&c) < 0)
    goto out;
  copying = 1;               /* from here a failure undoes some work */
  if (drop_indexes (&c, &idx, &nidx) < 0)
    goto out;
  for (i = 0; i < STORE_COPY_TABLES; i++)
    if (copy_table (&c, &specs[i], &rows[i], sums[i]) < 0
        || (specs[i].identity && set_identity (&c, &specs[i]) < 0))
      goto out;
  if (build_indexes (&c, idx, nidx) < 0)
    goto out;
  /* The verification, in the transaction: what a commit would make. */
  for (i = 0; i < STORE_COPY_TABLES; i++) {
    char a[65], b[65];
    if (read_back (&c, &specs[i], &n, back) < 0)
      goto out;
    hex (a, sums[i], 32);
    hex (b, back, 32);
    if (n != rows[i] || strcmp (a, b) != 0) {
      fail (&c, "%s: table %s differs after the copy: %lld rows, checksum "
            "%.16s in %s; %lld rows, checksum %.16s in PostgreSQL", c.to,
            specs[i].table, (long long) rows[i], a, from, (long long) n, b);
      goto out;
    }
    tables_r[i].table = specs[i].table;
    tables_r[i].rows = n;
    memcpy (tables_r[i].checksum, a, sizeof a);
  }
  if (pg_exec (&c, "COMMIT", "committing the copy") < 0) {
    /* The server said no (it rolled back), or the connection went: then
     * nobody here knows whether the commit happened before it did. */
    if (PQstatus (c.conn) != CONNECTION_OK) {
      size_t len = strlen (err);
      snprintf (err + len, errlen - len, "; the connection was lost while "
                "committing: the copy is either all there or not at all");
      began = 0;
    }
    goto out;
  }
  began = 0;
  /* Statistics for the planner now, rather than when autovacuum gets to
   * the new rows: the first campaign's queries plan from them.  Best
   * effort: the copy is committed. */
  {
    struct strbuf sql = STRBUF_INIT;
    strbuf_adds (&sql, "ANALYZE ");
    for (i = 0; i < STORE_COPY_TABLES; i++)
      strbuf_addf (&sql, "%s%s", i ? ", " : "", specs[i].table);
    PQclear (PQexec (c.conn, sql.s));
    strbuf_free (&sql);
  }
  r = 0;
out:
  if (began) {
    size_t len = strlen (err);
    PQclear (PQexec (c.conn, "ROLLBACK"));
    if (copying)
      snprintf (err + len, errlen - len, "; rolled back: nothing was "
                "copied to %s", c.to);
  }
  if (c.db)
    sqlite3_close (c.db);
  if (c.conn)
    PQfinish (c.conn);
  for (i = 0; i < nidx; i++)
    free (idx[i]);
  free (idx);
  EVP_MD_CTX_free (c.md);
  strbuf_free (&c.out);
  strbuf_free (&c.row);
  strbuf_free (&c.val);
  free (c.to);
  return r;
}
