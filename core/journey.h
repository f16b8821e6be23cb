/* journey: herald serve's timer queue (see journey.c): triggered
 * campaigns' entries and every campaign's follow-up steps. */
#ifndef HERALD_JOURNEY_H
#define HERALD_JOURNEY_H

struct journeys;

/* Load the N campaigns of PATHS, each with its store connection and
 * channels (errors printed).  NULL on failure. */
struct journeys *journeys_open (char **paths, int n);

/* One round: queue the new events, fire the due steps, send the due
 * messages of every campaign.  Errors are printed; the next round tries
 * again. */
void journeys_tick (struct journeys *j);

void journeys_close (struct journeys *j);

#endif
