#!/bin/sh
# sdl-shots.sh: one reload in the SDL example, from a real run under Xvfb: PNG screenshots (before, the
# error banner, after) for the README, and the game's frame times over a series of reloads.
# Usage: scripts/sdl-shots.sh [BUILD_DIR]   (SHOTS_OUT=DIR: where the PNGs go; default examples/sdl/shots)
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
B=${1:-build}
case $B in /*) ;; *) B=$top/$B ;; esac
out=${SHOTS_OUT:-$top/examples/sdl/shots}
work=$(mktemp -d)
xvfb= game= daemon_state=$work/state
cleanup() {
	[ -z "$game" ] || kill "$game" 2>/dev/null || true
	[ -z "$xvfb" ] || kill "$xvfb" 2>/dev/null || true
	"$B/hotreload" --state-dir "$daemon_state" status >/dev/null 2>&1 &&
		kill "$(head -n1 "$daemon_state/hotreloadd.lock")" 2>/dev/null || true
	wait 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT

# wait_for FILE TEXT: until FILE holds TEXT, for up to 30 s.
wait_for() {
	n=0
	until grep -qF -- "$2" "$1" 2>/dev/null; do
		[ $n -lt 600 ] || { echo "sdl-shots: no \"$2\" in $1 within 30 s:" >&2; cat "$1" >&2; exit 1; }
		sleep 0.05
		n=$((n + 1))
	done
}
shots=0
# shot NAME: the game's window now, as examples/sdl/shots/NAME.png.
shot() {
	shots=$((shots + 1))
	kill -USR1 "$game"
	wait_for "$work/game.out" "shot $shots "
	python3 "$top/scripts/bmp2png.py" "$work/shot-$shots.bmp" "$out/$1.png"
	echo "sdl-shots: $out/$1.png"
}
# save SED-SCRIPT...: colors.c edited, written whole and renamed into place as an editor would.
save() {
	sed "$@" "$work/mods/colors.c" > "$work/colors.tmp"
	mv "$work/colors.tmp" "$work/mods/colors.c"
}

mkdir -p "$out"
cp -r "$top/examples/sdl/modules" "$work/mods"
CFLAGS="-I$top/examples/sdl" "$B/hotreloadd" --root "$work/mods" --state-dir "$daemon_state"
export HOTRELOAD_SOCKET="$daemon_state/hotreloadd.sock"
Xvfb -displayfd 3 -screen 0 1024x768x24 -nolisten tcp 3>"$work/display" 2>/dev/null &
xvfb=$!
wait_for "$work/display" "" # Xvfb writes its display number once it accepts clients
DISPLAY=:$(cat "$work/display") "$B/sdl/game" --shots "$work" >"$work/game.out" 2>&1 &
game=$!
for m in colors player swarm; do wait_for "$work/game.out" "$m v1 live"; done
sleep 4 # the frame-time graph shows the last 240 frames: let it fill


shot before
save -e "s/return 0x101820;/return 0x101820/"
wait_for "$work/game.out" "note: colors build failed"
shot error
save -e "s/return 0x101820/return 0x101820;/" -e s/0xe8a33d/0x20d0c0/
wait_for "$work/game.out" "colors v2 live"
sleep 1 # a second of frames after the switch, on the graph
shot after

# Frame times across reloads: twenty more saves of the palette, each waited for.
c=0x20d0c0 v=2
for i in $(seq 1 20); do
	next=$(printf '0x%06x' $(( (i * 2654435761) % 16777216 )))
	save -e "s/$c/$next/"
	c=$next v=$((v + 1))
	wait_for "$work/game.out" "colors v$v live"
done
kill -TERM "$game"
wait "$game" || true
game=
grep '^frames ' "$work/game.out" | sed 's/^/sdl-shots: /'
grep 'colors v[0-9]* live' "$work/game.out" | sed 's/^/sdl-shots: /' | tail -n 5
