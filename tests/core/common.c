/* tests/core/common.c: the small encoders and checkers of the core.
 *  - hmac256 against OpenSSL's one-shot HMAC() (an independent path
 *    through the library) for keys of every length from 0 to 200 bytes
 *    (longer than the 64-byte block: hashed first) and messages fed in
 *    one piece or several;
 *  - jsoncheck on RFC 8259 texts and non-texts, with the offset and the
 *    line and column of the first error;
 *  - jsonw against json_dumps (JSON_COMPACT | JSON_ENCODE_ANY) on random
 *    trees: byte for byte the same text;
 *  - strbuf_add_escaped and escape_in_place, what every error message
 *    shows of a value: controls, bytes that are not UTF-8, C1 and bidi
 *    controls escaped, everything else kept, idempotent;
 *  - the address checks (address.h): verdicts and reasons. */
#include <config.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/hmac.h>

#include "../../lib/address.h"
#include "../../lib/hmac256.h"
#include "../../lib/jsoncheck.h"
#include "jsonw.h"
#include "util.h"
#include "../tap.h"

static void
test_hmac (void)
{
  unsigned char key[200], msg[300], want[EVP_MAX_MD_SIZE], got[HMAC256_LEN];
  unsigned int wlen = 0;
  size_t i, klen, bad = 0, bad_split = 0;
  struct hmac256 h;

  for (i = 0; i < sizeof key; i++)
    key[i] = (unsigned char) (i * 7 + 3);
  for (i = 0; i < sizeof msg; i++)
    msg[i] = (unsigned char) (i * 13 + 1);
  for (klen = 0; klen <= sizeof key; klen++) {
    size_t mlen = (klen * 3) % sizeof msg;
    if (hmac256_init (&h, key, klen) < 0) {
      bad++;
      continue;
    }
    HMAC (EVP_sha256 (), key, (int) klen, msg, mlen, want, &wlen);
    /* twice with the same state: the key is not consumed by a MAC */
    if (hmac256 (&h, msg, mlen, got) < 0 || wlen != HMAC256_LEN
        || memcmp (want, got, HMAC256_LEN) != 0
        || hmac256 (&h, msg, mlen, got) < 0
        || memcmp (want, got, HMAC256_LEN) != 0)
      bad++;
    if (hmac256_begin (&h) < 0 || hmac256_update (&h, msg, mlen / 3) < 0
        || hmac256_update (&h, msg + mlen / 3, 0) < 0
        || hmac256_update (&h, msg + mlen / 3, mlen - mlen / 3) < 0
        || hmac256_final (&h, got) < 0 || memcmp (want, got, HMAC256_LEN) != 0)
      bad_split++;
    hmac256_free (&h);
  }
  tap_ok (bad == 0, "hmac256 equals HMAC() for keys of 0 to 200 bytes "
          "(%zu differ)", bad);
  tap_ok (bad_split == 0, "hmac256 fed in pieces equals HMAC() (%zu differ)",
          bad_split);
}

static void
test_json (void)
{
  static const char *const good[] = {
    "{}", "[]", "0", "-0.5e+10", "\"\"", "true", "false", "null",
    " \t\r\n{\"a\" : [1, 2.5, -3e2, {\"b\": null}], \"c\": \"\\u00e9\\n\"} \n",
    "\"Zo\xc3\xab \xe2\x82\xac \xf0\x9f\x98\x80\"", "[[[[[[[[[[]]]]]]]]]]",
    "{\"\":\"\\\"\\\\\\/\\b\\f\\n\\r\\t\"}", "1E5", "[0,1,9.99]",
  };
  static const struct {
    const char *in, *why;
    size_t off;
    int line, col;
  } bad[] = {
    { "", "unexpected end of input", 0, 1, 1 },
    { "   ", "unexpected end of input", 3, 1, 4 },
    { "{\"a\" 1}", "expected ':'", 5, 1, 6 },
    { "{\n  \"a\": 1,\n  \"b\": tru\n}", "invalid token", 19, 3, 8 },
    { "{\"a\":1 \"b\":2}", "expected ',' or '}'", 7, 1, 8 },
    { "[1 2]", "expected ',' or ']'", 3, 1, 4 },
    { "{,}", "expected a string key", 1, 1, 2 },
    { "{\"a\":\"x", "unterminated string", 7, 1, 8 },
    { "\"x\\q\"", "bad escape", 3, 1, 4 },
    { "\"\\u12\"", "bad \\u escape", 2, 1, 3 },
    { "\"a\001\"", "control character in string", 2, 1, 3 },
    { "01", "data after the JSON value", 1, 1, 2 },
    { "1.", "invalid token", 0, 1, 1 },
    { "-", "invalid token", 0, 1, 1 },
    { "[1,]", "unexpected bracket", 3, 1, 4 },
    { "{} x", "data after the JSON value", 3, 1, 4 },
    { "\"\xc0\xaf\"", "string is not UTF-8", 1, 1, 2 },        /* overlong */
    { "\"\xed\xa0\x80\"", "string is not UTF-8", 1, 1, 2 },    /* surrogate */
    { "\"\xf4\x90\x80\x80\"", "string is not UTF-8", 1, 1, 2 },/* > U+10FFFF */
    { "\"\xe2\x82\"", "string is not UTF-8", 1, 1, 2 },        /* truncated */
    { "NaN", "invalid token", 0, 1, 1 },
    { "'a'", "invalid token", 0, 1, 1 },
  };
  char deep[2 * JSONCHECK_MAX_DEPTH + 4];
  const char *why;
  size_t i, off, ok = 0;
  int line, col;

  for (i = 0; i < sizeof good / sizeof good[0]; i++)
    if (jsoncheck (good[i], strlen (good[i]), &why, &off) == 0)
      ok++;
    else
      printf ("# rejected %s: %s at %zu\n", good[i], why, off);
  tap_ok (ok == sizeof good / sizeof good[0], "every JSON text is accepted");

  ok = 0;
  for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    why = NULL;
    off = 99;
    line = col = 0;
    if (jsoncheck (bad[i].in, strlen (bad[i].in), &why, &off) == -1
        && why && strcmp (why, bad[i].why) == 0 && off == bad[i].off) {
      jsoncheck_position (bad[i].in, off, &line, &col);
      if (line == bad[i].line && col == bad[i].col) {
        ok++;
        continue;
      }
    }
    printf ("# %s: %s at %zu (%d:%d)\n", bad[i].in, why ? why : "accepted",
            off, line, col);
  }
  tap_ok (ok == sizeof bad / sizeof bad[0],
          "every non-text is refused with its reason, offset, line and column");

  memset (deep, '[', JSONCHECK_MAX_DEPTH);
  memset (deep + JSONCHECK_MAX_DEPTH, ']', JSONCHECK_MAX_DEPTH);
  tap_ok (jsoncheck (deep, 2 * JSONCHECK_MAX_DEPTH, &why, &off) == 0,
          "nesting up to the limit is accepted");
  memset (deep, '[', JSONCHECK_MAX_DEPTH + 1);
  memset (deep + JSONCHECK_MAX_DEPTH + 1, ']', JSONCHECK_MAX_DEPTH + 1);
  tap_ok (jsoncheck (deep, 2 * JSONCHECK_MAX_DEPTH + 2, &why, &off) == -1
          && strcmp (why, "nested too deeply") == 0,
          "one level deeper is refused, without recursing further");
  tap_ok (jsoncheck ("{\"a\":1}\0", 8, &why, &off) == -1 && off == 7,
          "a NUL byte after the value is data, not the end");
}

/* A random tree: strings of every kind of byte a JSON string escapes,
 * multi-byte UTF-8 and NULs; integers at the extremes; reals; nesting. */
static json_t *
random_value (unsigned *seed, int depth)
{
  static const char *const pieces[] = {
    "a", "Zo\xc3\xab", "\xe2\x82\xac", "\xf0\x9f\x98\x80", "\"", "\\", "/",
    "\n", "\r", "\t", "\b", "\f", "\x01", "\x1f", "\x7f", " ", "<\\/script>",
  };
  int kind = rand_r (seed) % (depth > 3 ? 6 : 8);

  switch (kind) {
  case 0: case 1: {
      char s[64];
      size_t n = 0;
      int k = rand_r (seed) % 8;
      while (k-- > 0) {
        const char *p = pieces[rand_r (seed) % (sizeof pieces / sizeof pieces[0])];
        size_t l = strlen (p);
        memcpy (s + n, p, l);
        n += l;
      }
      if (rand_r (seed) % 5 == 0)
        s[n++] = '\0';
      return json_stringn (s, n);
    }
  case 2: {
      static const json_int_t ints[] = { 0, -1, 7, INT64_MAX, INT64_MIN };
      return json_integer (ints[rand_r (seed) % 5]);
    }
  case 3:
    return json_real ((double) rand_r (seed) / 7.0 - 1000.0);
  case 4:
    return rand_r (seed) % 2 ? json_true () : json_false ();
  case 5:
    return json_null ();
  case 6: {
      json_t *a = json_array ();
      int n = rand_r (seed) % 5;
      while (n-- > 0)
        json_array_append_new (a, random_value (seed, depth + 1));
      return a;
    }
  default: {
      json_t *o = json_object ();
      int n = rand_r (seed) % 5;
      while (n-- > 0) {
        json_t *k = random_value (seed, 99);    /* a leaf */
        char key[32];
        snprintf (key, sizeof key, "k\"%d\n\xc3\xa9", rand_r (seed) % 100);
        json_object_set_new (o, json_is_string (k) && !memchr (json_string_value (k), 0,
                                                              json_string_length (k))
                             ? json_string_value (k) : key,
                             random_value (seed, depth + 1));
        json_decref (k);
      }
      return o;
    }
  }
}

static void
test_jsonw (void)
{
  unsigned seed = 20261122;
  int i, same = 0, n = 2000, built = 0;

  for (i = 0; i < n; i++) {
    json_t *v = random_value (&seed, 0);
    char *want = json_dumps (v, JSON_COMPACT | JSON_ENCODE_ANY);
    char *got = jsonw_dumps (v);
    if (want && got && strcmp (want, got) == 0)
      same++;
    else if (i - same < 3)
      printf ("# json_dumps %s\n# jsonw      %s\n", want, got);
    free (want);
    free (got);
    json_decref (v);
  }
  tap_ok (same == n, "jsonw writes json_dumps's compact text for %d random "
          "trees (%d differ)", n, n - same);

  /* jsoncheck_load builds what json_loadb builds, from compact and from
   * indented (and ASCII-escaped) text. */
  same = 0;
  for (i = 0; i < n; i++) {
    json_t *v = json_pack ("[o]", random_value (&seed, 0));
    size_t flags = i % 2 ? JSON_COMPACT : JSON_INDENT (2) | JSON_ENSURE_ASCII;
    char *text = json_dumps (v, flags | JSON_ENCODE_ANY);
    const char *why;
    size_t off;
    json_t *a = json_loads (text, 0, NULL);
    json_t *b = jsoncheck_load (text, strlen (text), 0, &why, &off);
    /* both refuse a string holding NUL (json_loads does by default) */
    if ((a && b && json_equal (a, b) && json_equal (v, b)) || (!a && !b))
      same++;
    if (a && b)
      built++;
    else if (i - same < 3)
      printf ("# %s\n# jsoncheck_load: %s at %zu\n", text, b ? "differs" : why, off);
    free (text);
    json_decref (a);
    json_decref (b);
    json_decref (v);
  }
  tap_ok (same == n && built > n / 3, "jsoncheck_load builds json_loads's "
          "tree (%d), or refuses what it refuses, for %d random texts (%d "
          "differ)", built, n, n - same);
  tap_ok (jsonw_dumps (NULL) == NULL, "jsonw_dumps (NULL) is NULL");
}

static void
test_json_load (void)
{
  /* what json_loadb refuses, jsoncheck_load refuses */
  static const struct {
    const char *in;
    int flags;
    const char *why;
  } bad[] = {
    { "[\"a\\u0000b\"]", 0, "\\u0000 is not allowed" },
    { "[\"\\ud800\"]", 0, "invalid Unicode escape (lone surrogate)" },
    { "[\"\\udc00x\"]", 0, "invalid Unicode escape (lone surrogate)" },
    { "[\"\\ud800\\u0041\"]", 0, "invalid Unicode escape (lone surrogate)" },
    { "[9223372036854775808]", 0, "too big integer" },
    { "[1e400]", 0, "real number overflow" },
    { "{\"a\":1,\"a\":2}", JSONCHECK_REJECT_DUPLICATES, "duplicate object key" },
    { "1", 0, "'[' or '{' expected" },
    { "{\"a\":[1,}", 0, "unexpected bracket" },
  };
  const char *why;
  size_t i, off, ok = 0;
  json_t *v;

  for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    why = NULL;
    v = jsoncheck_load (bad[i].in, strlen (bad[i].in), bad[i].flags, &why, &off);
    if (!v && why && strcmp (why, bad[i].why) == 0
        && !json_loadb (bad[i].in, strlen (bad[i].in),
                        bad[i].flags ? JSON_REJECT_DUPLICATES : 0, NULL))
      ok++;
    else
      printf ("# %s: %s\n", bad[i].in, v ? "accepted" : why);
    json_decref (v);
  }
  tap_ok (ok == sizeof bad / sizeof bad[0], "jsoncheck_load refuses what "
          "json_loadb refuses, with the reason");

  v = jsoncheck_load ("{\"a\":1,\"a\":2,\"s\":\"\\ud83d\\ude00\\n\\u00e9\"}", 40, 0,
                      &why, &off);
  tap_ok (v && json_integer_value (json_object_get (v, "a")) == 2
          && strcmp (json_string_value (json_object_get (v, "s")),
                     "\xf0\x9f\x98\x80\n\xc3\xa9") == 0,
          "the last duplicate wins; escapes and surrogate pairs decode to UTF-8");
  json_decref (v);
  v = jsoncheck_load (" 7 ", 3, JSONCHECK_ANY, &why, &off);
  tap_ok (v && json_integer_value (v) == 7, "JSONCHECK_ANY takes a scalar");
  json_decref (v);

  /* A real of any length, as json_loadb reads it: the scheduler refused
   * a customer the import took (tests/fuzz/corpus/json/regress-long-real). */
  {
    static const char text[] = "{\"score\": 0.0000000000000000000000000000"
      "00000000000000000000000000000000000000000001, \"n\": -1."
      "00000000000000000000000000000000000000000000000000000000000000000000e2}";
    json_t *want = json_loadb (text, strlen (text), 0, NULL);
    v = jsoncheck_load (text, strlen (text), 0, &why, &off);
    tap_ok (v && want && json_equal (v, want)
            && json_real_value (json_object_get (v, "n")) == -100.0,
            "jsoncheck_load reads reals of more than 64 characters, as "
            "json_loadb does");
    json_decref (v);
    json_decref (want);
  }
}

/* What an error message shows of a value (strbuf_add_escaped). */
static char *
escaped (const char *s)
{
  static struct strbuf b;
  strbuf_reset (&b);
  strbuf_add_escaped (&b, s, strlen (s));
  return b.s ? b.s : (char *) "";
}

static void
test_escape (void)
{
  static const char forged[] = "x\nherald: imported 1 customer\r\x1b[2K";
  char buf[16], *once;

  tap_is (escaped ("+33612345678\n"), "+33612345678\\n",
          "escape: LF shows as \\n");
  tap_is (escaped ("a\rb\tc"), "a\\rb\\tc", "escape: CR and tab");
  tap_is (escaped ("\x1b[31mred\x1b[0m\x7f\x01"),
          "\\x1b[31mred\\x1b[0m\\x7f\\x01",
          "escape: ESC, DEL and other C0 controls as \\xNN");
  tap_is (escaped ("ab\xff\xfe\xc3" "cd\xe2\x82"),
          "ab\\xff\\xfe\\xc3cd\\xe2\\x82",
          "escape: bytes that are not UTF-8 (a cut sequence too) as \\xNN");
  tap_is (escaped ("\xc0\xaf \xed\xa0\x80 \xf4\x90\x80\x80"),
          "\\xc0\\xaf \\xed\\xa0\\x80 \\xf4\\x90\\x80\\x80",
          "escape: overlong, surrogate, beyond U+10FFFF are not UTF-8");
  tap_is (escaped ("\xc2\x9b" "2J \xe2\x80\xae \xe2\x80\xa8 \xe2\x81\xa6"),
          "\\u009b2J \\u202e \\u2028 \\u2066",
          "escape: C1 controls, bidi controls, line separator as \\uNNNN");
  tap_is (escaped ("Zo\xc3\xab \xe2\x82\xac \xf0\x9f\x98\x80 a\\n"),
          "Zo\xc3\xab \xe2\x82\xac \xf0\x9f\x98\x80 a\\n",
          "escape: other UTF-8 and backslashes are kept");
  once = xstrdup (escaped (forged));
  tap_ok (!strpbrk (once, "\r\n\x1b") && strcmp (escaped (once), once) == 0,
          "escape: a forged line stays on one line; escaping twice changes "
          "nothing");
  free (once);
  snprintf (buf, sizeof buf, "abcdefghijk\n\xc3\xa9");
  escape_in_place (buf, sizeof buf);
  tap_is (buf, "abcdefghijk\\n\xc3\xa9", "escape_in_place: what fits is kept");
  snprintf (buf, sizeof buf, "abcdefghijkl\n\xc3\xa9");
  escape_in_place (buf, sizeof buf);
  tap_is (buf, "abcdefghijkl\\n", "escape_in_place: cut before a character "
          "that does not fit, not inside it");
  tap_ok (utf8_check ("Zo\xc3\xab", 4) == 4 && utf8_check ("ab\xff", 3) == 2
          && utf8_check ("a\xe2\x82", 3) == 1 && utf8_check ("", 0) == 0,
          "utf8_check: the offset of the first bad byte");
}

/* The address checks shared by import and the plugins: the reasons, and
 * that a reason never carries a byte of the address that is not
 * printable ASCII. */
static void
test_address (void)
{
  static const struct {
    int (*check) (const char *, char *, size_t);
    const char *in, *why;       /* why NULL: accepted */
  } cases[] = {
    { address_email_ok, "zoe@example.com", NULL },
    { address_email_ok, "a>b@example.com", "'>' is not allowed" },
    { address_email_ok, "a\x1b@example.com", "a control character" },
    { address_email_ok, "zo\xc3\xab@example.com",
      "a character outside ASCII (SMTPUTF8 is not supported)" },
    { address_email_ok, "a@b@c", "more than one @" },
    { address_email_ok, "", "it is empty" },
    { address_e164_ok, "+33612345678", NULL },
    { address_e164_ok, "+0123456789", "the first digit is 0 (no country code "
      "starts with 0)" },
    { address_e164_ok, "+1234567", "7 digits (at least 8)" },
    { address_e164_ok, "+1234567890123456", "16 digits (at most 15)" },
    { address_e164_ok, "+3361234567\xff", "a character outside ASCII" },
    { address_url_ok, "HTTPS://example.com/h", NULL },
    { address_url_ok, "https://?q", "no host" },
    { address_url_ok, "https://a\rb/", "a control character" },
  };
  size_t i, good = 0;
  char why[128];

  for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    int ok;
    why[0] = '\0';
    ok = cases[i].check (cases[i].in, why, sizeof why);
    if (cases[i].why ? !ok && strcmp (why, cases[i].why) == 0 : ok)
      good++;
    else
      printf ("# '%s': %s, '%s'\n", cases[i].in, ok ? "accepted" : "refused",
              why);
  }
  tap_ok (good == sizeof cases / sizeof cases[0],
          "address checks: each verdict, with its reason");
}

int
main (void)
{
  tap_plan (26);
  test_hmac ();
  test_json ();
  test_jsonw ();
  test_json_load ();
  test_escape ();
  test_address ();
  return tap_failed ? 1 : 0;
}
