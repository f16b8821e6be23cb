/* plugins/http/http.c: the libcurl multi HTTP layer shared by the sms, push
 * and webhook plugins (compiled into each; see http.h for the contract).
 * It performs requests and reports outcomes; it never retries, never logs a
 * request (bodies and headers carry secrets) and never follows redirects.
 */
#include <config.h>

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <netinet/in.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "http.h"

/* ---- Allocation: out-of-memory aborts, as everywhere in Herald. ---- */

void *
http_xmalloc (size_t n)
{
  void *p = malloc (n ? n : 1);
  if (!p) {
    fputs ("herald plugin: out of memory\n", stderr);
    abort ();
  }
  return p;
}

void *
http_xcalloc (size_t n, size_t size)
{
  void *p = calloc (n ? n : 1, size ? size : 1);
  if (!p) {
    fputs ("herald plugin: out of memory\n", stderr);
    abort ();
  }
  return p;
}

char *
http_strdup (const char *s)
{
  size_t n = strlen (s);
  char *p = http_xmalloc (n + 1);
  memcpy (p, s, n + 1);
  return p;
}

/* ---- Buffers. ---- */

void
http_buf_init (struct http_buf *b)
{
  b->data = NULL;
  b->len = b->cap = 0;
}

void
http_buf_free (struct http_buf *b)
{
  free (b->data);
  http_buf_init (b);
}

void
http_buf_reset (struct http_buf *b)
{
  b->len = 0;
  if (b->data)
    b->data[0] = '\0';
}

static void
http_buf_grow (struct http_buf *b, size_t extra)
{
  size_t need = b->len + extra + 1;
  char *p;
  if (need <= b->cap)
    return;
  if (b->cap == 0)
    b->cap = 256;
  while (b->cap < need)
    b->cap *= 2;
  p = realloc (b->data, b->cap);
  if (!p) {
    fputs ("herald plugin: out of memory\n", stderr);
    abort ();
  }
  b->data = p;
}

void
http_buf_add (struct http_buf *b, const void *p, size_t n)
{
  http_buf_grow (b, n);
  if (n)
    memcpy (b->data + b->len, p, n);
  b->len += n;
  b->data[b->len] = '\0';
}

void
http_buf_adds (struct http_buf *b, const char *s)
{
  http_buf_add (b, s, strlen (s));
}

void
http_buf_printf (struct http_buf *b, const char *fmt, ...)
{
  va_list ap;
  int n;
  if (!fmt)
    return;
  va_start (ap, fmt);
  n = vsnprintf (NULL, 0, fmt, ap);
  va_end (ap);
  if (n < 0)
    return;
  http_buf_grow (b, (size_t) n);
  va_start (ap, fmt);
  vsnprintf (b->data + b->len, (size_t) n + 1, fmt, ap);
  va_end (ap);
  b->len += (size_t) n;
}

void
http_buf_add_urlenc (struct http_buf *b, const char *s, size_t n)
{
  static const char hex[] = "0123456789ABCDEF";
  size_t i;
  http_buf_grow (b, n * 3);
  for (i = 0; i < n; i++) {
    unsigned char ch = (unsigned char) s[i];
    if (isalnum (ch) || ch == '-' || ch == '.' || ch == '_' || ch == '~')
      b->data[b->len++] = (char) ch;
    else {
      b->data[b->len++] = '%';
      b->data[b->len++] = hex[ch >> 4];
      b->data[b->len++] = hex[ch & 15];
    }
  }
  b->data[b->len] = '\0';
}

void
http_buf_add_form (struct http_buf *b, const char *name, const char *value,
                   size_t vlen)
{
  if (b->len)
    http_buf_add (b, "&", 1);
  http_buf_add_urlenc (b, name, strlen (name));
  http_buf_add (b, "=", 1);
  http_buf_add_urlenc (b, value, vlen);
}

/* ---- Requests. ---- */

void
http_req_init (struct http_req *r)
{
  memset (r, 0, sizeof *r);
  http_buf_init (&r->resp_body);
  http_buf_init (&r->resp_headers);
}

void
http_req_free (struct http_req *r)
{
  http_buf_free (&r->resp_body);
  http_buf_free (&r->resp_headers);
  r->status = 0;
  r->blocked = 0;
  r->curl_code = CURLE_OK;
  r->curl_error[0] = '\0';
}

int
http_req_header (const struct http_req *r, const char *name, char *out,
                 size_t outlen)
{
  size_t nlen = strlen (name);
  const char *p = r->resp_headers.data;
  if (outlen)
    out[0] = '\0';
  if (!p)
    return -1;
  while (*p) {
    const char *eol = strchr (p, '\n');
    size_t linelen = eol ? (size_t) (eol - p) : strlen (p);
    if (linelen > nlen && p[nlen] == ':' && strncasecmp (p, name, nlen) == 0) {
      const char *v = p + nlen + 1, *end = p + linelen;
      size_t vlen;
      while (v < end && (*v == ' ' || *v == '\t'))
        v++;
      while (end > v && isspace ((unsigned char) end[-1]))
        end--;
      vlen = (size_t) (end - v);
      if (outlen) {
        if (vlen >= outlen)
          vlen = outlen - 1;
        memcpy (out, v, vlen);
        out[vlen] = '\0';
      }
      return (int) vlen;
    }
    if (!eol)
      break;
    p = eol + 1;
  }
  return -1;
}

int64_t
http_req_retry_after_ms (const struct http_req *r)
{
  char v[128], *end;
  long long secs;
  time_t when;
  if (http_req_header (r, "Retry-After", v, sizeof v) <= 0)
    return 0;
  if (isdigit ((unsigned char) v[0])) {
    errno = 0;
    secs = strtoll (v, &end, 10);
    if (errno || *end)
      return 0;
  }
  else {
    when = curl_getdate (v, NULL);
    if (when == (time_t) -1)
      return 0;
    secs = (long long) when - (long long) http_now ();
  }
  /* A bogus value must not park a message, and a date in the year
   * 2012042928 overflowed the milliseconds (fuzz_sms). */
  if (secs > 30LL * 86400)
    secs = 30LL * 86400;
  return secs > 0 ? (int64_t) secs * 1000 : 0;
}

/* ---- The client. ---- */

/* What the epoll set holds for one descriptor, and what curl wants now.
 * Kept apart so a keep-alive socket stays registered between requests:
 * curl drops and re-adds it on every transfer (three epoll_ctl calls a
 * request, 8% of the bench's CPU), while its mask rarely changes. */
struct http_fd {
  uint32_t reg;                /* events registered in epfd; 0 = absent */
  uint32_t want;               /* events curl asked for; 0 = idle */
};

struct http_client {
  CURLM *multi;
  struct http_opts o;
  CURL **pool;                 /* idle easy handles */
  size_t n_pool;
  struct curl_slist *no_expect;/* "Expect:" for requests without headers */
  char *ca_file;               /* owned copy of o.ca_file, or NULL */
  double tokens;               /* token bucket */
  double burst;
  double last;                 /* monotonic seconds of the last refill */
  int epfd;                    /* epoll set of curl's sockets */
  struct http_fd *fds;         /* per descriptor, indexed by fd */
  size_t n_fds;
  double timer_due;            /* curl's timer, monotonic seconds; -1 none */
  /* Parsed URLs of this run (see http_url_handle): the newest one, whose
   * text is url, is reused while requests go to the same URL; all of them
   * live until the run ends, as the easy handles point to them. */
  CURLU **urls;
  size_t n_urls, cap_urls;
  char *url;
};

static int http_socket_cb (CURL *e, curl_socket_t fd, int what, void *data,
                           void *sockp);
static int http_timer_cb (CURLM *m, long timeout_ms, void *data);
static int http_close_cb (void *data, curl_socket_t fd);
static curl_socket_t http_open_cb (void *data, curlsocktype purpose,
                                   struct curl_sockaddr *addr);

static pthread_once_t http_global_once = PTHREAD_ONCE_INIT;
static CURLcode http_global_rc;

static void
http_global_init (void)
{
  /* Guarded: the core (or another plugin) may have called it already, which
   * is harmless; libcurl counts the calls.  Never cleaned up: other users
   * in the process may still need it. */
  http_global_rc = curl_global_init (CURL_GLOBAL_DEFAULT);
}

static double
http_mono (void)
{
  struct timespec ts;
  clock_gettime (CLOCK_MONOTONIC, &ts);
  return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

static void http_urls_free (struct http_client *c);

/* A multi handle for c: its connection cache is c's connections. */
static CURLM *
http_multi_new (struct http_client *c)
{
  CURLM *m = curl_multi_init ();
  if (!m)
    return NULL;
  /* HTTP/2 multiplexing where the server offers it (APNs, FCM); over
   * HTTP/1.1 one connection per request in flight, kept alive. */
  curl_multi_setopt (m, CURLMOPT_PIPELINING, (long) CURLPIPE_MULTIPLEX);
  curl_multi_setopt (m, CURLMOPT_MAXCONNECTS, c->o.concurrency + 4);
  curl_multi_setopt (m, CURLMOPT_SOCKETFUNCTION, http_socket_cb);
  curl_multi_setopt (m, CURLMOPT_SOCKETDATA, (void *) c);
  curl_multi_setopt (m, CURLMOPT_TIMERFUNCTION, http_timer_cb);
  curl_multi_setopt (m, CURLMOPT_TIMERDATA, (void *) c);
  return m;
}

int
http_client_reconnect (struct http_client *c)
{
  CURLM *m = http_multi_new (c);
  if (!m)
    return -1;
  curl_multi_cleanup (c->multi);   /* closes the cached connections */
  c->multi = m;
  c->timer_due = -1;
  return 0;
}

struct http_client *
http_client_new (const struct http_opts *o, char *err, size_t errlen)
{
  struct http_client *c = NULL;

  pthread_once (&http_global_once, http_global_init);
  if (http_global_rc != CURLE_OK) {
    snprintf (err, errlen, "curl_global_init: %s",
              curl_easy_strerror (http_global_rc));
    goto out;
  }
  c = http_xcalloc (1, sizeof *c);
  c->o = *o;
  c->ca_file = o->ca_file ? http_strdup (o->ca_file) : NULL;
  c->o.ca_file = c->ca_file;
  if (c->o.concurrency < 1)
    c->o.concurrency = 1;
  c->timer_due = -1;
  c->epfd = epoll_create1 (EPOLL_CLOEXEC);
  c->multi = c->epfd >= 0 ? http_multi_new (c) : NULL;
  if (!c->multi) {
    snprintf (err, errlen, "%s", c->epfd < 0 ? strerror (errno)
                                             : "curl_multi_init failed");
    http_client_free (c);
    c = NULL;
    goto out;
  }
  c->pool = http_xcalloc ((size_t) c->o.concurrency, sizeof *c->pool);
  c->no_expect = curl_slist_append (NULL, "Expect:");
  if (!c->no_expect) {
    snprintf (err, errlen, "out of memory");
    http_client_free (c);
    c = NULL;
    goto out;
  }
  c->burst = c->o.rate > 20 ? c->o.rate / 20 : 1;   /* 50 ms worth */
  c->tokens = c->burst;
  c->last = http_mono ();
out:
  return c;
}

void
http_client_free (struct http_client *c)
{
  size_t i;
  if (!c)
    return;
  for (i = 0; i < c->n_pool; i++)
    curl_easy_cleanup (c->pool[i]);
  free (c->pool);
  if (c->multi)
    curl_multi_cleanup (c->multi);
  if (c->epfd >= 0)
    close (c->epfd);
  free (c->fds);
  http_urls_free (c);
  free (c->urls);
  curl_slist_free_all (c->no_expect);
  free (c->ca_file);
  free (c);
}

/* Take one token; returns 0 when taken, else the milliseconds until one is
 * due. */
static long
http_bucket_take (struct http_client *c)
{
  double now, need;
  if (c->o.rate <= 0)
    return 0;
  now = http_mono ();
  c->tokens += (now - c->last) * c->o.rate;
  c->last = now;
  if (c->tokens > c->burst)
    c->tokens = c->burst;
  if (c->tokens >= 1.0) {
    c->tokens -= 1.0;
    return 0;
  }
  need = (1.0 - c->tokens) / c->o.rate;
  return (long) ceil (need * 1000.0);
}

static size_t
http_write_cb (char *p, size_t size, size_t nmemb, void *data)
{
  struct http_req *r = data;
  /* Provider answers are small; cap what we keep so a hostile endpoint
   * (webhook URLs are the customer's) cannot exhaust memory. */
  if (r->resp_body.len < 65536)
    http_buf_add (&r->resp_body, p, size * nmemb);
  return size * nmemb;
}

static size_t
http_header_cb (char *p, size_t size, size_t nitems, void *data)
{
  struct http_req *r = data;
  size_t n = size * nitems;
  /* A new status line (after 100 Continue, say) starts a new block. */
  if (n >= 5 && memcmp (p, "HTTP/", 5) == 0)
    http_buf_reset (&r->resp_headers);
  if (r->resp_headers.len < 65536)
    http_buf_add (&r->resp_headers, p, n);
  return n;
}

/* Release the run's parsed URLs. */
static void
http_urls_free (struct http_client *c)
{
  size_t i;
  for (i = 0; i < c->n_urls; i++)
    curl_url_cleanup (c->urls[i]);
  c->n_urls = 0;
  free (c->url);
  c->url = NULL;
}

/* A parsed copy of url for CURLOPT_CURLU, or NULL when it does not parse
 * (curl then parses CURLOPT_URL itself and reports the error as always).
 * Given CURLOPT_URL alone, libcurl 7.88 parses the URL and prints it back
 * normalised for every transfer: a quarter of its instructions per request
 * on the webhook bench, where every request goes to one URL.  Given both,
 * it duplicates the parsed handle and keeps the text.  The flags are those
 * libcurl parses CURLOPT_URL with, so what parses here parses there. */
static CURLU *
http_url_handle (struct http_client *c, const char *url)
{
  CURLU *u;
  if (c->url && strcmp (c->url, url) == 0)
    return c->urls[c->n_urls - 1];
  free (c->url);
  c->url = NULL;
  u = curl_url ();
  if (!u)
    return NULL;
  if (curl_url_set (u, CURLUPART_URL, url,
                    CURLU_GUESS_SCHEME | CURLU_NON_SUPPORT_SCHEME)
      != CURLUE_OK) {
    curl_url_cleanup (u);
    return NULL;
  }
  if (c->n_urls == c->cap_urls) {
    size_t cap = c->cap_urls ? 2 * c->cap_urls : 16;
    CURLU **p = realloc (c->urls, cap * sizeof *p);
    if (!p) {
      curl_url_cleanup (u);
      return NULL;
    }
    c->urls = p;
    c->cap_urls = cap;
  }
  c->urls[c->n_urls++] = u;
  c->url = http_strdup (url);
  return u;
}

/* An idle handle keeps the options every request of this client shares
 * (set once in http_easy_setup): no curl_easy_reset per request. */
static CURL *
http_easy_get (struct http_client *c, int *fresh_r)
{
  *fresh_r = c->n_pool == 0;
  if (c->n_pool)
    return c->pool[--c->n_pool];
  return curl_easy_init ();
}

static void
http_easy_put (struct http_client *c, CURL *e)
{
  if (c->n_pool < (size_t) c->o.concurrency)
    c->pool[c->n_pool++] = e;
  else
    curl_easy_cleanup (e);
}

/* Configure e for r.  Returns CURLE_OK or the first failing option. */
static CURLcode
http_easy_setup (struct http_client *c, CURL *e, struct http_req *r,
                 int fresh)
{
  CURLcode rc = CURLE_OK;
  const char *method = r->method ? r->method : "POST";
  long cto = c->o.timeout_ms < 10000 ? c->o.timeout_ms : 10000;

#define HTTP_SET(opt, val) \
  do { if (rc == CURLE_OK) rc = curl_easy_setopt (e, opt, val); } while (0)
  /* Per request: everything that points into r or differs by request. */
  HTTP_SET (CURLOPT_URL, r->url);
  HTTP_SET (CURLOPT_CURLU, r->url ? http_url_handle (c, r->url) : NULL);
  HTTP_SET (CURLOPT_PRIVATE, (void *) r);
  HTTP_SET (CURLOPT_ERRORBUFFER, r->curl_error);
  HTTP_SET (CURLOPT_WRITEDATA, (void *) r);
  HTTP_SET (CURLOPT_HEADERDATA, (void *) r);
  HTTP_SET (CURLOPT_OPENSOCKETDATA, (void *) r);
  /* PIPEWAIT makes concurrent requests wait for the first TLS connection
   * to learn whether it multiplexes (HTTP/2) instead of opening one each. */
  HTTP_SET (CURLOPT_PIPEWAIT, strncasecmp (r->url, "https:", 6) == 0 ? 1L : 0L);
  HTTP_SET (CURLOPT_HTTPHEADER, r->headers ? r->headers : c->no_expect);
  HTTP_SET (CURLOPT_HTTPAUTH, (long) (r->username ? CURLAUTH_BASIC : CURLAUTH_NONE));
  HTTP_SET (CURLOPT_USERNAME, r->username);
  HTTP_SET (CURLOPT_PASSWORD, r->username ? (r->password ? r->password : "") : NULL);
  HTTP_SET (CURLOPT_CUSTOMREQUEST, strcmp (method, "POST") && strcmp (method, "GET")
            ? method : NULL);
  if (strcmp (method, "GET") == 0)
    HTTP_SET (CURLOPT_HTTPGET, 1L);
  else {
    /* POSTFIELDS does not copy: the caller keeps the body alive. */
    HTTP_SET (CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t) r->body_len);
    HTTP_SET (CURLOPT_POSTFIELDS, r->body ? r->body : "");
  }
  if (!fresh || rc != CURLE_OK)
    return rc;

  /* Once per handle: what every request of the client shares. */
  HTTP_SET (CURLOPT_NOSIGNAL, 1L);
  HTTP_SET (CURLOPT_OPENSOCKETFUNCTION, http_open_cb);
  HTTP_SET (CURLOPT_CLOSESOCKETFUNCTION, http_close_cb);
  HTTP_SET (CURLOPT_CLOSESOCKETDATA, (void *) c);
  HTTP_SET (CURLOPT_WRITEFUNCTION, http_write_cb);
  HTTP_SET (CURLOPT_HEADERFUNCTION, http_header_cb);
  HTTP_SET (CURLOPT_TIMEOUT_MS, c->o.timeout_ms);
  HTTP_SET (CURLOPT_CONNECTTIMEOUT_MS, cto);
  HTTP_SET (CURLOPT_TCP_KEEPALIVE, 1L);
  HTTP_SET (CURLOPT_FOLLOWLOCATION, 0L);
  HTTP_SET (CURLOPT_USERAGENT, PACKAGE_NAME "/" PACKAGE_VERSION);
  if (c->ca_file)
    HTTP_SET (CURLOPT_CAINFO, c->ca_file);
  /* Only HTTP(S): a customer's webhook URL must not reach file:// or
   * gopher://. */
#if LIBCURL_VERSION_NUM >= 0x075500
  HTTP_SET (CURLOPT_PROTOCOLS_STR, "http,https");
#else
  HTTP_SET (CURLOPT_PROTOCOLS, (long) (CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
  /* HTTP/2 over TLS when ALPN offers it; plain http:// stays HTTP/1.1. */
  HTTP_SET (CURLOPT_HTTP_VERSION, (long) CURL_HTTP_VERSION_2TLS);
#undef HTTP_SET
  return rc;
}

static struct http_fd *
http_fd_get (struct http_client *c, curl_socket_t fd)
{
  if (fd < 0)
    return NULL;
  if ((size_t) fd >= c->n_fds) {
    size_t n = (size_t) fd + 64;
    struct http_fd *p = realloc (c->fds, n * sizeof *p);
    if (!p)
      abort ();
    memset (p + c->n_fds, 0, (n - c->n_fds) * sizeof *p);
    c->fds = p;
    c->n_fds = n;
  }
  return &c->fds[fd];
}

/* libcurl's socket callback: bring the epoll set in line with what curl
 * wants.  REMOVE only marks the socket idle (see struct http_fd); events
 * on an idle socket unregister it in http_client_run. */
static int
http_socket_cb (CURL *e, curl_socket_t fd, int what, void *data, void *sockp)
{
  struct http_client *c = data;
  struct http_fd *f = http_fd_get (c, fd);
  struct epoll_event ev;

  if (!f)
    return 0;
  if (what == CURL_POLL_REMOVE) {
    f->want = 0;
    return 0;
  }
  f->want = ((what & CURL_POLL_IN) ? EPOLLIN : 0)
    | ((what & CURL_POLL_OUT) ? EPOLLOUT : 0);
  if (f->want == f->reg)
    return 0;
  memset (&ev, 0, sizeof ev);
  ev.data.fd = fd;
  ev.events = f->want;
  if (epoll_ctl (c->epfd, f->reg ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, fd, &ev) < 0)
    epoll_ctl (c->epfd, f->reg ? EPOLL_CTL_ADD : EPOLL_CTL_MOD, fd, &ev);
  f->reg = f->want;
  return 0;
}

/* An IPv4 address (4 bytes, network order) that is loopback, private
 * (RFC 1918), shared (RFC 6598), link-local, multicast, reserved or
 * "this network". */
static int
http_v4_private (const unsigned char *a)
{
  return a[0] == 0 || a[0] == 10 || a[0] == 127 || a[0] >= 224
    || (a[0] == 100 && (a[1] & 0xc0) == 64)
    || (a[0] == 169 && a[1] == 254) || (a[0] == 172 && (a[1] & 0xf0) == 16)
    || (a[0] == 192 && a[1] == 168);
}

/* Where a customer's URL must not lead (cloud metadata at 169.254.169.254,
 * admin ports on localhost): the IPv4 ranges above, and for IPv6 :: and
 * ::1, unique-local (RFC 4193), link-local, multicast and IPv4-mapped
 * forms of the IPv4 ranges.  Anything but IP is refused too. */
static int
http_addr_private (const struct curl_sockaddr *sa)
{
  if (sa->family == AF_INET) {
    struct sockaddr_in v4;
    memcpy (&v4, &sa->addr, sizeof v4);
    return http_v4_private ((const unsigned char *) &v4.sin_addr);
  }
  if (sa->family == AF_INET6) {
    static const unsigned char mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
                                              0xff, 0xff };
    static const unsigned char zero[15] = { 0 };
    struct sockaddr_in6 v6;
    const unsigned char *a = v6.sin6_addr.s6_addr;
    if (sa->addrlen < sizeof v6)
      return 1;
    memcpy (&v6, &sa->addr, sizeof v6);
    if (memcmp (a, mapped, 12) == 0)
      return http_v4_private (a + 12);
    return (memcmp (a, zero, 15) == 0 && a[15] <= 1)   /* :: and ::1 */
      || (a[0] & 0xfe) == 0xfc || (a[0] == 0xfe && (a[1] & 0xc0) == 0x80)
      || a[0] == 0xff;
  }
  return 1;
}

/* Every socket libcurl opens comes from here, so public_only is checked
 * on the address actually connected to (after DNS, per address tried). */
static curl_socket_t
http_open_cb (void *data, curlsocktype purpose, struct curl_sockaddr *addr)
{
  struct http_req *r = data;
  if (r && r->public_only && http_addr_private (addr)) {
    r->blocked = 1;
    return CURL_SOCKET_BAD;
  }
  return socket (addr->family, addr->socktype | SOCK_CLOEXEC, addr->protocol);
}

/* libcurl closes its sockets through us, so the table learns that the
 * descriptor left the epoll set (close(2) removes it) before the number
 * can be reused. */
static int
http_close_cb (void *data, curl_socket_t fd)
{
  struct http_client *c = data;
  struct http_fd *f = http_fd_get (c, fd);
  if (f)
    f->reg = f->want = 0;
  return close (fd);
}

/* libcurl's timer callback: -1 cancels, 0 means "act now". */
static int
http_timer_cb (CURLM *m, long timeout_ms, void *data)
{
  struct http_client *c = data;
  c->timer_due = timeout_ms < 0 ? -1.0
                                : http_mono () + (double) timeout_ms / 1000.0;
  return 0;
}

/* Collect finished transfers; returns how many. */
static size_t
http_collect (struct http_client *c)
{
  CURLMsg *msg;
  int left;
  size_t done = 0;

  for (;;) {
    struct http_req *r = NULL;
    CURL *e;
    msg = curl_multi_info_read (c->multi, &left);
    if (!msg)
      break;
    if (msg->msg != CURLMSG_DONE)
      continue;
    e = msg->easy_handle;
    curl_easy_getinfo (e, CURLINFO_PRIVATE, (char **) &r);
    r->curl_code = msg->data.result;
    if (r->curl_code == CURLE_OK)
      curl_easy_getinfo (e, CURLINFO_RESPONSE_CODE, &r->status);
    else if (!r->curl_error[0])
      snprintf (r->curl_error, sizeof r->curl_error, "%s",
                curl_easy_strerror (r->curl_code));
    curl_multi_remove_handle (c->multi, e);
    http_easy_put (c, e);
    r->easy_ = NULL;
    done++;
  }
  return done;
}

/* The event loop is libcurl's socket_action interface over epoll(7): curl
 * touches only the transfers whose sockets are ready, where
 * curl_multi_perform walks every transfer (with a poll(2) each) on every
 * wake-up.  On the webhook bench this cut the CPU per message by a third. */
int
http_client_run (struct http_client *c, struct http_req **reqs, size_t n)
{
  struct epoll_event evs[64];
  size_t next = 0, in_flight = 0, i;
  int ret = 0, running = 0;

  for (i = 0; i < n; i++) {
    http_req_free (reqs[i]);
    reqs[i]->curl_code = CURLE_OK;
    reqs[i]->easy_ = NULL;
  }
  while (next < n || in_flight > 0) {
    long wait_ms = 0, timer_ms;
    int nev, k;
    CURLMcode mc = CURLM_OK;

    /* Start what the concurrency cap and the token bucket allow. */
    while (next < n && in_flight < (size_t) c->o.concurrency) {
      struct http_req *r = reqs[next];
      CURL *e;
      CURLcode rc;
      int fresh;
      wait_ms = http_bucket_take (c);
      if (wait_ms > 0)
        break;
      next++;
      e = http_easy_get (c, &fresh);
      if (!e) {
        r->curl_code = CURLE_OUT_OF_MEMORY;
        snprintf (r->curl_error, sizeof r->curl_error, "curl_easy_init failed");
        continue;
      }
      rc = http_easy_setup (c, e, r, fresh);
      if (rc == CURLE_OK && curl_multi_add_handle (c->multi, e) != CURLM_OK)
        rc = CURLE_FAILED_INIT;
      if (rc != CURLE_OK) {
        r->curl_code = rc;
        if (!r->curl_error[0])
          snprintf (r->curl_error, sizeof r->curl_error, "%s",
                    curl_easy_strerror (rc));
        curl_easy_cleanup (e);   /* maybe half-configured: not pooled */
        continue;
      }
      r->easy_ = e;
      in_flight++;
    }
    if (in_flight == 0 && next >= n)
      break;

    /* Sleep until a socket is ready, curl's timer is due, or the bucket
     * has a token for the next request. */
    timer_ms = 1000;
    if (c->timer_due >= 0) {
      double left = (c->timer_due - http_mono ()) * 1000.0;
      timer_ms = left <= 0 ? 0 : left > 1000 ? 1000 : (long) ceil (left);
    }
    if (wait_ms > 0 && wait_ms < timer_ms)
      timer_ms = wait_ms;
    nev = epoll_wait (c->epfd, evs, (int) (sizeof evs / sizeof *evs),
                      (int) timer_ms);
    if (nev < 0 && errno != EINTR)
      goto fail;
    for (k = 0; k < nev && mc == CURLM_OK; k++) {
      struct http_fd *f = http_fd_get (c, evs[k].data.fd);
      int flags = 0;
      if (f && f->want == 0) {
        /* An idle keep-alive socket woke (the server closed it): stop
         * watching; curl finds it dead when it next looks. */
        epoll_ctl (c->epfd, EPOLL_CTL_DEL, evs[k].data.fd, NULL);
        f->reg = 0;
        continue;
      }
      if (evs[k].events & EPOLLIN)
        flags |= CURL_CSELECT_IN;
      if (evs[k].events & EPOLLOUT)
        flags |= CURL_CSELECT_OUT;
      if (evs[k].events & (EPOLLERR | EPOLLHUP))
        flags |= CURL_CSELECT_ERR;
      mc = curl_multi_socket_action (c->multi, evs[k].data.fd, flags,
                                     &running);
    }
    if (mc == CURLM_OK && c->timer_due >= 0 && http_mono () >= c->timer_due) {
      c->timer_due = -1;
      mc = curl_multi_socket_action (c->multi, CURL_SOCKET_TIMEOUT, 0,
                                     &running);
    }
    if (mc != CURLM_OK)
      goto fail;
    in_flight -= http_collect (c);
  }
  goto out;

fail:
  ret = -1;
  /* Abandon what is in flight; every request without an outcome gets one. */
  for (i = 0; i < next; i++)
    if (reqs[i]->easy_) {
      curl_multi_remove_handle (c->multi, reqs[i]->easy_);
      http_easy_put (c, reqs[i]->easy_);
      reqs[i]->easy_ = NULL;
    }
  for (i = 0; i < n; i++)
    if (reqs[i]->curl_code == CURLE_OK && reqs[i]->status == 0) {
      reqs[i]->curl_code = CURLE_FAILED_INIT;
      snprintf (reqs[i]->curl_error, sizeof reqs[i]->curl_error,
                "curl multi interface failed");
    }
out:
  /* Idle handles keep pointing at the run's URLs: unset before freeing. */
  for (i = 0; i < c->n_pool; i++)
    curl_easy_setopt (c->pool[i], CURLOPT_CURLU, (CURLU *) NULL);
  http_urls_free (c);
  return ret;
}

/* ---- Results. ---- */

/* Replace every byte that is not part of a well-formed UTF-8 sequence with
 * '?', and every control character with a space: error texts are cut at
 * fixed sizes and quote what providers and customers sent (a Twilio
 * "message" with a line break in it, found by fuzz_sms), and the core
 * stores them in JSON and logs them as one line. */
static void
http_utf8_fix (char *s)
{
  unsigned char *p = (unsigned char *) s;
  while (*p) {
    size_t n, i;
    if (*p < 0x80) {
      if (*p < 0x20 || *p == 0x7f)
        *p = ' ';
      p++;
      continue;
    }
    n = (*p & 0xe0) == 0xc0 ? 2 : (*p & 0xf0) == 0xe0 ? 3
      : (*p & 0xf8) == 0xf0 ? 4 : 0;
    for (i = 1; n && i < n; i++)
      if ((p[i] & 0xc0) != 0x80)
        n = 0;
    if (n == 0 || (n == 2 && *p < 0xc2)) {
      *p++ = '?';
      continue;
    }
    p += n;
  }
}

void
http_result_set (struct herald_result *res, int status, const char *fmt, ...)
{
  va_list ap;
  res->status = status;
  va_start (ap, fmt);
  vsnprintf (res->error, sizeof res->error, fmt, ap);
  va_end (ap);
  http_utf8_fix (res->error);
}

void
http_result_sent (struct herald_result *res, const char *id, size_t len)
{
  res->status = HERALD_SENT;
  res->error[0] = '\0';
  if (len >= sizeof res->provider_id)
    len = sizeof res->provider_id - 1;
  memcpy (res->provider_id, id, len);
  res->provider_id[len] = '\0';
  http_utf8_fix (res->provider_id);
}

void
http_excerpt (char *out, size_t outlen, const char *s, size_t len, size_t max)
{
  size_t i, o = 0;
  if (!outlen)
    return;
  if (len > max)
    len = max;
  for (i = 0; s && i < len && o + 1 < outlen; i++) {
    unsigned char ch = (unsigned char) s[i];
    out[o++] = (ch < 0x20 || ch == 0x7f) ? ' ' : (char) ch;
  }
  out[o] = '\0';
  http_utf8_fix (out);
}

int
http_result_transient (struct herald_result *res, const struct http_req *r,
                       const char *what, int64_t min_retry_ms)
{
  char ex[160];
  int64_t after;

  if (r->curl_code != CURLE_OK) {
    /* Timeouts, refused connections, resets, DNS: the provider may or may
     * not have acted on it; the core retries (at-least-once). */
    http_result_set (res, HERALD_RETRY, "%s: %s", what,
                     r->curl_error[0] ? r->curl_error
                                      : curl_easy_strerror (r->curl_code));
    res->retry_after_ms = min_retry_ms > 0 ? min_retry_ms : 0;
    return 1;
  }
  if (r->status == 408 || r->status == 429 || r->status >= 500) {
    http_excerpt (ex, sizeof ex, r->resp_body.data, r->resp_body.len, 120);
    http_result_set (res, HERALD_RETRY, "%s: HTTP %ld%s%s", what, r->status,
                     ex[0] ? ": " : "", ex);
    after = http_req_retry_after_ms (r);
    if (after < min_retry_ms)
      after = min_retry_ms;
    res->retry_after_ms = after;
    return 1;
  }
  return 0;
}

/* ---- Configuration. ---- */

void
http_conf_error (const struct herald_host *h, const char *key, char *err,
                 size_t errlen, const char *fmt, ...)
{
  va_list ap;
  int line = h->config_line ? h->config_line (h->data, key) : 0;
  size_t off;
  int n;
  if (line > 0)
    n = snprintf (err, errlen, "%s:%d: [channel.%s] %s: ",
                  h->config_file ? h->config_file : "herald.ini", line,
                  h->channel_name ? h->channel_name : "?", key);
  else
    n = snprintf (err, errlen, "%s: [channel.%s] %s: ",
                  h->config_file ? h->config_file : "herald.ini",
                  h->channel_name ? h->channel_name : "?", key);
  off = n < 0 ? 0 : (size_t) n;
  if (off >= errlen)
    return;
  va_start (ap, fmt);
  vsnprintf (err + off, errlen - off, fmt, ap);
  va_end (ap);
}

int
http_conf_long (const struct herald_host *h, const char *key, long def,
                long min, long max, long *r, char *err, size_t errlen)
{
  const char *v = h->config_get (h->data, key);
  char *end;
  long x;
  if (!v || !*v) {
    *r = def;
    return 0;
  }
  errno = 0;
  x = strtol (v, &end, 10);
  if (errno || end == v || *end || x < min || x > max) {
    http_conf_error (h, key, err, errlen,
                     "'%s' is not an integer from %ld to %ld", v, min, max);
    return -1;
  }
  *r = x;
  return 0;
}

int
http_conf_bool (const struct herald_host *h, const char *key, int def,
                int *r, char *err, size_t errlen)
{
  const char *v = h->config_get (h->data, key);
  if (!v || !*v)
    *r = def;
  else if (!strcasecmp (v, "yes") || !strcasecmp (v, "true")
           || !strcasecmp (v, "on") || !strcmp (v, "1"))
    *r = 1;
  else if (!strcasecmp (v, "no") || !strcasecmp (v, "false")
           || !strcasecmp (v, "off") || !strcmp (v, "0"))
    *r = 0;
  else {
    http_conf_error (h, key, err, errlen, "'%s' is not yes or no", v);
    return -1;
  }
  return 0;
}

const char *
http_conf_path (const struct herald_host *h, const char *key)
{
  if (HERALD_HAS (h, config_path) && h->config_path)
    return h->config_path (h->data, key);
  return h->config_get (h->data, key);
}

int
http_conf_common (const struct herald_host *h, struct http_opts *o,
                  char *err, size_t errlen)
{
  const char *v = h->config_get (h->data, "rate");
  if (v && *v) {
    char *end;
    double x;
    errno = 0;
    x = strtod (v, &end);
    if (errno || end == v || *end || !(x >= 0) || x > 1e6) {
      http_conf_error (h, "rate", err, errlen,
                       "'%s' is not a number of messages per second "
                       "(0 = unlimited)", v);
      return -1;
    }
    o->rate = x;
  }
  v = http_conf_path (h, "ca_file");
  if (v && *v) {
    if (access (v, R_OK) < 0) {
      http_conf_error (h, "ca_file", err, errlen, "%s: %s", v,
                       strerror (errno));
      return -1;
    }
    o->ca_file = v;
  }
  if (http_conf_long (h, "concurrency", o->concurrency, 1, 1024,
                      &o->concurrency, err, errlen) < 0
      || http_conf_long (h, "timeout_ms", o->timeout_ms, 1, 600000,
                         &o->timeout_ms, err, errlen) < 0)
    return -1;
  return 0;
}

char *
http_read_file (const char *path, size_t *len_r, char *err, size_t errlen)
{
  FILE *f = fopen (path, "rb");
  struct http_buf b;
  char chunk[4096];
  size_t n;
  char *ret = NULL;

  http_buf_init (&b);
  if (!f) {
    snprintf (err, errlen, "%s: %s", path, strerror (errno));
    goto out;
  }
  for (;;) {
    n = fread (chunk, 1, sizeof chunk, f);
    if (n == 0)
      break;
    http_buf_add (&b, chunk, n);
  }
  if (ferror (f)) {
    snprintf (err, errlen, "%s: %s", path, strerror (errno));
    goto out;
  }
  if (!b.data)
    http_buf_add (&b, "", 0);
  if (len_r)
    *len_r = b.len;
  ret = b.data;
  http_buf_init (&b);
out:
  OPENSSL_cleanse (chunk, sizeof chunk);
  if (b.data)
    OPENSSL_cleanse (b.data, b.cap);
  http_buf_free (&b);
  if (f)
    fclose (f);
  return ret;
}

void
http_secret_free (char *s)
{
  if (s) {
    OPENSSL_cleanse (s, strlen (s));
    free (s);
  }
}

int
http_conf_secret (const struct herald_host *h, const char *key,
                  const char *file_key, int required, char **r, char *err,
                  size_t errlen)
{
  const char *v = h->config_get (h->data, key);
  const char *path = file_key ? http_conf_path (h, file_key) : NULL;
  char ferr[256];
  char *s;
  size_t len;

  *r = NULL;
  if (v && *v && path && *path) {
    http_conf_error (h, file_key, err, errlen, "give %s or %s, not both",
                     key, file_key);
    return -1;
  }
  if (v && *v) {
    *r = http_strdup (v);
    return 0;
  }
  if (path && *path) {
    s = http_read_file (path, &len, ferr, sizeof ferr);
    if (!s) {
      http_conf_error (h, file_key, err, errlen, "%s", ferr);
      return -1;
    }
    /* First line only, trailing whitespace off. */
    len = strcspn (s, "\r\n");
    while (len > 0 && isspace ((unsigned char) s[len - 1]))
      len--;
    s[len] = '\0';
    if (len == 0) {
      http_conf_error (h, file_key, err, errlen, "'%s' is empty", path);
      http_secret_free (s);
      return -1;
    }
    *r = s;
    return 0;
  }
  if (required) {
    if (file_key)
      http_conf_error (h, key, err, errlen, "missing (give %s or %s)", key,
                       file_key);
    else
      http_conf_error (h, key, err, errlen, "missing");
    return -1;
  }
  return 0;
}

/* ---- Encodings. ---- */

void
http_base64 (struct http_buf *b, const unsigned char *p, size_t len, int url)
{
  size_t out = 4 * ((len + 2) / 3), i;
  char *d;
  int n;
  http_buf_grow (b, out + 1);
  d = b->data + b->len;
  n = EVP_EncodeBlock ((unsigned char *) d, p, (int) len);
  if (n < 0)
    n = 0;
  if (url) {
    while (n > 0 && d[n - 1] == '=')
      n--;
    for (i = 0; i < (size_t) n; i++)
      d[i] = d[i] == '+' ? '-' : d[i] == '/' ? '_' : d[i];
  }
  b->len += (size_t) n;
  b->data[b->len] = '\0';
}

unsigned char *
http_unbase64 (const char *s, size_t *len_r)
{
  size_t n = strlen (s), pad = 0, padded, i;
  char *tmp;
  unsigned char *out;
  int got;

  for (i = 0; i < n; i++)
    if (!(isalnum ((unsigned char) s[i]) || s[i] == '+' || s[i] == '/'
          || (s[i] == '=' && i + 2 >= n)))
      return NULL;
  /* EVP_DecodeBlock wants padding and counts '=' as zero bytes. */
  padded = (n + 3) / 4 * 4;
  tmp = http_xmalloc (padded + 1);
  memcpy (tmp, s, n);
  memset (tmp + n, '=', padded - n);
  tmp[padded] = '\0';
  for (i = padded; i > 0 && tmp[i - 1] == '='; i--)
    pad++;
  out = http_xmalloc (padded / 4 * 3 + 1);
  got = EVP_DecodeBlock (out, (unsigned char *) tmp, (int) padded);
  free (tmp);
  if (got < 0 || pad > 2 || (size_t) got < pad) {
    free (out);
    return NULL;
  }
  *len_r = (size_t) got - pad;
  return out;
}

int
http_ct_equal (const void *a, size_t alen, const void *b, size_t blen)
{
  if (alen != blen)
    return 0;
  return CRYPTO_memcmp (a, b, alen) == 0;
}

int64_t
http_now (void)
{
  const char *fake = getenv ("HERALD_FAKE_NOW");
  if (fake && *fake) {
    char *end;
    long long v = strtoll (fake, &end, 10);
    if (!*end)
      return (int64_t) v;
  }
  return (int64_t) time (NULL);
}
