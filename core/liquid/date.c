/*
 * date.c: date parsing (the forms Ruby's Time.parse accepts that templates
 * use: ISO 8601, RFC 2822, "March 14, 2016", "14/03/2016 10:30 PM") and a
 * strftime with Ruby's directives and flags.  Pure functions of their
 * inputs: no locale, no TZ environment, no global state.
 */
#include <ctype.h>
#include <strings.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include "liquid_int.h"

static const char *const months[] = { "january", "february", "march",
				      "april", "may", "june", "july",
				      "august", "september", "october",
				      "november", "december" };
static const char *const wdays[] = { "sunday", "monday", "tuesday",
				     "wednesday", "thursday", "friday",
				     "saturday" };

/* days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant) */
static int64_t days_from_civil(int64_t y, int m, int d)
{
	int64_t era, yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = y - era * 400;
	doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

static void civil_from_days(int64_t z, int64_t *y, int *m, int *d)
{
	int64_t era, doe, yoe, doy, mp;

	z += 719468;
	era = (z >= 0 ? z : z - 146096) / 146097;
	doe = z - era * 146097;
	yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	*y = yoe + era * 400;
	doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	mp = (5 * doy + 2) / 153;
	*d = (int)(doy - (153 * mp + 2) / 5 + 1);
	*m = (int)(mp < 10 ? mp + 3 : mp - 9);
	*y += *m <= 2;
}

static int word_index(const char *w, size_t n, const char *const *tab,
		      int count)
{
	int i;

	if (n < 3)
		return -1;
	for (i = 0; i < count; i++) {
		size_t l = strlen(tab[i]);

		if ((n == 3 || n == l || (n == 4 && !strncasecmp(w, "sept", 4))) &&
		    n <= l && !strncasecmp(w, tab[i], n))
			return i;
	}
	return -1;
}

static int num_at(const char *s, size_t n, size_t *i, int64_t *v, int *digits)
{
	size_t st = *i;
	int64_t x = 0;

	while (*i < n && isdigit((unsigned char)s[*i]) && *i - st < 18) {
		x = x * 10 + (s[*i] - '0');
		(*i)++;
	}
	*digits = (int)(*i - st);
	*v = x;
	return *digits > 0;
}

int lq_parse_date(const char *s, size_t n, int64_t now, int *has_zone_r,
		  int64_t *t_r, int *off_r)
{
	int64_t year = INT64_MIN, v;
	int mon = 0, day = 0, hour = 0, min = 0, sec = 0, pm = -1, have_time = 0;
	int have_zone = 0, zoff = 0, digits;
	size_t i = 0;

	while (i < n) {
		char c = s[i];

		if (isspace((unsigned char)c) || c == ',' || c == '.') {
			i++;
			continue;
		}
		if (isdigit((unsigned char)c)) {
			size_t save = i;

			num_at(s, n, &i, &v, &digits);
			if (i < n && (s[i] == '-' || s[i] == '/') &&
			    i + 1 < n && isdigit((unsigned char)s[i + 1])) {
				char sep = s[i];
				int64_t b, c3;
				int d2, d3;

				i++;
				num_at(s, n, &i, &b, &d2);
				if (i < n && s[i] == sep && i + 1 < n &&
				    isdigit((unsigned char)s[i + 1])) {
					i++;
					num_at(s, n, &i, &c3, &d3);
					if (digits >= 3) {
						year = v;
						mon = (int)b;
						day = (int)c3;
					} else {
						day = (int)v;
						mon = (int)b;
						year = c3;
						if (d3 <= 2)
							year += year < 69 ? 2000 : 1900;
					}
				} else if (digits >= 3) {
					year = v;
					mon = (int)b;
					day = 1;
				} else {
					day = (int)v;
					mon = (int)b;
				}
				if (i < n && (s[i] == 'T' || s[i] == 't') &&
				    i + 1 < n && isdigit((unsigned char)s[i + 1]))
					i++;
				continue;
			}
			if (i < n && s[i] == ':') {
				int64_t mm = 0, ss = 0;
				int dd;

				i++;
				num_at(s, n, &i, &mm, &dd);
				if (i < n && s[i] == ':') {
					i++;
					num_at(s, n, &i, &ss, &dd);
					if (i < n && (s[i] == '.' || s[i] == ',')) {
						int64_t frac;

						i++;
						num_at(s, n, &i, &frac, &dd);
					}
				}
				hour = (int)v;
				min = (int)mm;
				sec = (int)ss;
				have_time = 1;
				continue;
			}
			(void)save;
			/* ordinal suffix */
			if (i + 1 < n && isalpha((unsigned char)s[i]) &&
			    (!strncasecmp(s + i, "st", 2) ||
			     !strncasecmp(s + i, "nd", 2) ||
			     !strncasecmp(s + i, "rd", 2) ||
			     !strncasecmp(s + i, "th", 2)))
				i += 2;
			if (digits >= 3 || (day && year == INT64_MIN))
				year = digits <= 2 ? v + (v < 69 ? 2000 : 1900) : v;
			else if (!day)
				day = (int)v;
			else
				return -1;
			continue;
		}
		if ((c == '+' || c == '-') && i + 2 < n &&
		    isdigit((unsigned char)s[i + 1]) && (have_time || year != INT64_MIN)) {
			int64_t h = 0, m = 0;
			int dd;
			size_t j = i + 1;

			num_at(s, n, &j, &h, &dd);
			if (dd == 4) {
				m = h % 100;
				h /= 100;
			} else if (dd <= 2 && j < n && s[j] == ':') {
				j++;
				num_at(s, n, &j, &m, &dd);
			} else if (dd > 2) {
				return -1;
			}
			zoff = (int)((c == '-' ? -1 : 1) * (h * 3600 + m * 60));
			have_zone = 1;
			i = j;
			continue;
		}
		if (isalpha((unsigned char)c)) {
			size_t st = i;
			int k;

			while (i < n && isalpha((unsigned char)s[i]))
				i++;
			if ((k = word_index(s + st, i - st, months, 12)) >= 0) {
				mon = k + 1;
			} else if (word_index(s + st, i - st, wdays, 7) >= 0) {
				/* weekday: ignored */
			} else if (i - st == 2 && !strncasecmp(s + st, "am", 2)) {
				pm = 0;
			} else if (i - st == 2 && !strncasecmp(s + st, "pm", 2)) {
				pm = 1;
			} else if ((i - st == 1 && (c == 'Z' || c == 'z')) ||
				   (i - st == 3 && (!strncasecmp(s + st, "UTC", 3) ||
						    !strncasecmp(s + st, "GMT", 3)))) {
				have_zone = 1;
				zoff = 0;
			} else if (i - st == 1 && (c == 'T' || c == 't')) {
				/* ISO separator */
			} else {
				return -1;
			}
			continue;
		}
		return -1;
	}
	if (!mon && !day && year == INT64_MIN && !have_time)
		return -1;
	{
		int64_t ny;
		int nm, nd;

		civil_from_days(now / 86400 - (now % 86400 < 0), &ny, &nm, &nd);
		if (year == INT64_MIN)
			year = ny;
		if (!mon) {
			mon = day ? nm : 1;
			if (!day && !have_time)
				day = 1;
		}
		if (!day)
			day = (mon && !have_time) ? 1 : nd;
		if (!have_time && day == 0)
			day = nd;
	}
	if (pm == 1 && hour < 12)
		hour += 12;
	if (pm == 0 && hour == 12)
		hour = 0;
	if (mon < 1 || mon > 12 || day < 1 || day > 31 || hour > 24 ||
	    min > 59 || sec > 60 || year > 999999 || year < -999999)
		return -1;
	*t_r = days_from_civil(year, mon, day) * 86400 + hour * 3600 +
	       min * 60 + sec;
	if (have_zone)
		*t_r -= zoff;
	*has_zone_r = have_zone;
	*off_r = zoff;
	return 0;
}

static void put_num(struct liquid_buf *b, int64_t v, int width, char pad)
{
	char tmp[96]; /* widths are clamped to 64 */
	int len;

	if (pad == 0 || (width <= 1 && v >= 0)) {
		lq_write_int(b, v);
		return;
	}
	if (pad == '0' && width == 2 && v >= 0 && v < 100) {
		lq_buf_addc(b, (char)('0' + v / 10));
		lq_buf_addc(b, (char)('0' + v % 10));
		return;
	}
	if (pad == ' ') {
		len = snprintf(tmp, sizeof(tmp), "%*" PRId64, width, v);
	} else {
		if (v < 0)
			len = snprintf(tmp, sizeof(tmp), "-%0*" PRId64,
				       width > 1 ? width - 1 : 0, -v);
		else
			len = snprintf(tmp, sizeof(tmp), "%0*" PRId64, width, v);
	}
	if (len < 0)
		return;
	if ((size_t)len >= sizeof(tmp))
		len = (int)sizeof(tmp) - 1;
	lq_buf_add(b, tmp, (size_t)len);
}

static void put_str(struct liquid_buf *b, const char *s, int upper, int width)
{
	size_t i, l = strlen(s);

	for (i = l; (int)i < width; i++)
		lq_buf_addc(b, ' ');
	for (i = 0; i < l; i++)
		lq_buf_addc(b, upper ? (char)toupper((unsigned char)s[i]) : s[i]);
}

void lq_strftime(struct liquid_buf *b, const char *fmt, size_t fn, int64_t t,
		 int off, const char *zone_name)
{
	int64_t local = t + off, days, y;
	int64_t secs;
	int m, d, H, M, Sx, wday, yday;
	size_t i;
	char name[16];

	days = local / 86400 - (local % 86400 < 0);
	secs = local - days * 86400;
	civil_from_days(days, &y, &m, &d);
	H = (int)(secs / 3600);
	M = (int)(secs / 60 % 60);
	Sx = (int)(secs % 60);
	wday = (int)(((days % 7) + 11) % 7); /* 1970-01-01 was a Thursday */
	yday = (int)(days - days_from_civil(y, 1, 1));

	for (i = 0; i < fn; i++) {
		char pad = '0', c;
		int upper = 0, width = -1, colon = 0;
		size_t start = i;

		if (fmt[i] != '%' || i + 1 >= fn) {
			lq_buf_addc(b, fmt[i]);
			continue;
		}
		i++;
		/* flags */
		for (; i < fn; i++) {
			if (fmt[i] == '-')
				pad = 0;
			else if (fmt[i] == '_')
				pad = ' ';
			else if (fmt[i] == '0')
				pad = '0';
			else if (fmt[i] == '^' || fmt[i] == '#')
				upper = 1;
			else
				break;
		}
		while (i < fn && isdigit((unsigned char)fmt[i])) {
			width = (width < 0 ? 0 : width) * 10 + (fmt[i] - '0');
			if (width > 64)
				width = 64;
			i++;
		}
		while (i < fn && fmt[i] == ':') {
			colon++;
			i++;
		}
		if (i >= fn) {
			lq_buf_add(b, fmt + start, fn - start);
			break;
		}
		c = fmt[i];
#define W(def) (width >= 0 ? width : (def))
		switch (c) {
		case 'Y': put_num(b, y, W(1), pad ? pad : 0); break;
		case 'C': put_num(b, y / 100, W(2), pad); break;
		case 'y': put_num(b, ((y % 100) + 100) % 100, W(2), pad); break;
		case 'm': put_num(b, m, W(2), pad); break;
		case 'd': put_num(b, d, W(2), pad); break;
		case 'e': put_num(b, d, W(2), pad == '0' ? ' ' : pad); break;
		case 'j': put_num(b, yday + 1, W(3), pad); break;
		case 'H': put_num(b, H, W(2), pad); break;
		case 'k': put_num(b, H, W(2), pad == '0' ? ' ' : pad); break;
		case 'I': put_num(b, H % 12 ? H % 12 : 12, W(2), pad); break;
		case 'l':
			put_num(b, H % 12 ? H % 12 : 12, W(2),
				pad == '0' ? ' ' : pad);
			break;
		case 'M': put_num(b, M, W(2), pad); break;
		case 'S': put_num(b, Sx, W(2), pad); break;
		case 'L': put_num(b, 0, W(3), '0'); break;
		case 'N': put_num(b, 0, W(9), '0'); break;
		case 's': put_num(b, t, 1, 0); break;
		case 'u': put_num(b, wday ? wday : 7, 1, 0); break;
		case 'w': put_num(b, wday, 1, 0); break;
		case 'U': put_num(b, (yday + 7 - wday) / 7, W(2), pad); break;
		case 'W':
			put_num(b, (yday + 7 - (wday + 6) % 7) / 7, W(2), pad);
			break;
		case 'a':
			snprintf(name, sizeof(name), "%.3s", wdays[wday]);
			name[0] = (char)toupper((unsigned char)name[0]);
			put_str(b, name, upper, width);
			break;
		case 'A':
			snprintf(name, sizeof(name), "%s", wdays[wday]);
			name[0] = (char)toupper((unsigned char)name[0]);
			put_str(b, name, upper, width);
			break;
		case 'b':
		case 'h':
			snprintf(name, sizeof(name), "%.3s", months[m - 1]);
			name[0] = (char)toupper((unsigned char)name[0]);
			put_str(b, name, upper, width);
			break;
		case 'B':
			snprintf(name, sizeof(name), "%s", months[m - 1]);
			name[0] = (char)toupper((unsigned char)name[0]);
			put_str(b, name, upper, width);
			break;
		case 'p': put_str(b, H < 12 ? "AM" : "PM", 0, width); break;
		case 'P': put_str(b, H < 12 ? "am" : "pm", 0, width); break;
		case 'c':
			lq_strftime(b, "%a %b %e %H:%M:%S %Y", 20, t, off, zone_name);
			break;
		case 'D':
		case 'x':
			lq_strftime(b, "%m/%d/%y", 8, t, off, zone_name);
			break;
		case 'F': lq_strftime(b, "%Y-%m-%d", 8, t, off, zone_name); break;
		case 'T':
		case 'X':
			lq_strftime(b, "%H:%M:%S", 8, t, off, zone_name);
			break;
		case 'R': lq_strftime(b, "%H:%M", 5, t, off, zone_name); break;
		case 'r':
			lq_strftime(b, "%I:%M:%S %p", 11, t, off, zone_name);
			break;
		case 'v':
			lq_strftime(b, "%e-%^b-%Y", 9, t, off, zone_name);
			break;
		case 'n': lq_buf_addc(b, '\n'); break;
		case 't': lq_buf_addc(b, '\t'); break;
		case '%': lq_buf_addc(b, '%'); break;
		case 'z': {
			int a = off < 0 ? -off : off;
			char tmp[16];

			if (colon)
				snprintf(tmp, sizeof(tmp), "%c%02d:%02d",
					 off < 0 ? '-' : '+', a / 3600, a / 60 % 60);
			else
				snprintf(tmp, sizeof(tmp), "%c%02d%02d",
					 off < 0 ? '-' : '+', a / 3600, a / 60 % 60);
			lq_buf_adds(b, tmp);
			break;
		}
		case 'Z':
			if (zone_name)
				put_str(b, zone_name, upper, width);
			else if (off == 0)
				put_str(b, "UTC", 0, width);
			else
				lq_strftime(b, "%z", 2, t, off, NULL);
			break;
		default:
			lq_buf_add(b, fmt + start, i - start + 1);
		}
#undef W
	}
}
