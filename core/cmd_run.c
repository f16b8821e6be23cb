/* cmd_run.c: the commands run and preview, the summary, signals. */
#include <config.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <math.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>

#include "run/internal.h"
#include "campaign.h"
#include "jsonw.h"
#include "linkrewrite.h"
#include "../lib/jsoncheck.h"
#include "loader.h"
#include "main.h"
#include "run.h"
#include "store.h"
#include "token.h"
#include "tz.h"


volatile sig_atomic_t run_stop;

static void
on_signal (int sig)
{
  (void) sig;
  run_stop = 1;
}

static void
print_summary (struct run *r, FILE *fp)
{
  size_t i;
  char t1[64], t2[64];

  if (r->dry_run)
    fprintf (fp, "dry run of campaign %s: nothing was sent or recorded\n",
             r->c->id);
  fprintf (fp, "campaign %s: %ld customers planned\n", r->c->id,
           r->total.planned);
  fprintf (fp, "  %-10s %8s %8s %8s %8s %8s %8s\n", "channel",
           r->dry_run ? "to send" : "sent", "retry", "failed", "dead",
           "deferred", "shifted");
  for (i = 0; i < r->c->n_channels; i++) {
    struct counts *c = &r->per[i];
    fprintf (fp, "  %-10s %8ld %8ld %8ld %8ld %8ld %8ld\n",
             r->c->channels[i].conf->name, r->dry_run ? c->planned : c->sent,
             c->retry, c->failed, c->dead, c->deferred, c->shifted);
  }
  if (r->total.fallback)
    fprintf (fp, "  %ld message(s) fell back to another channel after a "
             "permanent failure\n", r->total.fallback);
  /* A dry run plans as if every channel took everything: say what a
   * warm-up would hold back today. */
  for (i = 0; r->dry_run && r->st && i < r->c->n_channels; i++) {
    const struct channel_conf *cc = r->c->channels[i].conf;
    int64_t now = now_seconds ();
    long used, cap;

    if (cc->warmup_n <= 0 || r->per[i].planned == 0)
      continue;
    used = store_instance_volume (r->st, cc->name, now - now % 86400);
    cap = config_warmup_cap (cc, now);
    if (used >= 0 && r->per[i].planned > cap - used)
      fprintf (fp, "  warm-up: channel %s takes %ld more today (warmup = %s: "
               "%ld, %ld used): %ld of the %ld would go to another channel "
               "or wait for the next day\n", cc->name,
               cap > used ? cap - used : 0, cc->warmup_spec, cap, used,
               r->per[i].planned - (cap > used ? cap - used : 0),
               r->per[i].planned);
  }
  for (i = 0; i < r->c->n_channels; i++)
    if (r->warm_moved[i])
      fprintf (fp, "  warm-up: channel %s reached its volume of the day "
               "(warmup = %s): %ld message(s) went to another channel or "
               "wait for the next day\n", r->c->channels[i].conf->name,
               r->c->channels[i].conf->warmup_spec, r->warm_moved[i]);
  if (r->warm_deferred)
    fprintf (fp, "  warm-up: %ld message(s) deferred to the next day (no "
             "other channel could take them)\n", r->warm_deferred);
  if (r->total.held_out)
    fprintf (fp, "  held out: %ld\n", r->total.held_out);
  if (r->n_reasons) {
    fprintf (fp, "  skipped or failed by reason:\n");
    for (i = 0; i < r->n_reasons; i++)
      fprintf (fp, "    %-20s %ld\n", r->reasons[i].reason, r->reasons[i].n);
  }
  if (r->variants && json_object_size (r->variants)) {
    const char *k;
    json_t *v;
    fprintf (fp, "  by variant:\n");
    json_object_foreach (r->variants, k, v)
      fprintf (fp, "    %-20s %lld\n", k, (long long) json_integer_value (v));
  }
  if (r->total.deferred) {
    format_utc (r->deferred_until_min, t1, sizeof t1);
    format_utc (r->deferred_until_max, t2, sizeof t2);
    if (!r->scheduled)
      fprintf (fp, "  deferred by quiet hours: %ld, due from %s to %s\n",
               r->total.deferred, t1, t2);
    else {
      fprintf (fp, "  scheduled for the campaign's start: %ld, due from %s "
               "to %s\n", r->scheduled, t1, t2);
      if (r->total.deferred > r->scheduled)
        fprintf (fp, "  deferred by quiet hours: %ld\n",
                 r->total.deferred - r->scheduled);
    }
  }
}

static int
run_usage (FILE *fp, int rc)
{
  fprintf (fp,
           "Usage: herald [-c GATEWAY.ini] run CAMPAIGN.ini [--dry-run] [--limit N] "
           "[--force]\n\n"
           "Runs or resumes the campaign: plans every customer of the audience\n"
           "not planned yet, sends what is due, waits for retries due within the\n"
           "campaign's retry_horizon, and prints a summary.  --dry-run renders and\n"
           "routes everything and reports what would be sent, sending nothing and\n"
           "changing nothing.  --limit N plans at most N new customers.  --force\n"
           "starts an e-mail campaign even when the e-mail complaint or bounce\n"
           "rate of the last 7 days is past [bounces] max_complaint_rate or\n"
           "max_bounce_rate.\n");
  return rc;
}

int
open_run (struct run *r, const char *campaign_path, int open_channels)
{
  struct strbuf pb = STRBUF_INIT;
  char err[2048];
  size_t i;
  int k, shared;

  r->gw = config_gateway_load (main_config_path, err, sizeof err);
  if (!r->gw) {
    fprintf (stderr, "herald: %s\n", err);
    return -1;
  }
  r->c = campaign_load (campaign_path, r->gw, &pb);
  if (!r->c) {
    fputs (pb.s ? pb.s : "", stderr);
    strbuf_free (&pb);
    return -1;
  }
  strbuf_free (&pb);
  if (r->c->n_channels > ROUTER_MAX_CHANNELS) {
    fprintf (stderr, "herald: %s: too many channels\n", campaign_path);
    return -1;
  }
  shared = store_location_is_url (r->gw->store_path);
  if (open_channels && !shared && mkdir_parents (r->gw->store_path) < 0) {
    fprintf (stderr, "herald: %s: cannot create its folder: %s\n",
             r->gw->store_path, strerror (errno));
    return -1;
  }
  /* One herald run per campaign and SQLite store at a time: two would
   * race for the same due rows.  The lock lives beside the store and dies
   * with the process, so a crash never leaves it behind.  A shared store
   * (PostgreSQL) needs none: its workers claim their work (leases). */
  if (open_channels && !shared) {
    char *lock = xasprintf ("%s.%s.lock", r->gw->store_path, r->c->id);
    r->lock_fd = open_private (lock, O_RDWR | O_CLOEXEC);
    if (r->lock_fd < 0) {
      /* Not another run: the folder (or an old lock file) is not this
       * user's to write, or the disk refuses. */
      fprintf (stderr, "herald: %s: cannot create the run lock %s: %s (the "
               "store's folder must be writable by the user running herald)\n",
               r->gw->store_path, lock, strerror (errno));
      free (lock);
      return -1;
    }
    /* herald serve (OPEN_CHANNELS 2) takes it tick by tick: run_serve_lock. */
    if (open_channels == 1 && flock (r->lock_fd, LOCK_EX | LOCK_NB) < 0) {
      fprintf (stderr, "herald: campaign %s is already running on %s (lock "
               "%s: held by another process)\n", r->c->id, r->gw->store_path,
               lock);
      free (lock);
      return -1;
    }
    free (lock);
  }
  r->st = store_open (r->gw->store_path, err, sizeof err);
  if (!r->st) {
    fprintf (stderr, "herald: %s\n", err);
    return -1;
  }
  r->chunk = -1;
  if (open_channels && store_shared (r->st)) {
    char host[256] = "";

    gethostname (host, sizeof host - 1);
    snprintf (r->worker, sizeof r->worker, "%s:%ld:%08x", host,
              (long) getpid (), (unsigned) rand ());
    if (store_set_worker (r->st, r->worker, (int) r->gw->store_lease) < 0) {
      fprintf (stderr, "herald: %s\n", store_error (r->st));
      return -1;
    }
    r->renewed = now_seconds ();
  }
  for (i = 0; i < r->c->n_channels; i++) {
    const struct channel_conf *cc = r->c->channels[i].conf;
    struct plugin *pl = loader_get (r->gw->plugin_dir, cc->plugin, err,
                                    sizeof err);
    if (!pl) {
      fprintf (stderr, "herald: %s:%d: [channel.%s] plugin: %s\n",
               r->gw->ini->path, ini_line (cc->sec, "plugin"), cc->name, err);
      return -1;
    }
    if (!open_channels) {
      /* A dry run opens nothing, but checks what lint checks, the
       * plugin's config_check included. */
      if (channel_check (pl, cc->name, cc->kind, cc->sec, r->gw->ini->path,
                         &pb) < 0) {
        fprintf (stderr, "herald: %s", pb.s);
        strbuf_free (&pb);
        return -1;
      }
      continue;
    }
    r->lanes[i] = xcalloc ((size_t) cc->lanes, sizeof *r->lanes[i]);
    for (k = 0; k < cc->lanes; k++) {
      r->lanes[i][k].ch = channel_open (pl, cc->name, cc->kind, cc->sec,
                                        r->gw->ini->path,
                                        r->gw->tracking_base_url, err,
                                        sizeof err);
      if (!r->lanes[i][k].ch) {
        fprintf (stderr, "herald: %s\n", err);
        return -1;
      }
      r->lanes[i][k].timeout = cc->send_timeout;
      r->n_lanes[i]++;
    }
  }
  liquid_buf_init (&r->buf);
  r->step = 1;
  r->rerouting = 1;            /* one look for those an earlier run left */
  r->now = now_seconds ();
  if (r->c->policy->kind == POLICY_ENGAGEMENT
      && store_channel_stats (r->st, r->now - r->c->policy->window, &r->pop) < 0) {
    fprintf (stderr, "herald: %s\n", store_error (r->st));
    return -1;
  }
  return 0;
}

void
close_run (struct run *r)
{
  size_t i;

  land_all (r);             /* batches still in flight are recorded */
  if (r->lock_fd >= 0)
    close (r->lock_fd);     /* releases the flock */

  for (i = 0; r->c && i < r->c->n_channels; i++) {
    int k;
    for (k = 0; r->lanes[i] && k < r->n_lanes[i]; k++)
      if (!r->lanes[i][k].stuck)   /* its thread is still in the plugin */
        channel_close (r->lanes[i][k].ch);
    free (r->lanes[i]);
  }
  for (i = 0; i < r->n_reasons; i++)
    free (r->reasons[i].reason);
  free (r->reasons);
  json_decref (r->pop);
  json_decref (r->variants);
  json_decref (r->retried);
  json_decref (r->campaign_j);
  json_decref (r->event);
  liquid_buf_free (&r->buf);
  if (r->unsub_key_ready)
    token_key_free (&r->unsub_key);
  if (r->track_key_ready)
    token_key_free (&r->track_key);
  store_close (r->st);
  campaign_free (r->c);
  config_gateway_free (r->gw);
  if (!r->serve)
    loader_unload_all ();
}

static void
sleep_until (int64_t t)
{
  while (!run_stop) {
    int64_t now = now_seconds ();
    if (now >= t)
      return;
    sleep (1);
  }
}


/* Below this many e-mails sent in the window, the rates say little (one
 * complaint among 20 messages is 5%): the guard rails stay quiet. */
#define RATES_MIN_SENT 100

/* herald run's guard rails: an e-mail campaign does not start while the
 * gateway's e-mail complaint rate over the last 7 days is past
 * [bounces] max_complaint_rate (Gmail's and Yahoo's line: 0.3%) or its
 * hard-bounce rate past max_bounce_rate.  1 fine, 0 refused (said), -1
 * store error (said). */
static int
sender_rates_ok (struct run *r)
{
  json_t *stats = NULL, *e;
  double sent, complained, bounced;
  size_t i;
  int email = 0, ok = 1;

  for (i = 0; i < r->c->n_channels; i++)
    email |= strcmp (r->c->channels[i].conf->kind, "email") == 0;
  if (!email)
    return 1;
  if (store_channel_stats (r->st, now_seconds () - 7 * 86400, &stats) < 0) {
    fprintf (stderr, "herald: %s\n", store_error (r->st));
    return -1;
  }
  e = json_object_get (stats, "email");
  sent = (double) json_integer_value (json_object_get (e, "sent"));
  complained = (double) json_integer_value (json_object_get (e, "complained"));
  bounced = (double) json_integer_value (json_object_get (e, "bounced"));
  if (sent >= RATES_MIN_SENT) {
    if (complained / sent > r->gw->max_complaint_rate) {
      fprintf (stderr, "herald: campaign %s not started: the e-mail "
               "complaint rate of the last 7 days is %.2f%% (%.0f "
               "complaints for %.0f e-mails sent), past [bounces] "
               "max_complaint_rate = %g%% in %s; Gmail and Yahoo reject "
               "bulk mail past 0.3%%.  Clean the audience, or run with "
               "--force\n", r->c->id, 100.0 * complained / sent, complained,
               sent, 100.0 * r->gw->max_complaint_rate, r->gw->ini->path);
      ok = 0;
    }
    if (bounced / sent > r->gw->max_bounce_rate) {
      fprintf (stderr, "herald: campaign %s not started: the e-mail "
               "hard-bounce rate of the last 7 days is %.2f%% (%.0f "
               "bounces for %.0f e-mails sent), past [bounces] "
               "max_bounce_rate = %g%% in %s.  Clean the audience, or run "
               "with --force\n", r->c->id, 100.0 * bounced / sent, bounced,
               sent, 100.0 * r->gw->max_bounce_rate, r->gw->ini->path);
      ok = 0;
    }
  }
  json_decref (stats);
  return ok;
}

/* Plan the audience a page at a time, sending as it goes, until it is
 * all planned or LIMIT customers were.  A shared store's workers split it
 * by chunks they claim (each chunk leased while planned).  0, or -1 when
 * the run must stop at once (a store error while planning: said). */
static int
plan_all (struct run *r, char *after, size_t afterlen, int64_t limit,
          int64_t *planned)
{
  while (!run_stop && (limit < 0 || *planned < limit)) {
    int want = PAGE, n;
    struct due_list fresh = { 0 };

    if (limit >= 0 && limit - *planned < want)
      want = (int) (limit - *planned);
    if (r->worker[0] && r->chunk < 0) {
      int c = store_chunk_claim (r->st, r->c->id, r->c->step, &r->chunk);
      if (c < 0) {
        fprintf (stderr, "herald: %s\n", store_error (r->st));
        r->store_error = 1;
        return -1;
      }
      if (c == 0)
        return 0;
      after[0] = '\0';
    }
    n = plan_page (r, after, afterlen, want, &fresh);
    if (n > 0)
      send_fresh (r, &fresh);
    due_free (&fresh);
    if (n < 0)
      return -1;
    if (n == 0) {
      if (!r->worker[0])
        return 0;
      if (store_chunk_done (r->st, r->c->id, r->c->step, r->chunk) < 0) {
        fprintf (stderr, "herald: %s\n", store_error (r->st));
        r->store_error = 1;
        return -1;
      }
      r->chunk = -1;
      continue;
    }
    *planned += n;
    if (!r->dry_run && dispatch_due (r) < 0)
      break;
    if (r->dry_run && r->verbose_progress)
      fprintf (stderr, "\rherald: %ld customers planned   ", r->total.planned);
  }
  return 0;
}

/* A shared store, this worker's share done: until no other worker holds
 * any of the campaign's work, take back what a dead worker's expired
 * leases left (its rows in flight, its chunks), plan and send it, and
 * wait a moment between looks. */
static void
wait_for_workers (struct run *r, char *after, size_t afterlen, int64_t limit,
                  int64_t *planned)
{
  while (!run_stop && !r->channel_error && !r->store_error) {
    int64_t held = 0, until = 0;
    int back = 0;

    if (lease_tick (r) < 0)
      return;
    if (store_outbox_recover (r->st, r->c->id, r->c->at_least_once,
                              r->c->max_attempts, &back) < 0) {
      fprintf (stderr, "herald: %s\n", store_error (r->st));
      r->store_error = 1;
      return;
    }
    if (back)
      fprintf (stderr, "herald: %d message(s) were in flight at a worker "
               "whose lease expired: %s\n", back,
               r->c->at_least_once ? "sending them again"
                                   : "marked failed (at-most-once)");
    if (plan_all (r, after, afterlen, limit, planned) < 0)
      return;
    if (dispatch_due (r) < 0)
      return;
    land_all (r);
    if (store_work_held (r->st, r->c->id, r->c->step, now_seconds (), &held,
                         &until) < 0) {
      fprintf (stderr, "herald: %s\n", store_error (r->st));
      r->store_error = 1;
      return;
    }
    if (held == 0)
      return;
    {
      struct timespec ts = { 0, 250 * 1000 * 1000 };
      nanosleep (&ts, NULL);
    }
  }
}

int
cmd_run (int argc, char **argv)
{
  struct run r;
  const char *path = NULL;
  char after[1024] = "";
  int64_t limit = -1, planned = 0, next;
  int i, rc = 1, recovered = 0, later = 0, force = 0;
  struct sigaction sa;

  memset (&r, 0, sizeof r);
  r.lock_fd = -1;
  for (i = 1; i < argc; i++) {
    if (strcmp (argv[i], "--help") == 0 || strcmp (argv[i], "-h") == 0)
      return run_usage (stdout, 0);
    else if (strcmp (argv[i], "--dry-run") == 0 || strcmp (argv[i], "-n") == 0)
      r.dry_run = 1;
    else if (strcmp (argv[i], "--force") == 0)
      force = 1;
    else if (strcmp (argv[i], "--limit") == 0 && i + 1 < argc) {
      if (parse_int64 (argv[++i], 0, INT64_MAX, &limit) < 0) {
        fprintf (stderr, "herald run: --limit: '%s' is not a number\n", argv[i]);
        return EXIT_USAGE;
      }
    }
    else if (argv[i][0] == '-' || path) {
      fprintf (stderr, "herald run: unexpected argument '%s'\n", argv[i]);
      return run_usage (stderr, EXIT_USAGE);
    }
    else
      path = argv[i];
  }
  if (!path)
    return run_usage (stderr, EXIT_USAGE);

  memset (&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sigemptyset (&sa.sa_mask);
  sigaction (SIGTERM, &sa, NULL);
  sigaction (SIGINT, &sa, NULL);
  srand ((unsigned) (now_ms () ^ getpid ()));

  if (open_run (&r, path, !r.dry_run) < 0)
    goto out;
  if (r.c->trigger.event) {
    fprintf (stderr, "herald: %s: campaign %s has a [trigger]: herald serve "
             "runs it for each '%s' event (herald serve %s)\n", path,
             r.c->id, r.c->trigger.event, path);
    goto out;
  }
  if (!r.dry_run && !force && sender_rates_ok (&r) <= 0)
    goto out;
  r.verbose_progress = isatty (2);
  if (r.dry_run) {
    if (r.c->policy->n_variants)
      r.variants = json_object ();
  }
  else {
    r.retried = json_object ();
    if (store_outbox_recover (r.st, r.c->id, r.c->at_least_once,
                              r.c->max_attempts, &recovered) < 0
        || store_campaign_start (r.st, r.c->id, r.c->name, r.now) < 0) {
      fprintf (stderr, "herald: %s\n", store_error (r.st));
      goto out;
    }
    if (recovered)
      fprintf (stderr, "herald: %d message(s) were in flight when an earlier "
               "run stopped: %s\n", recovered,
               r.c->at_least_once
               ? "sending them again, one at a time (at-least-once; one in "
                 "flight at as many crashes as max_attempts is dead)"
               : "marked failed (at-most-once)");
  }

  /* Plan a page, send what is due, repeat: memory stays flat however large
   * the audience, and sending starts at once. */
  if (plan_all (&r, after, sizeof after, limit, &planned) < 0)
    goto out;
  land_all (&r);
  if (!r.dry_run && !run_stop && !r.channel_error && !r.store_error) {
    /* What is due now, and what the landed batches left to re-route (a
     * fallback's batch can leave more, one channel further each time). */
    do {
      dispatch_due (&r);
      land_all (&r);
    } while (r.rerouting && !run_stop && !r.channel_error && !r.store_error);
    /* A shared store: other workers' share is theirs while they renew
     * its leases; what a dead worker held comes back at expiry. */
    if (r.worker[0])
      wait_for_workers (&r, after, sizeof after, limit, &planned);
    /* Then retries that fall due within the horizon (not with a frozen
     * clock: HERALD_NOW would never reach them). */
    while (!getenv ("HERALD_NOW") && !run_stop && !r.channel_error && !r.store_error
           && (later = store_outbox_next_due (r.st, r.c->id, &next)) == 1
           && next - now_seconds () <= r.c->retry_horizon) {
      sleep_until (next);
      if (dispatch_due (&r) < 0)
        break;
      land_all (&r);
      if (r.rerouting && dispatch_due (&r) < 0)
        break;
    }
    if (later < 0) {
      fprintf (stderr, "herald: %s\n", store_error (r.st));
      r.store_error = 1;
    }
  }
  if (r.verbose_progress) {
    __atomic_store_n (&loader_progress, 0, __ATOMIC_RELAXED);
    fprintf (stderr, "\n");
  }

  print_summary (&r, stdout);
  if (r.dry_run) {
    rc = 0;
    goto out;
  }
  /* Every store failure is said, and fails the run, down to its last
   * bookkeeping. */
  if ((later = store_outbox_next_due (r.st, r.c->id, &next)) == 1) {
    char t[64];
    format_utc (next, t, sizeof t);
    printf ("  messages scheduled for later (retries, quiet hours or the "
            "campaign's start): next due %s; run again then to send them, or "
            "let herald serve %s send them when due\n", t, path);
  }
  else if (later < 0) {
    fprintf (stderr, "herald: %s\n", store_error (r.st));
    r.store_error = 1;
  }
  if (r.channel_error)
    fprintf (stderr, "herald: stopped: %s (messages kept; fix the channel and "
             "run again)\n", r.channel_error_msg);
  if (run_stop)
    fprintf (stderr, "herald: interrupted: the batch in flight was recorded; "
             "run again to resume\n");
  if (r.unplanned)
    fprintf (stderr, "herald: %ld customer%s not planned: the store failed "
             "while reading their suppressions, caps or history, so they "
             "were not messaged; run again to plan them\n", r.unplanned,
             r.unplanned == 1 ? "" : "s");
  if (store_campaign_finish (r.st, r.c->id,
                             r.store_error || r.channel_error || r.unplanned
                             ? "failed" : run_stop ? "interrupted"
                             : later == 1 ? "scheduled" : "done",
                             now_seconds ()) < 0) {
    fprintf (stderr, "herald: %s\n", store_error (r.st));
    r.store_error = 1;
  }
  rc = (r.store_error || r.channel_error || run_stop || r.unplanned) ? 1 : 0;
out:
  close_run (&r);
  return rc;
}

static int
preview_usage (FILE *fp, int rc)
{
  fprintf (fp,
           "Usage: herald [-c GATEWAY.ini] preview CAMPAIGN.ini --customer ID "
           "[--event JSON]\n\n"
           "Shows the channel decision for one customer with its reason, and\n"
           "the rendered parts.  Changes nothing.  With [step.N], each step in\n"
           "turn, as it goes when the customer does none of its unless events.\n"
           "--event gives a triggered campaign's event properties (event.*).\n");
  return rc;
}

/* Print one step's decision and rendered parts. */
static void
preview_print (struct run *r, const struct plan *p)
{
  static const char *const outcomes[] = { "send", "defer", "skip", "hold out" };

  printf ("key: %s\n", p->key);
  if (!p->in_segment) {
    printf ("decision: not in the audience (segment: %s)\n", r->c->segment);
    return;
  }
  printf ("decision: %s", outcomes[p->d.outcome]);
  if (p->d.channel)
    printf (" via %s", p->d.channel);
  if (p->d.reason)
    printf (" (%s)", p->d.reason);
  if (p->d.outcome == ROUTER_DEFER) {
    char t[64];
    format_utc (p->d.until, t, sizeof t);
    printf (" until %s", t);
  }
  printf ("\nreason: %s\n", p->d.trace);
  if (p->d.variant)
    printf ("variant: %s\n", p->d.variant);
  if (p->d.n_fallback) {
    size_t k;
    printf ("fallback:");
    for (k = 0; k < p->d.n_fallback; k++)
      printf (" %s", p->d.fallback[k]);
    printf ("\n");
  }
  if (p->address) {
    size_t k;
    json_t *v;
    printf ("to:");
    json_array_foreach (p->address, k, v)
      printf (" %s", jstr (v, "value"));
    printf ("\n");
  }
  if (p->render_error)
    printf ("render error: %s\n", p->render_error);
  if (p->parts) {
    const char *k;
    json_t *v;
    json_object_foreach (p->parts, k, v) {
      if (k[0] == '_')
        continue;
      printf ("--- %s ---\n%s", k, json_string_value (v));
      if (json_string_length (v) == 0
          || json_string_value (v)[json_string_length (v) - 1] != '\n')
        printf ("\n");
    }
  }
}

int
cmd_preview (int argc, char **argv)
{
  struct run r;
  const char *path = NULL, *id = NULL, *event = NULL;
  json_t *cust = NULL;
  struct plan p;
  int i, rc = 1, prev_cidx = -1, short_links = 0, planned;
  size_t k;

  memset (&r, 0, sizeof r);
  r.lock_fd = -1;
  memset (&p, 0, sizeof p);
  for (i = 1; i < argc; i++) {
    if (strcmp (argv[i], "--help") == 0 || strcmp (argv[i], "-h") == 0)
      return preview_usage (stdout, 0);
    else if (strcmp (argv[i], "--customer") == 0 && i + 1 < argc)
      id = argv[++i];
    else if (strcmp (argv[i], "--event") == 0 && i + 1 < argc)
      event = argv[++i];
    else if (argv[i][0] == '-' || path)
      return preview_usage (stderr, EXIT_USAGE);
    else
      path = argv[i];
  }
  if (!path || !id)
    return preview_usage (stderr, EXIT_USAGE);
  r.dry_run = 1;
  if (open_run (&r, path, 0) < 0)
    goto out;
  cust = store_customer_get (r.st, id);
  if (!cust) {
    fprintf (stderr, "herald: customer '%s' not found in %s\n", id,
             store_name (r.st));
    goto out;
  }
  /* A triggered campaign sees its event: the properties given, with the
   * type and the time of now. */
  if (r.c->trigger.event || event) {
    json_error_t jerr;
    char at[32];

    r.event = event ? json_loads (event, 0, &jerr) : json_object ();
    if (!json_is_object (r.event)) {
      fprintf (stderr, "herald preview: --event: not a JSON object of the "
               "event's properties: %s\n", event);
      rc = EXIT_USAGE;
      goto out;
    }
    format_utc (r.now, at, sizeof at);
    if (r.c->trigger.event)
      json_object_set_new (r.event, "type", json_string (r.c->trigger.event));
    json_object_set_new (r.event, "at", json_string (at));
  }
  printf ("customer: %s\ncampaign: %s\n", id, r.c->id);
  if (r.c->trigger.event)
    printf ("trigger: a '%s' event, then %lld s\n", r.c->trigger.event,
            (long long) r.c->trigger.delay);
  /* An SMS channel with track_links records its short links while it
   * renders: in a transaction rolled back at once, so that the preview
   * shows the links as long as a run's and changes nothing. */
  for (k = 0; k < r.c->n_channels; k++)
    if (r.c->channels[k].conf->track_links)
      short_links = 1;
  /* Each step as it would go if the one before was sent and the customer
   * did none of its unless events. */
  for (k = 0; k <= r.c->n_steps; k++) {
    int failed[ROUTER_MAX_CHANNELS] = { 0 };

    r.step = (int) k + 1;
    if (r.c->n_steps)
      printf ("%s== step %d ==\n", k ? "\n" : "", r.step);
    if (k) {
      const struct campaign_step *cs = &r.c->steps[k - 1];
      struct outbox_row prev;
      size_t u;

      memset (&prev, 0, sizeof prev);
      if (prev_cidx >= 0)
        prev.instance = r.c->channels[prev_cidx].conf->name;
      step_channels (&r, cs, prev_cidx >= 0 ? &prev : NULL, failed);
      printf ("after: %lld s", (long long) cs->after);
      for (u = 0; cs->unless[u]; u++)
        printf ("%s%s", u ? ", " : "; unless: ", cs->unless[u]);
      printf ("; channel: %s\n", cs->channel == STEP_SAME ? "same"
                                 : cs->channel == STEP_NEXT ? "next"
                                 : r.c->channels[cs->channel_idx].conf->name);
      plan_clear (&p);
    }
    if (short_links && store_begin (r.st) < 0) {
      fprintf (stderr, "herald: %s\n", store_error (r.st));
      goto out;
    }
    planned = plan_customer (&r, cust, failed, &p);
    if (short_links)
      store_rollback (r.st);
    if (planned < 0) {
      fprintf (stderr, "herald: %s\n", p.render_error ? p.render_error
                                                      : "cannot plan");
      goto out;
    }
    preview_print (&r, &p);
    if (!p.in_segment || p.d.outcome == ROUTER_SKIP
        || p.d.outcome == ROUTER_HOLD)
      break;                 /* the journey ends here */
    prev_cidx = p.cidx;
  }
  rc = 0;
out:
  plan_clear (&p);
  json_decref (cust);
  close_run (&r);
  return rc;
}
