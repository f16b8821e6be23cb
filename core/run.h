/* run: the scheduler commands. */
#ifndef HERALD_RUN_H
#define HERALD_RUN_H

/* herald run CAMPAIGN.ini [--dry-run] [--limit N] */
int cmd_run (int argc, char **argv);
/* herald preview CAMPAIGN.ini --customer ID */
int cmd_preview (int argc, char **argv);

#endif
