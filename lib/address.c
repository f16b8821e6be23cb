/* address.c: the address checks that import and send share.  See
 * address.h.  It judges the text only: it never resolves a domain or a
 * host, which is the plugin's business at send time. */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "address.h"

/* Refuse, with REASON in WHY. */
static int
address_no (char *why, size_t whylen, const char *reason)
{
  if (why && whylen)
    snprintf (why, whylen, "%s", reason);
  return 0;
}

/* Refuse because of byte C, naming it only when it is printable ASCII. */
static int
address_bad_byte (char *why, size_t whylen, unsigned char c)
{
  if (c == ' ')
    return address_no (why, whylen, "a space");
  if (c < 0x20 || c == 0x7f)
    return address_no (why, whylen, "a control character");
  if (c >= 0x80)
    return address_no (why, whylen, "a character outside ASCII");
  if (why && whylen)
    snprintf (why, whylen, "'%c' is not allowed", c);
  return 0;
}

/* Refuse because of a count of digits. */
static int
address_digits (char *why, size_t whylen, size_t n, const char *limit)
{
  if (why && whylen)
    snprintf (why, whylen, "%zu digit%s (%s)", n, n == 1 ? "" : "s", limit);
  return 0;
}

int
address_email_ok (const char *s, char *why, size_t whylen)
{
  const char *at = NULL, *p;

  if (!s || !*s)
    return address_no (why, whylen, "it is empty");
  if (strlen (s) > ADDRESS_EMAIL_MAX)
    return address_no (why, whylen, "longer than 255 bytes");
  for (p = s; *p; p++) {
    unsigned char c = (unsigned char) *p;
    if (c >= 0x80)
      return address_no (why, whylen, "a character outside ASCII (SMTPUTF8 "
                         "is not supported)");
    if (c <= ' ' || c == 0x7f || strchr ("<>(),;\\\"[]", c))
      return address_bad_byte (why, whylen, c);
    if (c == '@') {
      if (at)
        return address_no (why, whylen, "more than one @");
      at = p;
    }
  }
  if (!at)
    return address_no (why, whylen, "no @");
  if (at == s)
    return address_no (why, whylen, "nothing before the @");
  if (!at[1])
    return address_no (why, whylen, "nothing after the @");
  if (at[1] == '.')
    return address_no (why, whylen, "the domain starts with a dot");
  if (p[-1] == '.')
    return address_no (why, whylen, "it ends with a dot");
  return 1;
}

int
address_e164_ok (const char *s, char *why, size_t whylen)
{
  size_t n = 0;

  if (!s || *s != '+')
    return address_no (why, whylen, "no + at the start");
  for (s++; s[n]; n++)
    if (s[n] < '0' || s[n] > '9')
      return address_bad_byte (why, whylen, (unsigned char) s[n]);
  if (n && s[0] == '0')
    return address_no (why, whylen, "the first digit is 0 (no country code "
                       "starts with 0)");
  if (n < 8)
    return address_digits (why, whylen, n, "at least 8");
  if (n > 15)
    return address_digits (why, whylen, n, "at most 15");
  return 1;
}

int
address_url_ok (const char *s, char *why, size_t whylen)
{
  const char *h;
  const unsigned char *p;

  if (s && strncasecmp (s, "https://", 8) == 0)
    h = s + 8;
  else if (s && strncasecmp (s, "http://", 7) == 0)
    h = s + 7;
  else
    return address_no (why, whylen, "not http:// or https://");
  for (p = (const unsigned char *) s; *p; p++)
    if (*p <= ' ' || *p == 0x7f)
      return address_bad_byte (why, whylen, *p);
  if (!*h || *h == '/' || *h == ':' || *h == '?' || *h == '#')
    return address_no (why, whylen, "no host");
  return 1;
}
