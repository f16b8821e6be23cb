/* run: the scheduler commands. */
#ifndef HERALD_RUN_H
#define HERALD_RUN_H

/* herald run CAMPAIGN.ini [--dry-run] [--limit N] */
int cmd_run (int argc, char **argv);
/* herald preview CAMPAIGN.ini --customer ID */
int cmd_preview (int argc, char **argv);

/* herald serve's side: one struct run per campaign it serves, sending
 * journey steps through the same planning, outbox, lanes and plugins as
 * herald run. */
struct run;
struct store;
struct store_timer;
struct campaign;

/* Load CAMPAIGN_PATH, open the store and the channels (errors printed).
 * NULL on failure. */
struct run *run_serve_open (const char *campaign_path);
void run_serve_close (struct run *r);
const struct campaign *run_serve_campaign (const struct run *r);
/* 1 when the campaign's store is shared (PostgreSQL): replicas of herald
 * serve take turns at it through the store. */
int run_serve_shared (const struct run *r);
struct store *run_serve_store (const struct run *r);

/* The campaign's run lock (one process works a campaign at a time): 1
 * taken, 0 held by another process (a herald run), -1 error. */
int run_serve_lock (struct run *r);
void run_serve_unlock (struct run *r);

/* Fire the due steps TS[0..N): for each, plan, render and record its
 * message (or record why not: an unless event, no customer, out of
 * segment) and mark it done, all in one transaction; then REPORT each with
 * a short account, and send the messages.  0, or -1 on a store error
 * (every step stays waiting; store_error says why). */
int run_fire (struct run *r, const struct store_timer *ts, size_t n,
              void (*report) (void *data, const struct store_timer *t,
                              const char *what),
              void *data);

/* Plan the customers of the audience not planned yet (a campaign with a
 * start: deferred to it), sending what is due now.  The count planned, or
 * -1 (printed). */
long run_serve_plan (struct run *r);

/* Send the campaign's due rows (retries, quiet hours): the count handled,
 * or -1 with ERR set. */
long run_serve_dispatch (struct run *r, char *err, size_t len);

/* Non-zero once a plugin's send outlasted its channel's send_timeout:
 * the sending thread is still inside the plugin, so the process must end
 * without closing that plugin or running exit handlers under it: the
 * command says why, closes the store and ends with _exit (main does). */
extern int run_stuck;

#endif
