# bench/bench.mk: automake fragment included by the top-level Makefile.am (appends only).
EXTRA_DIST += bench/run/dryrun.sh
EXTRA_DIST += bench/serve/triggers.py
EXTRA_DIST += bench/store/workers.py
