#!/bin/sh
# deps.sh: check hotreload's dependencies and, as root, install the missing Debian packages.
# Usage: scripts/deps.sh [build|test|cross|fuzz|sdl|soak|all]   (default: all)
# Each check looks for the thing itself (a command, a pkg-config module, a header),
# not for a package name, so hand-built installs count too.
set -u

want=${1:-all}
missing=""

need() { # need PACKAGE CHECK...: add PACKAGE to the list unless CHECK succeeds
	pkg=$1; shift
	if ! "$@" >/dev/null 2>&1; then
		missing="$missing $pkg"
	fi
}
has_cmd() { command -v "$1"; }
has_sshd() { test -x /usr/sbin/sshd; } # not on a user's PATH
has_pc() { pkg-config --exists "$1"; }
has_header() { printf '#include <%s>\n' "$1" | ${CC:-cc} -E -x c - -o /dev/null; }
has_libfuzzer() {
	printf 'int LLVMFuzzerTestOneInput(const char *d, long n) { (void)d; (void)n; return 0; }\n' |
		clang -fsanitize=fuzzer -x c - -o /dev/null
}

build() {
	need gcc has_cmd cc
	need make has_cmd make
	need pkg-config has_cmd pkg-config
	need libsqlite3-dev has_pc sqlite3
	need libinotifytools0-dev has_header inotifytools/inotifytools.h
	need tcc has_cmd tcc # make demo's quick tier (quick = tcc): each save live in a few ms, before gcc's build
}
tests() {
	need libcriterion-dev has_pc criterion
	need jq has_cmd jq
	need systemd has_cmd systemd-analyze        # and systemd-socket-activate: the units and socket activation
	need man-db has_cmd man                     # the man pages are checked with man --warnings
	need groff-base has_cmd groff
	need cmake has_cmd cmake                    # tests/install.sh builds a CMake project with find_package(hotreload)
	sdl
	need xvfb has_cmd Xvfb                      # the sdl suite runs the SDL example on an X server of its own
	need xdotool has_cmd xdotool                # and presses its keys
	need tcc has_cmd tcc                        # the compilers suite: tcc, ccache, distcc with a distccd
	need ccache has_cmd ccache
	need distcc has_cmd distccd
	need git has_cmd git                        # the saves suite: a real git checkout, and real vim saves
	need vim has_cmd vim
	need podman has_cmd podman                  # the container suite: a game in a real container, on an image made here
	need runc has_cmd runc                      # its runtime: crun 1.8 refuses a machine with hybrid cgroups
	need openssh-server has_sshd                # the bytes suite: a real sshd on 127.0.0.1 forwards the socket
	need openssh-client has_cmd ssh             # and ssh -L connects a game through it (ssh-keygen makes its keys)
	need gdb has_cmd gdb                        # the patch suite: gdb stops at a line of a patched function
	need clang has_cmd clang                    # and patches clang's programs as well as gcc's
	cross                                       # the cross suite: an aarch64 game under qemu-user
}
# A game on another architecture: libhotreload and modules built for aarch64, its game run under qemu-user
# (qemu-aarch64 -L /usr/aarch64-linux-gnu; binfmt_misc is not needed for that). The cross suite needs them.
cross() {
	need gcc-aarch64-linux-gnu has_cmd aarch64-linux-gnu-gcc
	need libc6-dev-arm64-cross test -e /usr/aarch64-linux-gnu/include/stdio.h
	need qemu-user has_cmd qemu-aarch64
}
sdl() {
	need libsdl2-dev has_pc sdl2
	need tcc has_cmd tcc # the SDL example's quick tier, as make demo's
}
fuzz() {
	need clang has_cmd clang
	need libclang-rt-dev has_libfuzzer # libFuzzer, for the default clang
}

case $want in
build) build ;;
test) build; tests ;;
cross) build; cross ;;
fuzz) build; fuzz ;;
sdl)
	build
	sdl
	if [ -z "${DISPLAY:-}" ]; then
		need xvfb has_cmd xvfb-run
		need xauth has_cmd xauth # xvfb-run needs it; xvfb only recommends it
	fi
	;;
soak) build; need tcc has_cmd tcc ;; # make soak: tcc compiles its thousands of builds quickly
all) build; tests; fuzz ;;
*) echo "usage: $0 [build|test|cross|fuzz|sdl|soak|all]" >&2; exit 2 ;;
esac

# pkg-config itself may be what is missing: then the pkg-config checks fail too,
# and the packages they name are installed together with it. Drop repeats.
missing=$(printf '%s\n' $missing | sort -u | tr '\n' ' ')
[ -z "${missing% }" ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
	echo "hotreload: missing dependencies: $missing" >&2
	echo "install them with:" >&2
	echo "  sudo apt-get install -y $missing" >&2
	exit 1
fi

echo "hotreload: installing $missing" >&2
export DEBIAN_FRONTEND=noninteractive
# A fresh machine may have no package lists yet: update only when a package has no candidate.
for p in $missing; do
	if ! apt-cache policy "$p" 2>/dev/null | grep -q 'Candidate: [0-9]'; then
		apt-get update -q >&2 || exit 1
		break
	fi
done
# shellcheck disable=SC2086
apt-get install -y -q --no-install-recommends $missing >&2 || {
	echo "hotreload: apt-get install failed for: $missing" >&2
	exit 1
}
