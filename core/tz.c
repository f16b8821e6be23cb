/* tz: IANA time-zone offsets through ICU's calendar service.
 * Keeps one ICU calendar per zone seen (customers share a handful of zones)
 * behind a mutex; never touches the process's TZ or localtime state. */
#include <config.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unicode/ucal.h>
#include <unicode/ustring.h>

#include "tz.h"

struct tz_entry {
  char *name;
  UCalendar *cal;            /* NULL: the zone is unknown */
  struct tz_entry *next;
};

#define TZ_BUCKETS 256
static struct tz_entry *tz_table[TZ_BUCKETS];
static pthread_mutex_t tz_lock = PTHREAD_MUTEX_INITIALIZER;

static unsigned
tz_hash (const char *s)
{
  unsigned h = 5381;
  while (*s)
    h = h * 33 + (unsigned char) *s++;
  return h % TZ_BUCKETS;
}

/* Called with tz_lock held.  Returns the entry for NAME, creating it. */
static struct tz_entry *
tz_lookup (const char *name)
{
  unsigned h = tz_hash (name);
  struct tz_entry *e;
  UChar uzone[128], canon[128];
  UErrorCode status = U_ZERO_ERROR;
  UBool system = 0;
  int32_t n;

  for (e = tz_table[h]; e; e = e->next)
    if (strcmp (e->name, name) == 0)
      return e;
  e = calloc (1, sizeof *e);
  if (!e)
    abort ();
  e->name = strdup (name);
  if (!e->name)
    abort ();
  if (strlen (name) < 100) {
    u_uastrcpy (uzone, name);
    /* ICU silently falls back to GMT for an unknown id: ask it first
     * whether the id is a real system zone. */
    n = ucal_getCanonicalTimeZoneID (uzone, -1, canon, 128, &system, &status);
    if (U_SUCCESS (status) && n > 0 && system) {
      status = U_ZERO_ERROR;
      e->cal = ucal_open (uzone, -1, "en_US_POSIX", UCAL_GREGORIAN, &status);
      if (U_FAILURE (status))
        e->cal = NULL;
    }
  }
  e->next = tz_table[h];
  tz_table[h] = e;
  return e;
}

int
tz_valid (const char *zone)
{
  struct tz_entry *e;
  int ok;

  if (!zone || !*zone)
    return 0;
  pthread_mutex_lock (&tz_lock);
  e = tz_lookup (zone);
  ok = e->cal != NULL;
  pthread_mutex_unlock (&tz_lock);
  return ok;
}

int
tz_offset (const char *zone, int64_t utc_seconds, int *offset_seconds_r)
{
  struct tz_entry *e;
  UErrorCode status = U_ZERO_ERROR;
  int32_t zo, dst;
  int rc = -1;

  if (!zone || !*zone)
    return -1;
  pthread_mutex_lock (&tz_lock);
  e = tz_lookup (zone);
  if (!e->cal)
    goto out;
  ucal_setMillis (e->cal, (UDate) utc_seconds * 1000.0, &status);
  zo = ucal_get (e->cal, UCAL_ZONE_OFFSET, &status);
  dst = ucal_get (e->cal, UCAL_DST_OFFSET, &status);
  if (U_FAILURE (status))
    goto out;
  *offset_seconds_r = (zo + dst) / 1000;
  rc = 0;
out:
  pthread_mutex_unlock (&tz_lock);
  return rc;
}
