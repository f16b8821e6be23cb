/* import, report: the herald commands that read and write the store from
 * the command line.  Each takes its own argv (argv[0] = the command name)
 * and returns the exit code: 0 success, 1 bad input or failure, 2 usage. */
#ifndef HERALD_IMPORT_H
#define HERALD_IMPORT_H

/* herald customers import [--store PATH] [--skip-bad] FILE
 * (argv[0] = "customers", argv[1] = "import"). */
int cmd_customers (int argc, char **argv);
/* herald events import [--store PATH] [--skip-bad] FILE.jsonl
 * (argv[0] = "events", argv[1] = "import"). */
int cmd_events (int argc, char **argv);
/* herald report [--store PATH] CAMPAIGN_ID [--json]  (core/report.c). */
int cmd_report (int argc, char **argv);

/* The store path for a command: --store PATH if given, else the gateway
 * configuration's [store] path.  Returns a string to free, or NULL after
 * printing why (exit 1). */
char *import_store_path (const char *opt_store);

#endif
