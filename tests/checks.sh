# tests/checks.sh - what the shell tests share; source it after set -u:
#   TMP    a fresh temporary directory, removed on exit
#   pass WHAT / fail WHAT   one line per check ("ok   - ...", "FAIL - ...")
#   checks_end              the summary line; its status is 0 when nothing failed
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
fails=0
pass() { echo "ok   - $*"; }
fail() { echo "FAIL - $*"; fails=$((fails + 1)); }
checks_end() {
    [ $fails -eq 0 ] && echo "all passed" || echo "$fails failed"
    [ $fails -eq 0 ]
}
