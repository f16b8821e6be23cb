/* main: the herald command line.  Each command is a function taking the
 * command's own argv (argv[0] = command name) and returning the exit code:
 * 0 success, 1 bad input or failed run, 2 usage error. */
#ifndef HERALD_MAIN_H
#define HERALD_MAIN_H

#define EXIT_USAGE 2

/* The gateway configuration file given with -c, or NULL for the default. */
extern const char *main_config_path;

#endif
