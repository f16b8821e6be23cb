/* util: allocation that aborts on out-of-memory, growable strings, number
 * parsing and time.  Shared by every module of the core (not by plugins). */
#ifndef HERALD_UTIL_H
#define HERALD_UTIL_H
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

void *xmalloc (size_t n);
void *xcalloc (size_t n, size_t size);
void *xrealloc (void *p, size_t n);
char *xstrdup (const char *s);
char *xstrndup (const char *s, size_t n);
char *xasprintf (const char *fmt, ...) __attribute__ ((format (printf, 1, 2)));

/* A growable byte string, always NUL-terminated.  Zero-initialise it, or
 * use STRBUF_INIT; strbuf_free releases it. */
struct strbuf {
  char *s;
  size_t len, cap;
};
#define STRBUF_INIT { NULL, 0, 0 }
void strbuf_add (struct strbuf *b, const char *s, size_t n);
void strbuf_adds (struct strbuf *b, const char *s);
void strbuf_addc (struct strbuf *b, char c);
void strbuf_addf (struct strbuf *b, const char *fmt, ...)
  __attribute__ ((format (printf, 2, 3)));
void strbuf_vaddf (struct strbuf *b, const char *fmt, va_list ap)
  __attribute__ ((format (printf, 2, 0)));
void strbuf_reset (struct strbuf *b);
/* Room for MORE bytes (and the NUL) after b->len, for writing in place. */
void strbuf_grow (struct strbuf *b, size_t more);
void strbuf_free (struct strbuf *b);

/* The whole content of PATH (NUL-terminated, length in *LEN_R), to free;
 * NULL with errno set when it cannot be read. */
char *slurp_file (const char *path, size_t *len_r);

/* Create the folders leading to the file PATH (mkdir -p of its
 * directory).  A folder this creates is mode 0700 whatever the umask (it
 * holds customer data); one that exists is left as it is.  0, or -1 with
 * errno set. */
int mkdir_parents (const char *path);

/* open (PATH, FLAGS) where FLAGS hold O_CREAT: a file this call creates is
 * mode 0600 whatever the umask; one that exists keeps its mode.  Returns
 * the descriptor (the caller closes it), or -1 with errno set. */
int open_private (const char *path, int flags);

/* Parse a whole decimal integer in [min, max]; 0 or -1 (junk, range). */
int parse_int64 (const char *s, int64_t min, int64_t max, int64_t *v_r);
/* Parse "yes"/"no"/"true"/"false"/"1"/"0"/"on"/"off"; 0 or -1. */
int parse_bool (const char *s, int *v_r);
/* Parse a duration "30", "30s", "5m", "24h", "7d" into seconds. */
int parse_duration (const char *s, int64_t *seconds_r);

/* HOST:PORT with a numeric host (an IPv6 one in brackets) into a socket
 * address: 0, or -1 when it is not one. */
struct sockaddr_storage;
int parse_listen_addr (const char *v, struct sockaddr_storage *sa,
                       socklen_t *len_r);
/* An event type: [a-z][a-z0-9_.-]*, at most 64 bytes.  1 or 0. */
int valid_event_type (const char *s);
/* Parse RFC 3339 ("2026-11-01T10:00:00Z", "+02:00" offsets, fraction
 * ignored) into unix seconds; 0 or -1. */
int parse_rfc3339 (const char *s, int64_t *t_r);

/* Wall clock in seconds and milliseconds.  HERALD_NOW (unix seconds)
 * overrides it, so tests can run at a fixed instant. */
int64_t now_seconds (void);
/* T (unix seconds) as RFC 3339 in UTC, "2026-12-06T10:00:00Z", into BUF
 * (21 bytes and its NUL). */
void format_utc (int64_t t, char *buf, size_t len);
int64_t now_ms (void);

/* Copy at most size-1 bytes and NUL-terminate; returns strlen (src). */
size_t strlcpy_ (char *dst, const char *src, size_t size);

/* The length of the longest well-formed UTF-8 prefix of S[0..LEN) (RFC
 * 3629: no overlong forms, surrogates or code points above U+10FFFF):
 * LEN when all of it is, else the offset of the first bad byte. */
size_t utf8_check (const char *s, size_t len);

/* Append S[0..LEN) to B as text that cannot act on a terminal or split a
 * log line: LF, CR and tab as \n, \r, \t; other C0 controls, DEL and
 * bytes that are not UTF-8 as \xNN; C1 controls, U+2028, U+2029 and the
 * bidirectional controls as \uNNNN.  Everything else, backslashes
 * included, is copied: escaping escaped text changes nothing, so a
 * message may pass through it at several levels.  Use it for every value
 * from an input file or a request that goes into a message. */
void strbuf_add_escaped (struct strbuf *b, const char *s, size_t len);

/* The same for the NUL-terminated message in BUF (SIZE bytes), rewritten
 * in place; cut to fit, never inside a UTF-8 sequence. */
void escape_in_place (char *buf, size_t size);

#endif
