/* address.h: is this a customer's address Herald can send to?
 *
 * One answer per kind of address, shared by the core (herald customers
 * import refuses the line) and the plugins (send answers
 * HERALD_INVALID_ADDRESS): an address import takes is one the plugin of
 * its kind takes, and the other way round.  Before, import checked "one
 * @, no spaces" and the email plugin refused "a>b@example.com" only at
 * send time, after the message was recorded; import took "+0123456789"
 * as E.164.
 *
 * Each function returns 1 when S is such an address, else 0 and, when
 * WHY is not NULL, a short reason in WHY (WHYLEN bytes): "'>' is not
 * allowed", "the first digit is 0".  The reason never copies a control
 * character or a byte outside ASCII from S.  Pure functions: no
 * allocation, no global state, thread-safe. */
#ifndef HERALD_ADDRESS_H
#define HERALD_ADDRESS_H

#include <stddef.h>

/* An e-mail address (RFC 5321 section 4.1.2 Mailbox, in the form the
 * email plugin hands to libESMTP and writes into To): exactly one '@', a
 * local part and a domain that are not empty, a domain that does not
 * start with '.' and an address that does not end with it, at most 255
 * bytes; printable ASCII only (no SMTPUTF8, RFC 6531: libESMTP does not
 * negotiate it), and none of the characters that would break a header or
 * an SMTP command: space < > ( ) , ; \ " [ ]. */
#define ADDRESS_EMAIL_MAX 255
int address_email_ok (const char *s, char *why, size_t whylen);

/* An E.164 number (ITU-T E.164 section 6): '+', then 8 to 15 digits, the
 * first 1 to 9 (no country code starts with 0).  Nothing else: no
 * spaces, dots or dashes. */
int address_e164_ok (const char *s, char *why, size_t whylen);

/* A webhook URL: http:// or https:// (the scheme in any case, RFC 3986
 * section 3.1), then a host, and no space or control character anywhere
 * (it goes into an HTTP request line). */
int address_url_ok (const char *s, char *why, size_t whylen);

#endif
