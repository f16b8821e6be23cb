/* jsoncheck.h: is this one JSON text (RFC 8259)?  Without building a tree.
 *
 * Shared by the core (which checks a rendered webhook.body or push.data
 * before recording the message) and the webhook plugin (which checks the
 * body again before signing it, since a message can come from an older
 * store).  A recogniser costs no allocation: jansson built and freed a
 * tree per message for the same answer, at ten times the instructions.
 * Pure function, thread-safe, locale-independent. */
#ifndef HERALD_JSONCHECK_H
#define HERALD_JSONCHECK_H

#include <stddef.h>

/* Deepest nesting of arrays and objects accepted. */
#define JSONCHECK_MAX_DEPTH 512

/* 0 when S[0..LEN) is exactly one JSON value, with optional whitespace
 * around it.  Strings must be UTF-8 (RFC 8259 section 8.1: no overlong
 * forms, no surrogates, nothing above U+10FFFF).  Otherwise -1, with
 * *WHY_R a static reason ("expected ':'") and *OFF_R the byte offset
 * where it went wrong. */
int jsoncheck (const char *s, size_t len, const char **why_r, size_t *off_r);

/* The 1-based line and column (in bytes) of byte offset OFF of S. */
void jsoncheck_position (const char *s, size_t off, int *line_r, int *col_r);

#endif
