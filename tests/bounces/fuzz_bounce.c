/* fuzz_bounce: libFuzzer target for core/bounce.c, the reader of bounce
 * mailboxes.  Each input is one message for bounce_parse; an input that
 * starts with "From " is also read as an mbox file (through a memfd), which
 * takes GMime's mbox mode and the From lines' dates.  Besides the
 * sanitizers' findings, it checks what bounce.h promises:
 *  - kind is one of the five, and why is set exactly for UNPARSEABLE and
 *    IGNORED;
 *  - every string is one line of valid UTF-8 of at most BOUNCE_TEXT_MAX
 *    bytes (no byte below 0x20, no DEL);
 *  - each token is "b+" and 40 lower-case base32 characters, once;
 *  - status is empty, a 3-digit reply code or an RFC 3463 code.
 * Built and run by tests/bounces/fuzz.sh. */
#include <config.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "bounce.h"
#include "util.h"

int LLVMFuzzerInitialize (int *argc, char ***argv);
int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

static void
check_str (const char *what, const char *s)
{
  size_t n, i;

  if (!s)
    return;
  n = strlen (s);
  if (n == 0 || n > BOUNCE_TEXT_MAX || utf8_check (s, n) != n) {
    fprintf (stderr, "%s: bad length or not UTF-8: '%s'\n", what, s);
    abort ();
  }
  for (i = 0; i < n; i++)
    if ((unsigned char) s[i] < 0x20 || s[i] == 0x7f) {
      fprintf (stderr, "%s: control character at %zu\n", what, i);
      abort ();
    }
}

static void
check (const struct bounce *b)
{
  size_t i, j, n;

  if ((int) b->kind < BOUNCE_UNPARSEABLE || b->kind > BOUNCE_IGNORED
      || !b->format
      || (b->why != NULL) != (b->kind == BOUNCE_UNPARSEABLE
                              || b->kind == BOUNCE_IGNORED)) {
    fprintf (stderr, "kind %d with why %s\n", (int) b->kind,
             b->why ? b->why : "(none)");
    abort ();
  }
  check_str ("why", b->why);
  check_str ("action", b->action);
  check_str ("recipient", b->recipient);
  check_str ("diagnostic", b->diagnostic);
  check_str ("feedback_type", b->feedback_type);
  check_str ("message_id", b->message_id);
  n = strlen (b->status);
  if (n && !((n == 3 && (b->status[0] == '4' || b->status[0] == '5'))
             || (n >= 5 && b->status[1] == '.'))) {
    fprintf (stderr, "status '%s'\n", b->status);
    abort ();
  }
  if (b->n_tokens > BOUNCE_MAX_TOKENS)
    abort ();
  for (i = 0; i < b->n_tokens; i++) {
    const char *t = b->tokens[i];
    if (strlen (t) != 42 || strncmp (t, "b+", 2) != 0
        || strspn (t + 2, "abcdefghijklmnopqrstuvwxyz234567") != 40) {
      fprintf (stderr, "token '%s'\n", t);
      abort ();
    }
    for (j = 0; j < i; j++)
      if (strcmp (t, b->tokens[j]) == 0)
        abort ();
  }
}

static int
each (void *data, const struct bounce_item *it)
{
  (void) data;
  if (!it->name)
    abort ();
  if (it->b)
    check (it->b);
  return 0;
}

int
LLVMFuzzerInitialize (int *argc, char ***argv)
{
  (void) argc;
  (void) argv;
  bounce_global_init ();
  return 0;
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  struct bounce b;

  memset (&b, 0, sizeof b);
  bounce_parse ((const char *) data, size, &b);
  check (&b);
  bounce_free (&b);

  if (size >= 5 && memcmp (data, "From ", 5) == 0) {
    int fd = memfd_create ("mbox", MFD_CLOEXEC);
    char path[64];
    long files = 0;
    if (fd < 0 || write (fd, data, size) != (ssize_t) size)
      abort ();
    snprintf (path, sizeof path, "/proc/self/fd/%d", fd);
    if (bounce_read (path, &files, each, NULL) != 0 || files != 1)
      abort ();
    close (fd);
  }
  return 0;
}
