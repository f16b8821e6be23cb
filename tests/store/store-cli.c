/* store-cli: the store's commands without the rest of herald, so their
 * tests run whether or not core/main.c lists them yet:
 *   store-cli customers import ... | events import ... | report ... */
#include <config.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "import.h"
#include "main.h"   /* main_config_path lives in core/config.c */


int
main (int argc, char **argv)
{
  signal (SIGPIPE, SIG_IGN);
  if (argc >= 3 && strcmp (argv[1], "-c") == 0) {
    main_config_path = argv[2];
    argc -= 2;
    argv += 2;
  }
  if (argc < 2) {
    fprintf (stderr, "usage: store-cli [-c INI] customers|events|report ...\n");
    return EXIT_USAGE;
  }
  if (strcmp (argv[1], "customers") == 0)
    return cmd_customers (argc - 1, argv + 1);
  if (strcmp (argv[1], "events") == 0)
    return cmd_events (argc - 1, argv + 1);
  if (strcmp (argv[1], "report") == 0)
    return cmd_report (argc - 1, argv + 1);
  fprintf (stderr, "store-cli: unknown command '%s'\n", argv[1]);
  return EXIT_USAGE;
}
