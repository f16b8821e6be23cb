/* testplug: a channel plugin for the core's tests.  Its key "mode" says
 * what every send answers (sent, retry, reject, invalid, channel_error,
 * optout: an invalid address with opt_out set; first: sets the
 * result of the first message of each batch only, as a careless plugin
 * would);
 * "log" names a file that gets one line per message it was handed;
 * "calls" names a file that gets one line per send call, "STATE N START
 * END" (STATE tells the instances apart, times in ns, CLOCK_MONOTONIC);
 * "sleep_ms" makes every send take that long; "ready" names a file that
 * the send call number "ready_after" (default 1) of the instance appends
 * "send N" to once its messages are logged, before it stays "hold_ms" in
 * the plugin (less if the test removes the file) and then appends "return
 * N": a test waits for the first line to know a batch is in flight (sent,
 * not yet recorded) and can signal the run then; the second says the
 * batch came back; "crash_on" names a message key whose send crashes
 * (SIGSEGV: a poison message).  A callback (herald
 * serve's /inbound/NAME/PATH) to PATH "/refuse" is answered 400, "/crash"
 * 500, "/fail" fails (-1); anything else gets 200 and reports nothing.
 * Built with TP_SERIALIZE it is "serialplug", the same plugin declaring
 * HERALD_THREAD_SERIALIZE. */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <herald/plugin.h>

struct tp_state {
  int mode;
  int sleep_ms;
  char *crash_on;            /* a message key that crashes send (SIGSEGV) */
  FILE *log;
  int calls;                 /* fd, O_APPEND, or -1 */
  char *ready;               /* the "ready" file, or NULL */
  long ready_after;          /* the send call that signals and holds */
  long hold_ms;
  long n_calls;              /* send calls so far */
};

static const char *const tp_keys[] = { "mode", "log", "calls", "sleep_ms",
                                       "ready", "ready_after", "hold_ms",
                                       "crash_on", NULL };

static long long
tp_ns (void)
{
  struct timespec ts;
  clock_gettime (CLOCK_MONOTONIC, &ts);
  return (long long) ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static int
tp_open (const struct herald_host *host, void **state_r, char *err,
         size_t errlen)
{
  static const char *const modes[] = { "sent", "retry", "reject", "invalid",
                                       "channel_error", "optout", "first",
                                       NULL };
  const char *m = host->config_get (host->data, "mode");
  const char *log = host->config_get (host->data, "log");
  const char *sl = host->config_get (host->data, "sleep_ms");
  const char *calls = host->config_get (host->data, "calls");
  const char *ready = host->config_get (host->data, "ready");
  const char *ra = host->config_get (host->data, "ready_after");
  const char *hold = host->config_get (host->data, "hold_ms");
  struct tp_state *s = calloc (1, sizeof *s);
  int i;

  if (!s)
    return -1;
  if (!m)
    m = "sent";
  for (i = 0; modes[i]; i++)
    if (strcmp (modes[i], m) == 0)
      break;
  if (!modes[i]) {
    snprintf (err, errlen, "%s:%d: [channel.%s] mode: '%s' is not a mode",
              host->config_file, host->config_line (host->data, "mode"),
              host->channel_name, m);
    free (s);
    return -1;
  }
  s->mode = i;
  s->calls = -1;
  if (calls
      && (s->calls = open (calls, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC,
                           0644)) < 0) {
    snprintf (err, errlen, "%s: cannot open", calls);
    free (s);
    return -1;
  }
  s->sleep_ms = sl ? (int) strtol (sl, NULL, 10) : 0;
  if (host->config_get (host->data, "crash_on"))
    s->crash_on = strdup (host->config_get (host->data, "crash_on"));
  s->ready_after = ra ? strtol (ra, NULL, 10) : 1;
  s->hold_ms = hold ? strtol (hold, NULL, 10) : 0;
  if ((ready && !(s->ready = strdup (ready)))
      || (log && !(s->log = fopen (log, "a")))) {
    snprintf (err, errlen, "%s: cannot open", log ? log : "ready");
    if (s->calls >= 0)
      close (s->calls);
    free (s->ready);
    free (s->crash_on);
    free (s);
    return -1;
  }
  /* A line per write: several instances (lanes) share the file. */
  if (s->log)
    setvbuf (s->log, NULL, _IOLBF, 0);
  *state_r = s;
  return 0;
}

static void
tp_close (void *state)
{
  struct tp_state *s = state;
  if (s->log)
    fclose (s->log);
  if (s->calls >= 0)
    close (s->calls);
  free (s->crash_on);
  free (s->ready);
  free (s);
}

/* Append LINE to the "ready" file in one write: the test polls it. */
static void
tp_ready_say (const struct tp_state *s, const char *what)
{
  char line[64];
  int fd, len;

  len = snprintf (line, sizeof line, "%s %ld\n", what, s->n_calls);
  fd = open (s->ready, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0)
    return;
  if (write (fd, line, (size_t) len) != len)
    fprintf (stderr, "testplug: %s: short write\n", s->ready);
  close (fd);
}

/* Stay MS milliseconds in the plugin, or until the test removes the
 * ready file (it has done what it needed a batch in flight for).  Polled,
 * so signals (a send on the main thread sees SIGTERM's handler) change
 * nothing. */
static void
tp_hold (const struct tp_state *s)
{
  struct timespec tick = { 0, 10 * 1000000L };
  long waited;

  for (waited = 0; waited < s->hold_ms; waited += 10) {
    if (access (s->ready, F_OK) < 0)
      break;
    nanosleep (&tick, NULL);
  }
}

static int
tp_send (void *state, const struct herald_message *const *m,
         size_t n, struct herald_result *const *r)
{
  struct tp_state *s = state;
  static const int status[] = { HERALD_SENT, HERALD_RETRY, HERALD_REJECTED,
                                HERALD_INVALID_ADDRESS, HERALD_CHANNEL_ERROR,
                                HERALD_INVALID_ADDRESS };
  size_t i;
  long long start = tp_ns ();

  if (s->sleep_ms > 0)
    usleep ((useconds_t) s->sleep_ms * 1000);
  for (i = 0; i < n; i++) {
    if (s->crash_on && strcmp (m[i]->key, s->crash_on) == 0) {
      if (s->log)
        fflush (s->log);
      /* A plugin bug this message sets off.  raise, not a store through
       * NULL: that is undefined, and UBSan would exit 1 instead. */
      raise (SIGSEGV);
    }
    if (s->log)
      fprintf (s->log, "%s %s %s %u\n", m[i]->key, m[i]->channel,
               m[i]->to[0]->value, m[i]->attempt);
    if (s->mode == 6) {        /* "first": answers the first message only */
      if (i == 0)
        r[i]->status = HERALD_SENT;
      continue;
    }
    r[i]->status = status[s->mode];
    if (s->mode == 0)
      snprintf (r[i]->provider_id, sizeof r[i]->provider_id, "tp-%s", m[i]->key);
    else
      snprintf (r[i]->error, sizeof r[i]->error, "testplug says %d", s->mode);
    if (s->mode == 1)
      r[i]->retry_after_ms = 1000;
    if (s->mode == 5)
      r[i]->opt_out = 1;
  }
  if (s->log)
    fflush (s->log);
  s->n_calls++;
  if (s->ready && s->n_calls == s->ready_after) {
    tp_ready_say (s, "send");
    tp_hold (s);
    tp_ready_say (s, "return");
  }
  if (s->calls >= 0) {
    /* One write per line: lines of several instances never interleave. */
    char line[128];
    int len = snprintf (line, sizeof line, "%p %zu %lld %lld\n", state, n,
                        start, tp_ns ());
    if (write (s->calls, line, (size_t) len) != len)
      return -1;
  }
  return 0;
}

static int
tp_inbound (void *state, const struct herald_request *req,
            const struct herald_sink *sink, struct herald_response *resp)
{
  const char *path = req->path ? req->path : "/";

  (void) state;
  (void) sink;
  if (strcmp (path, "/fail") == 0)
    return -1;
  resp->status = strcmp (path, "/refuse") == 0 ? 400
                 : strcmp (path, "/crash") == 0 ? 500 : 200;
  snprintf (resp->content_type, sizeof resp->content_type, "text/plain");
  resp->body_len = (size_t) snprintf (resp->body, sizeof resp->body,
                                      "testplug: %d\n", resp->status);
  return 0;
}

static const struct herald_plugin tp_plugin = {
  HERALD_PLUGIN_INIT,
#ifdef TP_SERIALIZE
  .name = "serialplug",
  .thread_model = HERALD_THREAD_SERIALIZE,
#else
  .name = "testplug",
#endif
  .version = "0",
  .channels = NULL,
  .config_keys = tp_keys,
  .open = tp_open,
  .close = tp_close,
  .send = tp_send,
  .inbound = tp_inbound,
};

HERALD_REGISTER_PLUGIN (tp_plugin)
