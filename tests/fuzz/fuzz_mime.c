/* fuzz_mime: libFuzzer target for plugins/common/mime.c, the bytes of
 * every e-mail the email and outbox plugins write.  The input is a flag
 * byte and then the fields of one message separated by 0x1f: subject,
 * display name, first and second recipient, From value, text, html,
 * unsubscribe URL and mailto.  When mime_build accepts the message, the
 * harness checks what mime.h promises, with a reader of its own:
 *  - every line ends in CRLF, with no bare CR or LF and no NUL anywhere,
 *    and no line is longer than 998 octets (RFC 5322 section 2.1.1);
 *  - the header has exactly the fields asked for, in order: no text of
 *    the message made a field of its own;
 *  - a continuation line starts with a space and is not blank;
 *  - the Subject and the display names read back (unfolded, encoded-words
 *    decoded, RFC 2047 "Q" and "B") to the text given, its line breaks as
 *    spaces; every encoded-word is at most 75 characters;
 *  - the To header carries each recipient's address, once.
 * When it refuses, the error is a non-empty line.  Built and run by
 * tests/fuzz/fuzz.sh. */
#include <config.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "mime.h"

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

#define FAIL(...) do { fprintf (stderr, __VA_ARGS__); fputc ('\n', stderr); \
                       abort (); } while (0)

enum { F_SUBJECT, F_NAME, F_TO0, F_TO1, F_FROM, F_TEXT, F_HTML, F_URL,
       F_MAILTO, F_N };

struct field {
  char *p;                   /* NUL-terminated copy */
  size_t n;
  int set;
};

/* What the header should say for text S[0..N): line breaks at the end
 * dropped, each CRLF, CR or LF inside one space (mime.h). */
static char *
flatten (const char *s, size_t n, size_t *n_r)
{
  char *t = malloc (n + 1);
  size_t i, o = 0;

  while (n > 0 && (s[n - 1] == '\r' || s[n - 1] == '\n'))
    n--;
  for (i = 0; i < n; i++) {
    if (s[i] == '\r' && i + 1 < n && s[i + 1] == '\n')
      i++;
    t[o++] = s[i] == '\r' || s[i] == '\n' ? ' ' : s[i];
  }
  t[o] = '\0';
  *n_r = o;
  return t;
}

static int
b64val (int c)
{
  if (c >= 'A' && c <= 'Z')
    return c - 'A';
  if (c >= 'a' && c <= 'z')
    return c - 'a' + 26;
  if (c >= '0' && c <= '9')
    return c - '0' + 52;
  if (c == '+')
    return 62;
  if (c == '/')
    return 63;
  return -1;
}

static int
hexval (int c)
{
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  return -1;
}

/* Decode one encoded-word W[0..N) (RFC 2047 section 4) onto OUT. */
static void
ew_decode (const char *w, size_t n, char *out, size_t *o)
{
  size_t i;

  if (n > 75)
    FAIL ("encoded-word of %zu characters: %.*s", n, (int) n, w);
  if (n < 12 || memcmp (w + n - 2, "?=", 2) != 0
      || (memcmp (w, "=?UTF-8?Q?", 10) != 0
          && memcmp (w, "=?UTF-8?B?", 10) != 0))
    FAIL ("not an encoded-word: %.*s", (int) n, w);
  if (w[8] == 'Q') {
    for (i = 10; i < n - 2; i++) {
      unsigned char c = (unsigned char) w[i];
      if (c == '_')
        out[(*o)++] = ' ';
      else if (c == '=') {
        int hi = i + 2 < n - 2 ? hexval (w[i + 1]) : -1;
        int lo = i + 2 < n - 2 ? hexval (w[i + 2]) : -1;
        if (hi < 0 || lo < 0)
          FAIL ("bad =XX in %.*s", (int) n, w);
        out[(*o)++] = (char) (hi * 16 + lo);
        i += 2;
      }
      /* section 5 rule 3: in a phrase, only these as themselves */
      else if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
               || (c >= '0' && c <= '9') || strchr ("!*+-/", c))
        out[(*o)++] = (char) c;
      else
        FAIL ("'%c' as itself in %.*s", c, (int) n, w);
    }
  } else {
    unsigned acc = 0;
    int bits = 0;
    size_t len = n - 12;
    if (len % 4)
      FAIL ("base64 of %zu characters in %.*s", len, (int) n, w);
    for (i = 10; i < n - 2; i++) {
      int v;
      if (w[i] == '=') {
        if (i < n - 4 || (w[i + 1] != '=' && w[i + 1] != '?'))
          FAIL ("padding inside %.*s", (int) n, w);
        continue;
      }
      if ((v = b64val (w[i])) < 0)
        FAIL ("bad base64 in %.*s", (int) n, w);
      acc = acc << 6 | (unsigned) v;
      bits += 6;
      if (bits >= 8) {
        bits -= 8;
        out[(*o)++] = (char) (acc >> bits & 0xff);
      }
    }
  }
}

/* Read a phrase S (unfolded): encoded-words separated by white space, a
 * quoted-string, or plain text; its text into OUT (large enough), its
 * length returned.  *REST_R gets what follows a quoted-string or the
 * encoded-words. */
static size_t
phrase (const char *s, size_t n, char *out, const char **rest_r, int plain)
{
  size_t o = 0, i = 0;

  if (n >= 2 && s[0] == '=' && s[1] == '?') {
    while (i < n && s[i] == '=' && i + 1 < n && s[i + 1] == '?') {
      const char *e = s + i + 10 <= s + n ? strstr (s + i + 10, "?=") : NULL;
      if (!e || e + 2 > s + n)
        FAIL ("unterminated encoded-word: %s", s + i);
      ew_decode (s + i, (size_t) (e + 2 - (s + i)), out, &o);
      i = (size_t) (e + 2 - s);
      if (i < n && s[i] != ' ')
        FAIL ("encoded-word followed by '%c'", s[i]);
      while (i < n && s[i] == ' ')
        i++;
    }
    *rest_r = s + i;
    return o;
  }
  if (!plain && n > 0 && s[0] == '"') {
    for (i = 1; i < n && s[i] != '"'; i++) {
      if (s[i] == '\\')
        i++;
      if (i < n)
        out[o++] = s[i];
    }
    if (i >= n)
      FAIL ("unterminated quoted-string: %s", s);
    i++;
    while (i < n && s[i] == ' ')
      i++;
    *rest_r = s + i;
    return o;
  }
  if (plain) {
    memcpy (out, s, n);
    *rest_r = s + n;
    return n;
  }
  *rest_r = s;
  return 0;
}

/* The value of header NAME in HDR, unfolded (CRLF before WSP removed),
 * without the one space after the colon; malloc'ed. */
static char *
header_value (const char *hdr, const char *name)
{
  size_t nl = strlen (name);
  const char *p = hdr, *e;
  char *v, *o;

  for (;;) {
    if (strncmp (p, name, nl) == 0 && p[nl] == ':')
      break;
    p = strstr (p, "\r\n");
    if (!p)
      FAIL ("no %s header", name);
    p += 2;
  }
  p += nl + 1;
  if (*p == ' ')
    p++;
  for (e = p; !(e[0] == '\r' && e[1] == '\n' && e[2] != ' '); e++)
    ;
  v = o = malloc ((size_t) (e - p) + 1);
  while (p < e) {
    if (p[0] == '\r' && p[1] == '\n')
      p += 2;
    else
      *o++ = *p++;
  }
  *o = '\0';
  return v;
}

static void
check_name (const char *what, const char *got, size_t gotn, const char *want,
            size_t wantn)
{
  if (gotn != wantn || memcmp (got, want, wantn) != 0)
    FAIL ("%s reads back as '%.*s' (%zu), not '%.*s' (%zu)", what, (int) gotn,
          got, gotn, (int) wantn, want, wantn);
}

/* A mailbox list VALUE with the first display name WANT (may be empty)
 * and the addresses ADDRS. */
static void
check_mailboxes (const char *what, const char *value, const char *want,
                 size_t wantn, const char *const *addrs, size_t naddrs)
{
  size_t n = strlen (value), gotn, i, an;
  char *got = malloc (n + 1);
  const char *rest;

  gotn = phrase (value, n, got, &rest, 0);
  check_name (what, got, gotn, want, wantn);
  for (i = 0; i < naddrs; i++) {
    an = strlen (addrs[i]);
    if (i > 0) {
      if (strncmp (rest, ", ", 2) != 0)
        FAIL ("%s: no ', ' before recipient %zu: %s", what, i, value);
      rest += 2;
    }
    if (rest[0] != '<' || strncmp (rest + 1, addrs[i], an) != 0
        || rest[an + 1] != '>')
      FAIL ("%s: address %zu is not <%s>: %s", what, i, addrs[i], value);
    rest += an + 2;
  }
  if (*rest)
    FAIL ("%s: left over '%s'", what, rest);
  free (got);
}

static void
check_message (const char *m, size_t len, const char *const *names,
               size_t nnames, struct field *f, const char *from_name,
               const char *from_addr)
{
  size_t i, col = 0, nf = 0, line = 0;
  const char *end = NULL, *p;
  char *v, *want, *got, *to[2];
  const char *rest;
  size_t wantn, gotn;

  if (len < 2 || m[len - 2] != '\r' || m[len - 1] != '\n')
    FAIL ("message does not end in CRLF");
  for (i = 0; i < len; i++) {
    if (m[i] == '\0')
      FAIL ("NUL at %zu", i);
    if (m[i] == '\r' && (i + 1 >= len || m[i + 1] != '\n'))
      FAIL ("bare CR at %zu", i);
    if (m[i] == '\n' && (i == 0 || m[i - 1] != '\r'))
      FAIL ("bare LF at %zu", i);
    if (m[i] == '\n') {
      if (col - 1 > 998)
        FAIL ("line %zu has %zu octets", line + 1, col - 1);
      col = 0;
      line++;
    } else
      col++;
  }
  /* The header: one field per line not starting with white space. */
  end = strstr (m, "\r\n\r\n");
  if (!end)
    FAIL ("no blank line after the header");
  for (p = m; p <= end; p = strstr (p, "\r\n") + 2) {
    if (*p == ' ' || *p == '\t') {
      const char *q = p;
      if (p == m)
        FAIL ("the header starts with white space");
      while (*q == ' ' || *q == '\t')
        q++;
      if (q[0] == '\r')
        FAIL ("blank continuation line");
      continue;
    }
    if (nf >= nnames || strncmp (p, names[nf], strlen (names[nf])) != 0
        || p[strlen (names[nf])] != ':')
      FAIL ("header field %zu is '%.20s', expected %s", nf + 1, p,
            nf < nnames ? names[nf] : "none");
    nf++;
  }
  if (nf != nnames)
    FAIL ("%zu header fields, expected %zu", nf, nnames);

  /* Subject: plain text or encoded-words, back to the text given. */
  v = header_value (m, "Subject");
  want = flatten (f[F_SUBJECT].p, f[F_SUBJECT].n, &wantn);
  got = malloc (strlen (v) + 1);
  gotn = phrase (v, strlen (v), got, &rest, 1);
  if (*rest)
    FAIL ("Subject: text after the encoded-words: '%s'", rest);
  check_name ("Subject", got, gotn, want, wantn);
  free (got);
  free (want);
  free (v);

  /* From and To. */
  v = header_value (m, "From");
  want = flatten (from_name, strlen (from_name), &wantn);
  check_mailboxes ("From", v, want, wantn, &from_addr, 1);
  free (want);
  free (v);
  v = header_value (m, "To");
  to[0] = f[F_TO0].p;
  to[1] = f[F_TO1].p;
  if (f[F_NAME].set)
    want = flatten (f[F_NAME].p, strlen (f[F_NAME].p), &wantn);
  else
    want = strdup (""), wantn = 0;
  check_mailboxes ("To", v, want, wantn, (const char *const *) to,
                   f[F_TO1].set ? 2 : 1);
  free (want);
  free (v);
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  static const char *const defaults[F_N] = {
    "Hello", "Ada", "ada@example.com", "bob@example.com",
    "Herald <news@example.com>", "Hi\n", "<p>Hi</p>\n",
    "https://t.example/u/x", "mailto:u@example.com"
  };
  struct field f[F_N];
  struct herald_address to[2];
  struct herald_part parts[3];
  const struct herald_address *top[2] = { &to[0], &to[1] };
  const struct herald_part *pp[3] = { &parts[0], &parts[1], &parts[2] };
  struct herald_message msg;
  struct mime_mailbox fm;
  struct mime_buf out;
  const char *names[12];
  size_t i, k, start, np = 0, nn = 0;
  unsigned flags;
  char err[512];
  int r;

  if (size < 1)
    return 0;
  flags = data[0];
  memset (f, 0, sizeof f);
  for (i = 1, k = 0, start = 1; i <= size && k < F_N; i++)
    if (i == size || data[i] == 0x1f) {
      f[k].n = i - start;
      f[k].p = malloc (f[k].n + 1);
      memcpy (f[k].p, data + start, f[k].n);
      f[k].p[f[k].n] = '\0';
      f[k].set = 1;
      k++;
      start = i + 1;
    }
  for (; k < F_N; k++) {
    f[k].p = strdup (defaults[k]);
    f[k].n = strlen (f[k].p);
    f[k].set = k != F_NAME && k != F_TO1;
  }
  if (!(flags & 0x10))
    f[F_TO1].set = 0;
  if (flags & 0x20)
    f[F_NAME].set = 0;

  memset (&msg, 0, sizeof msg);
  memset (to, 0, sizeof to);
  memset (parts, 0, sizeof parts);
  msg.struct_size = sizeof msg;
  msg.key = "camp:1:cust";
  to[0].struct_size = to[1].struct_size = sizeof to[0];
  to[0].type = to[1].type = "email";
  to[0].value = f[F_TO0].p;
  to[1].value = f[F_TO1].p;
  msg.to = top;
  msg.n_to = f[F_TO1].set ? 2 : 1;
  msg.to_name = f[F_NAME].set ? f[F_NAME].p : NULL;
  for (k = 0; k < 3; k++)
    parts[k].struct_size = sizeof parts[k];
  if (!(flags & 0x40)) {
    parts[np].name = "email.subject";
    parts[np].data = f[F_SUBJECT].p;
    parts[np++].len = f[F_SUBJECT].n;
  }
  if (flags & 0x01) {
    parts[np].name = "email.text";
    parts[np].data = f[F_TEXT].p;
    parts[np++].len = f[F_TEXT].n;
  }
  if (flags & 0x02) {
    parts[np].name = "email.html";
    parts[np].data = f[F_HTML].p;
    parts[np++].len = f[F_HTML].n;
  }
  msg.parts = pp;
  msg.n_parts = np;
  msg.unsubscribe_url = flags & 0x04 ? f[F_URL].p : NULL;
  msg.unsubscribe_mailto = flags & 0x08 ? f[F_MAILTO].p : NULL;
  msg.created = flags & 0x80 ? (int64_t) 1 << 40 : 1764000000;
  msg.attempt = 1;

  mime_buf_init (&out);
  err[0] = '\0';
  r = mime_build (&msg, f[F_FROM].p, &out, err, sizeof err);
  if (r != MIME_OK) {
    if (!err[0] || strchr (err, '\n'))
      FAIL ("refused (%d) with the error '%s'", r, err);
    goto done;
  }
  if (out.failed || !out.data)
    FAIL ("MIME_OK with a failed buffer");
  if (mime_parse_mailbox (f[F_FROM].p, &fm, NULL, 0) != MIME_OK)
    FAIL ("MIME_OK with a From that does not parse");

  names[nn++] = "Date";
  names[nn++] = "From";
  names[nn++] = "To";
  names[nn++] = "Subject";
  names[nn++] = "Message-ID";
  names[nn++] = "MIME-Version";
  if ((msg.unsubscribe_url && *msg.unsubscribe_url)
      || (msg.unsubscribe_mailto && *msg.unsubscribe_mailto))
    names[nn++] = "List-Unsubscribe";
  if (msg.unsubscribe_url && *msg.unsubscribe_url
      && !strncasecmp (msg.unsubscribe_url, "https://", 8))
    names[nn++] = "List-Unsubscribe-Post";
  names[nn++] = "Content-Type";
  if (!((flags & 0x01) && (flags & 0x02)))
    names[nn++] = "Content-Transfer-Encoding";
  check_message (out.data, out.len, names, nn, f, fm.name, fm.addr);
done:
  mime_buf_free (&out);
  for (k = 0; k < F_N; k++)
    free (f[k].p);
  return 0;
}
