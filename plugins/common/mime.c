/* mime.c: the RFC 5322 / MIME bytes of one Herald e-mail message.
 *
 * A pure function of (message, From value): it never reads the clock, a
 * random source, the locale or the environment, so the email plugin and
 * the outbox plugin produce the same bytes for the same message, and a
 * resend produces the bytes of the first attempt.  See mime.h for the
 * contract.  It must never do I/O.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../../lib/address.h"
#include "mime.h"

/* RFC 5322 section 2.1.1: lines SHOULD be at most 78 characters and MUST
 * be at most 998, both excluding CRLF. */
#define MIME_FOLD_COL 78
#define MIME_LINE_MAX 998
/* RFC 2045 section 6.7 rule 5: encoded lines at most 76 characters. */
#define MIME_QP_COL 76
/* RFC 2047 section 2: an encoded-word is at most 75 characters. */
#define MIME_EW_MAX 75
/* Longest URL we put in List-Unsubscribe: it cannot be folded. */
#define MIME_URL_MAX 900

static const char mime_hex[] = "0123456789ABCDEF";
static const char mime_lhex[] = "0123456789abcdef";

/* ------------------------------------------------------------------ */
/* Growable buffer.                                                   */

void
mime_buf_init (struct mime_buf *b)
{
  b->data = NULL;
  b->len = 0;
  b->cap = 0;
  b->failed = 0;
}

void
mime_buf_free (struct mime_buf *b)
{
  if (b == NULL)
    return;
  free (b->data);
  mime_buf_init (b);
}

/* Make room for n more bytes plus the terminating NUL. */
static int
mime_buf_reserve (struct mime_buf *b, size_t n)
{
  size_t want, cap;
  char *p;

  if (b->failed)
    return -1;
  if (n > SIZE_MAX / 2 - b->len)
    goto fail;
  want = b->len + n + 1;
  if (want <= b->cap)
    return 0;
  cap = b->cap ? b->cap : 1024;
  while (cap < want)
    cap *= 2;
  p = realloc (b->data, cap);
  if (p == NULL)
    goto fail;
  b->data = p;
  b->cap = cap;
  return 0;
fail:
  b->failed = 1;
  return -1;
}

int
mime_buf_add (struct mime_buf *b, const void *p, size_t len)
{
  if (mime_buf_reserve (b, len) < 0)
    return -1;
  if (len)
    memcpy (b->data + b->len, p, len);
  b->len += len;
  b->data[b->len] = '\0';
  return 0;
}

static int
mime_buf_str (struct mime_buf *b, const char *s)
{
  return mime_buf_add (b, s, strlen (s));
}

/* ------------------------------------------------------------------ */
/* SHA-256 (FIPS 180-4), so that the module needs no crypto library:   */
/* the outbox plugin links this file too.                              */

struct mime_sha256 {
  uint32_t h[8];
  uint64_t bits;
  unsigned char block[64];
  size_t used;
};

static const uint32_t mime_sha256_k[64] = {
  0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1,
  0x923f82a4, 0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3,
  0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786,
  0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
  0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147,
  0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13,
  0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b,
  0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
  0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a,
  0x5b9cca4f, 0x682e6ff3, 0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208,
  0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
};

#define MIME_ROR(x, n) (((x) >> (n)) | ((x) << (32 - (n))))

static void
mime_sha256_block (struct mime_sha256 *c, const unsigned char *p)
{
  uint32_t w[64], a, b, d, e, f, g, h, cc, t1, t2;
  int i;

  for (i = 0; i < 16; i++)
    w[i] = (uint32_t) p[4 * i] << 24 | (uint32_t) p[4 * i + 1] << 16
           | (uint32_t) p[4 * i + 2] << 8 | (uint32_t) p[4 * i + 3];
  for (i = 16; i < 64; i++) {
    uint32_t s0 = MIME_ROR (w[i - 15], 7) ^ MIME_ROR (w[i - 15], 18)
                  ^ (w[i - 15] >> 3);
    uint32_t s1 = MIME_ROR (w[i - 2], 17) ^ MIME_ROR (w[i - 2], 19)
                  ^ (w[i - 2] >> 10);
    w[i] = w[i - 16] + s0 + w[i - 7] + s1;
  }
  a = c->h[0]; b = c->h[1]; cc = c->h[2]; d = c->h[3];
  e = c->h[4]; f = c->h[5]; g = c->h[6]; h = c->h[7];
  for (i = 0; i < 64; i++) {
    t1 = h + (MIME_ROR (e, 6) ^ MIME_ROR (e, 11) ^ MIME_ROR (e, 25))
         + ((e & f) ^ (~e & g)) + mime_sha256_k[i] + w[i];
    t2 = (MIME_ROR (a, 2) ^ MIME_ROR (a, 13) ^ MIME_ROR (a, 22))
         + ((a & b) ^ (a & cc) ^ (b & cc));
    h = g; g = f; f = e; e = d + t1;
    d = cc; cc = b; b = a; a = t1 + t2;
  }
  c->h[0] += a; c->h[1] += b; c->h[2] += cc; c->h[3] += d;
  c->h[4] += e; c->h[5] += f; c->h[6] += g; c->h[7] += h;
}

static void
mime_sha256 (const void *data, size_t len, unsigned char out[32])
{
  static const uint32_t init[8] = {
    0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
    0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
  };
  struct mime_sha256 c;
  const unsigned char *p = data;
  size_t i;

  memcpy (c.h, init, sizeof init);
  c.bits = (uint64_t) len * 8;
  c.used = 0;
  while (len >= 64) {
    mime_sha256_block (&c, p);
    p += 64;
    len -= 64;
  }
  memcpy (c.block, p, len);
  c.used = len;
  c.block[c.used++] = 0x80;
  if (c.used > 56) {
    memset (c.block + c.used, 0, 64 - c.used);
    mime_sha256_block (&c, c.block);
    c.used = 0;
  }
  memset (c.block + c.used, 0, 56 - c.used);
  for (i = 0; i < 8; i++)
    c.block[56 + i] = (unsigned char) (c.bits >> (56 - 8 * i));
  mime_sha256_block (&c, c.block);
  for (i = 0; i < 8; i++) {
    out[4 * i] = (unsigned char) (c.h[i] >> 24);
    out[4 * i + 1] = (unsigned char) (c.h[i] >> 16);
    out[4 * i + 2] = (unsigned char) (c.h[i] >> 8);
    out[4 * i + 3] = (unsigned char) c.h[i];
  }
}

static void
mime_hexify (const unsigned char *p, size_t n, char *out)
{
  size_t i;

  for (i = 0; i < n; i++) {
    out[2 * i] = mime_lhex[p[i] >> 4];
    out[2 * i + 1] = mime_lhex[p[i] & 15];
  }
  out[2 * n] = '\0';
}

/* ------------------------------------------------------------------ */
/* Addresses.                                                          */

/* Write A, then B (a value from the message or the configuration, its
 * control characters as \xHH: the error goes into logs and the store as
 * one line), then C into err. */
static void
mime_seterr (char *err, size_t errlen, const char *a, const char *b,
             const char *c)
{
  size_t o;

  if (err == NULL || errlen == 0)
    return;
  snprintf (err, errlen, "%s", a);
  o = strlen (err);
  for (; b != NULL && *b != '\0' && o + 1 < errlen; b++) {
    unsigned char ch = (unsigned char) *b;
    if (ch < 0x20 || ch == 0x7f) {
      if (o + 5 > errlen)
        break;
      snprintf (err + o, errlen - o, "\\x%02x", ch);
      o += 4;
    } else
      err[o++] = (char) ch;
  }
  err[o] = '\0';
  if (c != NULL)
    snprintf (err + o, errlen - o, "%s", c);
}

int
mime_parse_mailbox (const char *s, struct mime_mailbox *mb,
                    char *err, size_t errlen)
{
  const char *lt, *gt, *end, *start;
  size_t n;

  mb->name[0] = '\0';
  mb->addr[0] = '\0';
  if (s == NULL)
    goto bad;
  lt = strchr (s, '<');
  if (lt == NULL) {
    start = s;
    while (*start == ' ' || *start == '\t')
      start++;
    end = start + strlen (start);
  } else {
    gt = strchr (lt, '>');
    if (gt == NULL)
      goto bad;
    for (end = gt + 1; *end == ' ' || *end == '\t'; end++)
      ;
    if (*end != '\0')
      goto bad;
    /* The display name: trimmed, optional surrounding quotes. */
    start = s;
    end = lt;
    while (start < end && (*start == ' ' || *start == '\t'))
      start++;
    while (end > start && (end[-1] == ' ' || end[-1] == '\t'))
      end--;
    if (end - start >= 2 && *start == '"' && end[-1] == '"') {
      start++;
      end--;
    }
    n = (size_t) (end - start);
    if (n >= sizeof mb->name)
      goto bad;
    memcpy (mb->name, start, n);
    mb->name[n] = '\0';
    start = lt + 1;
    end = gt;
  }
  while (end > start && (end[-1] == ' ' || end[-1] == '\t'))
    end--;
  n = (size_t) (end - start);
  if (n >= sizeof mb->addr)
    goto bad;
  memcpy (mb->addr, start, n);
  mb->addr[n] = '\0';
  if (!address_email_ok (mb->addr, NULL, 0))
    goto bad;
  return MIME_OK;
bad:
  mime_seterr (err, errlen, "'", s ? s : "(null)",
               "' is not a mailbox (Name <local@domain>)");
  return MIME_EFROM;
}

/* The 32 bytes of SHA-256(key): Message-ID and boundary come from it. */
static void
mime_key_hash (const char *key, unsigned char h[32])
{
  mime_sha256 (key ? key : "", key ? strlen (key) : 0, h);
}

static int
mime_message_id_h (const unsigned char h[32], const char *from_addr,
                   char *buf, size_t buflen)
{
  const char *domain = strrchr (from_addr, '@');
  char hex[33];
  int n;

  domain = domain ? domain + 1 : "localhost";
  mime_hexify (h, 16, hex);
  /* RFC 5322 section 3.6.4: msg-id = "<" id-left "@" id-right ">". */
  n = snprintf (buf, buflen, "<%s.herald@%s>", hex, domain);
  return n < 0 || (size_t) n >= buflen ? -1 : 0;
}

int
mime_message_id (const char *key, const char *from_addr, char *buf,
                 size_t buflen)
{
  unsigned char h[32];

  mime_key_hash (key, h);
  return mime_message_id_h (h, from_addr, buf, buflen);
}

/* ------------------------------------------------------------------ */
/* Headers.                                                            */

/* A header being written: the buffer and the column of the current line. */
struct mime_hdr {
  struct mime_buf *b;
  size_t col;
};

static void
mime_hdr_start (struct mime_hdr *h, struct mime_buf *b, const char *name)
{
  h->b = b;
  mime_buf_str (b, name);
  mime_buf_add (b, ": ", 2);
  h->col = strlen (name) + 2;
}

static void
mime_hdr_end (struct mime_hdr *h)
{
  mime_buf_add (h->b, "\r\n", 2);
}

/* Append an atom of n octets, folding first (RFC 5322 section 2.2.3: CRLF
 * before a WSP) when it would pass column 78 and sep is a space. */
static void
mime_hdr_token (struct mime_hdr *h, const char *sep, const char *p, size_t n)
{
  size_t seplen = strlen (sep);

  if (seplen > 0 && sep[seplen - 1] == ' '
      && h->col + seplen + n > MIME_FOLD_COL) {
    mime_buf_add (h->b, sep, seplen - 1);
    mime_buf_add (h->b, "\r\n ", 3);
    h->col = 1;
  } else {
    mime_buf_add (h->b, sep, seplen);
    h->col += seplen;
  }
  mime_buf_add (h->b, p, n);
  h->col += n;
}

static void
mime_base64 (const unsigned char *p, size_t n, char *out)
{
  static const char tab[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  size_t i;

  for (i = 0; i + 2 < n; i += 3) {
    *out++ = tab[p[i] >> 2];
    *out++ = tab[(p[i] & 3) << 4 | p[i + 1] >> 4];
    *out++ = tab[(p[i + 1] & 15) << 2 | p[i + 2] >> 6];
    *out++ = tab[p[i + 2] & 63];
  }
  if (i < n) {
    *out++ = tab[p[i] >> 2];
    if (i + 1 < n) {
      *out++ = tab[(p[i] & 3) << 4 | p[i + 1] >> 4];
      *out++ = tab[(p[i + 1] & 15) << 2];
    } else {
      *out++ = tab[(p[i] & 3) << 4];
      *out++ = '=';
    }
    *out++ = '=';
  }
  *out = '\0';
}

/* RFC 2047 section 5 rule 3: the characters a "Q" encoded-word may carry
 * as themselves anywhere, phrases included. */
static int
mime_q_literal (unsigned char c)
{
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
         || (c >= '0' && c <= '9') || c == '!' || c == '*' || c == '+'
         || c == '-' || c == '/';
}

/* Octets of the "Q" encoding of c (section 4.2: space is "_"). */
static size_t
mime_q_len (unsigned char c)
{
  return mime_q_literal (c) || c == ' ' ? 1 : 3;
}

/* Length of the UTF-8 character starting at s[0]: the continuation
 * bytes its lead byte announces, as many as follow (1 for a stray byte).
 * Never more than 4: counting every continuation byte that follows made
 * one "character" of a stray lead byte and a run of them, and its "Q"
 * encoding overran the 83-byte encoded-word (fuzz_mime). */
static size_t
mime_utf8_len (const char *s, size_t n)
{
  unsigned char c = (unsigned char) s[0];
  size_t k = 1, want = (c & 0xe0) == 0xc0 ? 2 : (c & 0xf0) == 0xe0 ? 3
                       : (c & 0xf8) == 0xf0 ? 4 : 1;

  while (k < want && k < n && ((unsigned char) s[k] & 0xc0) == 0x80)
    k++;
  return k;
}

/* Append text as RFC 2047 encoded-words in UTF-8: "Q" when it is the
 * shorter (mostly Latin text stays readable), else "B".  Each word is at
 * most 75 characters, folded onto its own line when needed, and split
 * only between UTF-8 characters (section 5 rule 3: "each 'encoded-word'
 * MUST represent an integral number of characters").  sep precedes the
 * first word.  Whitespace between encoded-words is ignored by decoders
 * (section 6.2), so the text survives exactly.  Fewer words are better:
 * some decoders (Python's, in display names) keep that whitespace. */
static void
mime_hdr_encoded (struct mime_hdr *h, const char *sep, const char *s,
                  size_t n)
{
  char word[MIME_EW_MAX + 8];
  size_t i, qlen = 0, blen = (n + 2) / 3 * 4, room, col, cut, w, k;
  int q, first = 1;

  for (i = 0; i < n; i++)
    qlen += mime_q_len ((unsigned char) s[i]);
  q = qlen <= blen;
  while (n > 0 || first) {
    /* Fit on the current line if possible, else on a fresh one. */
    col = h->col + strlen (sep);
    room = col + 12 + 8 <= MIME_FOLD_COL ? MIME_FOLD_COL - col - 12 : 0;
    if (room < 8 || room > MIME_EW_MAX - 12)
      room = MIME_EW_MAX - 12;
    memcpy (word, q ? "=?UTF-8?Q?" : "=?UTF-8?B?", 10);
    w = 10;
    if (q) {
      /* Whole characters while their encoding fits. */
      for (cut = 0; cut < n; cut += k) {
        size_t enc = 0, j;
        k = mime_utf8_len (s + cut, n - cut);
        for (j = 0; j < k; j++)
          enc += mime_q_len ((unsigned char) s[cut + j]);
        if (w - 10 + enc > room && cut > 0)
          break;
        for (j = 0; j < k; j++) {
          unsigned char c = (unsigned char) s[cut + j];
          if (c == ' ')
            word[w++] = '_';
          else if (mime_q_literal (c))
            word[w++] = (char) c;
          else {
            word[w++] = '=';
            word[w++] = mime_hex[c >> 4];
            word[w++] = mime_hex[c & 15];
          }
        }
      }
    } else {
      size_t maxraw = room / 4 * 3;
      cut = n < maxraw ? n : maxraw;
      while (cut < n && cut > 0 && ((unsigned char) s[cut] & 0xc0) == 0x80)
        cut--;
      if (cut == 0)
        cut = n < maxraw ? n : maxraw;
      mime_base64 ((const unsigned char *) s, cut, word + w);
      w += strlen (word + w);
    }
    word[w++] = '?';
    word[w++] = '=';
    mime_hdr_token (h, sep, word, w);
    sep = " ";
    s += cut;
    n -= cut;
    first = 0;
  }
}

/* Copy s (n octets) for a header: line breaks at the end are dropped
 * (a template file's last newline), and each CRLF, CR or LF inside
 * becomes one space, since a header cannot carry a line break.  Sets
 * *n_r to the new length; caller frees. */
static char *
mime_flatten (const char *s, size_t n, size_t *n_r)
{
  char *t;
  size_t i, o = 0;

  while (n > 0 && (s[n - 1] == '\r' || s[n - 1] == '\n'))
    n--;
  t = malloc (n + 1);
  if (t == NULL)
    return NULL;
  for (i = 0; i < n; i++) {
    if (s[i] == '\r' && i + 1 < n && s[i + 1] == '\n')
      i++;
    t[o++] = s[i] == '\r' || s[i] == '\n' ? ' ' : s[i];
  }
  t[o] = '\0';
  *n_r = o;
  return t;
}

/* Whether an unstructured text can go as is: printable ASCII, no "=?"
 * that a decoder would take for an encoded-word, no leading or trailing
 * space that unfolding would lose, and no token (a word with the spaces
 * before it, which a fold keeps together on one line) too long. */
static int
mime_plain_ok (const char *s, size_t n, size_t maxword)
{
  size_t i, word = 0;

  if (n > 0 && (s[0] == ' ' || s[n - 1] == ' '))
    return 0;
  for (i = 0; i < n; i++) {
    unsigned char c = (unsigned char) s[i];
    if (c < 0x20 || c > 0x7e)
      return 0;
    if (c == '=' && i + 1 < n && s[i + 1] == '?')
      return 0;
    word = c == ' ' && i > 0 && s[i - 1] != ' ' ? 1 : word + 1;
    if (word > maxword)
      return 0;
  }
  return 1;
}

/* Subject (RFC 5322 section 3.6.5, unstructured), folded at spaces, or
 * encoded-words when it is not plain ASCII. */
static int
mime_hdr_subject (struct mime_buf *b, const char *s, size_t n)
{
  struct mime_hdr h;
  size_t i, start;
  char *t = mime_flatten (s, n, &n);

  if (t == NULL)
    return -1;
  mime_hdr_start (&h, b, "Subject");
  if (n == 0) {
    /* "Subject: " with nothing after: drop the space. */
    if (!b->failed) {
      b->len--;
      b->data[b->len] = '\0';
    }
  } else if (mime_plain_ok (t, n, MIME_LINE_MAX - 10)) {
    /* Each token is one or more spaces and the word after them (the
     * first has no spaces).  A fold puts CRLF before the token's spaces,
     * so unfolding (section 2.2.3) gives back the text exactly, and each
     * line holds one token at most once it is past column 78: the spaces
     * used to stay on the line before, which a long word and a long run
     * of spaces took past 998 octets (fuzz_mime). */
    start = 0;
    for (i = 0; i <= n; i++) {
      if (i == n || (t[i] == ' ' && i > 0 && t[i - 1] != ' ')) {
        if (i > start) {
          if (start > 0 && h.col + (i - start) > MIME_FOLD_COL) {
            mime_buf_add (b, "\r\n", 2);
            h.col = 0;
          }
          mime_buf_add (b, t + start, i - start);
          h.col += i - start;
        }
        start = i;
      }
    }
  } else
    mime_hdr_encoded (&h, "", t, n);
  mime_hdr_end (&h);
  free (t);
  return 0;
}

/* Whether a display name can go as a quoted-string (RFC 5322 section
 * 3.2.4): printable ASCII only. */
static int
mime_name_ascii (const char *s)
{
  for (; *s; s++)
    if ((unsigned char) *s < 0x20 || (unsigned char) *s > 0x7e)
      return 0;
  return 1;
}

/* One mailbox: [display-name] "<" addr-spec ">" (section 3.4). */
static int
mime_hdr_mailbox (struct mime_hdr *h, const char *sep, const char *name,
                  const char *addr)
{
  struct mime_buf q;
  char *flat = NULL;
  size_t n;

  if (name != NULL && name[0] != '\0') {
    flat = mime_flatten (name, strlen (name), &n);
    if (flat == NULL)
      return -1;
    if (n == 0)
      ;
    else if (mime_name_ascii (flat) && n < 200) {
      const char *p;
      mime_buf_init (&q);
      mime_buf_add (&q, "\"", 1);
      for (p = flat; *p; p++) {
        if (*p == '"' || *p == '\\')
          mime_buf_add (&q, "\\", 1);
        mime_buf_add (&q, p, 1);
      }
      mime_buf_add (&q, "\"", 1);
      if (q.failed) {
        free (flat);
        return -1;
      }
      mime_hdr_token (h, sep, q.data, q.len);
      mime_buf_free (&q);
    } else
      mime_hdr_encoded (h, sep, flat, n);
    if (n > 0)
      sep = " ";
    free (flat);
  }
  {
    char a[MIME_ADDR_MAX + 2];
    n = strlen (addr);
    a[0] = '<';
    memcpy (a + 1, addr, n);
    a[n + 1] = '>';
    mime_hdr_token (h, sep, a, n + 2);
  }
  return 0;
}

/* A URL fit for List-Unsubscribe: visible ASCII, no angle brackets. */
static int
mime_url_ok (const char *u)
{
  size_t n = 0;

  for (; *u; u++, n++)
    if ((unsigned char) *u <= ' ' || (unsigned char) *u >= 0x7f
        || *u == '<' || *u == '>')
      return 0;
  return n > 0 && n <= MIME_URL_MAX;
}

static int
mime_prefix (const char *s, const char *prefix)
{
  size_t n = strlen (prefix);
  size_t i;

  for (i = 0; i < n; i++) {
    char c = s[i];
    if (c >= 'A' && c <= 'Z')
      c = (char) (c - 'A' + 'a');
    if (c != prefix[i])
      return 0;
  }
  return 1;
}

/* RFC 5322 section 3.3 date-time, in UTC: "Thu, 02 Jan 2025 15:04:05 +0000". */
static int
mime_date (int64_t t, char *buf, size_t buflen)
{
  static const char days[7][4] = {
    "Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"
  };
  static const char months[12][4] = {
    "Jan", "Feb", "Mar", "Apr", "May", "Jun",
    "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"
  };
  time_t tt = (time_t) t;
  struct tm tm;
  int n;

  if (gmtime_r (&tt, &tm) == NULL || tm.tm_year + 1900 < 1900
      || tm.tm_year + 1900 > 9999)
    return -1;
  n = snprintf (buf, buflen, "%s, %02d %s %04d %02d:%02d:%02d +0000",
                days[tm.tm_wday], tm.tm_mday, months[tm.tm_mon],
                tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
  return n < 0 || (size_t) n >= buflen ? -1 : 0;
}

/* ------------------------------------------------------------------ */
/* Bodies.                                                             */

/* Append data as quoted-printable (RFC 2045 section 6.7): line breaks
 * (LF or CRLF) become CRLF hard breaks, lines are cut by soft breaks so
 * none passes 76 characters, "=" and bytes outside 33..126 are encoded,
 * and so are a space or tab at the end of a line (rule 3).  A lone CR is
 * encoded as =0D.  When the text does not end in a line break, a final
 * soft break closes the last line if final_soft is set (a single-part
 * body, which must end in CRLF without adding a line break to the text);
 * in a multipart the CRLF before the boundary belongs to the boundary
 * (RFC 2046 section 5.1.1). */
static int
mime_qp (struct mime_buf *b, const char *data, size_t len, int final_soft)
{
  const unsigned char *p = (const unsigned char *) data;
  size_t i, col = 0;
  char *o;

  /* Worst case: every byte as =XX, plus a soft break per 25 bytes. */
  if (len > (SIZE_MAX - 64) / 4 || mime_buf_reserve (b, len * 4 + 16) < 0)
    return -1;
  o = b->data + b->len;
  for (i = 0; i < len; i++) {
    unsigned char c = p[i];
    int lit;

    if (c == '\n' || (c == '\r' && i + 1 < len && p[i + 1] == '\n')) {
      if (c == '\r')
        i++;
      *o++ = '\r';
      *o++ = '\n';
      col = 0;
      continue;
    }
    if (c == ' ' || c == '\t') {
      /* Literal unless it would end a line (before a break or the end). */
      lit = i + 1 < len && p[i + 1] != '\n' && p[i + 1] != '\r';
    } else
      lit = c >= 33 && c <= 126 && c != '=';
    /* Keep room for the "=" of a soft break at column 76. */
    if (col + (lit ? 1 : 3) > MIME_QP_COL - 1) {
      *o++ = '=';
      *o++ = '\r';
      *o++ = '\n';
      col = 0;
    }
    if (lit) {
      *o++ = (char) c;
      col++;
    } else {
      *o++ = '=';
      *o++ = mime_hex[c >> 4];
      *o++ = mime_hex[c & 15];
      col += 3;
    }
  }
  if (final_soft && len > 0 && p[len - 1] != '\n') {
    *o++ = '=';
    *o++ = '\r';
    *o++ = '\n';
  }
  b->len = (size_t) (o - b->data);
  b->data[b->len] = '\0';
  return 0;
}

static void
mime_part_headers (struct mime_buf *b, const char *type)
{
  mime_buf_str (b, "Content-Type: ");
  mime_buf_str (b, type);
  mime_buf_str (b, "; charset=UTF-8\r\n"
                "Content-Transfer-Encoding: quoted-printable\r\n");
}

/* ------------------------------------------------------------------ */

int
mime_build (const struct herald_message *m, const char *from,
            struct mime_buf *out, char *err, size_t errlen)
{
  const struct herald_part *subject, *text, *html;
  struct mime_mailbox fm;
  struct mime_hdr h;
  unsigned char hash[32];
  char line[256], boundary[48], hex[25];
  size_t i;
  int r;

  r = mime_parse_mailbox (from, &fm, err, errlen);
  if (r != MIME_OK)
    goto out;
  r = MIME_ERROR;
  subject = herald_message_part (m, "email.subject");
  text = herald_message_part (m, "email.text");
  html = herald_message_part (m, "email.html");
  if (subject == NULL) {
    mime_seterr (err, errlen, "message has no email.subject part", 0, 0);
    goto out;
  }
  if (text == NULL && html == NULL) {
    mime_seterr (err, errlen, "message has neither email.text nor "
                 "email.html", 0, 0);
    goto out;
  }
  if (m->n_to == 0) {
    mime_seterr (err, errlen, "message has no recipient", 0, 0);
    goto out;
  }
  for (i = 0; i < m->n_to; i++) {
    char why[128];
    if (!address_email_ok (m->to[i]->value, why, sizeof why)) {
      size_t o;
      mime_seterr (err, errlen, "'", m->to[i]->value,
                   "' is not an e-mail address: ");
      o = err != NULL ? strlen (err) : 0;
      if (o + 1 < errlen)
        snprintf (err + o, errlen - o, "%s", why);
      r = MIME_EADDRESS;
      goto out;
    }
  }
  if (m->unsubscribe_url && m->unsubscribe_url[0]
      && (!mime_url_ok (m->unsubscribe_url)
          || !(mime_prefix (m->unsubscribe_url, "https://")
               || mime_prefix (m->unsubscribe_url, "http://")))) {
    mime_seterr (err, errlen, "unsubscribe URL '", m->unsubscribe_url,
                 "' is not an http(s) URL fit for a header");
    goto out;
  }
  if (m->unsubscribe_mailto && m->unsubscribe_mailto[0]
      && !mime_url_ok (m->unsubscribe_mailto)) {
    mime_seterr (err, errlen, "unsubscribe mailto '", m->unsubscribe_mailto,
                 "' is not fit for a header");
    goto out;
  }

  mime_key_hash (m->key, hash);

  /* RFC 5322 section 3.6.1: the origination date. */
  if (mime_date (m->created, line, sizeof line) < 0) {
    mime_seterr (err, errlen, "message creation time out of range", 0, 0);
    goto out;
  }
  mime_buf_str (out, "Date: ");
  mime_buf_str (out, line);
  mime_buf_str (out, "\r\n");

  /* Section 3.6.2: From is the author; the address is never encoded. */
  mime_hdr_start (&h, out, "From");
  if (mime_hdr_mailbox (&h, "", fm.name, fm.addr) < 0)
    goto nomem;
  mime_hdr_end (&h);

  /* Section 3.6.3: one To mailbox per recipient. */
  mime_hdr_start (&h, out, "To");
  for (i = 0; i < m->n_to; i++)
    if (mime_hdr_mailbox (&h, i ? ", " : "", i ? NULL : m->to_name,
                          m->to[i]->value) < 0)
      goto nomem;
  mime_hdr_end (&h);

  if (mime_hdr_subject (out, subject->data, subject->len) < 0)
    goto nomem;

  if (mime_message_id_h (hash, fm.addr, line, sizeof line) < 0) {
    mime_seterr (err, errlen, "From domain too long for a Message-ID", 0, 0);
    goto out;
  }
  mime_buf_str (out, "Message-ID: ");
  mime_buf_str (out, line);
  mime_buf_str (out, "\r\nMIME-Version: 1.0\r\n");

  /* RFC 2369 section 3.2 and RFC 8058 section 3.1: one List-Unsubscribe
   * with the https URI (and a mailto), and List-Unsubscribe-Post only
   * when an https URI is there to receive the POST. */
  if ((m->unsubscribe_url && m->unsubscribe_url[0])
      || (m->unsubscribe_mailto && m->unsubscribe_mailto[0])) {
    const char *sep = "";
    mime_buf_str (out, "List-Unsubscribe: ");
    if (m->unsubscribe_url && m->unsubscribe_url[0]) {
      mime_buf_str (out, "<");
      mime_buf_str (out, m->unsubscribe_url);
      mime_buf_str (out, ">");
      sep = ",\r\n ";
    }
    if (m->unsubscribe_mailto && m->unsubscribe_mailto[0]) {
      mime_buf_str (out, sep);
      mime_buf_str (out, mime_prefix (m->unsubscribe_mailto, "mailto:")
                    ? "<" : "<mailto:");
      mime_buf_str (out, m->unsubscribe_mailto);
      mime_buf_str (out, ">");
    }
    mime_buf_str (out, "\r\n");
    if (m->unsubscribe_url && mime_prefix (m->unsubscribe_url, "https://"))
      mime_buf_str (out, "List-Unsubscribe-Post: List-Unsubscribe=One-Click"
                    "\r\n");
  }

  if (text != NULL && html != NULL) {
    /* RFC 2046 section 5.1.4: alternatives in increasing faithfulness,
     * plain text first.  "=_" cannot occur in quoted-printable output,
     * so the boundary never collides with a body (section 5.1.1). */
    mime_hexify (hash + 16, 12, hex);
    snprintf (boundary, sizeof boundary, "=_herald_%s", hex);
    mime_buf_str (out, "Content-Type: multipart/alternative;\r\n"
                  " boundary=\"");
    mime_buf_str (out, boundary);
    mime_buf_str (out, "\"\r\n\r\n--");
    mime_buf_str (out, boundary);
    mime_buf_str (out, "\r\n");
    mime_part_headers (out, "text/plain");
    mime_buf_str (out, "\r\n");
    if (mime_qp (out, text->data, text->len, 0) < 0)
      goto nomem;
    mime_buf_str (out, "\r\n--");
    mime_buf_str (out, boundary);
    mime_buf_str (out, "\r\n");
    mime_part_headers (out, "text/html");
    mime_buf_str (out, "\r\n");
    if (mime_qp (out, html->data, html->len, 0) < 0)
      goto nomem;
    mime_buf_str (out, "\r\n--");
    mime_buf_str (out, boundary);
    mime_buf_str (out, "--\r\n");
  } else {
    const struct herald_part *p = text ? text : html;
    mime_part_headers (out, text ? "text/plain" : "text/html");
    mime_buf_str (out, "\r\n");
    if (mime_qp (out, p->data, p->len, 1) < 0)
      goto nomem;
  }
  if (out->failed)
    goto nomem;
  r = MIME_OK;
  goto out;
nomem:
  mime_seterr (err, errlen, "out of memory building the message", 0, 0);
  r = MIME_ERROR;
out:
  return r;
}
