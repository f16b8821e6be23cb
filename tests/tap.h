/* tap.h: a few macros to print TAP from a C test program.
 * Header-only; include once per test program. */
#ifndef HERALD_TAP_H
#define HERALD_TAP_H
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdarg.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

static int tap_n, tap_failed;

static inline void
tap_plan (int n)
{
  printf ("1..%d\n", n);
  fflush (stdout);
}

#define tap_ok(cond, ...) \
  tap_result_ (!!(cond), __FILE__, __LINE__, __VA_ARGS__)

static inline int __attribute__ ((format (printf, 4, 5)))
tap_result_ (int ok, const char *file, int line, const char *fmt, ...)
{
  va_list ap;
  tap_n++;
  if (!ok)
    tap_failed++;
  printf ("%sok %d - ", ok ? "" : "not ", tap_n);
  va_start (ap, fmt);
  vprintf (fmt, ap);
  va_end (ap);
  printf ("\n");
  if (!ok)
    printf ("#   failed at %s:%d\n", file, line);
  fflush (stdout);
  return ok;
}

/* Compare two strings; prints both on failure. */
#define tap_is(got, want, ...) \
  tap_is_ ((got), (want), __FILE__, __LINE__, __VA_ARGS__)

static inline int __attribute__ ((format (printf, 5, 6)))
tap_is_ (const char *got, const char *want, const char *file, int line,
         const char *fmt, ...)
{
  va_list ap;
  int ok = (got && want) ? strcmp (got, want) == 0 : got == want;
  tap_n++;
  if (!ok)
    tap_failed++;
  printf ("%sok %d - ", ok ? "" : "not ", tap_n);
  va_start (ap, fmt);
  vprintf (fmt, ap);
  va_end (ap);
  printf ("\n");
  if (!ok)
    printf ("#   failed at %s:%d\n#   got:  '%s'\n#   want: '%s'\n", file, line,
            got ? got : "(null)", want ? want : "(null)");
  fflush (stdout);
  return ok;
}

/* 1 when FN (ARG) returns, 0 when it crashes (or aborts): it runs in a
 * child process, so a crash is a failed assertion rather than the end of
 * the test program.  For "X (NULL) is a no-op" checks.  The child says it
 * returned through a pipe, not its exit status: under valgrind a forked
 * child's exit reports the parent's allocations as leaks. */
static inline int
tap_returns (void (*fn) (void *), void *arg)
{
  int fd[2], status;
  char c = 0;
  pid_t pid;

  fflush (stdout);
  if (pipe (fd) < 0)
    return 0;
  pid = fork ();
  if (pid < 0) {
    close (fd[0]);
    close (fd[1]);
    return 0;
  }
  if (pid == 0) {
    close (fd[0]);
    fn (arg);
    if (write (fd[1], "r", 1) != 1)
      _exit (1);
    _exit (0);
  }
  close (fd[1]);
  if (read (fd[0], &c, 1) != 1)
    c = 0;
  close (fd[0]);
  waitpid (pid, &status, 0);
  return c == 'r';
}

/* Print the plan at the end and exit with the right status. */
static inline int
tap_done (void)
{
  printf ("1..%d\n", tap_n);
  return tap_failed ? 1 : 0;
}

#define tap_skip_all(reason) \
  do { printf ("1..0 # SKIP %s\n", (reason)); exit (0); } while (0)

#endif
