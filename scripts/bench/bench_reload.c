/* bench_reload.c: save-to-announce and save-to-live through the real hotreloadd and libhotreload,
 * next to the bare cc time of the same file and command in the same run; the cost of hr_update
 * with nothing new and of a switch; the daemon's and the library's CPU while idle.
 * Usage: bench_reload HOTRELOADD [EDITS]   (make bench) */
#include <hotreload.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../../proto/hrp.h"
#include "bench.h"

/* A module of a realistic size: a few structs, loops and math, 60-odd lines. */
static const char module[] = BENCH_ENEMY("f");

static void write_module(const char *root, int value)
{
	char src[sizeof module + 64];
	snprintf(src, sizeof src, module, 3 + value % 5, 7 + value % 3, value);
	bench_put(root, "enemy.c", src);
}

static long cpu_ticks(int pid)
{
	char path[64], buf[1024];
	snprintf(path, sizeof path, "/proc/%d/stat", pid);
	FILE *f = fopen(path, "r");
	if (!f || !fgets(buf, sizeof buf, f))
		return -1;
	fclose(f);
	long ut = 0, st = 0;
	const char *p = strrchr(buf, ')');
	/* utime and stime are fields 14 and 15; p points before field 3 */
	sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %ld %ld", &ut, &st);
	return ut + st;
}

static double now_ns(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec * 1e9 + (double)t.tv_nsec;
}

/* CPU time of this whole process (every thread), in ms. */
static double self_cpu_ms(void)
{
	struct rusage u;
	getrusage(RUSAGE_SELF, &u);
	return (double)(u.ru_utime.tv_sec + u.ru_stime.tv_sec) * 1e3 + (double)(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e3;
}

/*
 * After a save: wait (blocked, so as not to take a core from the compiler)
 * for the announcement of version want on the peer's socket, then for
 * hr_update to switch to it, calling it as a game would at the top of each
 * frame (one every 20 us here, to time it finely). Sets the times they came,
 * and how long the switching hr_update took. Returns 0, or -1.
 */
static int wait_live(int fd, hrp_reader *r, hr_module *m, uint64_t want, double *announced, double *live, double *sw)
{
	double deadline = bench_now_ms() + 30000;
	*announced = *live = 0;
	while (!*announced) {
		hrp_msg msg;
		int rc = hrp_recv(fd, r, &msg, (int)(deadline - bench_now_ms()));
		if (rc < 0 || msg.type == HRP_FAILED) {
			fprintf(stderr, "bench: %s\n", rc < 0 ? strerror(-rc) : msg.u.failed.message);
			return -1;
		}
		if (msg.type == HRP_BUILD && msg.u.build.version >= want)
			*announced = bench_now_ms();
	}
	while (!*live) {
		if (bench_now_ms() > deadline) {
			fprintf(stderr, "bench: version %llu never went live\n", (unsigned long long)want);
			return -1;
		}
		double t0 = now_ns();
		int up = hr_update(m);
		double t1 = now_ns();
		if (up < 0) {
			fprintf(stderr, "bench: version %llu was refused\n", (unsigned long long)want);
			return -1;
		}
		if (up && hr_version(m) >= want) {
			*live = bench_now_ms();
			*sw = (t1 - t0) / 1e3;
		}
		nanosleep(&(struct timespec){0, 20000}, NULL);
	}
	return 0;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: bench_reload HOTRELOADD [EDITS]\n");
		return 2;
	}
	int n = argc > 2 ? atoi(argv[2]) : 40;
	if (n < 20)
		n = 20;
	char tmp[] = "/tmp/hrbench.XXXXXX", root[4200], bare[4300], sock[4300];
	if (!mkdtemp(tmp))
		return 1;
	snprintf(root, sizeof root, "%s/modules", tmp);
	snprintf(bare, sizeof bare, "%s/bare.so", tmp);
	snprintf(sock, sizeof sock, "%s/.hotreload/hotreloadd.sock", root);
	mkdir(root, 0700);
	write_module(root, 0);
	unsetenv("HOTRELOAD_SOCKET");
	setenv("LDFLAGS", "-lm", 1); /* the module uses libm, which this program does not link */
	char exe[4096];
	if (!realpath(argv[1], exe)) {
		perror(argv[1]);
		return 1;
	}
	char *daemon[] = {exe, "--root", root, "--quiet", NULL};
	int pid = bench_daemon(daemon, root);
	if (pid < 0)
		return 1;

	/* A protocol peer sees the announcement; the library, in this same process, makes it live. */
	int fd = hrp_connect(sock, 5000);
	hrp_reader r = {0};
	hrp_msg hello = {.type = HRP_HELLO, .u.hello = {HRP_VERSION, HRP_ROLE_LIBRARY, (uint32_t)getpid(), "", "bench"}};
	hrp_msg sub = {.type = HRP_SUBSCRIBE, .u.sub.module = "enemy"};
	hr_client *c = hr_connect(sock);
	hr_module *m = c ? hr_open(c, "enemy") : NULL;
	double ann, live, sw;
	if (fd < 0 || !m || hrp_send(fd, &hello) < 0 || hrp_send(fd, &sub) < 0 ||
	    wait_live(fd, &r, m, 1, &ann, &live, &sw) < 0)
		return 1;

	/* The same command the daemon runs, on the same file. */
	char *cc[] = {"cc", "-shared", "-fPIC", "-g", "-o", bare, "enemy.c", "-lm", NULL};
	double *tann = calloc((size_t)n, sizeof *tann), *tlive = calloc((size_t)n, sizeof *tlive);
	double *cold = calloc((size_t)n, sizeof *cold), *tsw = calloc((size_t)n, sizeof *tsw);
	double *tload = calloc((size_t)n, sizeof *tload);
	uint64_t version = 1;
	for (int i = -3; i < n; i++) { /* three warm-up rounds */
		double t0 = bench_now_ms();
		if (bench_run(cc, root) < 0)
			return 1;
		double t1 = bench_now_ms();
		write_module(root, i + 10);
		if (wait_live(fd, &r, m, ++version, &ann, &live, &sw) < 0)
			return 1;
		if (i >= 0) {
			cold[i] = t1 - t0;
			tann[i] = ann - t1;
			tlive[i] = live - t1;
			tsw[i] = sw;
			tload[i] = (live - ann) * 1e3;
		}
	}
	bench_sort(tann, n);
	bench_sort(tlive, n);
	bench_sort(cold, n);
	bench_sort(tsw, n);
	bench_sort(tload, n);

	/* hr_update with nothing new, in a tight loop. */
	long calls = 100000000;
	int sum = 0;
	double a = now_ns();
	for (long i = 0; i < calls; i++)
		sum += hr_update(m);
	double idle_ns = (now_ns() - a) / (double)calls;

	/* Idle: past the checkpoint that follows the last build, nothing should run. */
	struct timespec settle = {3, 0}, idle = {5, 0};
	nanosleep(&settle, NULL);
	long before = cpu_ticks(pid);
	double self_before = self_cpu_ms();
	nanosleep(&idle, NULL);
	long after = cpu_ticks(pid);
	double self_after = self_cpu_ms();

	printf("%d edits of a %zu-byte module (cc -shared -fPIC -g ... -lm), in ms from the save:\n", n, sizeof module);
	printf("  bare cc          p50 %6.1f  p95 %6.1f  min %6.1f  max %6.1f\n",
	       bench_pct(cold, n, .5), bench_pct(cold, n, .95), cold[0], cold[n - 1]);
	printf("  save to announce p50 %6.1f  p95 %6.1f  min %6.1f  max %6.1f\n",
	       bench_pct(tann, n, .5), bench_pct(tann, n, .95), tann[0], tann[n - 1]);
	printf("  save to live     p50 %6.1f  p95 %6.1f  min %6.1f  max %6.1f\n",
	       bench_pct(tlive, n, .5), bench_pct(tlive, n, .95), tlive[0], tlive[n - 1]);
	printf("  live - bare cc   p50 %+6.1f  p95 %+6.1f  (target: p50 within +10 ms)\n",
	       bench_pct(tlive, n, .5) - bench_pct(cold, n, .5), bench_pct(tlive, n, .95) - bench_pct(cold, n, .95));
	printf("announce to live (load in the background, then the next frame's hr_update): p50 %.0f us  p95 %.0f us\n",
	       bench_pct(tload, n, .5), bench_pct(tload, n, .95));
	printf("a switch (hr_update returning 1, no hooks): p50 %.1f us  max %.1f us  (target: 5 us at p50)\n",
	       bench_pct(tsw, n, .5), tsw[n - 1]);
	printf("hr_update with nothing new: %.2f ns a call over %ld calls (target: 5 ns)%s\n", idle_ns, calls,
	       sum ? " (something switched!)" : "");
	printf("CPU while idle for 5 s: daemon %ld clock ticks (%ld per second); game with the library %.1f ms\n",
	       after - before, sysconf(_SC_CLK_TCK), self_after - self_before);

	hr_disconnect(c);
	close(fd);
	bench_stop(pid);
	if (bench_rm(tmp) < 0)
		return 1;
	free(tann);
	free(tlive);
	free(cold);
	free(tsw);
	free(tload);
	return 0;
}
