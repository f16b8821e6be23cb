/* email.c: Herald's email channel plugin, SMTP through libESMTP.
 *
 * send() turns each message into RFC 5322/MIME bytes (plugins/common/mime.c),
 * signs them with DKIM when configured (dkimsign.c, libopendkim), gives
 * each its own signed envelope sender with bounce_domain (VERP, verp.c),
 * opens one SMTP session per `batch` messages (STARTTLS, AUTH, timeouts),
 * and classifies every message by the replies to its own MAIL, RCPT and
 * DATA.  All libESMTP calls live in this file.  It must never share a
 * libESMTP session between threads, never let libESMTP create its own
 * SSL_CTX (PROTOCOLS.md defect A), and never accept an unverified
 * certificate unless the configuration says tls_verify = no.
 */
#include <config.h>

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Order matters (PROTOCOLS.md): OpenSSL and auth-client.h declare the types
 * that make libesmtp.h expose smtp_starttls_set_ctx and
 * smtp_auth_set_context; libesmtp.h uses size_t without <stddef.h>. */
#include <stddef.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <auth-client.h>
#include <libesmtp.h>

#include <herald/plugin.h>
#include "../../lib/address.h"
#include "../common/mime.h"
#include "../../lib/verp.h"
#include "dkimsign.h"
#include "webhooks.h"

#define EMAIL_DEFAULT_TIMEOUT_MS 30000L
#define EMAIL_DEFAULT_CONNECT_TIMEOUT_MS 30000L
#define EMAIL_DEFAULT_BATCH 100UL
#define EMAIL_MAX_BATCH 100000UL

enum email_tls { EMAIL_TLS_NO, EMAIL_TLS_YES, EMAIL_TLS_REQUIRED };

/* One channel instance: its configuration, and the TLS and SASL contexts
 * shared by all its sessions.  Owned by the plugin; freed by close. */
struct email_state {
  const struct herald_host *host;
  char *server;                  /* "host:port" */
  char *from;                    /* From header value */
  struct mime_mailbox from_mb;   /* parsed From, addr = reverse path */
  enum email_tls starttls;
  int tls_verify;
  char *username;
  char *password;
  long timeout_ms;
  long connect_timeout_ms;
  double rate;                   /* messages per second, 0 = unlimited */
  size_t batch;
  SSL_CTX *ssl_ctx;              /* NULL when starttls = no */
  auth_context_t auth;           /* NULL without username */
  struct timespec next_slot;     /* rate pacing: earliest next DATA */
  struct dkimsign *dkim;         /* NULL: messages are not signed */
  char *bounce_domain;           /* NULL: MAIL FROM is the From address */
  struct verp_key verp;          /* set when bounce_domain is */
  struct email_hooks *hooks;     /* the providers' webhooks (webhooks.c) */
};

struct email_session_info;

/* One message of a session: its bytes and its libESMTP handles.  The
 * bytes live until the session is destroyed. */
struct email_item {
  struct email_state *st;
  struct email_session_info *info;
  struct mime_buf buf;
  int sent_once;                 /* message callback: chunk handed out */
  char reverse[VERP_ADDRESS_MAX]; /* MAIL FROM with bounce_domain */
  smtp_message_t msg;
  smtp_recipient_t *rcpt;        /* n_to entries, NULL for skipped ones */
};

/* The watchdog of one session's connect(2) (email_guard_run).  mu
 * guards the ints; cv wakes the watchdog. */
struct email_guard {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  pthread_t target;              /* the thread in smtp_start_session */
  pthread_t thread;              /* the watchdog */
  long ms;                       /* connect_timeout_ms */
  int connected;                 /* between SMTP_EV_CONNECT and _DISCONNECT */
  int rearm;                     /* a new connect begins: new deadline */
  int done;                      /* smtp_start_session returned */
  int fired;                     /* a connect was interrupted */
};

/* What the event callback learns about a session. */
struct email_session_info {
  char tls_error[256];           /* certificate or STARTTLS failure */
  struct email_guard *guard;     /* NULL: connect is not bounded */
  char last_reply[160];          /* the server's last reply line */
  int replied;                   /* the server said something */
  int quitting;                  /* QUIT sent: replies no longer count */
  char last_cmd[12];             /* the verb of our last command */
  struct timespec last_io;       /* CLOCK_MONOTONIC of the last I/O */
};

static const char *const email_channels[] = { "email", NULL };
static const char *const email_keys[] = {
  "server", "from", "starttls", "username", "password", "password_file",
  "timeout_ms", "connect_timeout_ms", "rate", "batch", "tls_ca_file",
  "tls_verify", "dkim_domain", "dkim_selector", "dkim_key_file",
  "bounce_domain", "verp_secret", EMAIL_HOOKS_KEYS, NULL
};
static const char *const email_secret_keys[] = { "password", "verp_secret",
                                                 EMAIL_HOOKS_SECRET_KEYS,
                                                 NULL };
/* Like [tracking] secret (core/config.c). */
#define EMAIL_VERP_SECRET_MIN 16

static pthread_once_t email_once = PTHREAD_ONCE_INIT;
/* The signal that interrupts a connect (email_guard_run); 0 when another
 * part of the process already handles it. */
static int email_wake_sig;

static void
email_wake (int sig)
{
  (void) sig;                    /* only there to interrupt connect(2) */
}

/* When the plugin is unloaded, its handler goes with it: a signal sent
 * later must not jump into unmapped code. */
static void __attribute__ ((destructor))
email_global_fini (void)
{
  if (email_wake_sig != 0)
    signal (email_wake_sig, SIG_DFL);
}

static void
email_global_init (void)
{
  struct sigaction sa, old;
  int sig = SIGRTMIN + 4;

  /* libESMTP's SASL client keeps a process-wide plugin list. */
  auth_client_init ();
  /* No SA_RESTART: an interrupted connect(2) fails with EINTR. */
  memset (&sa, 0, sizeof sa);
  sa.sa_handler = email_wake;
  sigemptyset (&sa.sa_mask);
  if (sig <= SIGRTMAX && sigaction (sig, NULL, &old) == 0
      && old.sa_handler == SIG_DFL && !(old.sa_flags & SA_SIGINFO)
      && sigaction (sig, &sa, NULL) == 0)
    email_wake_sig = sig;
}

/* ------------------------------------------------------------------ */
/* Configuration.                                                      */

/* Write "FILE:LINE: [channel.NAME] KEY: message" into err. */
static void __attribute__ ((format (printf, 5, 6)))
email_config_error (const struct herald_host *host, const char *key,
                    char *err, size_t errlen, const char *fmt, ...)
{
  char msg[512];
  va_list ap;
  int line = host->config_line ? host->config_line (host->data, key) : 0;

  va_start (ap, fmt);
  vsnprintf (msg, sizeof msg, fmt, ap);
  va_end (ap);
  snprintf (err, errlen, "%s:%d: [channel.%s] %s: %s",
            host->config_file ? host->config_file : "(config)", line,
            host->channel_name ? host->channel_name : "?", key, msg);
}

static const char *
email_get (const struct herald_host *host, const char *key)
{
  return host->config_get ? host->config_get (host->data, key) : NULL;
}

/* A key naming a file: relative to the gateway file's folder. */
static const char *
email_get_path (const struct herald_host *host, const char *key)
{
  if (HERALD_HAS (host, config_path) && host->config_path)
    return host->config_path (host->data, key);
  return email_get (host, key);
}

/* Parse a whole decimal integer in [lo, hi]; 0 or -1. */
static int
email_parse_long (const char *s, long lo, long hi, long *v_r)
{
  char *end;
  long v;

  if (s == NULL || *s == '\0')
    return -1;
  errno = 0;
  v = strtol (s, &end, 10);
  if (errno != 0 || end == s || *end != '\0' || v < lo || v > hi)
    return -1;
  *v_r = v;
  return 0;
}

static int
email_parse_yesno (const char *s, int *v_r)
{
  if (strcmp (s, "yes") == 0 || strcmp (s, "true") == 0
      || strcmp (s, "1") == 0)
    *v_r = 1;
  else if (strcmp (s, "no") == 0 || strcmp (s, "false") == 0
           || strcmp (s, "0") == 0)
    *v_r = 0;
  else
    return -1;
  return 0;
}

/* Read the first line of a file (a secret): no trailing CR/LF.  Caller
 * frees.  NULL with errno set on failure. */
static char *
email_read_secret (const char *path)
{
  char buf[1024];
  FILE *f = fopen (path, "r");
  size_t n;
  int saved;

  if (f == NULL)
    return NULL;
  n = fread (buf, 1, sizeof buf - 1, f);
  saved = ferror (f) ? EIO : 0;
  fclose (f);
  if (saved) {
    errno = saved;
    return NULL;
  }
  buf[n] = '\0';
  buf[strcspn (buf, "\r\n")] = '\0';
  return strdup (buf);
}

/* ------------------------------------------------------------------ */
/* TLS and SASL.                                                       */

/* The SSL_CTX of all sessions of this instance (PROTOCOLS.md defect A:
 * libESMTP's own context is freed with the first session).  TLS 1.2 at
 * most (defect B: TLS 1.3 session tickets stall one session in eight).
 * The handshake itself does not verify; libESMTP checks the verify result
 * and the host name right after it, before EHLO, and raises an event we
 * answer with reject unless tls_verify = no (email_event). */
static SSL_CTX *
email_ssl_ctx_new (const struct herald_host *host, const char *ca_file,
                   char *err, size_t errlen)
{
  SSL_CTX *ctx = SSL_CTX_new (TLS_client_method ());

  if (ctx == NULL) {
    snprintf (err, errlen, "cannot create an OpenSSL context");
    return NULL;
  }
  SSL_CTX_set_min_proto_version (ctx, TLS1_2_VERSION);
  SSL_CTX_set_max_proto_version (ctx, TLS1_2_VERSION);
  SSL_CTX_set_verify (ctx, SSL_VERIFY_NONE, NULL);
  if (ca_file != NULL) {
    if (SSL_CTX_load_verify_locations (ctx, ca_file, NULL) != 1) {
      email_config_error (host, "tls_ca_file", err, errlen,
                          "'%s' is not a readable PEM CA bundle", ca_file);
      SSL_CTX_free (ctx);
      return NULL;
    }
  } else if (SSL_CTX_set_default_verify_paths (ctx) != 1) {
    snprintf (err, errlen, "cannot load the system CA certificates");
    SSL_CTX_free (ctx);
    return NULL;
  }
  return ctx;
}

/* SASL interaction (RFC 4954): hand libESMTP the user name and password. */
static int
email_interact (auth_client_request_t req, char **result, int fields,
                void *arg)
{
  struct email_state *st = arg;
  int i;

  for (i = 0; i < fields; i++) {
    if (req[i].flags & AUTH_USER)
      result[i] = st->username;
    else if (req[i].flags & AUTH_PASS)
      result[i] = st->password;
    else
      result[i] = (char *) "";
  }
  return 1;
}

/* ------------------------------------------------------------------ */
/* open / close.                                                       */

static void
email_close (void *state)
{
  struct email_state *st = state;

  if (st == NULL)
    return;
  if (st->auth != NULL)
    auth_destroy_context (st->auth);
  email_hooks_free (st->hooks);
  dkimsign_free (st->dkim);
  if (st->bounce_domain != NULL) {
    verp_key_free (&st->verp);
    free (st->bounce_domain);
  }
  SSL_CTX_free (st->ssl_ctx);
  free (st->server);
  free (st->from);
  free (st->username);
  if (st->password != NULL) {
    memset (st->password, 0, strlen (st->password));
    free (st->password);
  }
  free (st);
}

static int
email_open (const struct herald_host *host, void **state_r, char *err,
            size_t errlen)
{
  struct email_state *st;
  const char *v, *pw, *pwfile;
  char merr[512];
  long n;
  int r = -1;

  pthread_once (&email_once, email_global_init);
  st = calloc (1, sizeof *st);
  if (st == NULL) {
    snprintf (err, errlen, "out of memory");
    return -1;
  }
  st->host = host;
  st->timeout_ms = EMAIL_DEFAULT_TIMEOUT_MS;
  st->connect_timeout_ms = EMAIL_DEFAULT_CONNECT_TIMEOUT_MS;
  st->batch = EMAIL_DEFAULT_BATCH;
  st->starttls = EMAIL_TLS_YES;
  st->tls_verify = 1;

  v = email_get (host, "server");
  if (v == NULL || v[0] == '\0') {
    email_config_error (host, "server", err, errlen,
                        "missing (host:port of the SMTP server)");
    goto out;
  }
  {
    const char *colon = strrchr (v, ':');
    if (strpbrk (v, " \t/") != NULL
        || (colon != NULL
            && (colon == v || email_parse_long (colon + 1, 1, 65535, &n) < 0))) {
      email_config_error (host, "server", err, errlen,
                          "'%s' is not host:port", v);
      goto out;
    }
    /* RFC 6409 would say 587; RFC 5321 relay is 25.  Default to 25. */
    if (colon == NULL) {
      size_t len = strlen (v) + 4;
      st->server = malloc (len);
      if (st->server != NULL)
        snprintf (st->server, len, "%s:25", v);
    } else
      st->server = strdup (v);
  }

  v = email_get (host, "from");
  if (v == NULL || v[0] == '\0') {
    email_config_error (host, "from", err, errlen,
                        "missing (Name <address>)");
    goto out;
  }
  if (mime_parse_mailbox (v, &st->from_mb, merr, sizeof merr) != MIME_OK) {
    email_config_error (host, "from", err, errlen, "%s", merr);
    goto out;
  }
  st->from = strdup (v);

  v = email_get (host, "starttls");
  if (v != NULL) {
    if (strcmp (v, "no") == 0)
      st->starttls = EMAIL_TLS_NO;
    else if (strcmp (v, "yes") == 0)
      st->starttls = EMAIL_TLS_YES;
    else if (strcmp (v, "required") == 0)
      st->starttls = EMAIL_TLS_REQUIRED;
    else {
      email_config_error (host, "starttls", err, errlen,
                          "'%s' is not no, yes or required", v);
      goto out;
    }
  }

  v = email_get (host, "tls_verify");
  if (v != NULL && email_parse_yesno (v, &st->tls_verify) < 0) {
    email_config_error (host, "tls_verify", err, errlen,
                        "'%s' is not yes or no", v);
    goto out;
  }

  v = email_get (host, "timeout_ms");
  if (v != NULL) {
    if (email_parse_long (v, LONG_MIN, LONG_MAX, &n) < 0) {
      email_config_error (host, "timeout_ms", err, errlen,
                          "'%s' is not a number", v);
      goto out;
    }
    if (n < 1 || n > 3600000) {
      email_config_error (host, "timeout_ms", err, errlen,
                          "'%s' is out of range (1 to 3600000)", v);
      goto out;
    }
    st->timeout_ms = n;
  }

  v = email_get (host, "connect_timeout_ms");
  if (v != NULL) {
    if (email_parse_long (v, LONG_MIN, LONG_MAX, &n) < 0) {
      email_config_error (host, "connect_timeout_ms", err, errlen,
                          "'%s' is not a number", v);
      goto out;
    }
    if (n < 1 || n > 3600000) {
      email_config_error (host, "connect_timeout_ms", err, errlen,
                          "'%s' is out of range (1 to 3600000)", v);
      goto out;
    }
    st->connect_timeout_ms = n;
  }

  v = email_get (host, "batch");
  if (v != NULL) {
    if (email_parse_long (v, LONG_MIN, LONG_MAX, &n) < 0) {
      email_config_error (host, "batch", err, errlen,
                          "'%s' is not a number", v);
      goto out;
    }
    if (n < 1 || (unsigned long) n > EMAIL_MAX_BATCH) {
      email_config_error (host, "batch", err, errlen,
                          "'%s' is out of range (1 to %lu)", v,
                          EMAIL_MAX_BATCH);
      goto out;
    }
    st->batch = (size_t) n;
  }

  v = email_get (host, "rate");
  if (v != NULL) {
    char *end;
    double d;
    errno = 0;
    d = strtod (v, &end);
    if (v[0] == '\0' || *end != '\0' || errno != 0 || d != d) {
      email_config_error (host, "rate", err, errlen,
                          "'%s' is not a number", v);
      goto out;
    }
    if (d < 0 || d > 1e6) {
      email_config_error (host, "rate", err, errlen,
                          "'%s' is out of range (0 = unlimited, up to "
                          "1000000 messages per second)", v);
      goto out;
    }
    st->rate = d;
  }

  v = email_get (host, "username");
  pw = email_get (host, "password");
  pwfile = email_get_path (host, "password_file");
  if (pw != NULL && pwfile != NULL) {
    email_config_error (host, "password_file", err, errlen,
                        "give password or password_file, not both");
    goto out;
  }
  if (pwfile != NULL) {
    st->password = email_read_secret (pwfile);
    if (st->password == NULL) {
      email_config_error (host, "password_file", err, errlen,
                          "cannot read '%s': %s", pwfile, strerror (errno));
      goto out;
    }
  } else if (pw != NULL)
    st->password = strdup (pw);
  if (v != NULL && v[0] != '\0') {
    if (st->password == NULL) {
      email_config_error (host, "username", err, errlen,
                          "set, but neither password nor password_file is");
      goto out;
    }
    st->username = strdup (v);
    st->auth = auth_create_context ();
    if (st->auth == NULL) {
      snprintf (err, errlen, "out of memory");
      goto out;
    }
    /* PLAIN and LOGIN send the password in clear: allowed, because
     * starttls = required is how a user asks for it to be protected. */
    auth_set_mechanism_flags (st->auth, AUTH_PLUGIN_PLAIN, 0);
    auth_set_interact_cb (st->auth, email_interact, st);
  } else if (st->password != NULL) {
    email_config_error (host, pwfile ? "password_file" : "password", err,
                        errlen, "set, but username is not");
    goto out;
  }

  {
    const char *key = NULL;
    if (dkimsign_new (email_get (host, "dkim_domain"),
                      email_get (host, "dkim_selector"),
                      email_get_path (host, "dkim_key_file"), &st->dkim, &key,
                      merr, sizeof merr) < 0) {
      email_config_error (host, key, err, errlen, "%s", merr);
      goto out;
    }
  }

  /* VERP: the plugin sees only its own section (herald_host.config_get),
   * so the secret is a key of its own; verp.h derives the MAC key from it
   * with a label, so it may be the [tracking] secret. */
  v = email_get (host, "bounce_domain");
  pw = email_get (host, "verp_secret");
  if (v != NULL && v[0] != '\0') {
    if (!verp_domain_ok (v)) {
      email_config_error (host, "bounce_domain", err, errlen,
                          "'%s' is not a domain name of at most %d octets",
                          v, VERP_DOMAIN_MAX);
      goto out;
    }
    if (pw == NULL || pw[0] == '\0') {
      email_config_error (host, "bounce_domain", err, errlen,
                          "set, but verp_secret is not (it signs the "
                          "envelope senders)");
      goto out;
    }
    if (strlen (pw) < EMAIL_VERP_SECRET_MIN) {
      email_config_error (host, "verp_secret", err, errlen,
                          "too short (at least %d characters)",
                          EMAIL_VERP_SECRET_MIN);
      goto out;
    }
    if (verp_key_init (&st->verp, pw) < 0) {
      snprintf (err, errlen, "cannot derive the VERP key (OpenSSL)");
      goto out;
    }
    st->bounce_domain = strdup (v);
    if (st->bounce_domain == NULL) {
      verp_key_free (&st->verp);
      snprintf (err, errlen, "out of memory");
      goto out;
    }
  } else if (pw != NULL) {
    email_config_error (host, "verp_secret", err, errlen,
                        "set, but bounce_domain is not");
    goto out;
  }

  /* The bounce and complaint webhooks of providers (webhooks.c), after
   * the VERP keys are checked: they read them too. */
  if (email_hooks_new (host, st->from_mb.addr, &st->hooks, err, errlen) < 0)
    goto out;

  if (st->starttls != EMAIL_TLS_NO) {
    v = email_get_path (host, "tls_ca_file");
    st->ssl_ctx = email_ssl_ctx_new (host, v, err, errlen);
    if (st->ssl_ctx == NULL)
      goto out;
  }

  if (st->server == NULL || st->from == NULL
      || (st->username == NULL && st->auth != NULL)) {
    snprintf (err, errlen, "out of memory");
    goto out;
  }
  if (email_wake_sig == 0 && host->log != NULL)
    host->log (host->data, HERALD_LOG_WARNING, "signal %d already has a "
               "handler: connect_timeout_ms does not apply, connecting "
               "waits as long as the system lets it", SIGRTMIN + 4);
  *state_r = st;
  st = NULL;
  r = 0;
out:
  email_close (st);
  return r;
}

/* ------------------------------------------------------------------ */
/* Sending.                                                            */

/* Pace DATA transfers to `rate` messages per second: each message takes
 * the next 1/rate slot; a sender that fell behind does not burst. */
static void
email_pace (struct email_state *st)
{
  struct timespec now, *slot = &st->next_slot;
  long long step_ns, late_ns;

  if (st->rate <= 0)
    return;
  step_ns = (long long) (1e9 / st->rate);
  clock_gettime (CLOCK_MONOTONIC, &now);
  late_ns = (now.tv_sec - slot->tv_sec) * 1000000000LL
            + (now.tv_nsec - slot->tv_nsec);
  if (late_ns >= 0)
    *slot = now;
  else {
    struct timespec d;
    d.tv_sec = (time_t) ((-late_ns) / 1000000000LL);
    d.tv_nsec = (long) ((-late_ns) % 1000000000LL);
    while (nanosleep (&d, &d) < 0 && errno == EINTR)
      ;
  }
  slot->tv_nsec += (long) (step_ns % 1000000000LL);
  slot->tv_sec += (time_t) (step_ns / 1000000000LL);
  if (slot->tv_nsec >= 1000000000L) {
    slot->tv_nsec -= 1000000000L;
    slot->tv_sec++;
  }
}

/* libESMTP's message source: the whole message in one chunk.  len ==
 * NULL rewinds (called before each DATA).  CRLF line endings, no
 * dot-stuffing: libESMTP does it (RFC 5321 section 4.5.2). */
static const char *
email_message_cb (void **ctx, int *len, void *arg)
{
  struct email_item *it = arg;

  (void) ctx;
  if (len == NULL) {
    it->sent_once = 0;
    return NULL;
  }
  if (it->sent_once || it->buf.len > INT_MAX) {
    clock_gettime (CLOCK_MONOTONIC, &it->info->last_io);
    *len = 0;
    return NULL;
  }
  email_pace (it->st);
  clock_gettime (CLOCK_MONOTONIC, &it->info->last_io);
  it->sent_once = 1;
  *len = (int) it->buf.len;
  return it->buf.data;
}

/* ------------------------------------------------------------------ */
/* The connect timeout.                                                */

/* libESMTP 1.1.0 connects with a blocking connect(2) and has neither a
 * timeout for it nor a hook on its socket (protocol.c, do_session): to a
 * server that drops SYNs (down, firewalled, full backlog), Linux gives up
 * only after tcp_syn_retries, about 2 minutes per address.  So a
 * watchdog thread interrupts the sending thread with email_wake_sig once
 * connect_timeout_ms has passed without SMTP_EV_CONNECT: connect fails
 * with EINTR, libESMTP tries the next address, and the watchdog keeps
 * interrupting every 20 ms until a connect succeeds or
 * smtp_start_session returns.  A late signal after the connect is
 * harmless: libESMTP's socket is then non-blocking and each of its
 * poll(2) calls loops on EINTR (siobuf.c).  DNS resolution is not bounded
 * here (the resolver's own timeouts apply). */

static void
email_ts_add_ms (struct timespec *ts, long ms)
{
  ts->tv_sec += ms / 1000;
  ts->tv_nsec += (ms % 1000) * 1000000L;
  if (ts->tv_nsec >= 1000000000L) {
    ts->tv_nsec -= 1000000000L;
    ts->tv_sec++;
  }
}

static void *
email_guard_run (void *arg)
{
  struct email_guard *g = arg;
  struct timespec deadline = { 0, 0 };

  pthread_mutex_lock (&g->mu);
  while (!g->done) {
    if (g->connected) {
      pthread_cond_wait (&g->cv, &g->mu);
      continue;
    }
    if (g->rearm) {
      clock_gettime (CLOCK_MONOTONIC, &deadline);
      email_ts_add_ms (&deadline, g->ms);
      g->rearm = 0;
    }
    if (pthread_cond_timedwait (&g->cv, &g->mu, &deadline) == ETIMEDOUT
        && !g->connected && !g->done && !g->rearm) {
      g->fired = 1;
      pthread_kill (g->target, email_wake_sig);
      clock_gettime (CLOCK_MONOTONIC, &deadline);
      email_ts_add_ms (&deadline, 20);
    }
  }
  pthread_mutex_unlock (&g->mu);
  return NULL;
}

/* Start the watchdog of the calling thread's next connect.  Returns 0,
 * or -1 (connecting is then unbounded, as without this). */
static int
email_guard_start (struct email_guard *g, long ms)
{
  pthread_condattr_t ca;

  memset (g, 0, sizeof *g);
  if (email_wake_sig == 0)
    return -1;
  g->target = pthread_self ();
  g->ms = ms;
  g->rearm = 1;
  if (pthread_condattr_init (&ca) != 0)
    return -1;
  pthread_condattr_setclock (&ca, CLOCK_MONOTONIC);
  if (pthread_cond_init (&g->cv, &ca) != 0) {
    pthread_condattr_destroy (&ca);
    return -1;
  }
  pthread_condattr_destroy (&ca);
  pthread_mutex_init (&g->mu, NULL);
  if (pthread_create (&g->thread, NULL, email_guard_run, g) != 0) {
    pthread_cond_destroy (&g->cv);
    pthread_mutex_destroy (&g->mu);
    return -1;
  }
  return 0;
}

/* A connect succeeded (connected = 1) or its connection ended (0). */
static void
email_guard_set (struct email_guard *g, int connected)
{
  if (g == NULL)
    return;
  pthread_mutex_lock (&g->mu);
  g->connected = connected;
  if (!connected)
    g->rearm = 1;
  pthread_cond_signal (&g->cv);
  pthread_mutex_unlock (&g->mu);
}

/* Stop and join the watchdog; returns whether it interrupted a connect. */
static int
email_guard_stop (struct email_guard *g)
{
  int fired;

  pthread_mutex_lock (&g->mu);
  g->done = 1;
  pthread_cond_signal (&g->cv);
  pthread_mutex_unlock (&g->mu);
  pthread_join (g->thread, NULL);
  fired = g->fired;
  pthread_cond_destroy (&g->cv);
  pthread_mutex_destroy (&g->mu);
  return fired;
}

/* The protocol monitor (libESMTP passes the commands and the replies, not
 * the message): remember the last reply line before QUIT and the verb of
 * the last command, so that a session that ends early can say where and
 * why.  Only a known verb: the lines after AUTH carry the credentials. */
static void
email_monitor (const char *buf, int buflen, int writing, void *arg)
{
  static const char *const verbs[] = {
    "EHLO", "HELO", "STARTTLS", "AUTH", "MAIL", "RCPT", "DATA", "BDAT",
    "RSET", "NOOP", NULL
  };
  struct email_session_info *info = arg;
  int i, start, end;

  clock_gettime (CLOCK_MONOTONIC, &info->last_io);
  if (buf == NULL || buflen <= 0)
    return;
  if (writing == SMTP_CB_WRITING) {
    /* QUIT follows every failure: the verb and the reply before it say
     * where and why. */
    if (buflen >= 4 && memcmp (buf, "QUIT", 4) == 0)
      info->quitting = 1;
    for (i = 0; verbs[i] != NULL; i++) {
      size_t n = strlen (verbs[i]);
      if ((size_t) buflen >= n && memcmp (buf, verbs[i], n) == 0) {
        snprintf (info->last_cmd, sizeof info->last_cmd, "%s", verbs[i]);
        break;
      }
    }
    return;
  }
  if (writing != SMTP_CB_READING || info->quitting)
    return;
  info->replied = 1;
  /* The last complete line "DDD text" (a reply's last line has a space
   * after the code, RFC 5321 section 4.2.1). */
  end = buflen;
  while (end > 0) {
    while (end > 0 && (buf[end - 1] == '\r' || buf[end - 1] == '\n'))
      end--;
    start = end;
    while (start > 0 && buf[start - 1] != '\n')
      start--;
    if (end - start >= 4 && buf[start] >= '2' && buf[start] <= '5'
        && buf[start + 1] >= '0' && buf[start + 1] <= '9'
        && buf[start + 2] >= '0' && buf[start + 2] <= '9'
        && buf[start + 3] == ' ') {
      int n = end - start;
      if (n > (int) sizeof info->last_reply - 1)
        n = (int) sizeof info->last_reply - 1;
      for (i = 0; i < n; i++)
        info->last_reply[i] = (unsigned char) buf[start + i] < 0x20
                              ? ' ' : buf[start + i];
      info->last_reply[n] = '\0';
      return;
    }
    end = start;
  }
}

/* TLS events: keep libESMTP's reject (ok = 0) unless tls_verify = no, and
 * remember why the session stopped. */
static void
email_event (smtp_session_t session, int event_no, void *arg, ...)
{
  struct email_state *st = smtp_get_application_data (session);
  struct email_session_info *info = arg;
  va_list ap;
  int *ok = NULL;
  long vfy;

  va_start (ap, arg);
  switch (event_no) {
  case SMTP_EV_CONNECT:
    email_guard_set (info->guard, 1);
    clock_gettime (CLOCK_MONOTONIC, &info->last_io);
    break;
  case SMTP_EV_DISCONNECT:
    email_guard_set (info->guard, 0);
    break;
  case SMTP_EV_INVALID_PEER_CERTIFICATE:
    vfy = va_arg (ap, long);
    ok = va_arg (ap, int *);
    snprintf (info->tls_error, sizeof info->tls_error,
              "TLS: server certificate not trusted: %s",
              X509_verify_cert_error_string (vfy));
    break;
  case SMTP_EV_NO_PEER_CERTIFICATE:
    ok = va_arg (ap, int *);
    snprintf (info->tls_error, sizeof info->tls_error,
              "TLS: server sent no certificate");
    break;
  case SMTP_EV_WRONG_PEER_CERTIFICATE: {
    const char *name;
    ok = va_arg (ap, int *);
    name = va_arg (ap, const char *);
    snprintf (info->tls_error, sizeof info->tls_error,
              "TLS: server certificate is for '%s', not the server name",
              name ? name : "");
    break;
  }
  case SMTP_EV_WEAK_CIPHER:
    (void) va_arg (ap, int);
    ok = va_arg (ap, int *);
    snprintf (info->tls_error, sizeof info->tls_error,
              "TLS: weak cipher");
    break;
  case SMTP_EV_EXTNA_STARTTLS:
    snprintf (info->tls_error, sizeof info->tls_error,
              "TLS: server does not offer STARTTLS (starttls = required)");
    break;
  default:
    break;
  }
  va_end (ap);
  if (ok != NULL) {
    if (st != NULL && !st->tls_verify && event_no != SMTP_EV_WEAK_CIPHER) {
      *ok = 1;
      info->tls_error[0] = '\0';
    } else
      *ok = 0;
  }
}

/* "CODE X.Y.Z text" of a reply, into buf. */
static void
email_status_text (const smtp_status_t *s, const char *what, char *buf,
                   size_t buflen)
{
  const char *text = s && s->text ? s->text : "";
  size_t n;

  if (s == NULL || s->code == 0)
    snprintf (buf, buflen, "%s: no reply", what);
  else if (s->enh_class)
    snprintf (buf, buflen, "%s: %d %d.%d.%d %s", what, s->code,
              s->enh_class, s->enh_subject, s->enh_detail, text);
  else
    snprintf (buf, buflen, "%s: %d %s", what, s->code, text);
  /* Server text ends in CRLF: drop it. */
  n = strlen (buf);
  while (n > 0 && (buf[n - 1] == '\r' || buf[n - 1] == '\n'
                   || buf[n - 1] == ' '))
    buf[--n] = '\0';
}

/* The enhanced status code (RFC 3463) of a reply into c[3]: libESMTP's
 * parse when the server announced ENHANCEDSTATUSCODES (RFC 2034), else
 * a leading "X.Y.Z " of the text, which many servers send anyway.
 * Returns 0, or -1 when there is none. */
static int
email_enhanced (const smtp_status_t *s, int c[3])
{
  const char *p;
  char *end;
  long v;
  int i;

  if (s == NULL)
    return -1;
  if (s->enh_class != 0) {
    c[0] = s->enh_class;
    c[1] = s->enh_subject;
    c[2] = s->enh_detail;
    return 0;
  }
  p = s->text;
  if (p == NULL)
    return -1;
  for (i = 0; i < 3; i++) {
    if (*p < '0' || *p > '9')
      return -1;
    v = strtol (p, &end, 10);
    if (v > 999 || *end != (i < 2 ? '.' : ' '))
      return -1;
    c[i] = (int) v;
    p = end + 1;
  }
  return 0;
}

/* RFC 3463 section 3.2: X.1.1 bad mailbox, X.1.2 bad system, X.1.3 bad
 * syntax, X.1.6 moved, X.1.10 null MX (RFC 7505), X.2.1 mailbox disabled
 * (an account closed for good: what large providers answer for a deleted
 * account): the address is dead. */
static int
email_address_dead (const smtp_status_t *s)
{
  int c[3];

  if (email_enhanced (s, c) < 0 || s->code / 100 != 5 || c[0] != 5)
    return 0;
  return (c[1] == 1 && (c[2] == 1 || c[2] == 2 || c[2] == 3 || c[2] == 6
                        || c[2] == 10))
         || (c[1] == 2 && c[2] == 1);
}

/* Copy s as a JSON string body (no quotes) into out; truncates. */
static void
email_json_escape (const char *s, char *out, size_t outlen)
{
  size_t o = 0;

  for (; *s && o + 7 < outlen; s++) {
    unsigned char c = (unsigned char) *s;
    if (c == '"' || c == '\\') {
      out[o++] = '\\';
      out[o++] = (char) c;
    } else if (c < 0x20) {
      o += (size_t) snprintf (out + o, outlen - o, "\\u%04x", c);
    } else
      out[o++] = (char) c;
  }
  out[o] = '\0';
}

static void
email_set (struct herald_result *res, int status, const char *error)
{
  res->status = status;
  if (error != NULL)
    snprintf (res->error, sizeof res->error, "%s", error);
}

/* Classify message i from its replies (PROTOCOLS.md): delivered = some
 * RCPT 2xx and DATA 2xx; permanent = RCPT 5xx, DATA 5xx or 552 (size) to
 * MAIL FROM; any other 5xx on MAIL FROM = the channel's configuration
 * (530 when AUTH failed silently); anything else (no reply, 4xx, dropped
 * connection) = retry. */
static void
email_classify (struct email_state *st, const struct herald_message *m,
                struct email_item *it, struct herald_result *res,
                const struct email_session_info *info, const char *sess_err)
{
  const smtp_status_t *mail = smtp_reverse_path_status (it->msg);
  const smtp_status_t *data = smtp_message_transfer_status (it->msg);
  char buf[HERALD_ERROR_MAX], esc[200];
  size_t i, ok = 0, temp = 0, perm = 0, dead = 0;
  int enh[3];

  if (mail == NULL || mail->code / 100 != 2) {
    if (mail != NULL && mail->code / 100 == 5
        && (mail->code == 552
            || (email_enhanced (mail, enh) == 0 && enh[1] == 3
                && enh[2] == 4))) {
      /* 552 / X.3.4: this message is too big (RFC 1870 SIZE). */
      email_status_text (mail, "MAIL FROM", buf, sizeof buf);
      email_set (res, HERALD_REJECTED, buf);
    } else if (mail != NULL && mail->code / 100 == 5) {
      /* Any other 5xx to MAIL FROM refuses the sender, which is the
       * channel's (from, bounce_domain) and the same for every message:
       * 530 or X.7.X after a failed AUTH, X.1.8 bad sender domain, X.7.1
       * sender not allowed.  Rejecting the message would fail (or
       * re-route) the whole campaign for a setting. */
      email_status_text (mail, "MAIL FROM", buf, sizeof buf);
      email_set (res, HERALD_CHANNEL_ERROR, buf);
    } else if (info->tls_error[0]) {
      /* The session stopped at STARTTLS: nothing will pass until the
       * configuration (or the server) changes. */
      email_set (res, HERALD_CHANNEL_ERROR, info->tls_error);
    } else if (mail != NULL && mail->code / 100 == 4) {
      email_status_text (mail, "MAIL FROM", buf, sizeof buf);
      email_set (res, HERALD_RETRY, buf);
    } else
      email_set (res, HERALD_RETRY, sess_err);
    return;
  }

  buf[0] = '\0';
  for (i = 0; i < m->n_to; i++) {
    const smtp_status_t *rs;
    if (it->rcpt[i] == NULL)
      continue;
    rs = smtp_recipient_status (it->rcpt[i]);
    if (rs != NULL && rs->code / 100 == 2)
      ok++;
    else if (rs == NULL || (rs->code / 100 != 4 && rs->code / 100 != 5)) {
      /* No reply (the session ended first): its reason. */
      temp++;
      if (buf[0] == '\0')
        snprintf (buf, sizeof buf, "%s", sess_err);
    }
    else if (rs != NULL && rs->code / 100 == 5) {
      perm++;
      if (email_address_dead (rs)) {
        dead++;
        if (res->to_invalid != NULL)
          res->to_invalid[i] = 1;
      }
      if (buf[0] == '\0')
        email_status_text (rs, "RCPT TO", buf, sizeof buf);
    } else {
      temp++;
      if (buf[0] == '\0')
        email_status_text (rs, "RCPT TO", buf, sizeof buf);
    }
  }
  if (ok == 0) {
    if (temp > 0)
      email_set (res, HERALD_RETRY, buf[0] ? buf : sess_err);
    else if (perm > 0 && dead == perm)
      email_set (res, HERALD_INVALID_ADDRESS, buf);
    else if (perm > 0)
      email_set (res, HERALD_REJECTED, buf);
    else
      email_set (res, HERALD_RETRY, sess_err);
    return;
  }
  if (data != NULL && data->code / 100 == 2) {
    char id[160];
    res->status = HERALD_SENT;
    if (mime_message_id (m->key, st->from_mb.addr, id, sizeof id) == 0) {
      /* The provider id is our Message-ID without its angle brackets:
       * bounces and feedback reports quote it. */
      size_t n = strlen (id);
      if (n >= 2) {
        id[n - 1] = '\0';
        snprintf (res->provider_id, sizeof res->provider_id, "%s", id + 1);
      }
    }
    email_status_text (data, "DATA", buf, sizeof buf);
    email_json_escape (buf, esc, sizeof esc);
    snprintf (res->detail, sizeof res->detail,
              "{\"smtp\":\"%s\",\"recipients_refused\":%zu}", esc, perm);
    if (perm > 0)
      snprintf (res->error, sizeof res->error,
                "%zu of %zu recipients refused", perm, ok + perm + temp);
  } else if (data != NULL && data->code / 100 == 5) {
    email_status_text (data, "DATA", buf, sizeof buf);
    email_set (res, HERALD_REJECTED, buf);
  } else if (data != NULL && data->code / 100 == 4) {
    email_status_text (data, "DATA", buf, sizeof buf);
    email_set (res, HERALD_RETRY, buf);
  } else
    /* No reply, or only the 354 of a transfer that never ended. */
    email_set (res, HERALD_RETRY, sess_err);
}

/* Why the session ended early, where, and the server's last word: "SMTP
 * session with HOST:PORT: no reply within timeout_ms = 1200 after RCPT",
 * "...: SMTP server dropped connection after EHLO (last reply: 421 4.3.2
 * Shutting down)".  libESMTP reports a poll(2) timeout as a dropped
 * connection: a session idle for timeout_ms is told apart by the time of
 * its last I/O. */
static void
email_session_error (char *buf, size_t buflen, const struct email_state *st,
                     const struct email_session_info *info)
{
  char ebuf[128], where[64], last[200] = "";
  int e = smtp_errno ();
  struct timespec now;
  long long idle_ms;

  clock_gettime (CLOCK_MONOTONIC, &now);
  idle_ms = (now.tv_sec - info->last_io.tv_sec) * 1000LL
            + (now.tv_nsec - info->last_io.tv_nsec) / 1000000L;
  if (info->last_cmd[0])
    snprintf (where, sizeof where, " after %s", info->last_cmd);
  else
    snprintf (where, sizeof where, info->replied ? " at the greeting"
              : " before the greeting");
  if (info->last_reply[0] == '4' || info->last_reply[0] == '5')
    snprintf (last, sizeof last, " (last reply: %s)", info->last_reply);
  if (e == SMTP_ERR_DROPPED_CONNECTION && info->last_io.tv_sec != 0
      && idle_ms >= st->timeout_ms - 50)
    snprintf (buf, buflen, "SMTP session with %s: no reply within "
              "timeout_ms = %ld%s%s", st->server, st->timeout_ms, where, last);
  else if (e == 0)
    snprintf (buf, buflen, "SMTP session with %s ended early%s%s",
              st->server, where, last);
  else
    snprintf (buf, buflen, "SMTP session with %s: %s%s%s", st->server,
              smtp_strerror (e, ebuf, sizeof ebuf) ? ebuf : "unknown error",
              where, last);
}

/* One SMTP session for messages[0..n).  Every result is filled. */
static void
email_send_session (struct email_state *st,
                    const struct herald_message *const *messages,
                    size_t n, struct herald_result *const *results)
{
  struct email_session_info info;
  struct email_guard guard;
  struct email_item *items;
  smtp_session_t session = NULL;
  char err[HERALD_ERROR_MAX];
  size_t i, j, queued = 0;
  int which, started, fired;
  sigset_t oldmask;

  memset (&info, 0, sizeof info);
  items = calloc (n, sizeof *items);
  if (items == NULL) {
    for (i = 0; i < n; i++)
      email_set (results[i], HERALD_RETRY, "out of memory");
    return;
  }
  session = smtp_create_session ();
  if (session == NULL) {
    for (i = 0; i < n; i++)
      email_set (results[i], HERALD_RETRY, "out of memory");
    goto out;
  }
  smtp_set_application_data_release (session, st, NULL);
  smtp_set_server (session, st->server);
  smtp_set_eventcb (session, email_event, &info);
  smtp_set_monitorcb (session, email_monitor, &info, 0);
  /* Milliseconds, and below RFC 5321's minimums only with the override
   * flag (PROTOCOLS.md). */
  for (which = Timeout_GREETING; which <= Timeout_DATA2; which++)
    smtp_set_timeout (session, which | Timeout_OVERRIDE_RFC2822_MINIMUM,
                      st->timeout_ms);
  if (st->starttls != EMAIL_TLS_NO) {
    smtp_starttls_set_ctx (session, st->ssl_ctx);
    smtp_starttls_enable (session, st->starttls == EMAIL_TLS_REQUIRED
                          ? Starttls_REQUIRED : Starttls_ENABLED);
  } else
    smtp_starttls_enable (session, Starttls_DISABLED);
  if (st->auth != NULL)
    smtp_auth_set_context (session, st->auth);

  for (i = 0; i < n; i++) {
    const struct herald_message *m = messages[i];
    struct email_item *it = &items[i];
    size_t bad = 0;
    char why[128] = "";
    int r;

    it->st = st;
    it->info = &info;
    mime_buf_init (&it->buf);
    for (j = 0; j < m->n_to; j++)
      if (!address_email_ok (m->to[j]->value, why, sizeof why)) {
        bad++;
        if (results[i]->to_invalid != NULL)
          results[i]->to_invalid[j] = 1;
      }
    if (m->n_to == 0 || bad > 0) {
      /* The check herald customers import makes: an address refused here
       * can only come from an older store. */
      if (m->n_to == 0)
        snprintf (err, sizeof err, "no recipient");
      else
        snprintf (err, sizeof err, "recipient address is not an e-mail "
                  "address: %s", why);
      email_set (results[i], m->n_to == 0 ? HERALD_REJECTED
                 : HERALD_INVALID_ADDRESS, err);
      continue;
    }
    r = mime_build (m, st->from, &it->buf, err, sizeof err);
    if (r != MIME_OK) {
      email_set (results[i], r == MIME_EADDRESS ? HERALD_INVALID_ADDRESS
                 : r == MIME_EFROM ? HERALD_CHANNEL_ERROR : HERALD_REJECTED,
                 err);
      continue;
    }
    /* Never send unsigned what should be signed: a signer that fails
     * stops the channel (the messages are kept); a message the library
     * refuses is rejected; no memory is worth another try. */
    if (st->dkim != NULL
        && (r = dkimsign_message (st->dkim, m->key, &it->buf, err,
                                  sizeof err)) != DKIMSIGN_OK) {
      email_set (results[i], r == DKIMSIGN_NOMEM ? HERALD_RETRY
                 : r == DKIMSIGN_MESSAGE ? HERALD_REJECTED
                 : HERALD_CHANNEL_ERROR, err);
      continue;
    }
    /* VERP: bounces come back to an address that names the message. */
    if (st->bounce_domain != NULL
        && verp_address (&st->verp, m->key, st->bounce_domain, it->reverse,
                         sizeof it->reverse) < 0) {
      email_set (results[i], HERALD_RETRY,
                 "cannot make the VERP envelope sender (OpenSSL)");
      continue;
    }
    it->rcpt = calloc (m->n_to, sizeof *it->rcpt);
    it->msg = smtp_add_message (session);
    if (it->rcpt == NULL || it->msg == NULL) {
      email_set (results[i], HERALD_RETRY, "out of memory");
      it->msg = NULL;
      continue;
    }
    smtp_set_reverse_path (it->msg, st->bounce_domain != NULL ? it->reverse
                           : st->from_mb.addr);
    smtp_set_messagecb (it->msg, email_message_cb, it);
    for (j = 0; j < m->n_to; j++)
      it->rcpt[j] = smtp_add_recipient (it->msg, m->to[j]->value);
    queued++;
  }
  if (queued == 0)
    goto out;

  info.guard = email_guard_start (&guard, st->connect_timeout_ms) == 0
               ? &guard : NULL;
  if (info.guard != NULL) {
    /* herald run's sender threads block every signal (core/lane.c): let
     * the watchdog's through for this session only. */
    sigset_t wake;
    sigemptyset (&wake);
    sigaddset (&wake, email_wake_sig);
    pthread_sigmask (SIG_UNBLOCK, &wake, &oldmask);
  }
  started = smtp_start_session (session);
  fired = 0;
  if (info.guard != NULL) {
    fired = email_guard_stop (&guard);
    pthread_sigmask (SIG_SETMASK, &oldmask, NULL);
  }
  info.guard = NULL;
  if (!started) {
    /* No server could be reached (or nothing to do). */
    if (fired)
      snprintf (err, sizeof err, "SMTP server %s: no connection within "
                "connect_timeout_ms = %ld (connect timed out)", st->server,
                st->connect_timeout_ms);
    else
      email_session_error (err, sizeof err, st, &info);
    for (i = 0; i < n; i++)
      if (items[i].msg != NULL)
        email_set (results[i], HERALD_RETRY, err);
    goto out;
  }
  email_session_error (err, sizeof err, st, &info);
  for (i = 0; i < n; i++)
    if (items[i].msg != NULL)
      email_classify (st, messages[i], &items[i], results[i], &info, err);

out:
  if (session != NULL)
    smtp_destroy_session (session);
  for (i = 0; i < n; i++) {
    mime_buf_free (&items[i].buf);
    free (items[i].rcpt);
  }
  free (items);
}

static int
email_send (void *state, const struct herald_message *const *messages,
            size_t n, struct herald_result *const *results)
{
  struct email_state *st = state;
  size_t i, k;

  for (i = 0; i < n; i++) {
    results[i]->status = HERALD_RETRY;
    results[i]->retry_after_ms = 0;
    results[i]->provider_id[0] = '\0';
    results[i]->error[0] = '\0';
    results[i]->detail[0] = '\0';
  }
  /* At most `batch` messages per session, sessions in sequence. */
  for (i = 0; i < n; i += k) {
    k = n - i < st->batch ? n - i : st->batch;
    email_send_session (st, messages + i, k, results + i);
  }
  return 0;
}

/* POST {base_url}/inbound/CHANNEL/PROVIDER: webhooks.c. */
static int
email_inbound (void *state, const struct herald_request *req,
               const struct herald_sink *sink, struct herald_response *resp)
{
  struct email_state *st = state;

  return email_hooks_inbound (st->hooks, req, sink, resp);
}

/* herald lint and run --dry-run: every value checked as open checks it
 * (files such as keys are read, nothing is connected or written), and
 * nothing kept. */
static int
email_config_check (const struct herald_host *host, char *err, size_t errlen)
{
  void *state = NULL;

  if (email_open (host, &state, err, errlen) < 0)
    return -1;
  email_close (state);
  return 0;
}

static const struct herald_plugin email_plugin = {
  HERALD_PLUGIN_INIT,
  .name = "email",
  .version = PACKAGE_VERSION,
  .description = "e-mail over SMTP (libESMTP): STARTTLS, AUTH, batches",
  .channels = email_channels,
  .config_keys = email_keys,
  .secret_keys = email_secret_keys,
  .open = email_open,
  .close = email_close,
  .config_check = email_config_check,
  .send = email_send,
  .inbound = email_inbound,
};

HERALD_REGISTER_PLUGIN (email_plugin)
