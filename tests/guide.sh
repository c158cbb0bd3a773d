#!/bin/sh
# guide.sh: the README's "Add hotreload to your game", step by step as written, on a small game
# that keeps state in file statics, shares a header with its module and loads an asset by a
# relative path; then what each step promises, through the installed daemon, library and CLI.
# Usage: tests/guide.sh [BUILD_DIR]
set -u
B=${1:-build}
top=$(cd "$(dirname "$0")/.." && pwd)
tmp=$(mktemp -d)
game=
cleanup() {
	[ -n "$game" ] && kill "$game" 2>/dev/null
	[ -f "$tmp/game/modules/.hotreload/hotreloadd.lock" ] &&
		kill "$(cat "$tmp/game/modules/.hotreload/hotreloadd.lock")" 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT
pass=0 fail=0

check() { # check DESCRIPTION COMMAND...
	desc=$1
	shift
	if out=$("$@" 2>&1); then
		pass=$((pass + 1))
	else
		fail=$((fail + 1))
		printf 'FAIL: %s\n%s\n' "$desc" "$out" | sed 's/^/  /'
	fi
}

# until SECONDS COMMAND...: wait for the command to succeed, with a deadline (no fixed sleep).
until_ok() {
	n=$(($1 * 10))
	shift
	while [ $n -gt 0 ]; do
		"$@" >/dev/null 2>&1 && return 0
		sleep 0.1
		n=$((n - 1))
	done
	"$@"
}

# The game as it was before hotreload: rules.c keeps its state in file statics.
G=$tmp/game
mkdir -p "$G/assets" && cd "$G" || exit 1
git init -q . && git config user.email t@t && git config user.name t
echo "level 1" >assets/level.txt
cat >game.h <<'C'
#define LEVEL_BONUS 10
#define MULTIPLIER 1
int score(int bonus);
C
cat >rules.c <<'C'
#include "game.h"
static int lines;
static int calls;
int score(int bonus) { lines++; calls++; return MULTIPLIER * bonus + 0 * lines; }
int lines_so_far(void) { return lines; }
C
git add -A && git commit -qm game

# Step 1: install into a prefix of one's own.
P=$tmp/prefix
make -s -C "$top" B="$B" install PREFIX="$P" >"$tmp/install.log" 2>&1 ||
	{ cat "$tmp/install.log"; echo "guide: 0 passed, 1 failed"; exit 1; }
export PKG_CONFIG_PATH=$P/lib/pkgconfig
export PATH=$P/bin:$PATH

# Step 2: the module folder; the shared header stays beside the game.
mkdir modules && git mv rules.c modules/
sed -i 's|#include "game.h"|#include "../game.h"|' modules/rules.c
# Step 3: kept state: the line counter is kept; calls restarts (and is named).
sed -i 's|^static int lines;|#include <hotreload.h>\nHR_KEEP(int, lines) = 0;|' modules/rules.c
# Step 4: the game calls the module through the library, and links with it.
cat >game.c <<'C'
#include <hotreload.h>
#include <stdio.h>
#include <unistd.h>
#include "game.h"
int main(void)
{
	char level[64] = "";
	FILE *f = fopen("assets/level.txt", "r"); /* by a path relative to where the game runs */
	if (!f || !fgets(level, sizeof level, f)) {
		puts("no level");
		return 1;
	}
	fclose(f);
	hr_client *c = hr_connect(NULL);
	if (!c) {
		perror("hr_connect");
		return 1;
	}
	hr_module *rules = hr_open(c, "rules");
	int (*score)(int) = NULL, (*lines)(void) = NULL;
	uint64_t seen = 0;
	for (;;) {
		hr_update(rules);
		if (hr_version(rules) != seen) {
			seen = hr_version(rules);
			score = (int (*)(int))hr_sym(rules, "score");
			lines = (int (*)(void))hr_sym(rules, "lines_so_far");
		}
		if (score && lines) {
			int s = score(LEVEL_BONUS);
			printf("v%llu score=%d lines=%d\n", (unsigned long long)seen, s, lines());
		}
		fflush(stdout);
		usleep(20000);
	}
}
C
check "step 4: the game builds with pkg-config and the rpath" sh -c \
	'cc game.c -o game $(pkg-config --cflags --libs hotreload) -Wl,-rpath,$(pkg-config --variable=libdir hotreload)'

# Step 5: the daemon on the modules, then the game, both from the project's root; no CFLAGS set.
unset CFLAGS HOTRELOAD_SOCKET HOTRELOAD_STATE_DIR
check "step 5: hotreloadd --root modules starts and detaches" hotreloadd --root modules
./game >"$tmp/out" 2>"$tmp/err" &
game=$!
check "the game found the daemon from the project's root, and HR_KEEP built with no CFLAGS" \
	until_ok 30 grep -q "^v1 score=10 " "$tmp/out"
check "the game was told which globals restart" \
	until_ok 30 grep -q "rules: 1 global restarts at each reload: calls" "$tmp/err"

sed -i 's/return MULTIPLIER/return 1 + MULTIPLIER/' modules/rules.c
check "a save of modules/rules.c goes live" until_ok 30 grep -q "^v2 score=11 " "$tmp/out"
sed -i 's/MULTIPLIER 1/MULTIPLIER 3/' game.h
check "a save of game.h, beside the game, rebuilds the module" until_ok 30 grep -q "^v3 score=31 " "$tmp/out"
check "the line counter, kept, went on across the reload" sh -c \
	"grep -m1 '^v2 ' '$tmp/out' | grep -qv 'lines=1\$'"
check "hotreload history shows the builds" sh -c "hotreload history rules --json | grep -q '\"version\": *3'"
check "modules/.hotreload does not show in git status" sh -c '! git status --porcelain | grep -q hotreload'
check "hotreload stop ends the daemon" hotreload stop
check "and it is gone" sh -c '! hotreload status >/dev/null 2>&1'
kill "$game" 2>/dev/null
wait "$game" 2>/dev/null
game=

echo "guide: $pass passed, $fail failed"
[ "$fail" = 0 ]
