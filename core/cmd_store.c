/* cmd_store: 'herald store migrate', the one command that creates or
 * migrates a shared store's schema (a PostgreSQL database: the other
 * commands refuse a database that is not at their version, as many
 * herald processes share it), and 'herald store copy', which fills an
 * empty PostgreSQL store from an SQLite one (core/store/copy.c).  Neither
 * changes the data of a store that has any. */
#include <config.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "import.h"
#include "main.h"
#include "store.h"
#include "util.h"

static void
usage (FILE *fp)
{
  fprintf (fp,
           "Usage: herald store migrate [--store LOCATION]\n"
           "       herald store copy --to URL [--store FILE]\n"
           "\n"
           "migrate: create the store's schema, or bring it up to this\n"
           "herald's version (%d).  A PostgreSQL store (LOCATION a\n"
           "postgresql:// URL) must be migrated before the other commands\n"
           "use it, once after each herald upgrade; an SQLite file is\n"
           "migrated whenever it is opened.  Running it again, or from two\n"
           "places at once, is harmless.\n"
           "\n"
           "copy: copy an SQLite store into an empty PostgreSQL store that\n"
           "'herald store migrate --store URL' has created: customers,\n"
           "consent, suppressions, events, outbox, campaigns, journey\n"
           "timers, short links and the journeys' cursors, ids kept, in one\n"
           "transaction.  Before it commits, each table's rows are counted\n"
           "and checksummed on both sides; any difference, or a text that\n"
           "PostgreSQL cannot keep (not UTF-8), copies nothing.  Stop herald\n"
           "(run, serve) on the SQLite store first: what it writes after the\n"
           "copy began is not copied.\n"
           "\n"
           "  --store LOCATION  the store: a file, or a postgresql:// URL;\n"
           "                    for copy, the SQLite file to copy (default:\n"
           "                    [store] path of the gateway configuration)\n"
           "  --to URL          copy: the PostgreSQL store to fill (a\n"
           "                    postgresql:// URL, or pg: and a libpq\n"
           "                    keyword string)\n"
           "  --help            this text\n"
           "\n"
           "Exit status: 0, 1 store error (nothing copied), 2 usage.\n",
           STORE_SCHEMA_VERSION);
}

/* The value of option NAME at ARGV[*I] ("--name VALUE" or "--name=VALUE")
 * into *V_R: 1 taken (*I moved past it), 0 not this option, -1 missing
 * value (said). */
static int
option (const char *cmd, const char *name, int argc, char **argv, int *i,
        const char **v_r)
{
  size_t n = strlen (name);
  const char *a = argv[*i];

  if (strcmp (a, name) == 0) {
    if (++*i >= argc) {
      fprintf (stderr, "herald store %s: %s needs a value\n", cmd, name);
      return -1;
    }
    *v_r = argv[*i];
    return 1;
  }
  if (strncmp (a, name, n) == 0 && a[n] == '=') {
    *v_r = a + n + 1;
    return 1;
  }
  return 0;
}

static int
store_migrate (const char *location)
{
  char err[1024];
  struct store *st;

  if (!(st = store_open_migrate (location, err, sizeof err))) {
    fprintf (stderr, "herald: %s\n", err);
    return 1;
  }
  printf ("store at schema version %d\n", store_schema_version (st));
  store_close (st);
  return 0;
}

static int
copy (const char *from, const char *to)
{
  struct store_copy_table t[STORE_COPY_TABLES];
  char err[2048];
  int64_t start = now_ms (), rows = 0;
  int i;

  if (store_copy (from, to, t, err, sizeof err) < 0) {
    fprintf (stderr, "herald: %s\n", err);
    return 1;
  }
  for (i = 0; i < STORE_COPY_TABLES; i++) {
    printf ("%-13s %10lld rows  checksum %.16s ok\n", t[i].table,
            (long long) t[i].rows, t[i].checksum);
    rows += t[i].rows;
  }
  printf ("copied %lld rows in %.1f s\n", (long long) rows,
          (double) (now_ms () - start) / 1000.0);
  return 0;
}

int
cmd_store (int argc, char **argv)
{
  const char *opt_store = NULL, *opt_to = NULL, *cmd;
  char *location = NULL;
  int i, ret = 1, is_copy;

  if (argc < 2 || strcmp (argv[1], "--help") == 0
      || strcmp (argv[1], "-h") == 0) {
    usage (argc < 2 ? stderr : stdout);
    return argc < 2 ? EXIT_USAGE : 0;
  }
  cmd = argv[1];
  is_copy = strcmp (cmd, "copy") == 0;
  if (!is_copy && strcmp (cmd, "migrate") != 0) {
    fprintf (stderr, "herald store: unknown command '%s'\n", cmd);
    usage (stderr);
    return EXIT_USAGE;
  }
  for (i = 2; i < argc; i++) {
    const char *a = argv[i];
    int o;
    if (strcmp (a, "--help") == 0 || strcmp (a, "-h") == 0) {
      usage (stdout);
      return 0;
    }
    if ((o = option (cmd, "--store", argc, argv, &i, &opt_store)) == 0
        && is_copy)
      o = option (cmd, "--to", argc, argv, &i, &opt_to);
    if (o < 0)
      return EXIT_USAGE;
    if (o == 0) {
      fprintf (stderr, "herald store %s: unknown argument '%s'\n", cmd, a);
      usage (stderr);
      return EXIT_USAGE;
    }
  }
  if (is_copy && !opt_to) {
    fprintf (stderr, "herald store copy: --to URL is required (the "
             "PostgreSQL store to copy into)\n");
    return EXIT_USAGE;
  }
  if (is_copy && !store_location_is_url (opt_to)) {
    /* Not quoted: a keyword string may hold a password. */
    fprintf (stderr, "herald store copy: --to must name a PostgreSQL store: "
             "a postgresql:// or postgres:// URL, or pg: and a libpq "
             "keyword string\n");
    return EXIT_USAGE;
  }
  if (!(location = import_store_path (opt_store)))
    goto out;
  ret = is_copy ? copy (location, opt_to) : store_migrate (location);
out:
  free (location);
  return ret;
}
