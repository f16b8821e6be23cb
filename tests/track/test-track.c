/* tests/track/test-track.c: the machine rules of the tracking endpoints
 * that depend on the request or the clock alone (track.h): HEAD, the
 * User-Agent list, a missing agent, a message not yet sent, and the
 * window after the send.  The endpoints themselves are tested end to
 * end by tests/track/tracking.py. */
#include <config.h>

#include <stdio.h>
#include <string.h>

#include "track.h"
#include "../tap.h"

static int
is (const char *got, const char *want)
{
  return got && want ? strcmp (got, want) == 0 : got == want;
}

int
main (void)
{
  static const char *const people[] = {
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, "
    "like Gecko) Chrome/120.0.0.0 Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.1 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0",
    "Mozilla/5.0 (Linux; Android 9; CUBOT_X19) AppleWebKit/537.36 (KHTML, "
    "like Gecko) Chrome/89.0 Mobile Safari/537.36",
    "Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com "
    "GoogleImageProxy)",
    NULL
  };
  static const char *const machines[] = {
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
    "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, "
    "like Gecko) BingPreview/1.0b",
    "facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)",
    "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)",
    "WhatsApp/2.23.20.0",
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "HeadlessChrome/119.0.0.0 Safari/537.36",
    "python-requests/2.31.0", "curl/7.88.1", "Wget/1.21.3",
    "Go-http-client/1.1", "Java/17.0.2", "libwww-perl/6.67",
    "Apache-HttpClient/4.5.14 (Java/17)", "Barracuda Sentinel (EE)",
    "Mimecast URL Protect", "Proofpoint URL Defense",
    NULL
  };
  size_t i, bad;

  tap_ok (is (track_machine_request ("HEAD", people[0]), "head"),
          "a HEAD request is a machine's, whatever its agent");
  tap_ok (is (track_machine_request ("GET", NULL), "agent")
          && is (track_machine_request ("GET", ""), "agent"),
          "no User-Agent, or an empty one: a machine");
  for (bad = 0, i = 0; people[i]; i++)
    if (track_machine_request ("GET", people[i]))
      bad++;
  tap_ok (bad == 0, "browsers, a phone named CUBOT, Gmail's image proxy: "
          "people (%zu taken for machines)", bad);
  for (bad = 0, i = 0; machines[i]; i++)
    if (!is (track_machine_request ("GET", machines[i]), "agent")) {
      printf ("# not taken for a machine: %s\n", machines[i]);
      bad++;
    }
  tap_ok (bad == 0, "crawlers, preview fetchers, headless browsers, HTTP "
          "libraries, mail scanners: machines");

  tap_ok (is (track_machine_timing (0, 5000000, 2000), "unsent"),
          "a message not recorded as sent: unsent");
  tap_ok (is (track_machine_timing (1000, 1001999, 2000), "fast"),
          "1.999 s after the send, window 2 s: fast");
  tap_ok (track_machine_timing (1000, 1002000, 2000) == NULL,
          "2 s after the send: a person");
  tap_ok (track_machine_timing (1000, 1000500, 0) == NULL,
          "window 0: the timing rule is off");
  tap_ok (is (track_machine_timing (1000, 999000, 2000), "fast"),
          "before the send (clocks apart): fast");
  return tap_done ();
}
