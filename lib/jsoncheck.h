/* jsoncheck.h: is this one JSON text (RFC 8259)?  Without building a tree.
 *
 * Shared by the core (which checks a rendered webhook.body or push.data
 * before recording the message) and the webhook plugin (which checks the
 * body again before signing it, since a message can come from an older
 * store).  A recogniser costs no allocation: jansson built and freed a
 * tree per message for the same answer, at ten times the instructions.
 * The same grammar also builds jansson trees (jsoncheck_load), for the
 * customer records the scheduler reads by the million.  Thread-safe;
 * numbers are read in the C locale, which Herald never changes. */
#ifndef HERALD_JSONCHECK_H
#define HERALD_JSONCHECK_H

#include <stddef.h>

#include <jansson.h>

/* Deepest nesting of arrays and objects accepted. */
#define JSONCHECK_MAX_DEPTH 512

/* 0 when S[0..LEN) is exactly one JSON value, with optional whitespace
 * around it.  Strings must be UTF-8 (RFC 8259 section 8.1: no overlong
 * forms, no surrogates, nothing above U+10FFFF).  Otherwise -1, with
 * *WHY_R a static reason ("expected ':'") and *OFF_R the byte offset
 * where it went wrong. */
int jsoncheck (const char *s, size_t len, const char **why_r, size_t *off_r);

/* The jansson tree of S[0..LEN), or NULL with the reason and offset as
 * jsoncheck gives them.  What json_loadb (S, LEN, 0, ...) builds, about
 * three times faster: an object or an array at the top (any value with
 * JSONCHECK_ANY), the last of duplicate keys (or an error with
 * JSONCHECK_REJECT_DUPLICATES), no \u0000, no lone surrogate escape, no
 * integer beyond 64 bits, no real overflowing a double. */
#define JSONCHECK_ANY 1
#define JSONCHECK_REJECT_DUPLICATES 2
json_t *jsoncheck_load (const char *s, size_t len, int flags,
                        const char **why_r, size_t *off_r);

/* The 1-based line and column (in bytes) of byte offset OFF of S. */
void jsoncheck_position (const char *s, size_t off, int *line_r, int *col_r);

#endif
