/* mime.h: the RFC 5322 / MIME bytes of one Herald e-mail message.
 *
 * Shared by the email plugin (which sends these bytes over SMTP) and the
 * outbox plugin (which writes the same bytes into Maildir files).  Pure
 * functions: no I/O, no clock, no randomness, no global state, thread-safe.
 * The same message and From value always give the same bytes:
 *  - Date comes from message->created (UTC, RFC 5322 section 3.3);
 *  - Message-ID is <HEX32.herald@DOMAIN>, HEX32 = the first 16 bytes of
 *    SHA-256(message->key) in hex, DOMAIN = the domain of the From address
 *    (RFC 5322 section 3.6.4);
 *  - the multipart boundary is derived from the same hash.
 *
 * What mime_build produces (RFC 5322, RFC 2045-2047, RFC 8058):
 *   Date, From, To, Subject, Message-ID, MIME-Version: 1.0,
 *   List-Unsubscribe: <https://...>, <mailto:...>  (each when present),
 *   List-Unsubscribe-Post: List-Unsubscribe=One-Click (when the https
 *   URL is present), then either one text/plain or text/html part, or
 *   multipart/alternative with text/plain first and text/html last.
 *   Bodies are UTF-8, quoted-printable, lines of at most 76 octets; every
 *   line ends in CRLF; header lines stay within 998 octets and are folded
 *   near 78.  Non-ASCII subjects and display names become RFC 2047 "B"
 *   encoded-words of at most 75 characters, split on UTF-8 character
 *   boundaries.  No Bcc header is ever emitted.  The bytes are not
 *   dot-stuffed (SMTP clients do that).
 *
 * Parts read from the message: "email.subject" (required, may be empty),
 * "email.text" and "email.html" (at least one).  CR and LF inside the
 * subject or a display name are replaced by spaces (a header cannot carry
 * a line break).  Recipients: every message->to[i] (whatever its type)
 * becomes one To mailbox; message->to_name is the display name of the
 * first.
 */
#ifndef HERALD_MIME_H
#define HERALD_MIME_H

#include <stddef.h>
#include <herald/plugin.h>

/* A growable byte buffer.  data is NUL-terminated after every successful
 * append (the NUL is not counted in len).  After an allocation failure
 * the buffer sets failed = 1, drops further appends and keeps its data. */
struct mime_buf {
  char *data;
  size_t len;
  size_t cap;
  int failed;
};

/* Empty a buffer without allocating.  Free with mime_buf_free. */
void mime_buf_init (struct mime_buf *b);
/* Release b->data and re-initialise b; NULL is a no-op. */
void mime_buf_free (struct mime_buf *b);
/* Append len bytes; returns 0, or -1 (and sets b->failed) on ENOMEM. */
int mime_buf_add (struct mime_buf *b, const void *p, size_t len);

/* Return codes of mime_build and mime_parse_mailbox. */
#define MIME_OK 0
#define MIME_ERROR (-1)        /* bad message (missing parts...) or ENOMEM */
#define MIME_EADDRESS (-2)     /* a recipient address is not an address */
#define MIME_EFROM (-3)        /* the From value is not "Name <addr>"/addr */

#define MIME_NAME_MAX 256
#define MIME_ADDR_MAX 256

/* A mailbox (RFC 5322 section 3.4): display name (UTF-8, possibly empty)
 * and addr-spec. */
struct mime_mailbox {
  char name[MIME_NAME_MAX];
  char addr[MIME_ADDR_MAX];
};

/* Parse "Name <local@domain>", "\"Name\" <local@domain>", "<local@domain>"
 * or "local@domain" into mb.  Returns MIME_OK, or MIME_EFROM after writing
 * a message into err.  The address must pass address_email_ok
 * (address.h), as every recipient must. */
int mime_parse_mailbox (const char *s, struct mime_mailbox *mb,
                        char *err, size_t errlen);

/* Write the Message-ID mime_build would use for (key, from_addr), with
 * its angle brackets, into buf (at least 128 bytes are enough for domains
 * up to 80 octets).  Returns 0, or -1 when it does not fit. */
int mime_message_id (const char *key, const char *from_addr,
                     char *buf, size_t buflen);

/* Append the complete message (headers, blank line, body; CRLF line
 * endings) to out, which the caller initialised and frees.  from is the
 * From header value as configured: "Name <address>" (see
 * mime_parse_mailbox).  Returns MIME_OK, or MIME_ERROR / MIME_EADDRESS /
 * MIME_EFROM after writing a message into err; out may then hold a
 * partial message, which the caller discards. */
int mime_build (const struct herald_message *m, const char *from,
                struct mime_buf *out, char *err, size_t errlen);

#endif /* HERALD_MIME_H */
