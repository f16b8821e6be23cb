# tests/tests.mk: automake fragment included by the top-level Makefile.am (appends only).
