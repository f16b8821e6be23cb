#!/bin/sh
# lint.sh: `herald lint` warns, without failing, when an e-mail channel's
# dkim_domain is not aligned with the domain of its from address (DMARC
# relaxed alignment: one is the other or a subdomain of it, case aside).
# The warning names file, line and both domains.
. "$HERALD_SRCDIR/tests/core/lib.sh"

write_templates "$T/tpl"
cat > "$T/c.ini" <<'INI'
[campaign]
id = c1
templates = tpl
channels = email
INI

# gw FROM DKIM_DOMAIN [EXTRA]: a gateway whose [channel.email] has that
# from (line 6) and dkim_domain (line 7).
gw () {
  cat > "$T/g.ini" <<INI
[store]
path = $T/herald.db
[channel.email]
plugin = email
server = 127.0.0.1:25
from = News <$1>
dkim_domain = $2
dkim_selector = s1
dkim_key_file = $T/dkim.pem
${3:-}
INI
}

lint () { out=$("$HERALD" -c "$T/g.ini" lint "$T/c.ini" 2>&1); rc=$?; }
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$T/dkim.pem" 2>/dev/null

for pair in "news@example.com example.com same domain" \
            "news@example.com mail.example.com dkim_domain a subdomain of the From domain" \
            "news@news.example.com example.com From domain a subdomain of dkim_domain" \
            "news@Example.COM EXAMPLE.com case aside"; do
  set -- $pair
  from=$1 d=$2
  shift 2
  gw "$from" "$d"
  lint
  is "$rc" 0 "aligned ($*): exit 0"
  is "$(printf '%s\n' "$out" | grep -c warning)" 0 "aligned ($*): no warning"
done

gw news@example.com esp.example.net
lint
is "$rc" 0 "not aligned: lint still exits 0"
like "$out" "^$T/g.ini:7: warning: \[channel.email\] dkim_domain: 'esp.example.net' is not aligned with the From domain 'example.com' of line 6" \
  "not aligned: a warning naming file, line and both domains"
like "$out" "ok \(campaign c1" "not aligned: the campaign is still linted"

gw news@example.com badexample.com
lint
like "$out" "g.ini:7: warning: .*'badexample.com' is not aligned with the From domain 'example.com'" \
  "a suffix that is not a whole label is not aligned"

gw news@a.example.com b.example.com
lint
like "$out" "g.ini:7: warning: .*'b.example.com' is not aligned with the From domain 'a.example.com'" \
  "sibling subdomains are warned about (no Public Suffix List)"

gw news@example.com example.com "[channel.bulk]
kind = email
plugin = email
server = 127.0.0.1:25
from = \"Bulk, Inc.\" <bulk@bulk.example.org>
dkim_domain = example.com
dkim_selector = s2
dkim_key_file = $T/dkim.pem"
lint
is "$(printf '%s\n' "$out" | grep -c warning)" 1 "two channels, one misaligned: one warning"
like "$out" "g.ini:15: warning: \[channel.bulk\] dkim_domain: 'example.com' is not aligned with the From domain 'bulk.example.org' of line 14" \
  "the warning names the misaligned channel"

cat > "$T/g.ini" <<INI
[store]
path = $T/herald.db
[channel.email]
plugin = email
server = 127.0.0.1:25
from = News <news@example.com>
INI
lint
is "$(printf '%s\n' "$out" | grep -c warning)" 0 "no dkim_domain: no warning"

# A key file named relative to the gateway file is found from any current
# directory (herald_host.config_path).
gw news@example.com example.com
sed -i "s|^dkim_key_file = .*|dkim_key_file = dkim.pem|" "$T/g.ini"
out=$(cd / && "$HERALD" -c "$T/g.ini" lint "$T/c.ini" 2>&1); rc=$?
is "$rc" 0 "lint from /: dkim_key_file = dkim.pem is the one beside the gateway file"
[ "$rc" = 0 ] || printf '%s\n' "$out" | sed 's/^/# /'

# The plugin's own check runs in lint: a key file that cannot be read is
# an error there, not at the first run.
gw news@example.com example.com
sed -i "s|^dkim_key_file = .*|dkim_key_file = $T/missing.pem|" "$T/g.ini"
lint
is "$rc" 1 "lint: an unreadable dkim_key_file is an error"
like "$out" "g.ini:9: \[channel.email\] dkim_key_file: .*missing.pem" "... naming file, line and key"

# A From domain with a CR (an INI value may hold one): the warning stays
# one line, the CR shown as \r (found by tests/fuzz/fuzz_gateway).
gw "news@a$(printf '\r')b.example" c.example
lint
like "$out" "g.ini:7: warning: .*'c.example' is not aligned with the From domain 'a\\\\rb.example'" \
  "a CR in the From domain: the warning shows it as \\r"
is "$(printf '%s\n' "$out" | tr -cd '\r' | wc -c)" 0 "  ... and prints no CR"

done_testing
