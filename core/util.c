/* util: the core's small helpers.  Out-of-memory is the one failure that
 * aborts (through x*alloc); everything else returns an error. */
#include <config.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <netdb.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util.h"

static void
oom (size_t n)
{
  fprintf (stderr, "herald: out of memory (%zu bytes)\n", n);
  abort ();
}

void *
xmalloc (size_t n)
{
  void *p = malloc (n ? n : 1);
  if (!p)
    oom (n);
  return p;
}

void *
xcalloc (size_t n, size_t size)
{
  void *p = calloc (n ? n : 1, size ? size : 1);
  if (!p)
    oom (n * size);
  return p;
}

void *
xrealloc (void *p, size_t n)
{
  p = realloc (p, n ? n : 1);
  if (!p)
    oom (n);
  return p;
}

char *
xstrdup (const char *s)
{
  return xstrndup (s, strlen (s));
}

char *
xstrndup (const char *s, size_t n)
{
  char *p = xmalloc (n + 1);
  memcpy (p, s, n);
  p[n] = '\0';
  return p;
}

char *
xasprintf (const char *fmt, ...)
{
  struct strbuf b = STRBUF_INIT;
  va_list ap;

  va_start (ap, fmt);
  strbuf_vaddf (&b, fmt, ap);
  va_end (ap);
  if (!b.s)
    b.s = xstrdup ("");
  return b.s;
}

void
strbuf_grow (struct strbuf *b, size_t more)
{
  size_t need = b->len + more + 1;
  if (need <= b->cap)
    return;
  if (b->cap == 0)
    b->cap = 64;
  while (b->cap < need)
    b->cap *= 2;
  b->s = xrealloc (b->s, b->cap);
}

void
strbuf_add (struct strbuf *b, const char *s, size_t n)
{
  strbuf_grow (b, n);
  memcpy (b->s + b->len, s, n);
  b->len += n;
  b->s[b->len] = '\0';
}

void
strbuf_adds (struct strbuf *b, const char *s)
{
  strbuf_add (b, s, strlen (s));
}

void
strbuf_addc (struct strbuf *b, char c)
{
  strbuf_grow (b, 1);
  b->s[b->len++] = c;
  b->s[b->len] = '\0';
}

void
strbuf_vaddf (struct strbuf *b, const char *fmt, va_list ap)
{
  va_list ap2;
  int n;

  if (!fmt)
    abort ();
  va_copy (ap2, ap);
  n = vsnprintf (NULL, 0, fmt, ap2);
  va_end (ap2);
  if (n < 0)
    abort ();
  strbuf_grow (b, (size_t) n);
  vsnprintf (b->s + b->len, (size_t) n + 1, fmt, ap);
  b->len += (size_t) n;
}

void
strbuf_addf (struct strbuf *b, const char *fmt, ...)
{
  va_list ap;

  va_start (ap, fmt);
  strbuf_vaddf (b, fmt, ap);
  va_end (ap);
}

char *
slurp_file (const char *path, size_t *len_r)
{
  FILE *fp = fopen (path, "rb");
  struct strbuf b = STRBUF_INIT;
  char buf[65536];
  size_t n;
  int saved;

  if (!fp)
    return NULL;
  while ((n = fread (buf, 1, sizeof buf, fp)) > 0)
    strbuf_add (&b, buf, n);
  if (ferror (fp)) {
    saved = errno ? errno : EIO;
    fclose (fp);
    strbuf_free (&b);
    errno = saved;
    return NULL;
  }
  fclose (fp);
  if (!b.s)
    b.s = xstrdup ("");
  *len_r = b.len;
  return b.s;
}

void
strbuf_reset (struct strbuf *b)
{
  b->len = 0;
  if (b->s)
    b->s[0] = '\0';
}

void
strbuf_free (struct strbuf *b)
{
  free (b->s);
  b->s = NULL;
  b->len = b->cap = 0;
}

int
mkdir_parents (const char *path)
{
  char *p = xstrdup (path), *s;
  int rc = 0;

  for (s = p + 1; *s; s++) {
    if (*s != '/')
      continue;
    *s = '\0';
    /* chmod: a umask such as 0277 would otherwise take the owner's own
     * bits away; 000 or 022 take nothing from 0700. */
    if (mkdir (p, 0700) == 0)
      rc = chmod (p, 0700);
    else if (errno != EEXIST)
      rc = -1;
    if (rc < 0)
      break;
    *s = '/';
  }
  free (p);
  return rc;
}

int
open_private (const char *path, int flags)
{
  int fd, tries;

  /* O_EXCL tells a file created now (made exactly 0600) from one that was
   * there; if that one is removed before the second open, try again. */
  for (tries = 0; tries < 8; tries++) {
    fd = open (path, flags | O_CREAT | O_EXCL, 0600);
    if (fd >= 0) {
      if (fchmod (fd, 0600) < 0) {
        int e = errno;
        close (fd);
        errno = e;
        return -1;
      }
      return fd;
    }
    if (errno != EEXIST || (flags & O_EXCL))
      return -1;
    fd = open (path, flags & ~O_CREAT);
    if (fd >= 0 || errno != ENOENT)
      return fd;
  }
  return -1;
}

int
parse_int64 (const char *s, int64_t min, int64_t max, int64_t *v_r)
{
  char *end;
  long long v;

  if (!s || !*s || isspace ((unsigned char) *s))
    return -1;
  errno = 0;
  v = strtoll (s, &end, 10);
  if (errno || *end || v < min || v > max)
    return -1;
  *v_r = v;
  return 0;
}

int
parse_bool (const char *s, int *v_r)
{
  static const char *const yes[] = { "yes", "true", "on", "1", NULL };
  static const char *const no[] = { "no", "false", "off", "0", NULL };
  int i;

  for (i = 0; yes[i]; i++)
    if (strcasecmp (s, yes[i]) == 0) {
      *v_r = 1;
      return 0;
    }
  for (i = 0; no[i]; i++)
    if (strcasecmp (s, no[i]) == 0) {
      *v_r = 0;
      return 0;
    }
  return -1;
}

int
parse_duration (const char *s, int64_t *seconds_r)
{
  char *end;
  long long v;
  int64_t mult = 1;

  if (!s || !isdigit ((unsigned char) *s))
    return -1;
  errno = 0;
  v = strtoll (s, &end, 10);
  if (errno || v < 0)
    return -1;
  switch (*end) {
  case '\0': case 's': mult = 1; break;
  case 'm': mult = 60; break;
  case 'h': mult = 3600; break;
  case 'd': mult = 86400; break;
  case 'w': mult = 7 * 86400; break;
  default: return -1;
  }
  if (*end && end[1])
    return -1;
  if (v > INT64_MAX / mult)
    return -1;
  *seconds_r = v * mult;
  return 0;
}

int
valid_event_type (const char *s)
{
  size_t n = 0;

  if (!s || !(*s >= 'a' && *s <= 'z'))
    return 0;
  for (; *s; s++, n++)
    if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '_'
          || *s == '.' || *s == '-') || n >= 64)
      return 0;
  return 1;
}

/* Days from 1970-01-01 to Y-M-D in the proleptic Gregorian calendar. */
static int64_t
days_from_civil (int64_t y, unsigned m, unsigned d)
{
  int64_t era;
  unsigned yoe, doy, doe;

  y -= m <= 2;
  era = (y >= 0 ? y : y - 399) / 400;
  yoe = (unsigned) (y - era * 400);
  doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + (int64_t) doe - 719468;
}

int
parse_rfc3339 (const char *s, int64_t *t_r)
{
  int y, mo, d, h = 0, mi = 0, sec = 0, n = 0, oh, om;
  const char *p;
  int64_t t;

  if (!s || sscanf (s, "%4d-%2d-%2d%n", &y, &mo, &d, &n) != 3 || n != 10)
    return -1;
  p = s + n;
  if (*p == 'T' || *p == 't' || *p == ' ') {
    if (sscanf (p + 1, "%2d:%2d:%2d%n", &h, &mi, &sec, &n) != 3 || n != 8)
      return -1;
    p += 1 + n;
    if (*p == '.')
      for (p++; isdigit ((unsigned char) *p); p++)
        ;
  }
  if (mo < 1 || mo > 12 || d < 1 || h > 23 || mi > 59 || sec > 60)
    return -1;
  {
    static const int mdays[] = { 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30,
                                 31 };
    int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    if (d > mdays[mo - 1] || (mo == 2 && d == 29 && !leap))
      return -1;               /* 2030-02-30 is no day */
  }
  t = days_from_civil (y, (unsigned) mo, (unsigned) d) * 86400
      + h * 3600 + mi * 60 + sec;
  if (*p == 'Z' || *p == 'z')
    p++;
  else if (*p == '+' || *p == '-') {
    if (sscanf (p + 1, "%2d:%2d%n", &oh, &om, &n) != 2 || n != 5)
      return -1;
    t -= (*p == '+' ? 1 : -1) * (oh * 3600 + om * 60);
    p += 1 + n;
  }
  else if (*p == '\0' && p == s + 10)
    ; /* a bare date: midnight UTC */
  else
    return -1;
  if (*p)
    return -1;
  *t_r = t;
  return 0;
}

void
format_utc (int64_t t, char *buf, size_t len)
{
  time_t tt = (time_t) t;
  struct tm tm;

  gmtime_r (&tt, &tm);
  strftime (buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

int64_t
now_seconds (void)
{
  const char *fixed = getenv ("HERALD_NOW");
  int64_t v;

  if (fixed && parse_int64 (fixed, 0, INT64_MAX, &v) == 0)
    return v;
  return (int64_t) time (NULL);
}

int64_t
now_ms (void)
{
  const char *fixed = getenv ("HERALD_NOW");
  struct timespec ts;
  int64_t v;

  if (fixed && parse_int64 (fixed, 0, INT64_MAX / 1000, &v) == 0)
    return v * 1000;
  clock_gettime (CLOCK_REALTIME, &ts);
  return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

size_t
strlcpy_ (char *dst, const char *src, size_t size)
{
  size_t n = strlen (src);
  if (size) {
    size_t m = n < size - 1 ? n : size - 1;
    memcpy (dst, src, m);
    dst[m] = '\0';
  }
  return n;
}

/* The length of the UTF-8 sequence at S[0..LEN) (RFC 3629 section 4: no
 * overlong forms, no surrogates, nothing above U+10FFFF) with its code
 * point in *CP_R, or 0 when S does not start one. */
static size_t
utf8_seq (const unsigned char *s, size_t len, unsigned *cp_r)
{
  unsigned c = s[0], cp;
  size_t n, k;

  if (c < 0x80) {
    *cp_r = c;
    return 1;
  }
  if (c >= 0xc2 && c <= 0xdf)
    n = 2, cp = c & 0x1f;
  else if ((c & 0xf0) == 0xe0)
    n = 3, cp = c & 0x0f;
  else if (c >= 0xf0 && c <= 0xf4)
    n = 4, cp = c & 0x07;
  else
    return 0;
  if (len < n)
    return 0;
  for (k = 1; k < n; k++) {
    if ((s[k] & 0xc0) != 0x80)
      return 0;
    cp = (cp << 6) | (s[k] & 0x3f);
  }
  if ((c == 0xe0 && s[1] < 0xa0) || (c == 0xed && s[1] >= 0xa0)
      || (c == 0xf0 && s[1] < 0x90) || (c == 0xf4 && s[1] >= 0x90))
    return 0;
  *cp_r = cp;
  return n;
}

size_t
utf8_check (const char *s, size_t len)
{
  const unsigned char *p = (const unsigned char *) s;
  size_t i = 0, n;
  unsigned cp;

  while (i < len) {
    if (p[i] < 0x80) {         /* the common case, without the call */
      i++;
      continue;
    }
    n = utf8_seq (p + i, len - i, &cp);
    if (!n)
      return i;
    i += n;
  }
  return len;
}

/* Code points shown as \uXXXX: the C1 controls (U+0085 ends a line for
 * some readers, U+009B starts a terminal escape), the line and paragraph
 * separators, and the bidirectional controls that can make a line read
 * in another order than its bytes ("Trojan Source", CVE-2021-42574). */
static int
escaped_cp (unsigned cp)
{
  return (cp >= 0x80 && cp <= 0x9f) || cp == 0x200e || cp == 0x200f
         || (cp >= 0x2028 && cp <= 0x202e) || (cp >= 0x2066 && cp <= 0x2069);
}

void
strbuf_add_escaped (struct strbuf *b, const char *s, size_t len)
{
  const unsigned char *p = (const unsigned char *) s;
  size_t i = 0, start = 0, n;
  unsigned cp;

  while (i < len) {
    unsigned c = p[i];
    if (c >= 0x20 && c < 0x7f) {
      i++;
      continue;
    }
    n = c < 0x80 ? 1 : utf8_seq (p + i, len - i, &cp);
    if (n > 1 && !escaped_cp (cp)) {
      i += n;
      continue;
    }
    strbuf_add (b, s + start, i - start);
    if (c == '\n')
      strbuf_adds (b, "\\n");
    else if (c == '\r')
      strbuf_adds (b, "\\r");
    else if (c == '\t')
      strbuf_adds (b, "\\t");
    else if (n > 1)
      strbuf_addf (b, "\\u%04x", cp);
    else
      strbuf_addf (b, "\\x%02x", c);  /* a control, DEL, or not UTF-8 */
    i += n ? n : 1;
    start = i;
  }
  strbuf_add (b, s + start, i - start);
}

void
escape_in_place (char *buf, size_t size)
{
  struct strbuf b = STRBUF_INIT;
  size_t len;

  if (!buf || !size)
    return;
  strbuf_add_escaped (&b, buf, strlen (buf));
  len = strlcpy_ (buf, b.s ? b.s : "", size);
  if (len >= size) {
    /* Cut: never end on a piece of a UTF-8 sequence (the escaped text is
     * valid UTF-8, so its last lead byte says how long it should be). */
    size_t k = len = size - 1;
    while (k > 0 && len - k < 3 && ((unsigned char) buf[k - 1] & 0xc0) == 0x80)
      k--;
    if (k > 0 && (unsigned char) buf[k - 1] >= 0xc0) {
      unsigned lead = (unsigned char) buf[k - 1];
      size_t need = lead >= 0xf0 ? 4 : lead >= 0xe0 ? 3 : 2;
      if (len - (k - 1) < need)
        buf[k - 1] = '\0';
    }
  }
  strbuf_free (&b);
}

/* HOST:PORT (an IPv6 host in brackets) into a socket address. */
int
parse_listen_addr (const char *v, struct sockaddr_storage *sa, socklen_t *len_r)
{
  struct addrinfo hints, *res = NULL;
  char host[256];
  const char *colon = strrchr (v, ':');
  size_t hl;
  int ok;

  if (!colon || colon == v || !colon[1])
    return -1;
  hl = (size_t) (colon - v);
  if (v[0] == '[' && hl >= 2 && v[hl - 1] == ']') {
    v++;
    hl -= 2;
  }
  if (hl >= sizeof host)
    return -1;
  memcpy (host, v, hl);
  host[hl] = '\0';
  memset (&hints, 0, sizeof hints);
  hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV | AI_PASSIVE;
  hints.ai_socktype = SOCK_STREAM;
  ok = getaddrinfo (host, colon + 1, &hints, &res) == 0 && res
       && res->ai_addrlen <= sizeof *sa;
  if (ok) {
    memcpy (sa, res->ai_addr, res->ai_addrlen);
    *len_r = (socklen_t) res->ai_addrlen;
  }
  if (res)
    freeaddrinfo (res);
  return ok ? 0 : -1;
}
