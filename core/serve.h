/* serve: the tracking server (herald serve). */
#ifndef HERALD_SERVE_H
#define HERALD_SERVE_H

int cmd_serve (int argc, char **argv);

#endif
