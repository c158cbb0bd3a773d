/* bench_store.c: what recording and announcing a build costs on the daemon's path:
 * a store commit (WAL, synchronous=NORMAL) and a BUILD frame's encode and decode.
 * Usage: bench_store [DIR]   (make bench) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../daemon/store.h"
#include "../../proto/hrp.h"
#include "bench.h"

int main(int argc, char **argv)
{
	enum { N = 2000, F = 1000000 };
	char dir[] = "/tmp/hrbench.XXXXXX", path[4200], err[1024];
	const char *d = argc > 1 ? argv[1] : mkdtemp(dir);
	snprintf(path, sizeof path, "%s/history.db", d);
	remove(path);
	hrd_store *s;
	if (!d || hrd_store_open(path, HRD_STORE_CREATE, &s, err, sizeof err) < 0) {
		fprintf(stderr, "bench_store: %s\n", d ? err : "cannot make a temp dir");
		return 1;
	}
	static double t[N];
	for (int i = 0; i < N; i++) {
		hrd_build b = { .module = i % 2 ? "enemy" : "player", .status = i % 10 ? HRD_OK : HRD_FAILED,
			        .started_us = 1, .duration_us = 100000, .source_hash = "0123456789abcdef0123456789abcdef",
			        .command = "cc -shared -fPIC -g -O0 -o /p/.hotreload/obj/enemy.tmp /p/enemy.c",
			        .output = "", .artifact = "/p/.hotreload/obj/enemy.42.so", .cause = "enemy.c: saved" };
		double a = bench_now_us();
		if (hrd_store_record(s, &b) < 0) {
			fprintf(stderr, "bench_store: %s\n", hrd_store_error(s));
			return 1;
		}
		t[i] = bench_now_us() - a;
	}
	bench_sort(t, N);
	printf("store_record_us p50=%.1f p95=%.1f p99=%.1f max=%.1f (n=%d)\n", t[N / 2], t[N * 95 / 100],
	       t[N * 99 / 100], t[N - 1], N);
	hrd_store_close(s);

	/* with the object's SHA-256 and size, which protocol v3 requires of a BUILD */
	hrp_msg m = { .type = HRP_BUILD, .u.build = { "enemy", 42, HRP_KIND_OK, "/p/.hotreload/obj/enemy.42.so",
						      "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", 12288 } }, out;
	hrp_buf b = { 0 };
	double a = bench_now_us();
	for (int i = 0; i < F; i++) {
		b.off = b.len = 0;
		hrp_encode(&m, &b);
		if (hrp_decode(b.data, b.len, &out, NULL) < 0)
			return 1;
	}
	printf("build_frame_encode_decode_ns %.1f (n=%d, %zu bytes)\n", (bench_now_us() - a) * 1e3 / F, F, b.len);
	hrp_buf_free(&b);
	if (argc < 2) {
		char wal[4300], shm[4300];
		snprintf(wal, sizeof wal, "%s-wal", path);
		snprintf(shm, sizeof shm, "%s-shm", path);
		remove(wal);
		remove(shm);
		remove(path);
		remove(d);
	}
	return 0;
}
