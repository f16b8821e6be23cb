/* iofault: an LD_PRELOAD shim that makes the disk fail under a program,
 * for tests.  It watches the files whose path contains $IOFAULT_PATH
 * (opened after it loads) and counts the calls that write to them or
 * flush them (write, pwrite, pwrite64, writev, fsync, fdatasync,
 * ftruncate).  With IOFAULT_AT=N (N >= 1) the Nth such call and every
 * later one fails with $IOFAULT_ERRNO (EIO, the default, or ENOSPC): a
 * disk that went bad or full and stays so.  At exit the count of calls
 * seen is written to $IOFAULT_COUNT, when set, so a test knows the range
 * to sweep.  Nothing else is changed. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>

#define MAX_FD 4096

static unsigned char watched[MAX_FD];
static long calls, fail_at = -1;
static int fail_errno = EIO;
static const char *match;

static void __attribute__ ((constructor))
iofault_init (void)
{
  const char *at = getenv ("IOFAULT_AT");
  const char *e = getenv ("IOFAULT_ERRNO");

  match = getenv ("IOFAULT_PATH");
  if (at && atol (at) >= 1)
    fail_at = atol (at);
  if (e && strcmp (e, "ENOSPC") == 0)
    fail_errno = ENOSPC;
}

static void __attribute__ ((destructor))
iofault_fini (void)
{
  const char *out = getenv ("IOFAULT_COUNT");
  FILE *fp;

  if (out && (fp = fopen (out, "w"))) {
    fprintf (fp, "%ld\n", calls);
    fclose (fp);
  }
}

static void
note_open (int fd, const char *path)
{
  if (fd >= 0 && fd < MAX_FD)
    watched[fd] = match && *match && path && strstr (path, match) != NULL;
}

/* 1 when this call on FD must fail (errno set). */
static int
hit (int fd)
{
  long n;

  if (fd < 0 || fd >= MAX_FD || !watched[fd])
    return 0;
  n = __atomic_add_fetch (&calls, 1, __ATOMIC_RELAXED);
  if (fail_at > 0 && n >= fail_at) {
    errno = fail_errno;
    return 1;
  }
  return 0;
}

#define REAL(name) \
  static __typeof__ (name) *real; \
  if (!real) \
    *(void **) (&real) = dlsym (RTLD_NEXT, #name)

int
open (const char *path, int flags, ...)
{
  REAL (open);
  mode_t mode = 0;
  int fd;

  if (flags & (O_CREAT | O_TMPFILE)) {
    va_list ap;
    va_start (ap, flags);
    mode = (mode_t) va_arg (ap, int);
    va_end (ap);
  }
  fd = real (path, flags, mode);
  note_open (fd, path);
  return fd;
}

int
open64 (const char *path, int flags, ...)
{
  REAL (open64);
  mode_t mode = 0;
  int fd;

  if (flags & (O_CREAT | O_TMPFILE)) {
    va_list ap;
    va_start (ap, flags);
    mode = (mode_t) va_arg (ap, int);
    va_end (ap);
  }
  fd = real (path, flags, mode);
  note_open (fd, path);
  return fd;
}

int
openat (int dirfd, const char *path, int flags, ...)
{
  REAL (openat);
  mode_t mode = 0;
  int fd;

  if (flags & (O_CREAT | O_TMPFILE)) {
    va_list ap;
    va_start (ap, flags);
    mode = (mode_t) va_arg (ap, int);
    va_end (ap);
  }
  fd = real (dirfd, path, flags, mode);
  note_open (fd, path);
  return fd;
}

int
close (int fd)
{
  REAL (close);
  if (fd >= 0 && fd < MAX_FD)
    watched[fd] = 0;
  return real (fd);
}

ssize_t
write (int fd, const void *buf, size_t n)
{
  REAL (write);
  return hit (fd) ? -1 : real (fd, buf, n);
}

ssize_t
pwrite (int fd, const void *buf, size_t n, off_t off)
{
  REAL (pwrite);
  return hit (fd) ? -1 : real (fd, buf, n, off);
}

ssize_t
pwrite64 (int fd, const void *buf, size_t n, off64_t off)
{
  REAL (pwrite64);
  return hit (fd) ? -1 : real (fd, buf, n, off);
}

ssize_t
writev (int fd, const struct iovec *iov, int n)
{
  REAL (writev);
  return hit (fd) ? -1 : real (fd, iov, n);
}

int
fsync (int fd)
{
  REAL (fsync);
  return hit (fd) ? -1 : real (fd);
}

int
fdatasync (int fd)
{
  REAL (fdatasync);
  return hit (fd) ? -1 : real (fd);
}

int
ftruncate (int fd, off_t len)
{
  REAL (ftruncate);
  return hit (fd) ? -1 : real (fd, len);
}

int
ftruncate64 (int fd, off64_t len)
{
  REAL (ftruncate64);
  return hit (fd) ? -1 : real (fd, len);
}
