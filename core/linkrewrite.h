/* linkrewrite: tracked links and the open pixel in a rendered e-mail.
 *
 * linkrewrite_html tokenizes HTML the way a browser does (WHATWG HTML,
 * section 13.2.5 "Tokenization": tags and their attributes with double-,
 * single- or unquoted values, comments, doctypes and bogus comments, the
 * script data states, RAWTEXT of style, xmp, iframe, noembed and noframes,
 * RCDATA of title and textarea, plaintext) and changes only:
 *
 *  - the href of each <a> or <area> start tag whose URL, character
 *    references decoded (13.2.5.72-80) and surrounding spaces, tabs and
 *    newlines removed as the URL parser does, is an absolute http: or
 *    https: URL with an authority ("http://", "https:\\\\"...), except the
 *    unsubscribe URL and links into base_url itself.  It becomes the URL
 *    the caller's track function returns, escaped, in double quotes;
 *  - an <a> or <area> with a data-herald-notrack attribute: that attribute
 *    is removed, and the link left as it is;
 *  - the open pixel, <img src="PIXEL" width="1" height="1" alt="">, put
 *    before the first </body> end tag, else at the end: before a comment,
 *    tag or raw-text element the text leaves unfinished, which would
 *    otherwise swallow it.
 *
 * Every other byte is copied unchanged.  linkrewrite_text does the same
 * for the URLs of a plain-text part.  Nothing here touches the store,
 * the network or a key: the caller signs the URLs (track).
 *
 * Not modelled, on purpose: foreign content (inside <svg> or <math>,
 * style and title hold markup and CDATA sections are real, where here
 * they are raw text and a bogus comment); <noscript> is read with
 * scripting off, as mail clients read it.
 */
#ifndef HERALD_LINKREWRITE_H
#define HERALD_LINKREWRITE_H

#include <stddef.h>

#include "util.h"

struct linkrewrite {
  const char *base_url;        /* links into it are left alone; or NULL */
  const char *unsubscribe_url; /* left alone; or NULL */
  const char *pixel_url;       /* the open pixel's src; NULL: no pixel */
  /* The tracked URL for URL[0..LEN) (normalised as said above, never
   * holding a control character), malloc'ed (the rewriter frees it), or
   * NULL when it cannot be made: the rewrite then fails.  NULL track:
   * no link is rewritten. */
  char *(*track) (void *data, const char *url, size_t len);
  void *data;
};

/* Append HTML[0..LEN), rewritten, to OUT.  Returns the number of links
 * rewritten, or -1 when track failed (OUT then holds a part: discard). */
long linkrewrite_html (const struct linkrewrite *o, const char *html,
                       size_t len, struct strbuf *out);

/* Append TEXT[0..LEN) to OUT with each http(s) URL in it (up to a space,
 * control, <, > or ", less trailing punctuation and unbalanced closing
 * brackets) rewritten under the same rules.  Returns the count or -1. */
long linkrewrite_text (const struct linkrewrite *o, const char *text,
                       size_t len, struct strbuf *out);

/* The pieces, for the tests and the fuzzer. */

/* Append the attribute value RAW[0..LEN) decoded: character references
 * (the attribute rules: "&amp=" and "&notit" stay as written), NUL as
 * U+FFFD, CR LF and CR as LF. */
void linkrewrite_attr_decode (const char *raw, size_t len, struct strbuf *out);

/* Append URL[0..LEN) as the URL parser reads it: leading and trailing C0
 * controls and spaces removed, and every tab, LF and CR. */
void linkrewrite_url_normalise (const char *url, size_t len,
                                struct strbuf *out);

/* 1 when the normalised URL[0..LEN) is one to track under O's rules. */
int linkrewrite_trackable (const struct linkrewrite *o, const char *url,
                           size_t len);

#endif
