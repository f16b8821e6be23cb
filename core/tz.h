/* tz: IANA time zones through ICU.
 * Offsets for any zone at any instant, DST included; thread-safe. */
#ifndef HERALD_TZ_H
#define HERALD_TZ_H
#include <stdint.h>

/* 1 when ZONE is a known IANA zone id ("Europe/Paris", "UTC"), else 0. */
int tz_valid (const char *zone);

/* Set *offset_seconds_r to the zone's offset from UTC (DST included) at
 * the instant UTC_SECONDS.  Returns 0, or -1 for an unknown zone. */
int tz_offset (const char *zone, int64_t utc_seconds, int *offset_seconds_r);

#endif
