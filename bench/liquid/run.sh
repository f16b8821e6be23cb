#!/bin/sh
# bench/liquid/run.sh: Liquid engine benchmark, on demand (never make check).
# Renders per second of `herald render --each` over N (default 100000)
# varied customers against Shopify's Liquid (ruby-liquid) on the same
# templates and data in the same run: a 60-line marketing email, an SMS
# and a few golden-liquid cases; medians of RUNS runs, ratio, output
# agreement, and herald's peak memory for N/10 vs N renders.
#   HERALD=/path/to/herald RUNS=3 N=100000 [RUBY_N=N] bench/liquid/run.sh
# (ruby-liquid needs several minutes for 100000 emails; RUBY_N=20000 is
# quicker and only flatters ruby by its start-up time.)
here=$(cd "$(dirname "$0")" && pwd)
: "${HERALD:=$(command -v herald || echo ./herald)}"
if [ ! -x "$HERALD" ]; then
	echo "run.sh: set HERALD to the herald binary (not found: $HERALD)" >&2
	exit 2
fi
if ! ruby -rliquid -e 1 2> /dev/null; then
	echo "run.sh: ruby-liquid missing: apt-get install -y ruby ruby-liquid" >&2
	exit 2
fi
HERALD=$(cd "$(dirname "$HERALD")" && pwd)/$(basename "$HERALD")
export HERALD
: "${GOLDEN:=$here/../../../shared/conformance/golden_liquid.json}"
export GOLDEN
exec python3 "$here/bench.py"
