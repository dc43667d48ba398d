#!/usr/bin/env bash
# The documentation's relative links resolve (usage: doc_links.sh SOURCE_DIR):
#   every markdown link [text](target) in README.md and docs/**/*.md, outside
#   fenced code blocks, whose target is not a URL (scheme:...) names a file
#   or directory that exists, relative to the page it is on; a #fragment,
#   on its own or after a .md target, names a heading of that page (GitHub's
#   anchors: lower case, punctuation dropped, spaces as hyphens).
set -u
SRC=${1:?usage: doc_links.sh SOURCE_DIR}
source "$(dirname "$0")/checks.sh"
cd "$SRC" || exit 1

# links FILE: one target a line, code blocks and inline code left out
links() {
    awk '/^ *```/ { code = !code; next } !code' "$1" | sed 's/`[^`]*`//g' |
        grep -o '\]([^)]*)' | sed 's/^](//; s/)$//; s/ .*//'
}
# anchors FILE: the anchors of its headings, one a line
anchors() {
    awk '/^ *```/ { code = !code; next } !code && /^#+ /' "$1" |
        sed 's/^#* *//' | tr 'A-Z' 'a-z' | sed 's/[^a-z0-9 _-]//g; s/ /-/g'
}

pages=(README.md)
while IFS= read -r f; do pages+=("$f"); done < <(find docs -name '*.md' | sort)
n=0
for page in "${pages[@]}"; do
    dir=$(dirname "$page")
    while IFS= read -r target; do
        [ -n "$target" ] || continue
        case "$target" in
            [a-zA-Z]*:*) continue ;; # https:, mailto:
        esac
        n=$((n + 1))
        file=${target%%#*}
        frag=""
        [ "$file" != "$target" ] && frag=${target#*#}
        if [ -z "$file" ]; then
            path=$page
        else
            path="$dir/$file"
            if [ ! -e "$path" ]; then
                fail "$page: link to $target: $path does not exist"
                continue
            fi
        fi
        if [ -n "$frag" ] && [[ "$path" == *.md ]] && ! anchors "$path" | grep -qxF "$frag"; then
            fail "$page: link to $target: no heading #$frag in $path"
        fi
    done < <(links "$page")
done
if [ $n -gt 0 ]; then
    pass "${#pages[@]} pages, $n relative links checked"
else
    fail "no relative links found in ${#pages[@]} pages"
fi
checks_end
