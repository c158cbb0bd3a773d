#!/bin/sh
# install.sh: `make install` into a temp prefix and a DESTDIR, check the layout, build a
# program against it through pkg-config (shared and static, C and C++), then uninstall.
# Usage: tests/install.sh [BUILD_DIR]
set -u
B=${1:-build}
top=$(cd "$(dirname "$0")/.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
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

P=$tmp/prefix
make -s -C "$top" B="$B" install PREFIX="$P" >"$tmp/install.log" 2>&1 ||
	{ cat "$tmp/install.log"; echo "install: 0 passed, 1 failed"; exit 1; }

check "a private prefix: the install says how programs find the library" \
	grep -q "LD_LIBRARY_PATH=$P/lib" "$tmp/install.log"
# ldconfig runs for a folder the loader searches, as root, without DESTDIR; never for a private one or a DESTDIR.
printf '#!/bin/sh\necho ran >>"%s"\n' "$tmp/ldconfig.ran" >"$tmp/ldconfig" && chmod +x "$tmp/ldconfig"
ldc() { LDCONFIG=$tmp/ldconfig sh "$top/scripts/ldconfig.sh" "$@" >/dev/null; cat "$tmp/ldconfig.ran" 2>/dev/null; rm -f "$tmp/ldconfig.ran"; }
if [ "$(id -u)" = 0 ]; then
	check "ldconfig runs after an install into /usr/local/lib" test "$(ldc /usr/local/lib)" = ran
fi
check "ldconfig does not run for a private prefix" test -z "$(ldc "$P/lib")"
check "ldconfig does not run with DESTDIR" test -z "$(ldc /usr/local/lib "$tmp/dest")"

for f in bin/hotreload bin/hotreloadd lib/libhotreload.so.0.1.0 lib/libhotreload.a include/hotreload.h \
	lib/pkgconfig/hotreload.pc; do
	check "$f installed" test -f "$P/$f"
done
check "libhotreload.so.0 links to the library" test "$(readlink "$P/lib/libhotreload.so.0")" = libhotreload.so.0.1.0
check "libhotreload.so links to .so.0" test "$(readlink "$P/lib/libhotreload.so")" = libhotreload.so.0
check "SONAME is libhotreload.so.0" sh -c "readelf -d '$P/lib/libhotreload.so.0' | grep -q 'SONAME.*\[libhotreload.so.0\]'"
# and GDB's JIT interface, whose names are the debugger's (one descriptor per process, shared with any other JIT)
check "only hr_ symbols (and GDB's JIT interface) are exported" sh -c \
	"! nm -D --defined-only '$P/lib/libhotreload.so.0' | awk '{print \$3}' | grep -v -e '^hr_' -e '^__jit_debug_register_code\$' -e '^__jit_debug_descriptor\$'"
check "the library needs nothing beyond libc, libdl, pthreads" sh -c \
	"! readelf -d '$P/lib/libhotreload.so.0' | grep NEEDED | grep -v -e libc.so -e libdl.so -e libpthread.so"

export PKG_CONFIG_PATH="$P/lib/pkgconfig"
check "pkg-config knows the version" test "$(pkg-config --modversion hotreload)" = 0.1.0
check "pkg-config cflags point at the prefix" sh -c "pkg-config --cflags hotreload | grep -q -- '-I$P/include'"

cat >"$tmp/v.c" <<'C'
#include <hotreload.h>
#include <stdio.h>
#include <string.h>
#define S_(x) #x
#define S(x) S_(x)
int main(void) {
	const char *want = S(HOTRELOAD_VERSION_MAJOR) "." S(HOTRELOAD_VERSION_MINOR) "." S(HOTRELOAD_VERSION_PATCH);
	puts(hr_library_version());
	return strcmp(hr_library_version(), want) != 0;
}
C
# shellcheck disable=SC2046
check "a program builds with pkg-config" cc -Wall -Werror -o "$tmp/v" "$tmp/v.c" $(pkg-config --cflags --libs hotreload) -Wl,-rpath,"$P/lib"
check "and runs against the installed library" sh -c "'$tmp/v' | grep -qx 0.1.0"
check "it loads libhotreload.so.0 from the prefix" sh -c "ldd '$tmp/v' | grep -q '$P/lib/libhotreload.so.0'"
# shellcheck disable=SC2046
check "a program links the static library" cc -o "$tmp/vs" "$tmp/v.c" $(pkg-config --cflags hotreload) "$P/lib/libhotreload.a" $(pkg-config --libs-only-l --static hotreload | sed 's/-lhotreload//')
check "and runs" "$tmp/vs"
if command -v c++ >/dev/null; then
	cp "$tmp/v.c" "$tmp/v.cc"
	# shellcheck disable=SC2046
	check "the header works from C++" c++ -Wall -Werror -o "$tmp/vpp" "$tmp/v.cc" $(pkg-config --cflags --libs hotreload) -Wl,-rpath,"$P/lib"
fi
check "the installed CLI runs" sh -c "'$P/bin/hotreload' --version | grep -qx 'hotreload 0.1.0'"
check "the installed daemon runs" sh -c "'$P/bin/hotreloadd' --version | grep -qx 'hotreloadd 0.1.0'"

# The conformance host (tests/conformance/host.c, a copy of the acceptance
# suite's, unchanged): a game loop written only against the public API, built
# against this install, reloading a module through the installed daemon.
conf=$top/../shared/conformance/host.c
[ -f "$conf" ] && check "tests/conformance/host.c is the shared one" cmp "$conf" "$top/tests/conformance/host.c"
# shellcheck disable=SC2046
check "the conformance host builds against the install" \
	cc -o "$tmp/host" "$top/tests/conformance/host.c" $(pkg-config --cflags --libs hotreload) -Wl,-rpath,"$P/lib"
mods=$tmp/mods
mkdir -p "$mods"
echo 'long probe_value(void) { return 1; }' >"$mods/probe.c"
# A module that includes <hotreload.h>, built by a daemon given no CFLAGS: it finds the installed header itself.
printf '#include <hotreload.h>\nHR_KEEP(int, k);\nint kept(void) { return k; }\n' >"$mods/kept.c"
conformance() {
	env -u CFLAGS -u CPATH -u C_INCLUDE_PATH "$P/bin/hotreloadd" --root "$mods" || return 1
	"$tmp/host" "$mods/.hotreload/hotreloadd.sock" probe 30 2 >"$tmp/host.out" 2>&1 &
	hpid=$!
	# Wait (with a deadline) for v1 to be live, then save v2: the host stops when it sees 2.
	n=0
	until grep -q ' 1 1$' "$tmp/host.out" || [ $n -ge 300 ]; do sleep 0.1; n=$((n + 1)); done
	echo 'long probe_value(void) { return 2; }' >"$mods/probe.c"
	wait $hpid
	rc=$?
	n=0
	until "$P/bin/hotreload" --state-dir "$mods/.hotreload" history kept --json | grep -q '"status":"ok"' ||
		[ $n -ge 300 ]; do sleep 0.1; n=$((n + 1)); done
	"$P/bin/hotreload" --state-dir "$mods/.hotreload" show kept --json | grep -q -- "-I$P/include" || rc=1
	dpid=$(cat "$mods/.hotreload/hotreloadd.lock")
	kill "$dpid"
	n=0
	while kill -0 "$dpid" 2>/dev/null && [ $n -lt 200 ]; do sleep 0.1; n=$((n + 1)); done
	cat "$tmp/host.out"
	[ $rc -eq 0 ] && grep -q ' 1 1$' "$tmp/host.out" && grep -q ' 2 2$' "$tmp/host.out" &&
		grep -q '^tight_update_ns=' "$tmp/host.out"
}
check "the conformance host reloads a module through the installed daemon" conformance

# The man pages: installed, found by man, and free of warnings.
for m in man1/hotreload.1 man3/hotreload.3 man5/hotreload.conf.5 man8/hotreloadd.8; do
	check "$m installed" test -f "$P/share/man/$m"
	check "$m renders without a warning" sh -c \
		"MANWIDTH=80 man --warnings -l '$P/share/man/$m' 2>&1 >/dev/null | { ! grep .; }"
done
check "the bash completion is installed" test -f "$P/share/bash-completion/completions/hotreload"
check "man finds them under the prefix" sh -c "MANPATH='$P/share/man' man -w hotreload.3 | grep -q '$P'"

# The systemd user units: they name the installed daemon, and systemd finds nothing wrong in them
# (the templates through an instance, as systemd only reads those).
for u in hotreloadd.service hotreloadd.socket hotreloadd@.service hotreloadd@.socket; do
	check "$u installed, naming the installed daemon" sh -c \
		"test -f '$P/lib/systemd/user/$u' && ! grep -q @BINDIR@ '$P/lib/systemd/user/$u' &&
		 { ! grep -q ExecStart= '$P/lib/systemd/user/$u' || grep -q 'ExecStart=$P/bin/hotreloadd ' '$P/lib/systemd/user/$u'; }"
done
verify_units() {
	u=$tmp/units
	mkdir -p "$u" "$tmp/runtime"
	cp "$P"/lib/systemd/user/hotreloadd.* "$u/"
	# The instance as the units' comment says to make it, from a folder's path.
	i=$(systemd-escape --path /srv/my-game/modules)
	cp "$P/lib/systemd/user/hotreloadd@.service" "$u/hotreloadd@$i.service"
	cp "$P/lib/systemd/user/hotreloadd@.socket" "$u/hotreloadd@$i.socket"
	XDG_RUNTIME_DIR=$tmp/runtime MANPATH=$P/share/man systemd-analyze verify --user \
		"$u/hotreloadd.service" "$u/hotreloadd.socket" "$u/hotreloadd@$i.service" "$u/hotreloadd@$i.socket" &&
		grep -q 'ExecStart=.* --root %f$' "$u/hotreloadd@$i.service"
}
check "systemd-analyze verify passes on the installed units" verify_units

# Program patching (PATCHING.md): the flags, through pkg-config for a make project and find_package for CMake.
for f in lib/pkgconfig/hotreload-patch.pc lib/pkgconfig/hotreload-patch-clang.pc lib/cmake/hotreload/hotreloadConfig.cmake \
	lib/cmake/hotreload/hotreloadConfigVersion.cmake; do
	check "$f installed" test -f "$P/$f"
done
pf=$(pkg-config --cflags --libs hotreload-patch)
for w in -g -fpatchable-function-entry=7,5 -flive-patching=inline-clone -fno-omit-frame-pointer -lhotreload -ldl -lpthread; do
	check "hotreload-patch gives $w" sh -c "echo ' $pf ' | grep -q -- ' $w '"
done
check "hotreload-patch-clang leaves -flive-patching out" sh -c \
	"pkg-config --cflags hotreload-patch-clang | grep -q -- -fpatchable-function-entry=7,5 && ! pkg-config --cflags hotreload-patch-clang | grep -q -- -flive-patching"
mkdir -p "$tmp/mk"
printf '#include <hotreload.h>\nint main(void) { return hr_library_version()[0] != 0 ? 0 : 1; }\n' >"$tmp/mk/game.c"
printf 'game: game.c\n\t$(CC) $(shell pkg-config --cflags hotreload-patch) -o $@ game.c $(shell pkg-config --libs hotreload-patch) -Wl,-rpath,%s\n' \
	"$P/lib" >"$tmp/mk/Makefile"
check "a make project builds with hotreload-patch's flags" make -s -C "$tmp/mk"
check "and runs" "$tmp/mk/game"
check "its functions have room for a jump (the compiler lists their patchable entries)" sh -c \
	"cc $(pkg-config --cflags hotreload-patch) -c -o '$tmp/mk/game.o' '$tmp/mk/game.c' && readelf -SW '$tmp/mk/game.o' | grep -q __patchable_function_entries"
if command -v cmake >/dev/null; then
	mkdir -p "$tmp/cm"
	cp "$tmp/mk/game.c" "$tmp/cm/game.c"
	cat >"$tmp/cm/CMakeLists.txt" <<'CM'
cmake_minimum_required(VERSION 3.13)
project(game C)
find_package(hotreload 0.1 REQUIRED)
add_executable(game game.c)
target_link_libraries(game PRIVATE hotreload::patch)
add_executable(plain game.c)
target_link_libraries(plain PRIVATE hotreload::hotreload)
CM
	check "a CMake project finds hotreload::patch" cmake -S "$tmp/cm" -B "$tmp/cm/b" -DCMAKE_PREFIX_PATH="$P" \
		-DCMAKE_EXPORT_COMPILE_COMMANDS=ON
	check "and builds" cmake --build "$tmp/cm/b"
	check "its compile database carries the patch flags" sh -c \
		"grep -q -- '-fpatchable-function-entry=7,5 -fno-omit-frame-pointer -flive-patching=inline-clone' '$tmp/cm/b/compile_commands.json'"
	check "hotreload::hotreload alone carries none" sh -c \
		"grep 'plain.dir' '$tmp/cm/b/compile_commands.json' | grep -v -q -- -fpatchable-function-entry"
	check "the program runs" env LD_LIBRARY_PATH="$P/lib" "$tmp/cm/b/game"
	check "find_package refuses another major version" sh -c \
		"printf 'cmake_minimum_required(VERSION 3.13)\nproject(v C)\nfind_package(hotreload 1.0 REQUIRED)\n' >'$tmp/cm/v.txt' && mkdir -p '$tmp/cv' && cp '$tmp/cm/v.txt' '$tmp/cv/CMakeLists.txt' && ! cmake -S '$tmp/cv' -B '$tmp/cv/b' -DCMAKE_PREFIX_PATH='$P' >/dev/null 2>&1"
fi

make -s -C "$top" B="$B" uninstall PREFIX="$P" >/dev/null 2>&1
check "uninstall removes every file" test -z "$(find "$P" -type f -o -type l)"

# DESTDIR: files land under it, while the .pc names the real prefix.
D=$tmp/dest
make -s -C "$top" B="$B" install PREFIX=/opt/hr DESTDIR="$D" >/dev/null 2>&1
check "DESTDIR install" test -f "$D/opt/hr/lib/libhotreload.so.0.1.0"
check "the .pc names PREFIX, not DESTDIR" grep -qx 'prefix=/opt/hr' "$D/opt/hr/lib/pkgconfig/hotreload.pc"
check "the units name PREFIX, not DESTDIR" grep -q 'ExecStart=/opt/hr/bin/hotreloadd ' "$D/opt/hr/lib/systemd/user/hotreloadd@.service"
make -s -C "$top" B="$B" uninstall PREFIX=/opt/hr DESTDIR="$D" >/dev/null 2>&1
check "DESTDIR uninstall" test -z "$(find "$D" -type f -o -type l)"

echo "install: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
