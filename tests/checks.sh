# tests/checks.sh - what the shell tests share; source it after set -u:
#   TMP    a fresh temporary directory, removed on exit
#   pass WHAT / fail WHAT   one line per check ("ok   - ...", "FAIL - ...")
#   refuse WHAT WANT CMD... CMD must exit non-zero with WANT in its message
#   checks_end              the summary line; its status is 0 when nothing failed
#   patch FILE TENSOR BYTES, set_meta FILE KEY VALUE, drop_meta FILE KEY
#                           edit a safetensors checkpoint
#   refuse_meta, refuse_nan  a crafted checkpoint must be refused
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
fails=0
pass() { echo "ok   - $*"; }
fail() { echo "FAIL - $*"; fails=$((fails + 1)); }
# refuse WHAT WANT CMD...: CMD (stdin empty) must exit non-zero with a
# message containing WANT.
refuse() {
    local what=$1 want=$2 msg rc
    shift 2
    msg=$("$@" 2>&1 < /dev/null)
    rc=$?
    if [ $rc -ne 0 ] && [[ "$msg" == *"$want"* ]]; then
        pass "refused ($rc): $what"
    else
        fail "$what: rc $rc, message '$msg' lacks '$want'"
    fi
}
checks_end() {
    [ $fails -eq 0 ] && echo "all passed" || echo "$fails failed"
    [ $fails -eq 0 ]
}

# patch FILE TENSOR BYTES [AT]: write BYTES (printf escapes) at byte AT
# (default 0: the first element) of TENSOR (a regex matching its quoted name)
# in the safetensors FILE.
patch() {
    local hlen first
    hlen=$(od -An -t u4 -N 4 "$1" | tr -d ' ')
    first=$(head -c $((8 + hlen)) "$1" | tail -c "$hlen" |
            sed -n "s/.*\"$2\":{[^}]*\"data_offsets\":\\[\\([0-9]*\\),.*/\\1/p")
    [ -n "$first" ] || return 1
    printf "$3" | dd of="$1" bs=1 seek=$((8 + hlen + first + ${4:-0})) conv=notrunc 2>/dev/null
}

# set_meta FILE KEY VALUE: set the metadata string KEY (already in FILE, a
# safetensors checkpoint) to VALUE (no quotes; a JSON escape such as \n is
# written \\n: VALUE is a sed replacement). The header is
# rewritten with its new length, padded to 8 bytes; the tensors' bytes follow
# unchanged (their offsets count from the end of the header).
set_meta() {
    edit_meta "$1" "$2" "s/\"$2\":\"[^\"]*\"/\"$2\":\"$3\"/"
}

# drop_meta FILE KEY: remove the metadata string KEY (in FILE, not its only
# entry) as set_meta edits it: a file written before the key existed.
drop_meta() {
    edit_meta "$1" "$2" "s/\"$2\":\"[^\"]*\",//; s/,\"$2\":\"[^\"]*\"//"
}

# edit_meta FILE KEY SED: FILE's header (which must hold the string KEY)
# through the sed script SED, rewritten as set_meta says.
edit_meta() {
    local LC_ALL=C hlen hdr new n
    hlen=$(od -An -t u4 -N 4 "$1" | tr -d ' ')
    hdr=$(head -c $((8 + hlen)) "$1" | tail -c "$hlen")
    [[ "$hdr" == *"\"$2\":\""* ]] || return 1
    new=$(printf '%s' "$hdr" | sed "$3; s/ *\$//")
    while [ $(( ${#new} % 8 )) -ne 0 ]; do new="$new "; done
    n=${#new}
    { printf "$(printf '\\x%02x\\x%02x\\x%02x\\x%02x\\x00\\x00\\x00\\x00' \
          $((n & 255)) $((n >> 8 & 255)) $((n >> 16 & 255)) $((n >> 24 & 255)))"
      printf '%s' "$new"
      tail -c +$((9 + hlen)) "$1"; } > "$1.set_meta" && mv "$1.set_meta" "$1"
}

# refuse_meta CK KEY VALUE CMD...: with $TMP/crafted.st a copy of the
# checkpoint CK whose metadata KEY is VALUE, CMD (which reads it) must exit
# 1..127 with a message naming the file, the metadata and KEY (and no
# sanitizer report: LeakSanitizer's exit status 23 is in that range), and
# leave the file as it was.
refuse_meta() {
    local ck=$1 key=$2 val=$3 bad=$TMP/crafted.st err rc
    shift 3
    if ! cp "$ck" "$bad" || ! set_meta "$bad" "$key" "$val"; then
        fail "$key $val: no metadata $key in $ck"
        return
    fi
    cp "$bad" "$bad.orig"
    err=$("$@" 2>&1 > /dev/null)
    rc=$?
    if [ $rc -ge 1 ] && [ $rc -lt 128 ] && [[ "$err" == *"$bad"*"metadata"*"$key"* ]] &&
       [[ "$err" != *Sanitizer* ]] &&
       cmp -s "$bad" "$bad.orig"; then
        pass "$key $val refused: exit $rc: $(echo "$err" | tail -1)"
    else
        fail "$key $val: exit $rc, $(cmp "$bad" "$bad.orig" 2>&1), message '$err'"
    fi
}

# refuse_nan CK TENSOR AT CMD...: with $TMP/nan.st a copy of the checkpoint
# CK holding a float32 NaN at byte AT of TENSOR, CMD (which reads it; stdin
# is the caller's) must exit 1 with a message naming the file and "nan" (and
# no sanitizer report), and print nothing on standard output.
refuse_nan() {
    local ck=$1 tensor=$2 at=$3 err rc
    shift 3
    cp "$ck" "$TMP/nan.st"
    if ! patch "$TMP/nan.st" "$tensor" '\x00\x00\xc0\x7f' "$at"; then
        fail "NaN model: no tensor $tensor in $ck"
        return
    fi
    err=$("$@" 2>&1 > "$TMP/nan.out")
    rc=$?
    if [ $rc -eq 1 ] && [[ "$err" == *"$TMP/nan.st"*"nan"* ]] && [[ "$err" != *Sanitizer* ]] &&
       [ ! -s "$TMP/nan.out" ]; then
        pass "NaN model: ${*:2} refused: $err"
    else
        fail "NaN model: $*: exit $rc, output '$(cat "$TMP/nan.out")', message '$err'"
    fi
}
