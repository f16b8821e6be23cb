/* lane.c: the sender threads, one batch in flight per lane: the only
 * threaded code of the scheduler.
 *
 * Fresh batches (committed as "sending" by plan_page) go to their plugin
 * on a thread of their own while this one plans, renders and records: the
 * plugins' network work and the core's store work overlap instead of
 * taking turns.  Each lane (plugin instance) has at most one batch in
 * flight; batches take the lanes of their channel in turn.  When a lane's
 * batch lands, the next batch (already built) takes off at once, and only
 * then are the landed batch's results recorded, so a plugin waits neither
 * for planning nor for the store.  The main thread alone touches the
 * store.  The plugin ABI allows this: a state is used by one thread at a
 * time, and the states of one plugin are independent. */
#include <config.h>
#include <assert.h>
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


int run_stuck;

static void *
lane_main (void *data)
{
  struct lane *l = data;
  struct batch *b = &l->flight;

  b->call = channel_send (l->ch, b->mp, b->n, b->rp);
  return NULL;
}

/* Wait for the lane's batch in flight, until its send_timeout.  1 with
 * it moved into *B, or 0 when nothing was in flight, or when the plugin
 * has not returned by then: the lane is then stuck, its batch left in
 * flight ("sending": taken back, alone, as at a crash, by the next run),
 * and the run stops with a channel error naming the plugin. */
int
lane_wait (struct run *r, struct lane *l, struct batch *b)
{
  int rc;

  if (!l->flying || l->stuck)
    return 0;
  rc = pthread_timedjoin_np (l->thread, NULL, &l->deadline);
  if (rc == ETIMEDOUT) {
    l->stuck = 1;
    l->flying = 0;
    l->ch->broken = 1;
    __atomic_store_n (&run_stuck, 1, __ATOMIC_RELAXED);
    /* Never freed: the plugin may still read the messages and write the
     * results. */
    memset (&l->flight, 0, sizeof l->flight);
    if (!r->channel_error) {
      r->channel_error = 1;
      snprintf (r->channel_error_msg, sizeof r->channel_error_msg,
                "channel %s: plugin %s did not return from send within "
                "send_timeout (%llds); its batch stays in flight, to be sent "
                "again one message at a time by the next run",
                l->ch->name, l->ch->plugin->p.name,
                (long long) l->timeout);
    }
    fprintf (stderr, "herald: channel %s: plugin %s did not return from "
             "send within %llds (send_timeout): giving it up\n",
             l->ch->name, l->ch->plugin->p.name, (long long) l->timeout);
    return 0;
  }
  if (rc != 0)
    pthread_join (l->thread, NULL);
  l->flying = 0;
  *b = l->flight;
  memset (&l->flight, 0, sizeof l->flight);
  return 1;
}

/* Put B (moved) on the lane's thread.  0, or -1 when no thread could be
 * started (B is then left to the caller). */
int
lane_takeoff (struct lane *l, struct batch *b)
{
  sigset_t all, old;
  int rc;

  /* A lane carries one batch at a time: its plugin state is used by one
   * thread at a time (the ABI's promise to plugins). */
  assert (!l->flying && !l->stuck);
  l->flight = *b;
  clock_gettime (CLOCK_REALTIME, &l->deadline);
  l->deadline.tv_sec += l->timeout > 0 ? l->timeout : 300;
  /* Signals stay with the main thread, whose handler sets run_stop; the
   * faults a plugin's own bug raises in this thread stay deliverable, so
   * that they end the process as they would anywhere (a blocked SIGSEGV
   * from raise() would only stay pending). */
  sigfillset (&all);
  sigdelset (&all, SIGSEGV);
  sigdelset (&all, SIGBUS);
  sigdelset (&all, SIGFPE);
  sigdelset (&all, SIGILL);
  sigdelset (&all, SIGABRT);
  pthread_sigmask (SIG_BLOCK, &all, &old);
  rc = pthread_create (&l->thread, NULL, lane_main, l);
  pthread_sigmask (SIG_SETMASK, &old, NULL);
  if (rc != 0) {
    memset (&l->flight, 0, sizeof l->flight);
    return -1;
  }
  l->flying = 1;
  memset (b, 0, sizeof *b);
  return 0;
}

/* Record a landed batch and free it. */
void
batch_land (struct run *r, struct batch *b)
{
  batch_record (r, b);
  batch_free (b);
}

/* Wait for every batch in flight and record it. */
void
land_all (struct run *r)
{
  struct batch b;
  size_t k;
  int i;

  for (k = 0; r->c && k < r->c->n_channels; k++)
    for (i = 0; r->lanes[k] && i < r->n_lanes[k]; i++)
      if (lane_wait (r, &r->lanes[k][i], &b))
        batch_land (r, &b);
}

/* 1 when a landed batch says its channel is misconfigured. */
int
batch_channel_error (const struct batch *b)
{
  size_t i;

  for (i = 0; i < b->n; i++)
    if (b->call >= 0 && b->res[i].status == HERALD_CHANNEL_ERROR)
      return 1;
  return 0;
}

/* Send B on its lane's plugin instance here, record it, free it.  0, or
 * -1 on a store failure. */
int
batch_send_here (struct run *r, struct batch *b)
{
  struct channel *ch = r->lanes[b->cidx][b->lane].ch;
  int rc;

  b->call = channel_send (ch, b->mp, b->n, b->rp);
  rc = batch_record (r, b);
  batch_free (b);
  return rc;
}
