/* jsonw.h: compact JSON text of a jansson value, without json_dumps.
 *
 * The scheduler encodes every message's address list and rendered parts
 * into its outbox row; json_dumps went through a callback per fragment and
 * a UTF-8 decode per character, about 20,000 instructions for a 300-byte
 * webhook body.  This writes the same bytes as
 * json_dumps (j, JSON_COMPACT | JSON_ENCODE_ANY) (non-ASCII left as UTF-8,
 * objects in their order), copying runs that need no escape whole. */
#ifndef HERALD_JSONW_H
#define HERALD_JSONW_H

#include <jansson.h>

#include "util.h"

/* Append the text of J to B. */
void jsonw_append (struct strbuf *b, const json_t *j);

/* The text of J, malloc'ed (never NULL: aborts on out of memory), or NULL
 * when J is NULL. */
char *jsonw_dumps (const json_t *j);

#endif
