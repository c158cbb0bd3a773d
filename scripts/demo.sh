#!/bin/sh
# demo.sh: run hotreloadd on an example's modules and its game beside it; Ctrl-C, a closed terminal or a kill stops both.
# Usage: scripts/demo.sh [BUILD_DIR] [sdl]
#   (no second argument) the terminal demo, examples/demo; sdl: the SDL game, examples/sdl, its host patched too
#   (hotreloadd --patch BUILD_DIR/sdl/compile_commands.json), under xvfb-run when there is no display.
#   DEMO_SECONDS=N: the game stops after N seconds; DEMO_STATE=DIR: the daemon's state dir.
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
B=${1:-build}
case $B in /*) ;; *) B=$top/$B ;; esac
kind=${2:-demo}
patch= # the game's own compile database, for hotreloadd --patch
set -- # from here, the game's command line
case $kind in
demo)
	mods=$top/examples/demo/modules
	set -- "$B/demo/game"
	edit="$mods/greeting.c
    $mods/physics/tuning.c"
	what="The game below prints a line a second."
	;;
sdl)
	mods=$top/examples/sdl/modules
	set -- "$B/sdl/game" --shots "$B"
	patch=$B/sdl/compile_commands.json # written by make with the host's own commands
	edit="$mods/colors.c        (the palette)
    $mods/swarm/tuning.c  (how many, how fast)
    $mods/player.c        (arrows move, space dashes)
    $top/examples/sdl/hud.c  (the host itself: the HUD's colours and labels, patched in place)"
	what="The game opens a window: arrows move the player, F12 saves a screenshot to $B/shot-N.bmp."
	if [ -z "${DISPLAY:-}" ]; then
		set -- xvfb-run -a -s "-screen 0 1024x768x24" "$@"
		what="There is no display: the game runs under Xvfb. Send it SIGUSR1 (its first line says how)
  to save what it shows to $B/shot-N.bmp."
	fi
	;;
*)
	echo "usage: $0 [BUILD_DIR] [sdl]" >&2
	exit 2
	;;
esac
state=${DEMO_STATE:-$B/$kind-state} # outside the watched folder, so the example stays clean
export HOTRELOAD_SOCKET="$state/hotreloadd.sock"

# The daemon and the game end with this script, however it ends: its EXIT trap
# stops them (a non-interactive shell starts background jobs with SIGINT
# ignored), after Ctrl-C, a kill or a closed terminal (SIGHUP, which the daemon
# itself takes as "read hotreload.conf again"); and a SIGKILL of the script
# reaches them through the kernel (PR_SET_DEATHSIG, set by setpriv).
tied=
command -v setpriv >/dev/null 2>&1 && tied="setpriv --pdeathsig TERM --"
game= daemon=
trap 'kill $game $daemon 2>/dev/null; wait $game $daemon 2>/dev/null' EXIT
trap 'exit 130' INT TERM
trap 'exit 129' HUP
# Each example's hotreload.conf says how its modules are built.
$tied "$B/hotreloadd" --foreground --root "$mods" --state-dir "$state" ${patch:+--patch "$patch"} &
daemon=$!
n=0
until "$B/hotreload" --state-dir "$state" status >/dev/null 2>&1; do
	kill -0 $daemon 2>/dev/null || { echo "demo: hotreloadd did not start" >&2; exit 1; }
	[ $n -lt 300 ] || { echo "demo: hotreloadd did not answer within 30 s" >&2; exit 1; }
	sleep 0.1
	n=$((n + 1))
done
cat <<MSG

  $what
  Edit and save, in another terminal:
    $edit
    $mods/hotreload.conf  (the build settings: flags rebuild what they change)
  Break one (delete a semicolon) to see the compiler's error while the game runs on.
  History: $B/hotreload --state-dir $state history
  Ctrl-C stops the game and the daemon.

MSG
# The game runs in the background, its input the terminal's, so that the
# script's traps run at once: a shell waiting for a foreground command runs
# them only after it. Its status is the script's: 130 after Ctrl-C.
exec 3<&0
$tied "$@" ${DEMO_SECONDS:+--seconds "$DEMO_SECONDS"} <&3 3<&- &
game=$!
wait $game
status=$?
game=
exit $status
