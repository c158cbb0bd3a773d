#!/bin/sh
# demo.sh: run hotreloadd on examples/demo/modules and the demo game beside it; Ctrl-C stops both.
# Usage: scripts/demo.sh [BUILD_DIR]
#   DEMO_SECONDS=N: the game stops after N seconds; DEMO_STATE=DIR: the daemon's state dir.
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
B=${1:-build}
case $B in /*) ;; *) B=$top/$B ;; esac
mods=$top/examples/demo/modules
state=${DEMO_STATE:-$B/demo-state} # outside the watched folder, so the example stays clean
export HOTRELOAD_SOCKET="$state/hotreloadd.sock"

# physics/step.c includes <hotreload.h> for HR_KEEP: the one in this tree, before any installed one.
CFLAGS="-I$top/client ${CFLAGS:-}" "$B/hotreloadd" --foreground --root "$mods" --state-dir "$state" &
daemon=$!
# A non-interactive shell starts background jobs with SIGINT ignored: stop the daemon here.
trap 'kill $daemon 2>/dev/null; wait $daemon 2>/dev/null' EXIT
trap 'exit 130' INT TERM
n=0
until "$B/hotreload" --state-dir "$state" status >/dev/null 2>&1; do
	kill -0 $daemon 2>/dev/null || { echo "demo: hotreloadd did not start" >&2; exit 1; }
	[ $n -lt 300 ] || { echo "demo: hotreloadd did not answer within 30 s" >&2; exit 1; }
	sleep 0.1
	n=$((n + 1))
done
cat <<MSG

  The game below prints a line a second. Edit and save, in another terminal:
    $mods/greeting.c
    $mods/physics/tuning.c
  Break one (delete a semicolon) to see the compiler's error while the game runs on.
  History: $B/hotreload --state-dir $state history
  Ctrl-C stops the game and the daemon.

MSG
# The game's status is the script's: 130 after Ctrl-C, whenever the shell itself hears of it.
"$B/demo/game" ${DEMO_SECONDS:+--seconds "$DEMO_SECONDS"}
exit $?
