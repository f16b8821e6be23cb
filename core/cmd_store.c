/* cmd_store: 'herald store migrate', the one command that creates or
 * migrates a shared store's schema (a PostgreSQL database: the other
 * commands refuse a database that is not at their version, as many
 * herald processes share it).  It never touches the store's data. */
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
           "\n"
           "Create the store's schema, or bring it up to this herald's\n"
           "version (%d).  A PostgreSQL store (LOCATION a postgresql:// URL)\n"
           "must be migrated before the other commands use it, once after\n"
           "each herald upgrade; an SQLite file is migrated whenever it is\n"
           "opened.  Running it again, or from two places at once, is\n"
           "harmless.\n"
           "\n"
           "  --store LOCATION  the store: a file, or a postgresql:// URL\n"
           "                    (default: [store] path of the gateway\n"
           "                    configuration)\n"
           "  --help            this text\n"
           "\n"
           "Exit status: 0, 1 store error, 2 usage.\n", STORE_SCHEMA_VERSION);
}

int
cmd_store (int argc, char **argv)
{
  const char *opt_store = NULL;
  char *location = NULL, err[1024];
  struct store *st = NULL;
  int i, ret = 1;

  if (argc < 2 || strcmp (argv[1], "--help") == 0
      || strcmp (argv[1], "-h") == 0) {
    usage (argc < 2 ? stderr : stdout);
    return argc < 2 ? EXIT_USAGE : 0;
  }
  if (strcmp (argv[1], "migrate") != 0) {
    fprintf (stderr, "herald store: unknown command '%s'\n", argv[1]);
    usage (stderr);
    return EXIT_USAGE;
  }
  for (i = 2; i < argc; i++) {
    const char *a = argv[i];
    if (strcmp (a, "--help") == 0 || strcmp (a, "-h") == 0) {
      usage (stdout);
      return 0;
    }
    else if (strcmp (a, "--store") == 0) {
      if (++i >= argc) {
        fprintf (stderr, "herald store migrate: --store needs a location\n");
        return EXIT_USAGE;
      }
      opt_store = argv[i];
    }
    else if (strncmp (a, "--store=", 8) == 0)
      opt_store = a + 8;
    else {
      fprintf (stderr, "herald store migrate: unknown argument '%s'\n", a);
      usage (stderr);
      return EXIT_USAGE;
    }
  }
  if (!(location = import_store_path (opt_store)))
    goto out;
  if (!(st = store_open_migrate (location, err, sizeof err))) {
    fprintf (stderr, "herald: %s\n", err);
    goto out;
  }
  printf ("store at schema version %d\n", store_schema_version (st));
  ret = 0;
out:
  store_close (st);
  free (location);
  return ret;
}
