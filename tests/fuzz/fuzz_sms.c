/* fuzz_sms: libFuzzer target for what plugins/sms/sms.c reads from the
 * network: Twilio's form-encoded callbacks behind the inbound entry (the
 * form parser, the X-Twilio-Signature check, status callbacks and
 * replies) and the providers' JSON answers to a send (Twilio's and
 * Vonage's classifiers, Retry-After), and the segment count of a body.
 * The plugin's functions are static: the file is included whole.
 *
 * The input is a flag byte, then fields separated by 0x1f.  Flags & 3:
 * 0 or 1 an inbound request (body, URL, X-Twilio-Signature), 2 a Twilio
 * answer, 3 a Vonage one (body, HTTP status, response headers).  For an
 * inbound request, flag 0x04 signs it correctly: the harness computes the
 * signature with its own form decoder and Twilio's documented algorithm.
 * Besides the sanitizers' findings, it checks:
 *  - a request is refused with 403 exactly when its signature is not the
 *    one the harness computes (a wrong one is never taken, a right one
 *    never refused), 404 for a Vonage channel and 405 for GET;
 *  - every answer has a known status and a body of body_len bytes;
 *  - an event has a known type and its detail is a JSON object;
 *    a sink that fails gives 503 (the provider retries);
 *  - a send result has a known status, a retry_after_ms of 0 to 30 days,
 *    and an error and provider id of UTF-8 text without control
 *    characters (they are logged and stored).
 * Built and run by tests/fuzz/fuzz.sh. */
#include "../../plugins/sms/sms.c"

#include <stdarg.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

#define FAIL(...) do { fprintf (stderr, __VA_ARGS__); fputc ('\n', stderr); \
                       abort (); } while (0)

static void
fz_log (void *data, int level, const char *fmt, ...)
{
  char buf[2048];
  va_list ap;

  (void) data;
  (void) level;
  va_start (ap, fmt);
  vsnprintf (buf, sizeof buf, fmt, ap);
  va_end (ap);
}

static int fz_sink_fails, fz_events;

static int
fz_event (void *data, const struct herald_event *ev)
{
  static const char *const types[] = {
    "delivered", "failed", "opened", "replied", "unsubscribed",
    "resubscribed", NULL
  };
  json_t *d;
  size_t i;

  (void) data;
  for (i = 0; types[i] && strcmp (types[i], ev->type); i++)
    ;
  if (!types[i])
    FAIL ("event type '%s'", ev->type);
  if (ev->detail) {
    if (!(d = json_loads (ev->detail, 0, NULL)) || !json_is_object (d))
      FAIL ("event detail is not a JSON object: %s", ev->detail);
    json_decref (d);
  }
  if (ev->address)
    (void) strlen (ev->address);
  if (ev->provider_id)
    (void) strlen (ev->provider_id);
  fz_events++;
  return fz_sink_fails ? -1 : 0;
}

/* ---- The harness's own reading of a form and Twilio's signature. ---- */

struct fz_pair {
  char *name, *value;
};

static int
fz_hex (int c)
{
  return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10
         : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* application/x-www-form-urlencoded (WHATWG URL, "application/x-www-
 * form-urlencoded parsing"): '+' is a space, %XX a byte, a bad % stays. */
static char *
fz_decode (const char *s, size_t n)
{
  char *o = malloc (n + 1);
  size_t i, k = 0;

  for (i = 0; i < n; i++) {
    if (s[i] == '+')
      o[k++] = ' ';
    else if (s[i] == '%' && i + 2 < n && fz_hex (s[i + 1]) >= 0
             && fz_hex (s[i + 2]) >= 0) {
      o[k++] = (char) (fz_hex (s[i + 1]) * 16 + fz_hex (s[i + 2]));
      i += 2;
    } else
      o[k++] = s[i];
  }
  o[k] = '\0';
  return o;
}

static int
fz_pair_cmp (const void *a, const void *b)
{
  const struct fz_pair *x = a, *y = b;
  int c = strcmp (x->name, y->name);
  return c ? c : strcmp (x->value, y->value);
}

/* Base64 of HMAC-SHA1 (auth token, URL + each name + value, sorted). */
static char *
fz_sign (const char *token, const char *url, const char *body, size_t len)
{
  struct fz_pair *p = calloc (len + 1, sizeof *p);
  size_t n = 0, i = 0, j, tot = strlen (url) + 1, o;
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int maclen = 0;
  char *data, *b64;

  while (i <= len) {
    size_t end = i, eq;
    while (end < len && body[end] != '&')
      end++;
    if (end > i) {
      for (eq = i; eq < end && body[eq] != '='; eq++)
        ;
      p[n].name = fz_decode (body + i, eq - i);
      p[n].value = eq < end ? fz_decode (body + eq + 1, end - eq - 1)
                            : strdup ("");
      tot += strlen (p[n].name) + strlen (p[n].value);
      n++;
    }
    i = end + 1;
  }
  qsort (p, n, sizeof *p, fz_pair_cmp);
  data = malloc (tot);
  o = strlen (url);
  memcpy (data, url, o);
  for (j = 0; j < n; j++) {
    memcpy (data + o, p[j].name, strlen (p[j].name));
    o += strlen (p[j].name);
    memcpy (data + o, p[j].value, strlen (p[j].value));
    o += strlen (p[j].value);
    free (p[j].name);
    free (p[j].value);
  }
  free (p);
  HMAC (EVP_sha1 (), token, (int) strlen (token), (unsigned char *) data, o,
        mac, &maclen);
  free (data);
  b64 = malloc (4 * ((maclen + 2) / 3) + 1);
  EVP_EncodeBlock ((unsigned char *) b64, mac, (int) maclen);
  return b64;
}

/* ---- Checks. ---- */

/* Well-formed UTF-8 sequences (lead byte and its continuation bytes). */
static int
fz_utf8 (const char *s)
{
  const unsigned char *p = (const unsigned char *) s;
  size_t n, i;

  while (*p) {
    if (*p < 0x80) {
      p++;
      continue;
    }
    n = *p >= 0xc2 && *p <= 0xdf ? 2 : (*p & 0xf0) == 0xe0 ? 3
      : (*p & 0xf8) == 0xf0 ? 4 : 0;
    if (!n)
      return 0;
    for (i = 1; i < n; i++)
      if ((p[i] & 0xc0) != 0x80)
        return 0;
    p += n;
  }
  return 1;
}

static void
fz_text (const char *what, const char *s, size_t cap)
{
  size_t n = strnlen (s, cap), i;

  if (n == cap)
    FAIL ("%s is not NUL-terminated", what);
  for (i = 0; i < n; i++)
    if ((unsigned char) s[i] < 0x20 || s[i] == 0x7f)
      FAIL ("%s has control character 0x%02x: '%s'", what, s[i], s);
}

static void
fz_inbound (unsigned flags, char **f, size_t *fn)
{
  static const char token[] = "fuzz-auth-token";
  struct sms_state st;
  struct herald_host host;
  struct herald_header hdr;
  struct herald_request req;
  struct herald_sink sink = { NULL, fz_event };
  struct herald_response resp;
  char *body, *want;
  const char *url = f[1] && (flags & 0x40) == 0
                    ? f[1] : "https://h.example/inbound/sms";
  int sig_ok;

  memset (&st, 0, sizeof st);
  memset (&host, 0, sizeof host);
  host.log = fz_log;
  st.host = &host;
  st.provider = flags & 0x20 ? SMS_VONAGE : SMS_TWILIO;
  st.auth_token = (char *) token;

  /* The body exactly: no NUL after it, so ASan sees a read past it. */
  body = malloc (fn[0] ? fn[0] : 1);
  memcpy (body, f[0], fn[0]);
  want = fz_sign (token, url, f[0], fn[0]);
  hdr.name = "X-Twilio-Signature";
  hdr.value = flags & 0x04 ? want : f[2] ? f[2] : "";
  sig_ok = strcmp (hdr.value, want) == 0;

  memset (&req, 0, sizeof req);
  req.method = flags & 0x10 ? "GET" : "POST";
  req.url = url;
  req.path = "/";
  req.headers = &hdr;
  req.n_headers = 1;
  req.body = body;
  req.body_len = fn[0];
  memset (&resp, 0, sizeof resp);
  fz_sink_fails = (flags & 0x08) != 0;
  fz_events = 0;
  if (sms_inbound (&st, &req, &sink, &resp) != 0)
    FAIL ("inbound returned non-zero");
  if (resp.body_len >= sizeof resp.body || resp.body[resp.body_len] != '\0'
      || strlen (resp.body) != resp.body_len)
    FAIL ("answer body of %zu bytes", resp.body_len);
  if (st.provider == SMS_VONAGE) {
    if (resp.status != 404)
      FAIL ("vonage channel answered %d", resp.status);
  } else if (flags & 0x10) {
    if (resp.status != 405)
      FAIL ("GET answered %d", resp.status);
  } else if ((resp.status == 403) != !sig_ok)
    FAIL ("signature %s, answer %d", sig_ok ? "right" : "wrong", resp.status);
  else if (resp.status != 200 && resp.status != 400 && resp.status != 403
           && resp.status != 503)
    FAIL ("answer %d", resp.status);
  if (fz_events && fz_sink_fails && resp.status != 503)
    FAIL ("the sink failed, the answer is %d", resp.status);
  free (want);
  free (body);
}

static void
fz_answer (unsigned flags, char **f, size_t *fn)
{
  struct http_req r;
  struct herald_result res;
  struct sms_segments sg = { 0, 1, 0, 0 };

  http_req_init (&r);
  http_buf_add (&r.resp_body, f[0], fn[0]);
  r.status = f[1] ? strtol (f[1], NULL, 10) : 400;
  if (f[2])
    http_buf_add (&r.resp_headers, f[2], fn[2]);
  memset (&res, 0, sizeof res);
  res.status = HERALD_NO_RESULT;
  if ((flags & 3) == 2)
    sms_twilio_classify (&r, &res, &sg);
  else
    sms_vonage_classify (&r, &res, &sg);
  if (res.status < HERALD_SENT || res.status > HERALD_CHANNEL_ERROR)
    FAIL ("result status %d", res.status);
  fz_text ("error", res.error, sizeof res.error);
  fz_text ("provider_id", res.provider_id, sizeof res.provider_id);
  fz_text ("detail", res.detail, sizeof res.detail);
  if (!fz_utf8 (res.error) || !fz_utf8 (res.provider_id))
    FAIL ("result text is not UTF-8");
  if (res.retry_after_ms < 0 || res.retry_after_ms > 30LL * 86400 * 1000)
    FAIL ("retry_after_ms %lld: not 0 to 30 days",
          (long long) res.retry_after_ms);
  http_req_free (&r);
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  char *f[3] = { NULL, NULL, NULL };
  size_t fn[3] = { 0, 0, 0 }, i, k, start;
  struct sms_segments sg;
  unsigned flags;

  if (size < 1)
    return 0;
  flags = data[0];
  for (i = 1, k = 0, start = 1; i <= size && k < 3; i++)
    if (i == size || data[i] == 0x1f) {
      fn[k] = i - start;
      f[k] = malloc (fn[k] + 1);
      memcpy (f[k], data + start, fn[k]);
      f[k][fn[k]] = '\0';
      k++;
      start = i + 1;
    }
  if (!f[0]) {
    f[0] = strdup ("");
    fn[0] = 0;
  }
  if ((flags & 3) < 2)
    fz_inbound (flags, f, fn);
  else
    fz_answer (flags, f, fn);
  if (sms_count_segments (f[0], fn[0], &sg) == 0
      && (sg.segments < 1 || sg.units < sg.chars / 2 || sg.chars > fn[0]))
    FAIL ("segments %u, units %zu, chars %zu of %zu bytes", sg.segments,
          sg.units, sg.chars, fn[0]);
  for (k = 0; k < 3; k++)
    free (f[k]);
  return 0;
}
