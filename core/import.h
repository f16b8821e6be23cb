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
/* herald store migrate [--store LOCATION]  (core/cmd_store.c). */
int cmd_store (int argc, char **argv);
/* herald bounces import [--store PATH] [--verbose] MAILBOX...
 * (core/cmd_bounces.c; argv[0] = "bounces", argv[1] = "import"). */
int cmd_bounces (int argc, char **argv);

/* Import the JSON-lines events of BUF[0..LEN) into ST (what herald events
 * import does with a file; NAME stands for the file in messages), all or
 * nothing, in one transaction.  0 with the counts; 1 when a line is bad:
 * nothing imported, "NAME:LINE: field: message" lines appended to REPORT;
 * -1 on a store failure (store_error). */
struct store;
struct strbuf;
int import_events_buffer (struct store *st, const char *name, const char *buf,
                          size_t len, struct strbuf *report, long *imported_r,
                          long *duplicates_r);

/* The store location for a command: --store PATH if given, else the
 * gateway configuration's [store] path (a file, whose folder is created,
 * or a postgresql:// URL).  Returns a string to free, or NULL after
 * printing why (exit 1). */
char *import_store_path (const char *opt_store);

#endif
