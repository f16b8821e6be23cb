/* fuzz_import: libFuzzer target for the importers of core/import.c: the
 * JSON-lines reader (customers and events), the CSV reader (RFC 4180,
 * customers), and each record's validation, without a store.  The module
 * is included whole (its readers are static) and the store calls it makes
 * are stubs here that check what they are given.
 *
 * The input is a mode byte, then the file: mode % 3 is 0 for customers
 * as JSON lines, 1 for customers as CSV, 2 for events as JSON lines
 * (through import_events_buffer, as POST /events does); mode & 4 is
 * --skip-bad.  Besides the sanitizers' findings (leaks included), it
 * checks:
 *  - every bad record is reported as one line "NAME:LINE: message" of
 *    UTF-8 text without control characters, LINE a line of the file;
 *  - a record that reaches the store is valid: a customer has a non-empty
 *    string id, only known fields, no null, and the raw line it is stored
 *    as (when it is) is that record as JSON, which the scheduler's reader
 *    (jsoncheck_load) reads back as it is; an event has a customer, a
 *    type, a channel for the standard types, and a detail that is a JSON
 *    object of properties;
 *  - without --skip-bad, one bad record means nothing is written
 *    (all or nothing).
 * Built and run by tests/fuzz/fuzz.sh. */
#include "../../core/import.c"

#include <stdint.h>

#include "../../lib/jsoncheck.h"

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

#define FAIL(...) do { fprintf (stderr, __VA_ARGS__); fputc ('\n', stderr); \
                       abort (); } while (0)

/* ---- The store, as import.c sees it. ---- */

struct store {
  long written;
  int in_tx;
};

struct store *
store_open (const char *location, char *err, size_t errlen)
{
  (void) location;
  snprintf (err, errlen, "no store in the fuzzer");
  return NULL;
}

void
store_close (struct store *st)
{
  (void) st;
}

const char *
store_error (const struct store *st)
{
  (void) st;
  return "stub";
}

int
store_begin (struct store *st)
{
  st->in_tx = 1;
  return 0;
}

int
store_commit (struct store *st)
{
  st->in_tx = 0;
  return 0;
}

int
store_rollback (struct store *st)
{
  st->in_tx = 0;
  st->written = 0;
  return 0;
}

int
store_bulk_customers (struct store *st, int64_t expected)
{
  (void) st;
  (void) expected;
  return 0;
}

int
store_customer_exists (struct store *st, const char *id)
{
  (void) st;
  if (!id || !*id)
    FAIL ("store_customer_exists with an empty id");
  return strcmp (id, "nobody") != 0;
}

int
store_customer_put_text (struct store *st, const char *id, json_t *record,
                         const char *text)
{
  const char *k, *rid = json_string_value (json_object_get (record, "id"));
  json_t *v;

  if (!id || !*id || !rid || strcmp (id, rid) != 0)
    FAIL ("customer stored without its id");
  json_object_foreach (record, k, v) {
    if (!in_list (customer_fields, k))
      FAIL ("customer stored with field '%s'", k);
    if (json_is_null (v))
      FAIL ("customer stored with %s null", k);
  }
  {
    /* What the store keeps, the scheduler reads back (jsoncheck_load). */
    char *dumped = text ? NULL : json_dumps (record, JSON_COMPACT);
    const char *kept = text ? text : dumped, *why;
    size_t off;
    json_t *t = json_loads (kept, JSON_REJECT_DUPLICATES, NULL);
    json_t *back = jsoncheck_load (kept, strlen (kept), 0, &why, &off);
    if (!t || !json_equal (t, record))
      FAIL ("customer stored as a text that is not its record: %s", kept);
    if (!back || !json_equal (back, record))
      FAIL ("the scheduler cannot read the stored customer (%s at %zu)",
            back ? "differs" : why, off);
    json_decref (t);
    json_decref (back);
    free (dumped);
  }
  st->written++;
  return 0;
}

int
store_event_put (struct store *st, const char *customer, const char *channel,
                 const char *type, int64_t at, const char *campaign,
                 const char *message_key, const char *detail_json)
{
  (void) at;
  (void) campaign;
  (void) message_key;
  if (!customer || !*customer || !type || !*type)
    FAIL ("event stored without its customer or type");
  if (in_list (event_types, type) && (!channel || !*channel))
    FAIL ("a '%s' event stored without a channel", type);
  if (!in_list (event_types, type) && !valid_event_type (type))
    FAIL ("event stored with type '%s'", type);
  if (detail_json) {
    json_t *d = json_loads (detail_json, 0, NULL);
    if (!json_is_object (json_object_get (d, "properties")))
      FAIL ("event detail is not {\"properties\": {...}}: %s", detail_json);
    json_decref (d);
  }
  st->written++;
  return 0;
}

/* ---- Checks. ---- */

static void
fz_check_report (const char *name, const char *s, size_t n, int lines)
{
  size_t i, start = 0, nl = strlen (name);

  if (utf8_check (s, n) != n)
    FAIL ("report is not UTF-8:\n%s", s);
  for (i = 0; i < n; i++) {
    if (s[i] == '\n') {
      const char *p = s + start;
      long line;
      char *end;
      if (strncmp (p, name, nl) != 0 || p[nl] != ':')
        FAIL ("report line without the file name: '%.*s'", (int) (i - start),
              p);
      line = strtol (p + nl + 1, &end, 10);
      if ((*end != ':' || line < 1 || line > lines)
          && strncmp (p + nl + 1, " ... and ", 9) != 0)
        FAIL ("report line without a line of the file (%d lines): '%.*s'",
              lines, (int) (i - start), p);
      start = i + 1;
    }
    else if ((unsigned char) s[i] < 0x20 || s[i] == 0x7f)
      FAIL ("control character 0x%02x in the report:\n%s", s[i], s);
  }
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  static const char name[] = "fuzz.in";
  struct store st = { 0, 0 };
  struct strbuf report = STRBUF_INIT;
  struct import im;
  unsigned mode;
  char *buf;
  size_t len, i;
  int lines = 1, r;
  FILE *fp;

  if (size < 1)
    return 0;
  mode = data[0];
  len = size - 1;
  buf = malloc (len ? len : 1);
  memcpy (buf, data + 1, len);
  for (i = 0; i < len; i++)
    lines += buf[i] == '\n';

  if (mode % 3 == 2) {
    long imported = 0, dups = 0;
    r = import_events_buffer (&st, name, buf, len, &report, &imported, &dups);
    if (r < 0 || (r == 0 && report.len) || (r == 1 && !report.len))
      FAIL ("import_events_buffer returned %d with report '%s'", r,
            report.s ? report.s : "");
    if (r == 1 && st.written)
      FAIL ("a bad line, and %ld events kept", st.written);
    if (r == 0 && imported != st.written)
      FAIL ("%ld imported, %ld written", imported, st.written);
  }
  else if (len && (fp = fmemopen (buf, len, "r"))) {
    memset (&im, 0, sizeof im);
    im.kind = CUSTOMERS;
    im.file = name;
    im.st = &st;
    im.writing = 1;
    im.skip_bad = (mode & 4) != 0;
    im.report = &report;
    r = mode % 3 == 0 ? import_jsonl (&im, fp) : import_csv (&im, fp);
    fclose (fp);
    strbuf_free (&im.err);
    if (r == -1)
      FAIL ("a store failure without a store");
    if (im.bad && !im.skip_bad && im.writing)
      FAIL ("%ld bad records, and still writing", im.bad);
    if (!im.writing && r == 0 && !im.bad)
      FAIL ("stopped writing without a bad record");
    if (im.writing && r == 0 && im.imported != st.written)
      FAIL ("%ld imported, %ld written", im.imported, st.written);
  }
  if (report.len)
    fz_check_report (name, report.s, report.len, lines);
  strbuf_free (&report);
  free (buf);
  return 0;
}
