#!/bin/sh
# The manual pages: each renders without a warning (groff -ww), and every
# key the code accepts is documented in its page, and no page documents a
# key the code refuses.
#
# Where the keys come from, so that a key added to the code without its
# documentation fails here:
# - a plugin's keys from the built plugin itself (tests/core/plugin-keys
#   reads its config_keys, as the core does); every plugin built has a
#   page, plugins/NAME/herald-NAME.5, whose KEYS section documents them;
# - the gateway's sections from herald's own error message for an unknown
#   section, and each section's keys from its array in core/config.c
#   (SECTION_keys) or core/loader.c (core_channel_keys, [channel.NAME]);
# - a campaign's keys from the functions that read them (core/campaign.c,
#   core/router.c: every strcmp (k or key, "KEY")), cross-checked against
#   herald lint: each key found is accepted, a made-up one is not, and the
#   [trigger] and [step.N] lists equal the ones lint's messages give.
# A key is documented when it starts a "KEY =" in a .TP tag of the page's
# section for it: KEYS in a plugin page, .SS "[SECTION]" in herald.ini(5)
# and herald-campaign(5).
# The examples of herald.ini(5) and herald-campaign(5) lint.
# make install puts each page into its section's folder.
# herald-plugin(3) names every member, enum constant and macro of
# herald/plugin.h, and its example plugin builds against the installed
# header with pkg-config, loads and sends.
. "$HERALD_SRCDIR/tests/core/lib.sh"

S=$HERALD_SRCDIR
if ! command -v groff >/dev/null 2>&1; then
  echo "1..0 # SKIP groff not installed (scripts/install-deps.sh installs groff-base)"
  exit 0
fi

PAGES="man/herald.1 man/herald.ini.5 man/herald-campaign.5 man/herald-plugin.3
plugins/email/herald-email.5 plugins/outbox/herald-outbox.5
plugins/sms/herald-sms.5 plugins/push/herald-push.5
plugins/webhook/herald-webhook.5"

# 1. Every page renders without a warning, and its .TH names the file.
for p in $PAGES; do
  f="$S/$p"
  if [ ! -f "$f" ]; then
    ok 1 "$p exists"
    continue
  fi
  out=$(groff -man -ww -z -t "$f" 2>&1)
  is "$?:$out" "0:" "$p renders without a warning"
  b=$(basename "$p")
  th=$(sed -n 's/^\.TH \([^ ]*\) \([0-9]\).*/\1.\2/p' "$f" | head -1)
  is "$th" "$(echo "${b%.*}" | tr a-z A-Z).${b##*.}" "$p: .TH names the page"
done

# Every reference to a herald page names one of these pages.
refs=$(for p in $PAGES; do cat "$S/$p"; done 2>/dev/null \
       | sed -n 's/^\.BR* \(herald[a-z.\\-]*\) (\([0-9]\)).*/\1.\2/p' \
       | sed 's/\\-/-/g' | sort -u)
bad=
for r in $refs; do
  case " $(echo $PAGES) " in */"$r "*) ;; *) bad="$bad $r" ;; esac
done
is "${bad# }" "" "every herald page referred to exists ($(echo $refs | wc -w) referred to)"

# doc_keys PAGE TITLE: the keys documented under the .SH or .SS TITLE of
# PAGE: each word followed by '=' in a .TP tag, font changes and quotes
# removed.
doc_keys () {
  awk -v want="$2" '
    /^\.S[HS]/ { t = $0; sub(/^\.S[HS][ \t]*/, "", t); gsub(/"/, "", t)
                 on = (t == want); tag = 0; next }
    !on { next }
    /^\.TP/ { tag = 1; next }
    tag { tag = 0; s = $0; sub(/^\.[A-Z]+[ \t]*/, "", s)
          gsub(/\\f[BIRP]/, "", s); gsub(/"/, "", s)
          while (match(s, /[a-z][a-z0-9_]*[ \t]*=/)) {
            k = substr(s, RSTART, RLENGTH); sub(/[ \t]*=$/, "", k); print k
            s = substr(s, RSTART + RLENGTH) } }' "$1" | sort -u
}

# check_keys WHAT PAGE TITLE KEYS...: each key is documented under TITLE,
# and TITLE documents no other key.
check_keys () {
  _what=$1 _page=$2 _title=$3
  shift 3
  _doc=$(doc_keys "$S/$_page" "$_title")
  _missing= _extra=
  for _k in "$@"; do
    printf '%s\n' "$_doc" | grep -qx -- "$_k" || _missing="$_missing $_k"
  done
  for _k in $_doc; do
    case " $* " in *" $_k "*) ;; *) _extra="$_extra $_k" ;; esac
  done
  is "${_missing# }" "" "$_what: every key is documented in $_page ($_title)"
  is "${_extra# }" "" "$_what: $_page ($_title) documents only keys the code takes"
}

# 2. The plugins: their keys from the built plugins.
found=0
for so in "$HERALD_BUILDDIR"/plugins/.libs/*.so; do
  [ -f "$so" ] || continue
  info=$("$HERALD_BUILDDIR/tests/core/plugin-keys" "$so")
  is "$?" 0 "plugin-keys reads $(basename "$so")"
  name=$(printf '%s\n' "$info" | sed -n 's/^name //p')
  keys=$(printf '%s\n' "$info" | sed -n 's/^key //p')
  page="plugins/$name/herald-$name.5"
  case " $(echo $PAGES) " in
    *" $page "*) ;;
    *) ok 1 "plugin $name has its page $page in this test's list" ;;
  esac
  ok "$([ -n "$keys" ]; echo $?)" "plugin $name lists its keys"
  # shellcheck disable=SC2086
  check_keys "plugin $name" "$page" KEYS $keys
  for k in $(printf '%s\n' "$info" | sed -n 's/^secret //p'); do
    case " $(echo $keys) " in
      *" $k "*) ok 0 "plugin $name: secret key $k is one of its keys" ;;
      *) ok 1 "plugin $name: secret key $k is one of its keys" ;;
    esac
  done
  found=$((found + 1))
done
ok "$([ "$found" -ge 5 ]; echo $?)" "the five plugins of the tree were found ($found)"

# array_keys FILE NAME: the strings of the array NAME[] = { ... }; in FILE.
array_keys () {
  awk -v arr="$2" 'index($0, arr "[] = {") { on = 1 }
                   on { print } on && /};/ { exit }' "$1" \
    | grep -o '"[^"]*"' | tr -d '"'
}

# fn_keys FILE FUNCTION: the keys FUNCTION compares with strcmp (k or key,
# "KEY"), and the names of a { "KEY", offsetof (...) } table in it.
fn_keys () {
  awk -v fn="$2" '$0 ~ ("^" fn " \\(") { on = 1 }
                  on { print } on && /^}/ { exit }' "$1" \
    | grep -o 'strcmp (k\(ey\)\{0,1\}, "[a-z0-9_]*")\|{ "[a-z0-9_]*", offsetof' \
    | sed 's/^[^"]*"//; s/".*//' | sort -u
}

# 3. The gateway, herald.ini(5).
G="$T/gw.ini"
printf '[zz_bogus]\n' > "$G"
out=$("$HERALD" -c "$G" lint /dev/null 2>&1)
sections=$(printf '%s\n' "$out" | sed -n 's/.*unknown section (expected \(.*\)).*/\1/p' \
           | sed 's/ or /, /; s/, /\n/g')
ok "$([ "$(printf '%s\n' "$sections" | wc -w)" -ge 5 ]; echo $?)" \
   "herald names the gateway's sections: $(echo $sections)"
: > "$T/probe.ini"
for sec in $sections; do
  case $sec in
    channel.NAME) keys=$(array_keys "$S/core/loader.c" core_channel_keys) ;;
    *) keys=$(array_keys "$S/core/config.c" "${sec}_keys") ;;
  esac
  ok "$([ -n "$keys" ]; echo $?)" "[$sec]: its keys found in the source"
  # shellcheck disable=SC2086
  check_keys "gateway [$sec]" man/herald.ini.5 "[$sec]" $keys
  case $sec in
    channel.NAME) printf '[channel.probe]\nplugin = outbox\nkind = email\n' ;;
    *) printf '[%s]\n' "$sec" ;;
  esac >> "$T/probe.ini"
  for k in $keys; do
    case $k in plugin|kind) ;; *) printf '%s = zz\n' "$k" >> "$T/probe.ini" ;; esac
  done
done
# The keys found are the ones herald takes (it reports an unknown key
# before any value), and the probe would see one it does not take.
out=$("$HERALD" -c "$T/probe.ini" lint /dev/null 2>&1)
is "$(printf '%s\n' "$out" | grep -c 'unknown key')" 0 \
   "herald takes every gateway key found in the source"
printf '[store]\nzz_bogus = 1\n' >> "$T/probe.ini"
out=$("$HERALD" -c "$T/probe.ini" lint /dev/null 2>&1)
like "$out" 'zz_bogus: unknown key' "... and the probe sees a key it does not take"

# 4. A campaign, herald-campaign(5).
write_gateway "$G"
write_templates "$T/tpl"
C="$T/c.ini"
extra=$(array_keys "$S/core/campaign.c" names)
ok "$([ -n "$extra" ]; echo $?)" "the campaign's policy sections found: $(echo $extra)"
printf '[campaign]\nid = probe\ntemplates = tpl\nchannels = email\n' > "$C"
for sec in campaign trigger step.N variant.NAME $extra; do
  case $sec in
    campaign) keys=$( (fn_keys "$S/core/campaign.c" campaign_key
                       fn_keys "$S/core/router.c" set_campaign) | sort -u) ;;
    trigger) keys=$(fn_keys "$S/core/campaign.c" trigger_key) ;;
    step.N) keys=$(fn_keys "$S/core/campaign.c" step_key) ;;
    variant.NAME) keys=$(fn_keys "$S/core/router.c" set_variant) ;;
    caps) keys=$(fn_keys "$S/core/router.c" set_caps) ;;
    quiet_hours) keys=$(fn_keys "$S/core/router.c" set_quiet) ;;
    consent) keys=$(fn_keys "$S/core/router.c" set_consent) ;;
    engagement) keys=$(fn_keys "$S/core/router.c" set_engagement) ;;
    holdout) keys=$(fn_keys "$S/core/router.c" policy_set) ;;
    *) keys= ;;
  esac
  ok "$([ -n "$keys" ]; echo $?)" "[$sec]: its keys found in the source"
  # shellcheck disable=SC2086
  check_keys "campaign [$sec]" man/herald-campaign.5 "[$sec]" $keys
  case $sec in
    campaign) ;;
    step.N) printf '[step.2]\n' ;;
    variant.NAME) printf '[variant.a]\n' ;;
    *) printf '[%s]\n' "$sec" ;;
  esac >> "$C"
  for k in $keys; do
    case $sec:$k in
      campaign:id|campaign:templates|campaign:channels) ;;
      *) printf '%s = zz\n' "$k" >> "$C" ;;
    esac
  done
  case $sec in
    trigger|step.N)
      # lint names the keys of these sections: the same as found.
      case $sec in trigger) hdr='[trigger]' ;; *) hdr='[step.2]' ;; esac
      printf '[campaign]\nid = p\ntemplates = tpl\nchannels = email\n%s\nzz_bogus = 1\n' \
        "$hdr" > "$T/one.ini"
      msg=$("$HERALD" -c "$G" lint "$T/one.ini" 2>&1 \
            | sed -n 's/.*zz_bogus: unknown key (expected \(.*\))$/\1/p' | sed 's/, /\n/g' | sort)
      is "$(echo $msg)" "$(echo $keys)" "[$sec]: the keys lint names are the keys found"
      ;;
  esac
done
out=$("$HERALD" -c "$G" lint "$C" 2>&1)
like "$out" 'probe|c.ini' "lint reads the probe campaign"
is "$(printf '%s\n' "$out" | grep -c ': unknown')" 0 \
   "herald takes every campaign key found in the source"
printf '[holdout]\nzz_bogus = 1\n' >> "$C"
out=$("$HERALD" -c "$G" lint "$C" 2>&1)
like "$out" 'zz_bogus: unknown' "... and the probe sees a key it does not take"

# examples PAGE DIR: write each .RS/.RE block of PAGE's EXAMPLES section
# as DIR/exN.ini, the man escapes of its text undone.
examples () {
  awk -v dir="$2" '/^\.SH/ { on = ($0 ~ /^\.SH EXAMPLES/) }
    on && /^\.RS/ { n++; grab = 1; next } on && /^\.RE/ { grab = 0; next }
    grab { gsub(/\\-/, "-"); gsub(/\\\(.e/, "e"); print > (dir "/ex" n ".ini") }' "$1"
}

# 5. The examples lint: the campaigns', against the demo gateway, beside
# the sample templates; the gateways', with files for the paths they name.
mkdir -p "$T/demo/etc/campaigns"
ln -s "$S/templates" "$T/demo/templates"
cp "$S/etc/herald.ini" "$T/demo/etc/"
examples "$S/man/herald-campaign.5" "$T/demo/etc/campaigns"
n=0
for c in "$T"/demo/etc/campaigns/ex*.ini; do
  [ -f "$c" ] || continue
  n=$((n + 1))
  out=$("$HERALD" -c "$T/demo/etc/herald.ini" lint "$c" 2>&1)
  rc=$?
  is "$rc" 0 "herald-campaign(5): example $n lints"
  [ "$rc" = 0 ] || echo "$out" | sed 's/^/# /'
done
ok "$([ "$n" -ge 3 ]; echo $?)" "herald-campaign(5) has its examples ($n)"
# The files the examples name: lint reads them (the plugins' config_check).
mkdir -p "$T/gex" "$T/secrets"
echo pw > "$T/secrets/db-password"
echo pw > "$T/secrets/smtp.password"
echo token > "$T/secrets/twilio.token"
echo whsec_MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY= > "$T/secrets/webhook.secret"
examples "$S/man/herald.ini.5" "$T/gex"
printf '[campaign]\nid = e\ntemplates = tpl\nchannels = email\n' > "$T/gex/c.ini"
write_templates "$T/gex/tpl"
n=0
for g in "$T"/gex/ex*.ini; do
  [ -f "$g" ] || continue
  n=$((n + 1))
  sed -i "s|/etc/herald/|$T/secrets/|" "$g"
  out=$("$HERALD" -c "$g" lint "$T/gex/c.ini" 2>&1)
  rc=$?
  is "$rc" 0 "herald.ini(5): example $n lints"
  [ "$rc" = 0 ] || echo "$out" | sed 's/^/# /'
done
ok "$([ "$n" -ge 2 ]; echo $?)" "herald.ini(5) has its examples ($n)"

# 6. herald-plugin(3) names everything herald/plugin.h declares (every
# member of its structures, its enum constants, macros and functions),
# and its example is a plugin that builds with -Wall -Wextra and sends.
H="$S/core/herald/plugin.h"
P3="$S/man/herald-plugin.3"
names=$( (awk '/^struct herald_[a-z_]* \{/ { on = 1; next } on && /^\};/ { on = 0 }
              on' "$H" | sed 's|/\*.*||' | grep -v '^[[:space:]]*\*' \
           | sed -n 's/.*(\*\([a-z_]*\)).*/\1/p; s/.*[^a-z_]\([a-z_][a-z_0-9]*\)\(\[[A-Z_0-9]*\]\)\{0,1\};.*/\1/p'
          grep -o '^[[:space:]]*HERALD_[A-Z_0-9]* =' "$H" | tr -d ' ='
          sed -n 's/^#define \(HERALD_[A-Z_0-9]*\).*/\1/p' "$H" | grep -v '^HERALD_PLUGIN_H$\|^HERALD_ATTR_\|^HERALD_EXTERN_C$'
          grep -o '^herald_[a-z_]* (' "$H" | tr -d ' (') | sort -u)
ok "$([ "$(echo $names | wc -w)" -ge 60 ]; echo $?)" "plugin.h's names found ($(echo $names | wc -w))"
text=$(sed 's/\\f[BIRP]//g; s/\\-/-/g' "$P3")
missing=
for w in $names; do
  printf '%s\n' "$text" | grep -qw -- "$w" || missing="$missing $w"
done
is "${missing# }" "" "herald-plugin(3) names every member, constant and macro of herald/plugin.h"

# make install puts every page into its section's folder, beside the
# header and the herald-plugin.pc the example is built with.
R="$T/root"
make -C "$HERALD_BUILDDIR" install DESTDIR="$R" > "$T/install.log" 2>&1
is "$?" 0 "make install DESTDIR=..."
missing=
for p in $PAGES; do
  b=$(basename "$p")
  [ -n "$(find "$R" -path "*/man/man${b##*.}/$b" -type f)" ] || missing="$missing $b"
done
is "${missing# }" "" "make install installs every page into man1, man3 or man5"
pc=$(find "$R" -name herald-plugin.pc | head -1)
if [ -n "$pc" ] && command -v pkg-config > /dev/null 2>&1; then
  HCFLAGS=$(PKG_CONFIG_PATH=$(dirname "$pc") PKG_CONFIG_SYSROOT_DIR=$R \
            pkg-config --cflags herald-plugin)
else
  HCFLAGS="-I$S/core"
fi

mkdir -p "$T/ex3"
awk '/^\.SH/ { on = ($0 ~ /^\.SH EXAMPLES/) }
     on && /^\.RS/ { n++; grab = 1; next } on && /^\.RE/ { grab = 0; next }
     grab && n == 1' "$P3" \
  | sed 's/\\&//g; s/\\-/-/g; s/\\(aq/'"'"'/g; s/\\(dq/"/g; s/\\e/\\/g' > "$T/ex3/lines.c"
name=$(sed -n 's/^ *\.name = "\([a-z]*\)",$/\1/p' "$T/ex3/lines.c")
# shellcheck disable=SC2086
out=$(cd "$T/ex3" && ${CC:-cc} -shared -fPIC $HCFLAGS -Wall -Wextra -Werror \
        -o "$name.so" lines.c 2>&1)
is "$?:$out" "0:" "herald-plugin(3): the example plugin ($name) builds with cc -shared -fPIC \$(pkg-config --cflags herald-plugin) -Wall -Wextra"
if [ -f "$T/ex3/$name.so" ]; then
  install -m 755 "$T/ex3/$name.so" "$PLUGINS/"
  cat > "$T/ex3/g.ini" <<INI
[store]
path = $T/ex3/h.db
[plugins]
dir = $PLUGINS
[channel.email]
plugin = $name
file = $T/ex3/out.txt
INI
  like "$("$HERALD" -c "$T/ex3/g.ini" plugins 2>&1)" "^  $name +version" "... and loads"
  write_templates "$T/ex3/tpl"
  printf '[campaign]\nid = ex\ntemplates = tpl\nchannels = email\n' > "$T/ex3/c.ini"
  write_customers "$T/ex3/cust.jsonl" 6
  "$HERALD" -c "$T/ex3/g.ini" customers import "$T/ex3/cust.jsonl" > /dev/null 2>&1
  out=$("$HERALD" -c "$T/ex3/g.ini" run "$T/ex3/c.ini" 2>&1)
  rc=$?
  is "$rc" 0 "... and a campaign runs through it"
  [ "$rc" = 0 ] || echo "$out" | sed 's/^/# /'
  is "$(count_lines "$T/ex3/out.txt")" 4 "... which writes the 4 customers with an e-mail address"
  sed 's/relative/absolute/; s|^file = .*|file = out.txt|' "$T/ex3/g.ini" > "$T/ex3/bad.ini"
  like "$("$HERALD" -c "$T/ex3/bad.ini" lint "$T/ex3/c.ini" 2>&1)" \
       "bad.ini:7: \[channel.email\] file: needs an absolute path" "... and whose config_check lint runs"
fi

done_testing
