/* main: parses the global options and dispatches to a command.
 * Never does work itself: every command lives in its own module. */
#include <config.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "campaign.h"
#include "import.h"
#include "loader.h"
#include "main.h"
#include "run.h"
#include "serve.h"

/* core/cmd_render.c (the Liquid engine's command) */
int cmd_render (int argc, char **argv);

struct command {
  const char *name;
  int (*fn) (int argc, char **argv);
  const char *summary;
};

static const struct command commands[] = {
  { "run", cmd_run, "run or resume a campaign (--dry-run: forecast only)" },
  { "preview", cmd_preview, "show one customer's decision and rendered message" },
  { "lint", cmd_lint, "check a campaign and all its templates" },
  { "render", cmd_render, "render one Liquid template (--data, --each)" },
  { "customers", cmd_customers, "customers import FILE (.jsonl or .csv)" },
  { "events", cmd_events, "events import FILE.jsonl" },
  { "bounces", cmd_bounces, "bounces import MAILDIR|MBOX|FILE... (DSN, ARF)" },
  { "report", cmd_report, "per channel and variant results of a campaign" },
  { "store", cmd_store, "store migrate: a PostgreSQL store's schema; store copy: SQLite into it" },
  { "plugins", cmd_plugins, "list the channel plugins found, and refused ones" },
  { "serve", cmd_serve, "the tracking server: unsubscribe links, provider callbacks" },
  { NULL, NULL, NULL }
};

static void
usage (FILE *fp)
{
  const struct command *c;

  fprintf (fp,
           "Usage: herald [-c GATEWAY.ini] COMMAND [ARGS...]\n"
           "       herald --version | --help\n\n"
           "Commands:\n");
  for (c = commands; c->name; c++)
    fprintf (fp, "  %-18s %s\n", c->name, c->summary);
  fprintf (fp, "\nRun 'herald COMMAND --help' for a command's options.\n");
}

int
main (int argc, char **argv)
{
  const struct command *c;
  int i = 1;

  signal (SIGPIPE, SIG_IGN);
  /* A [channel.NAME] kind beyond the core's own is declared by a plugin. */
  config_kind_finder = loader_find_kind;
  while (i < argc && argv[i][0] == '-') {
    if (strcmp (argv[i], "--version") == 0) {
      printf ("herald %s\n", PACKAGE_VERSION);
      return 0;
    }
    if (strcmp (argv[i], "--help") == 0 || strcmp (argv[i], "-h") == 0) {
      usage (stdout);
      return 0;
    }
    if (strcmp (argv[i], "-c") == 0 || strcmp (argv[i], "--config") == 0) {
      if (i + 1 >= argc) {
        fprintf (stderr, "herald: %s needs a file name\n", argv[i]);
        return EXIT_USAGE;
      }
      main_config_path = argv[i + 1];
      i += 2;
      continue;
    }
    fprintf (stderr, "herald: unknown option '%s'\n", argv[i]);
    usage (stderr);
    return EXIT_USAGE;
  }
  if (i >= argc) {
    usage (stderr);
    return EXIT_USAGE;
  }
  for (c = commands; c->name; c++)
    if (strcmp (c->name, argv[i]) == 0)
    {
      int rc = c->fn (argc - i, argv + i);
      /* A plugin's send outlasted its send_timeout: its thread is still
       * in the plugin, which exit handlers (OpenSSL's, libcurl's) must
       * not run under.  The store is closed; end here. */
      if (__atomic_load_n (&run_stuck, __ATOMIC_RELAXED)) {
        fflush (NULL);
        _exit (rc ? rc : 1);
      }
      return rc;
    }
  fprintf (stderr, "herald: unknown command '%s'\n", argv[i]);
  usage (stderr);
  return EXIT_USAGE;
}
