#!/bin/sh
# ldconfig.sh: after `make install`, refresh the loader's cache when the library went where it looks, or say how to find it.
# Usage: scripts/ldconfig.sh LIBDIR [DESTDIR]   ($LDCONFIG: the ldconfig to run, for the tests)
set -u
libdir=$1
destdir=${2:-}
sys=$(command -v ldconfig || echo /sbin/ldconfig)
ldconfig=${LDCONFIG:-$sys}
# Staged for a package: the package's own scripts run ldconfig where it lands.
[ -n "$destdir" ] && exit 0
real=$(cd "$libdir" 2>/dev/null && pwd -P) || exit 0
# The folders the loader searches: ld.so.conf's and the built-in ones (ldconfig -v -N -X names each, without writing).
searched=0
for d in $("$sys" -v -N -X 2>/dev/null | sed -n 's|^\(/[^:]*\):.*|\1|p') /lib /usr/lib /lib64 /usr/lib64; do
	[ "$(cd "$d" 2>/dev/null && pwd -P)" = "$real" ] && searched=1
done
if [ $searched = 0 ]; then
	echo "note: $libdir is not where the loader looks for libraries: link programs with"
	echo "  -Wl,-rpath,\$(pkg-config --variable=libdir hotreload)   or run them with LD_LIBRARY_PATH=$libdir"
elif [ "$(id -u)" = 0 ]; then
	"$ldconfig"
else
	echo "note: run ldconfig as root, so that the loader finds libhotreload.so.0 in $libdir"
fi
