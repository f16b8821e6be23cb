/* bounce: classifies the messages of a bounce mailbox (DSN, ARF, the
 * prose of MTAs that write no DSN) and finds what they name, through
 * GMime.  See bounce.h for the contract.
 *
 * It must never call a bounce hard, soft or a complaint on a hunch: every
 * classification rests on a status code (RFC 3463 or an SMTP reply code)
 * or on a report field, or, for the prose of qmail-like MTAs only, on a
 * phrase that says "permanent" in so many words.  Anything else is
 * UNPARSEABLE or IGNORED, with the reason.  No store, no keys, no output. */
#include <config.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gmime/gmime.h>

#include "bounce.h"
#include "util.h"

/* How much of a human-readable part is read for its status and phrases:
 * the reason of a bounce is at its top, the copy of the message below. */
#define BOUNCE_SCAN_MAX (64 * 1024)
/* How much of a delivery-status or feedback-report part is read. */
#define BOUNCE_FIELDS_MAX (256 * 1024)

void
bounce_global_init (void)
{
  g_mime_init ();
}

void
bounce_global_shutdown (void)
{
  g_mime_shutdown ();
}

void
bounce_free (struct bounce *b)
{
  size_t i;

  if (!b)
    return;
  free (b->why);
  free (b->action);
  free (b->recipient);
  free (b->diagnostic);
  free (b->feedback_type);
  for (i = 0; i < b->n_tokens; i++)
    free (b->tokens[i]);
  free (b->message_id);
  memset (b, 0, sizeof *b);
}

/* ---- text ---------------------------------------------------------- */

/* S[0..N) as one line of valid UTF-8 (see bounce.h): runs of white space
 * and control characters become one space, bytes that are not UTF-8 '?',
 * trimmed, cut at BOUNCE_TEXT_MAX bytes on a character boundary.  NULL
 * when nothing is left.  The caller frees. */
static char *
one_line (const char *s, size_t n)
{
  struct strbuf b = STRBUF_INIT;
  size_t i = 0;
  int space = 0;

  if (!s)
    return NULL;
  while (i < n) {
    unsigned char c = (unsigned char) s[i];
    /* The length of the character here: one byte, a valid UTF-8
     * sequence, or a byte that is not UTF-8 (written '?'). */
    size_t len = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc0 ? 2 : 1;
    if (c < 0x20 || c == 0x7f || c == ' ') {
      space = b.len > 0;
      i++;
      continue;
    }
    if (len > n - i || utf8_check (s + i, len) != len)
      len = 1;
    if (b.len + (space ? 1 : 0) + len > BOUNCE_TEXT_MAX)
      break;
    if (space) {
      strbuf_addc (&b, ' ');
      space = 0;
    }
    if (c >= 0x80 && len == 1)
      strbuf_addc (&b, '?');
    else
      strbuf_add (&b, s + i, len);
    i += len;
  }
  if (b.len == 0) {
    strbuf_free (&b);
    return NULL;
  }
  return b.s;
}

static char *
one_line_str (const char *s)
{
  return s ? one_line (s, strlen (s)) : NULL;
}

static void
set_why (struct bounce *b, enum bounce_kind kind, const char *fmt, ...)
  __attribute__ ((format (printf, 3, 4)));

/* Set B's kind and why (formatted, then made one line). */
static void
set_why (struct bounce *b, enum bounce_kind kind, const char *fmt, ...)
{
  struct strbuf s = STRBUF_INIT;
  va_list ap;

  va_start (ap, fmt);
  strbuf_vaddf (&s, fmt, ap);
  va_end (ap);
  free (b->why);
  b->why = one_line (s.s, s.len);
  strbuf_free (&s);
  b->kind = kind;
}

/* Characters of an RFC 5322 atom: what may stand before "b+" inside a
 * local part, so that "xb+..." is not taken for a VERP address. */
static int
atext (int c)
{
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
         || (c >= '0' && c <= '9') || (c && strchr ("!#$%&'*+-/=?^_`{|}~.",
                                                    c));
}

static int
b32 (int c)
{
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
         || (c >= '2' && c <= '7');
}

/* Add every "b+TOKEN@" of S (40 base32 characters, any case) to B's
 * tokens, lower case, each once.  The token is not checked here. */
static void
scan_tokens (struct bounce *b, const char *s)
{
  const char *p;
  size_t i, k;
  enum { TOKEN = 40 };

  for (p = s; p && *p; p++) {
    char tok[2 + TOKEN + 1];
    if ((p[0] != 'b' && p[0] != 'B') || p[1] != '+'
        || (p > s && atext ((unsigned char) p[-1])))
      continue;
    for (i = 0; i < TOKEN && b32 ((unsigned char) p[2 + i]); i++)
      ;
    if (i < TOKEN || p[2 + TOKEN] != '@')
      continue;
    for (i = 0; i < 2 + TOKEN; i++)
      tok[i] = (char) (p[i] >= 'A' && p[i] <= 'Z' ? p[i] - 'A' + 'a' : p[i]);
    tok[2 + TOKEN] = '\0';
    for (k = 0; k < b->n_tokens; k++)
      if (strcmp (b->tokens[k], tok) == 0)
        break;
    if (k == b->n_tokens && b->n_tokens < BOUNCE_MAX_TOKENS)
      b->tokens[b->n_tokens++] = xstrdup (tok);
    p += 2 + TOKEN;
  }
}

static int
digit (int c)
{
  return c >= '0' && c <= '9';
}

/* The first RFC 3463 status code of S[0..N) ("5.1.1", "4.2.2", "5.1.10";
 * qmail writes "(#5.1.1)"): copied into OUT, its offset into *AT_R, and
 * its class ('4' or '5'; '2' for a success) returned; 0 when none.  A dotted quad (an
 * IPv4 address) or a version number is no status. */
static int
find_status (const char *s, size_t n, char out[16], size_t *at_r)
{
  size_t i, j, d1, d2;

  for (i = 0; i + 5 <= n; i++) {
    /* After a letter, a digit or a dot it is part of something else;
     * after "550-" or "(#" it is a status. */
    if (!(s[i] == '2' || s[i] == '4' || s[i] == '5') || s[i + 1] != '.'
        || (i > 0 && (digit (s[i - 1]) || s[i - 1] == '.'
                      || (s[i - 1] >= 'a' && s[i - 1] <= 'z')
                      || (s[i - 1] >= 'A' && s[i - 1] <= 'Z'))))
      continue;
    for (j = i + 2, d1 = 0; j < n && digit (s[j]) && d1 < 4; j++, d1++)
      ;
    if (d1 == 0 || d1 > 3 || j >= n || s[j] != '.')
      continue;
    for (j++, d2 = 0; j < n && digit (s[j]) && d2 < 4; j++, d2++)
      ;
    if (d2 == 0 || d2 > 3)
      continue;
    /* Not followed by more of a number (5.1.1.1, 5.1.1a). */
    if (j < n && (digit (s[j]) || (s[j] == '.' && j + 1 < n
                                   && digit (s[j + 1]))
                  || (s[j] >= 'a' && s[j] <= 'z')
                  || (s[j] >= 'A' && s[j] <= 'Z')))
      continue;
    snprintf (out, 16, "%.*s", (int) (j - i), s + i);
    *at_r = i;
    return s[i];
  }
  return 0;
}

/* The first SMTP reply code 4xx or 5xx of S[0..N) standing as one
 * ("550 ", "550-", "554:", "451."), the first digit '4' or '5' returned,
 * the code copied into OUT and its offset into *AT_R; 0 when none. */
static int
find_reply_code (const char *s, size_t n, char out[16], size_t *at_r)
{
  size_t i;

  for (i = 0; i + 3 <= n; i++) {
    if (!(s[i] == '4' || s[i] == '5') || s[i + 1] < '0' || s[i + 1] > '5'
        || !digit (s[i + 2]))
      continue;
    if (i > 0 && (atext ((unsigned char) s[i - 1]) || s[i - 1] == ':'))
      continue;
    if (i + 3 < n && !(s[i + 3] == ' ' || s[i + 3] == '-' || s[i + 3] == ':'
                       || s[i + 3] == '\r' || s[i + 3] == '\n'
                       || (s[i + 3] == '.' && (i + 4 >= n
                                               || !digit (s[i + 4])))))
      continue;
    snprintf (out, 16, "%.3s", s + i);
    *at_r = i;
    return s[i];
  }
  return 0;
}

/* The first of PHRASES (NULL-terminated) found in S, in any ASCII case,
 * or NULL; where in S into *AT_R (may be NULL). */
static const char *
find_phrase (const char *s, const char *const *phrases, const char **at_r)
{
  const char *p;
  size_t i;

  for (i = 0; phrases[i]; i++)
    if ((p = strcasestr (s, phrases[i]))) {
      if (at_r)
        *at_r = p;
      return phrases[i];
    }
  return NULL;
}

/* A status code of S[0..N) (RFC 3463 first, else an SMTP reply code), as
 * find_status says. */
static int
find_code (const char *s, size_t n, char out[16], size_t *at_r)
{
  int cls = find_status (s, n, out, at_r);
  return cls ? cls : find_reply_code (s, n, out, at_r);
}

/* The line of S that holds S + AT, as one_line makes it. */
static char *
line_at (const char *s, size_t at)
{
  size_t a = at, e = at;

  while (a > 0 && s[a - 1] != '\n')
    a--;
  while (s[e] && s[e] != '\n')
    e++;
  return one_line (s + a, e - a);
}

/* ---- GMime helpers -------------------------------------------------- */

/* The decoded content of PART (transfer encoding undone, no charset
 * conversion), at most MAX bytes, NUL-terminated, to free; NULL when it
 * has none. */
static char *
part_bytes (GMimePart *part, size_t max, size_t *len_r)
{
  GMimeDataWrapper *w = g_mime_part_get_content (part);
  GMimeStream *s;
  GByteArray *a;
  char *r = NULL;
  size_t n;

  *len_r = 0;
  if (!w)
    return NULL;
  s = g_mime_stream_mem_new ();
  if (g_mime_data_wrapper_write_to_stream (w, s) >= 0) {
    a = g_mime_stream_mem_get_byte_array (GMIME_STREAM_MEM (s));
    n = a->len < max ? a->len : max;
    r = xmalloc (n + 1);
    if (n)                     /* an empty array has no data at all */
      memcpy (r, a->data, n);
    r[n] = '\0';
    *len_r = n;
  }
  g_object_unref (s);
  return r;
}

/* Parse TEXT[0..LEN) with GMime as a message (a header block and a body);
 * a new reference, or NULL. */
static GMimeMessage *
message_from_bytes (const char *text, size_t len)
{
  GMimeStream *s;
  GMimeParser *p;
  GMimeMessage *m;

  s = g_mime_stream_mem_new_with_buffer (text, len);
  p = g_mime_parser_new_with_stream (s);
  m = g_mime_parser_construct_message (p, NULL);
  g_object_unref (p);
  g_object_unref (s);
  return m;
}

/* A header of O, or NULL. */
static const char *
header (GMimeObject *o, const char *name)
{
  return o ? g_mime_object_get_header (o, name) : NULL;
}

/* The content type of O is TYPE/SUBTYPE. */
static int
is_type (GMimeObject *o, const char *type, const char *subtype)
{
  GMimeContentType *ct = g_mime_object_get_content_type (o);
  return ct && g_mime_content_type_is_type (ct, type, subtype);
}

/* What a walk over the message's parts found: the first of each (never
 * inside the returned message, which g_mime_message_foreach does not
 * enter). */
struct parts {
  GMimePart *dsn;            /* message/delivery-status */
  GMimePart *arf;            /* message/feedback-report */
  GMimeMessage *original;    /* message/rfc822 (lent by the tree) */
  GMimePart *headers;        /* text/rfc822-headers */
  GMimeTextPart *text;       /* text/plain */
  GMimeTextPart *html;       /* text/html */
};

static void
parts_each (GMimeObject *parent, GMimeObject *part, gpointer data)
{
  struct parts *f = data;

  if (GMIME_IS_MESSAGE_PART (part)) {
    if (!f->original)
      f->original = g_mime_message_part_get_message (GMIME_MESSAGE_PART (part));
    return;
  }
  if (!GMIME_IS_PART (part))
    return;
  if (is_type (part, "message", "delivery-status")
      || is_type (part, "message", "global-delivery-status")) {
    if (!f->dsn)
      f->dsn = GMIME_PART (part);
  } else if (is_type (part, "message", "feedback-report")) {
    if (!f->arf)
      f->arf = GMIME_PART (part);
  } else if (is_type (part, "text", "rfc822-headers")
             || is_type (part, "message", "rfc822-headers")
             || is_type (part, "message", "global-headers")) {
    if (!f->headers)
      f->headers = GMIME_PART (part);
  } else if (GMIME_IS_TEXT_PART (part) && is_type (part, "text", "plain")) {
    if (!f->text)
      f->text = GMIME_TEXT_PART (part);
  } else if (GMIME_IS_TEXT_PART (part) && is_type (part, "text", "html")) {
    if (!f->html)
      f->html = GMIME_TEXT_PART (part);
  }
}

/* The text of PART in UTF-8 (GMime converts from its charset), at most
 * BOUNCE_SCAN_MAX bytes, to free; NULL when none. */
static char *
part_text (GMimeTextPart *part)
{
  char *t = g_mime_text_part_get_text (part), *r;
  size_t n;

  if (!t) {
    /* A charset GMime cannot convert: the raw bytes will do for finding
     * ASCII codes and phrases. */
    r = part_bytes (GMIME_PART (part), BOUNCE_SCAN_MAX, &n);
    return r;
  }
  n = strlen (t);
  if (n > BOUNCE_SCAN_MAX)
    n = BOUNCE_SCAN_MAX;
  r = xstrndup (t, n);
  g_free (t);
  return r;
}

/* TEXT without its HTML tags (in place): enough to find codes and
 * phrases in an HTML-only bounce (Exchange writes some). */
static void
strip_tags (char *text)
{
  char *r = text, *w = text;
  int in_tag = 0;

  for (; *r; r++) {
    if (*r == '<')
      in_tag = 1;
    else if (*r == '>' && in_tag) {
      in_tag = 0;
      *w++ = ' ';
    } else if (!in_tag)
      *w++ = *r;
  }
  *w = '\0';
}

/* ---- what the returned message names --------------------------------- */

/* The VERP tokens on the envelope headers of the bounce itself: a bounce
 * goes to the envelope sender, and the delivering MTA writes it into one
 * of these (RFC 5321 section 4.5.5; Delivered-To and X-Original-To are
 * Postfix's and qmail's, Envelope-To Exim's). */
static const char *const envelope_headers[] = {
  "Delivered-To", "X-Original-To", "Envelope-To", "X-Envelope-To", "To",
  "Cc", "X-Original-Rcpt-To", NULL
};

static void
scan_envelope (struct bounce *b, GMimeObject *o)
{
  GMimeHeaderList *list = g_mime_object_get_header_list (o);
  int i, n = list ? g_mime_header_list_get_count (list) : 0, k;

  for (k = 0; envelope_headers[k]; k++)
    for (i = 0; i < n; i++) {
      GMimeHeader *h = g_mime_header_list_get_header_at (list, i);
      const char *name = g_mime_header_get_name (h);
      if (name && strcasecmp (name, envelope_headers[k]) == 0)
        scan_tokens (b, g_mime_header_get_raw_value (h));
    }
}

/* What the returned message ORIG names: its envelope sender (Return-Path,
 * which the final MTA adds, RFC 5321 section 4.4) and its Message-ID. */
static void
scan_original (struct bounce *b, GMimeMessage *orig)
{
  const char *id;

  if (!orig)
    return;
  scan_tokens (b, header (GMIME_OBJECT (orig), "Return-Path"));
  id = g_mime_message_get_message_id (orig);
  if (id && *id && !b->message_id)
    b->message_id = one_line_str (id);
}

/* ---- RFC 3464 delivery status notifications -------------------------- */

/* Split TEXT[0..LEN) at its blank lines into blocks of fields, and call
 * EACH with every block parsed by GMime as a header block.  The blocks of
 * a delivery-status part are the per-message fields and then one block
 * per recipient (RFC 3464 section 2.1); a feedback-report part is one. */
static void
field_blocks (const char *text, size_t len,
              void (*each) (void *data, GMimeObject *fields), void *data)
{
  size_t i = 0, start, e, k;

  while (i < len) {
    /* Blank lines (empty, or white space only) before the block. */
    for (;;) {
      for (e = i; e < len && text[e] != '\n'; e++)
        ;
      for (k = i; k < e && (text[k] == ' ' || text[k] == '\t'
                            || text[k] == '\r'); k++)
        ;
      if (k < e || i >= len)
        break;
      i = e < len ? e + 1 : len;
    }
    if (i >= len)
      break;
    /* The block: up to the next blank line. */
    start = i;
    for (;;) {
      for (e = i; e < len && text[e] != '\n'; e++)
        ;
      for (k = i; k < e && (text[k] == ' ' || text[k] == '\t'
                            || text[k] == '\r'); k++)
        ;
      if (k == e || i >= len)
        break;
      i = e < len ? e + 1 : len;
    }
    {
      GMimeStream *s = g_mime_stream_mem_new_with_buffer (text + start,
                                                          i - start);
      GMimeParser *p = g_mime_parser_new_with_stream (s);
      GMimeObject *o = g_mime_parser_construct_part (p, NULL);
      if (o) {
        each (data, o);
        g_object_unref (o);
      }
      g_object_unref (p);
      g_object_unref (s);
    }
  }
}

/* The outcome of a recipient block, worst first. */
enum rcpt_class {
  RC_NONE = 0,
  RC_SUCCESS,                /* delivered, relayed, expanded */
  RC_DELAYED,                /* still trying */
  RC_UNKNOWN,                /* failed, or a 4.x.x without Action, with
                                nothing saying how */
  RC_SOFT,
  RC_HARD
};

struct dsn_walk {
  int blocks;                /* recipient blocks seen */
  enum rcpt_class best;
  char status[16];
  char *action, *recipient, *diagnostic;
  char unknown_why[160];
};

/* The value after "TYPE;" of a DSN address or code field, trimmed. */
static const char *
after_type (const char *v)
{
  const char *semi = v ? strchr (v, ';') : NULL;

  if (!v)
    return NULL;
  v = semi ? semi + 1 : v;
  while (*v == ' ' || *v == '\t')
    v++;
  return v;
}

static void
dsn_block (void *data, GMimeObject *fields)
{
  struct dsn_walk *w = data;
  const char *action = header (fields, "Action");
  const char *status = header (fields, "Status");
  const char *diag = header (fields, "Diagnostic-Code");
  const char *rcpt = header (fields, "Final-Recipient");
  char code[16] = "", act[16] = "";
  enum rcpt_class c;
  int cls = 0;
  size_t i, at;

  if (!rcpt)
    rcpt = header (fields, "Original-Recipient");
  if (!action && !rcpt)
    return;                     /* the per-message fields */
  w->blocks++;
  /* Action is one word, perhaps with a comment (RFC 3464 section 2.3.3). */
  for (i = 0; action && action[i] && i + 1 < sizeof act; i++) {
    char ch = action[i];
    if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z')))
      break;
    act[i] = (char) (ch >= 'A' && ch <= 'Z' ? ch - 'A' + 'a' : ch);
  }
  act[i] = '\0';
  /* Status is "class.subject.detail" (RFC 3463); a missing or broken
   * one is taken from the Diagnostic-Code's reply, as receivers do. */
  if (status)
    cls = find_status (status, strlen (status), code, &at);
  if (!cls && diag)
    cls = find_code (diag, strlen (diag), code, &at);
  if (strcmp (act, "failed") == 0)
    c = cls == '5' ? RC_HARD : cls == '4' ? RC_SOFT : RC_UNKNOWN;
  else if (strcmp (act, "delayed") == 0)
    c = RC_DELAYED;
  else if (strcmp (act, "delivered") == 0 || strcmp (act, "relayed") == 0
           || strcmp (act, "expanded") == 0)
    c = RC_SUCCESS;
  else if (!*act && cls == '5')
    c = RC_HARD;               /* no Action, but permanent whatever it was */
  else
    c = RC_UNKNOWN;
  if (c == RC_UNKNOWN && !w->unknown_why[0])
    snprintf (w->unknown_why, sizeof w->unknown_why,
              *act ? "Action: %s with %s" : "no Action, and %s", act,
              cls ? "a status that is neither 4.x.x nor 5.x.x"
                  : "no Status or Diagnostic-Code saying 4.x.x or 5.x.x");
  if (c <= w->best)
    return;
  w->best = c;
  snprintf (w->status, sizeof w->status, "%s", code);
  free (w->action);
  free (w->recipient);
  free (w->diagnostic);
  w->action = one_line_str (*act ? act : NULL);
  w->recipient = one_line_str (after_type (rcpt));
  w->diagnostic = one_line_str (diag);
}

static void
parse_dsn (struct bounce *b, GMimePart *part)
{
  struct dsn_walk w;
  size_t len;
  char *text = part_bytes (part, BOUNCE_FIELDS_MAX, &len);

  memset (&w, 0, sizeof w);
  b->format = "dsn";
  if (text)
    field_blocks (text, len, dsn_block, &w);
  free (text);
  switch (w.best) {
  case RC_HARD:
    b->kind = BOUNCE_HARD;
    break;
  case RC_SOFT:
    b->kind = BOUNCE_SOFT;
    break;
  case RC_UNKNOWN:
    set_why (b, BOUNCE_UNPARSEABLE, "delivery status: %s", w.unknown_why);
    break;
  case RC_DELAYED:
    set_why (b, BOUNCE_IGNORED, "a delay notice (Action: delayed): the "
             "sending server is still trying");
    break;
  case RC_SUCCESS:
    set_why (b, BOUNCE_IGNORED, "a success notice (Action: %s)",
             w.action ? w.action : "delivered");
    break;
  case RC_NONE:
    set_why (b, BOUNCE_UNPARSEABLE, "a message/delivery-status part without "
             "a recipient block (Final-Recipient, Action, Status)");
    break;
  }
  snprintf (b->status, sizeof b->status, "%s", w.status);
  b->action = w.action;
  b->recipient = w.recipient;
  b->diagnostic = w.diagnostic;
}

/* ---- RFC 5965 feedback reports --------------------------------------- */

struct arf_walk {
  struct bounce *b;
  int seen;
};

static void
arf_block (void *data, GMimeObject *fields)
{
  struct arf_walk *w = data;
  struct bounce *b = w->b;
  const char *type = header (fields, "Feedback-Type");
  size_t i;

  if (w->seen++)
    return;                    /* one block; anything after is not ARF */
  if (type) {
    char t[32];
    while (*type == ' ' || *type == '\t')
      type++;
    for (i = 0; type[i] && i + 1 < sizeof t; i++) {
      char ch = type[i];
      if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z')
            || ch == '-' || ch == '_' || (ch >= '0' && ch <= '9')))
        break;
      t[i] = (char) (ch >= 'A' && ch <= 'Z' ? ch - 'A' + 'a' : ch);
    }
    t[i] = '\0';
    b->feedback_type = one_line_str (t);
  }
  b->recipient = one_line_str (header (fields, "Original-Rcpt-To"));
  /* RFC 5965 section 3.2: the envelope sender of the reported message. */
  scan_tokens (b, header (fields, "Original-Mail-From"));
}

static void
parse_arf (struct bounce *b, GMimePart *part)
{
  struct arf_walk w = { b, 0 };
  size_t len;
  char *text = part_bytes (part, BOUNCE_FIELDS_MAX, &len);

  b->format = "arf";
  if (text)
    field_blocks (text, len, arf_block, &w);
  free (text);
  if (!b->feedback_type)
    set_why (b, BOUNCE_UNPARSEABLE, "a feedback report without "
             "Feedback-Type");
  /* abuse: the recipient called it spam; fraud: phishing (RFC 5965
   * section 7.3).  virus, not-spam, other and auth-failure (RFC 6591)
   * say nothing of the recipient's wish. */
  else if (strcmp (b->feedback_type, "abuse") == 0
           || strcmp (b->feedback_type, "fraud") == 0)
    b->kind = BOUNCE_COMPLAINT;
  else
    set_why (b, BOUNCE_IGNORED, "a feedback report of type '%s', not a "
             "complaint", b->feedback_type);
}

/* ---- bounces in prose --------------------------------------------- */

/* Wording that only a bounce has (qmail, Yahoo, Gmail's older form,
 * Exchange, Postfix, Exim, Sendmail).  A message with none of these, and
 * neither a bounce's sender nor subject, is no bounce. */
static const char *const bounce_text[] = {
  "this is the qmail-send program",
  "i'm afraid i wasn't able to deliver",
  "sorry, we were unable to deliver your message",
  "unable to deliver message to the following",
  "delivery to the following recipient failed",
  "delivery to the following recipients failed",
  "could not be delivered to one or more recipients",
  "delivery has failed to these recipients",
  "did not reach some or all of the intended recipients",
  "your message wasn't delivered",
  "message could not be delivered",
  "this message was created automatically by mail delivery software",
  "this is the mail system at host",
  "the following addresses had permanent fatal errors",
  "the following address(es) failed",
  "undeliverable",
  NULL
};

static const char *const bounce_subjects[] = {
  "undeliver", "delivery status notification", "failure notice",
  "returned mail", "delivery failure", "mail delivery failed",
  "delivery has failed", "could not be delivered", "non-delivery",
  "nondeliverable", "delivery failed", "returned to sender",
  "mail delivery subsystem", NULL
};

/* Said of a permanent failure, in so many words. */
static const char *const hard_phrases[] = {
  "permanent error", "failed permanently", "permanent failure",
  "permanent fatal error", "user unknown", "unknown user", "no such user",
  "no such mailbox", "mailbox not found", "mailbox unavailable",
  "does not exist", "doesn't exist", "doesn't have a", "does not have a",
  "recipient not found", "address not found", "couldn't be found",
  "invalid recipient", "not a valid mailbox", "account has been disabled",
  "account is disabled", "address rejected", NULL
};

/* Said of a transient failure given up on. */
static const char *const soft_phrases[] = {
  "mailbox full", "mailbox is full", "over quota", "quota exceeded",
  "exceeded storage", "insufficient storage", "in the queue too long",
  "too long in the queue", "retry timeout exceeded",
  "temporary failure", "temporarily", NULL
};

/* Said of a message still on its way. */
static const char *const delay_phrases[] = {
  "has been delayed", "delivery delayed", "has not yet been delivered",
  "not been delivered yet", "will continue trying", "will retry",
  "still trying", "no action is required on your part", NULL
};

/* What precedes the copy of the message in prose bounces. */
static const char *const copy_markers[] = {
  "below this line is a copy of the message",       /* qmail, Yahoo */
  "this is a copy of the message",                   /* Exim */
  "original message",                                /* Gmail, many */
  "returned message",
  "message follows",
  "undelivered message",
  NULL
};

/* Where the copy of the returned message starts in TEXT (the line after a
 * marker line of dashes), or NULL. */
static const char *
copy_start (const char *text)
{
  const char *line = text;

  while (line && *line) {
    const char *nl = strchr (line, '\n'), *p = line;
    size_t n = nl ? (size_t) (nl - line) : strlen (line);
    while (p < line + n && (*p == ' ' || *p == '\t'))
      p++;
    if (p + 3 <= line + n && p[0] == '-' && p[1] == '-' && p[2] == '-') {
      char buf[200];
      size_t k;
      snprintf (buf, sizeof buf, "%.*s", (int) (line + n - p), p);
      for (k = 0; copy_markers[k]; k++)
        if (strcasestr (buf, copy_markers[k]))
          return nl ? nl + 1 : line + n;
    }
    line = nl ? nl + 1 : NULL;
  }
  return NULL;
}

/* The first qmail-style recipient paragraph of TEXT (up to END): a line
 * "<address>:" and the lines after it up to a blank line.  Sets B's
 * recipient and returns the paragraph's reason (to free), or NULL. */
static char *
qmail_paragraph (struct bounce *b, const char *text, const char *end)
{
  const char *line = text;

  while (line && line < end && *line) {
    const char *nl = memchr (line, '\n', (size_t) (end - line));
    size_t n = nl ? (size_t) (nl - line) : (size_t) (end - line);
    const char *gt;
    while (n > 0 && (line[n - 1] == '\r' || line[n - 1] == ' '))
      n--;
    if (n > 4 && line[0] == '<' && line[n - 1] == ':'
        && (gt = memchr (line, '>', n)) && gt == line + n - 2
        && memchr (line, '@', n)) {
      const char *r = nl ? nl + 1 : end, *q = r;
      /* The reason: up to the next blank line. */
      while (q < end) {
        const char *e = memchr (q, '\n', (size_t) (end - q)), *k;
        e = e ? e : end;
        for (k = q; k < e && (*k == ' ' || *k == '\t' || *k == '\r'); k++)
          ;
        if (k == e)
          break;
        q = e < end ? e + 1 : end;
      }
      free (b->recipient);
      b->recipient = one_line (line + 1, n - 3);
      return xstrndup (r, (size_t) (q - r));
    }
    line = nl ? nl + 1 : NULL;
  }
  return NULL;
}

/* Gmail's older prose: "Delivery to the following recipient failed
 * permanently:" then the address on a line of its own. */
static void
gmail_recipient (struct bounce *b, const char *text, const char *end)
{
  const char *p = strcasestr (text, "delivery to the following recipient");
  const char *line;

  if (!p || p >= end || b->recipient)
    return;
  line = strchr (p, '\n');
  while (line && line < end) {
    const char *s = line + 1, *e = strchr (s, '\n');
    size_t n = e ? (size_t) (e - s) : strlen (s);
    while (n > 0 && (*s == ' ' || *s == '\t')) {
      s++;
      n--;
    }
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\r'))
      n--;
    if (n > 0) {
      if (memchr (s, '@', n) && !memchr (s, ' ', n))
        b->recipient = one_line (s, n);
      return;
    }
    line = e;
  }
}

static void
parse_text (struct bounce *b, GMimeMessage *msg, struct parts *f,
            GMimeMessage **copy_r)
{
  GMimeObject *o = GMIME_OBJECT (msg);
  const char *subject = g_mime_message_get_subject (msg);
  InternetAddressList *from = g_mime_message_get_from (msg);
  InternetAddress *a = from && internet_address_list_length (from) > 0
                       ? internet_address_list_get_address (from, 0) : NULL;
  const char *addr = a && INTERNET_ADDRESS_IS_MAILBOX (a)
                     ? internet_address_mailbox_get_addr (
                         INTERNET_ADDRESS_MAILBOX (a)) : NULL;
  char *text = NULL, *para = NULL, *above = NULL, code[16] = "";
  const char *end, *copy, *hit, *where, *signal = NULL, *scopes[2];
  size_t at, i;
  int cls = 0;

  if (f->text)
    text = part_text (f->text);
  else if (f->html && (text = part_text (f->html)))
    strip_tags (text);
  if (!text)
    text = xstrdup ("");

  /* Is it a bounce at all? */
  if (addr && (strncasecmp (addr, "mailer-daemon@", 14) == 0
               || strncasecmp (addr, "postmaster@", 11) == 0
               || strncasecmp (addr, "mail-daemon@", 12) == 0))
    signal = "sender";
  else if (subject && find_phrase (subject, bounce_subjects, NULL))
    signal = "subject";
  else if (find_phrase (text, bounce_text, NULL))
    signal = "text";
  if (!signal) {
    const char *auto_sub = header (o, "Auto-Submitted");
    if (header (o, "X-Autoreply") || header (o, "X-Autorespond")
        || (auto_sub && strncasecmp (auto_sub, "auto-replied", 12) == 0))
      set_why (b, BOUNCE_IGNORED, "an auto-reply (a vacation message or "
               "the like)");
    else
      set_why (b, BOUNCE_IGNORED, "no delivery or feedback report, and "
               "neither a bounce's sender, subject nor wording");
    goto out;
  }
  b->format = strcasestr (text, "qmail-send program") ? "qmail" : "text";

  /* The copy of the message, when the prose carries it inline. */
  copy = copy_start (text);
  end = copy ? copy : text + strlen (text);
  if (copy && !f->original && !f->headers && copy_r) {
    while (*copy == '\n' || *copy == '\r' || *copy == ' ')
      copy++;
    *copy_r = message_from_bytes (copy, strlen (copy));
  }

  /* The failed recipient and its reason: qmail's paragraph (Yahoo's
   * too), else the text above the copy. */
  para = qmail_paragraph (b, text, end);
  gmail_recipient (b, text, end);
  above = xstrndup (text, (size_t) (end - text));
  if (para && (cls = find_code (para, strlen (para), code, &at)))
    b->diagnostic = one_line_str (para);
  else if ((cls = find_code (above, strlen (above), code, &at)))
    b->diagnostic = line_at (above, at);
  if (cls != '5' && (hit = find_phrase (above, delay_phrases, NULL))) {
    set_why (b, BOUNCE_IGNORED, "a delay notice ('%s'): the sending server "
             "is still trying", hit);
    goto out;
  }
  if (cls == '5' || cls == '4') {
    b->kind = cls == '5' ? BOUNCE_HARD : BOUNCE_SOFT;
    snprintf (b->status, sizeof b->status, "%s", code);
    goto out;
  }
  /* No code: the words, the recipient's paragraph first.  Both kinds of
   * words in one place say nothing certain. */
  scopes[0] = para;
  scopes[1] = above;
  for (i = 0; i < 2; i++) {
    const char *soft, *hard, *sw = NULL, *hw = NULL;
    if (!scopes[i])
      continue;
    soft = find_phrase (scopes[i], soft_phrases, &sw);
    hard = find_phrase (scopes[i], hard_phrases, &hw);
    if (soft && hard) {
      set_why (b, BOUNCE_UNPARSEABLE, "a bounce that says both '%s' and "
               "'%s', and gives no status code", hard, soft);
      goto out;
    }
    if (soft || hard) {
      where = soft ? sw : hw;
      b->kind = soft ? BOUNCE_SOFT : BOUNCE_HARD;
      free (b->diagnostic);
      b->diagnostic = para ? one_line_str (para)
                           : line_at (scopes[i], (size_t) (where - scopes[i]));
      goto out;
    }
  }
  set_why (b, BOUNCE_UNPARSEABLE, "a bounce (by its %s), but no status code "
           "and no known phrase says whether the failure is permanent",
           signal);
out:
  free (para);
  free (above);
  free (text);
}

/* ---- one message ------------------------------------------------------ */

static void
parse_message (GMimeMessage *msg, struct bounce *b)
{
  GMimeObject *o = GMIME_OBJECT (msg), *top;
  GMimeHeaderList *list = g_mime_object_get_header_list (o);
  GMimeMessage *copy = NULL, *orig;
  GDateTime *date;
  struct parts f;
  const char *rt = NULL;

  memset (&f, 0, sizeof f);
  b->format = "";
  if (!list || g_mime_header_list_get_count (list) == 0) {
    set_why (b, BOUNCE_UNPARSEABLE, "not an e-mail message: no header");
    return;
  }
  if ((date = g_mime_message_get_date (msg))
      && g_date_time_to_unix (date) > 0)
    b->date = g_date_time_to_unix (date);
  scan_envelope (b, o);

  top = g_mime_message_get_mime_part (msg);
  if (top && is_type (top, "multipart", "report"))
    rt = g_mime_object_get_content_type_parameter (top, "report-type");
  g_mime_message_foreach (msg, parts_each, &f);

  if (f.dsn && !f.arf)
    parse_dsn (b, f.dsn);
  else if (f.arf)
    parse_arf (b, f.arf);
  else if (rt && strcasecmp (rt, "delivery-status") == 0) {
    b->format = "dsn";
    set_why (b, BOUNCE_UNPARSEABLE, "multipart/report; report-type="
             "delivery-status without a message/delivery-status part");
  } else if (rt && strcasecmp (rt, "feedback-report") == 0) {
    b->format = "arf";
    set_why (b, BOUNCE_UNPARSEABLE, "multipart/report; report-type="
             "feedback-report without a message/feedback-report part");
  } else
    parse_text (b, msg, &f, &copy);

  /* The returned message: attached whole, as its headers, or inline. */
  orig = f.original;
  if (!orig && !copy && f.headers) {
    size_t len;
    char *h = part_bytes (f.headers, BOUNCE_FIELDS_MAX, &len);
    if (h)
      copy = message_from_bytes (h, len);
    free (h);
  }
  scan_original (b, orig ? orig : copy);
  if (copy)
    g_object_unref (copy);
}

void
bounce_parse (const char *data, size_t len, struct bounce *b)
{
  GMimeMessage *m;

  if (len == 0) {
    set_why (b, BOUNCE_UNPARSEABLE, "an empty file");
    b->format = "";
    return;
  }
  if (!(m = message_from_bytes (data, len))) {
    set_why (b, BOUNCE_UNPARSEABLE, "GMime could not read it as a message");
    b->format = "";
    return;
  }
  parse_message (m, b);
  g_object_unref (m);
}

/* ---- mailboxes --------------------------------------------------------- */

struct reader {
  long *files;
  int unreadable;
  int (*cb) (void *data, const struct bounce_item *it);
  void *data;
};

/* Report NAME as unreadable for WHY (errno text). */
static int
unreadable (struct reader *r, const char *name, const char *why)
{
  struct bounce_item it = { name, why, NULL };

  r->unreadable++;
  return r->cb (r->data, &it);
}

/* Hand message M (NULL: GMime gave up) of NAME to the callback, with
 * FALLBACK as its time when it has no Date.  0, or -1 when the callback
 * said stop. */
static int
deliver (struct reader *r, const char *name, GMimeMessage *m,
         int64_t fallback)
{
  struct bounce b;
  struct bounce_item it = { name, NULL, &b };
  int rc;

  memset (&b, 0, sizeof b);
  if (m)
    parse_message (m, &b);
  else {
    b.format = "";
    set_why (&b, BOUNCE_UNPARSEABLE, "GMime could not read it as a message");
  }
  if (!b.date && fallback > 0)
    b.date = fallback;
  rc = r->cb (r->data, &it);
  bounce_free (&b);
  return rc ? -1 : 0;
}

/* The delivery time a Maildir file name starts with ("1700000000.M1P2.
 * host:2,S"), or 0. */
static int64_t
maildir_time (const char *name)
{
  int64_t t;
  const char *dot = strchr (name, '.');
  char buf[24];

  if (!dot || dot == name || (size_t) (dot - name) >= sizeof buf)
    return 0;
  snprintf (buf, sizeof buf, "%.*s", (int) (dot - name), name);
  return parse_int64 (buf, 1, INT64_C (1) << 40, &t) == 0 ? t : 0;
}

/* The time of an mbox From line ("From sender Mon Dec  7 10:00:00 2026",
 * asctime's form, which GMime's date reader takes), or 0. */
static int64_t
mbox_time (const char *marker)
{
  const char *p = marker;
  GDateTime *d;
  int64_t t = 0;

  if (!p || strncmp (p, "From ", 5) != 0)
    return 0;
  p += 5;
  while (*p == ' ')
    p++;
  while (*p && *p != ' ')
    p++;
  while (*p == ' ')
    p++;
  if (*p && (d = g_mime_utils_header_decode_date (p))) {
    t = g_date_time_to_unix (d);
    g_date_time_unref (d);
  }
  return t > 0 ? t : 0;
}

/* One message file, or an mbox when MBOX_OK and it starts "From ". */
static int
read_file (struct reader *r, const char *path, int mbox_ok, int64_t fallback)
{
  GMimeStream *s;
  GMimeParser *p;
  GMimeMessage *m;
  struct stat sb;
  char head[5];
  ssize_t n;
  int fd, rc = 0;

  /* O_NONBLOCK: a FIFO among the files must not hang the import (it is
   * then refused as not a regular file); a regular file ignores it. */
  if ((fd = open (path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)) < 0)
    return unreadable (r, path, strerror (errno)) ? -1 : 0;
  if (fstat (fd, &sb) < 0) {
    int e = errno;
    close (fd);
    return unreadable (r, path, strerror (e)) ? -1 : 0;
  }
  if (!S_ISREG (sb.st_mode)) {
    close (fd);
    return unreadable (r, path, "not a regular file") ? -1 : 0;
  }
  n = pread (fd, head, sizeof head, 0);
  if (n < 0) {
    int e = errno;
    close (fd);
    return unreadable (r, path, strerror (e)) ? -1 : 0;
  }
  (*r->files)++;
  if (n == 0) {
    struct bounce b;
    struct bounce_item it = { path, NULL, &b };
    memset (&b, 0, sizeof b);
    b.format = "";
    set_why (&b, BOUNCE_UNPARSEABLE, "an empty file");
    rc = r->cb (r->data, &it) ? -1 : 0;
    bounce_free (&b);
    close (fd);
    return rc;
  }
  s = g_mime_stream_fs_new (fd);     /* closes FD when released */
  p = g_mime_parser_new_with_stream (s);
  if (mbox_ok && n == 5 && memcmp (head, "From ", 5) == 0) {
    long i = 0;
    g_mime_parser_set_format (p, GMIME_FORMAT_MBOX);
    while (rc == 0 && !g_mime_parser_eos (p)) {
      char *name, *marker;
      gint64 off;
      m = g_mime_parser_construct_message (p, NULL);
      off = g_mime_parser_get_mbox_marker_offset (p);
      marker = g_mime_parser_get_mbox_marker (p);
      i++;
      name = xasprintf ("%s, message %ld at byte %lld", path, i,
                        (long long) (off >= 0 ? off : 0));
      if (!m) {
        /* GMime cannot find the next From line: the rest is lost to it,
         * said once. */
        rc = deliver (r, name, NULL, 0);
        free (name);
        g_free (marker);
        break;
      }
      rc = deliver (r, name, m, mbox_time (marker));
      g_object_unref (m);
      g_free (marker);
      free (name);
    }
  } else {
    m = g_mime_parser_construct_message (p, NULL);
    rc = deliver (r, path, m, fallback);
    if (m)
      g_object_unref (m);
  }
  g_object_unref (p);
  g_object_unref (s);
  return rc;
}

static int
no_dot (const struct dirent *d)
{
  return d->d_name[0] != '.';
}

/* The files of DIR/SUB in name order. */
static int
read_maildir_sub (struct reader *r, const char *dir, const char *sub)
{
  struct dirent **list = NULL;
  char *path = xasprintf ("%s/%s", dir, sub);
  int n, i, rc = 0;

  n = scandir (path, &list, no_dot, alphasort);
  if (n < 0) {
    rc = errno == ENOENT ? 0 : unreadable (r, path, strerror (errno)) ? -1 : 0;
    free (path);
    return rc;
  }
  for (i = 0; i < n; i++) {
    char *file = xasprintf ("%s/%s", path, list[i]->d_name);
    if (rc == 0)
      rc = read_file (r, file, 0, maildir_time (list[i]->d_name));
    free (file);
    free (list[i]);
  }
  free (list);
  free (path);
  return rc;
}

int
bounce_read (const char *path, long *files_r,
             int (*cb) (void *data, const struct bounce_item *it), void *data)
{
  struct reader r = { files_r, 0, cb, data };
  struct stat sb;
  int rc;

  if (stat (path, &sb) < 0)
    rc = unreadable (&r, path, strerror (errno)) ? -1 : 0;
  else if (S_ISDIR (sb.st_mode)) {
    char *cur = xasprintf ("%s/cur", path), *new = xasprintf ("%s/new", path);
    struct stat c, n;
    int has_cur = stat (cur, &c) == 0 && S_ISDIR (c.st_mode);
    int has_new = stat (new, &n) == 0 && S_ISDIR (n.st_mode);
    free (cur);
    free (new);
    if (!has_cur && !has_new)
      rc = unreadable (&r, path, "a folder, but not a Maildir (no cur/ or "
                       "new/ in it)") ? -1 : 0;
    else {
      rc = read_maildir_sub (&r, path, "cur");
      if (rc == 0)
        rc = read_maildir_sub (&r, path, "new");
    }
  } else
    rc = read_file (&r, path, 1, 0);
  return rc < 0 ? -1 : r.unreadable;
}
