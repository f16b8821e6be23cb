# core/liquid/local.mk: automake fragment included by the top-level Makefile.am (appends only).
