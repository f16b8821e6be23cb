/* noentry: a shared object without the entry point; the loader refuses it. */
int noentry_something (void);
int noentry_something (void) { return 42; }
