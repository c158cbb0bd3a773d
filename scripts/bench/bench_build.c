/* bench_build.c: builds as a real project has them, through the real hotreloadd: a header included by
 * 20 modules, a revert that reuses an earlier object, gcc, tcc and ccache on one module, and one
 * source saved in a folder module of 20, each timed from the save to the announcement of every
 * build it causes (the load in the game adds about 0.2 ms: bench_reload).
 * Usage: bench_build HOTRELOADD [ROUNDS]   (make bench) */
#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../../proto/hrp.h"
#include "bench.h"

extern char **environ;

/* A module of 40-odd lines that includes the project's header. */
static void module(const char *dir, const char *name, int value)
{
	char rel[256], src[2048];
	snprintf(rel, sizeof rel, "%s.c", name);
	snprintf(src, sizeof src,
	         "#include \"common.h\"\n#include <string.h>\n\n"
	         "typedef struct { float x, y, vx, vy; int hp; } thing;\n"
	         "static thing things[MAX_THINGS];\nstatic int n;\n\n"
	         "void spawn(float x, float y)\n{\n\tif (n == MAX_THINGS) return;\n"
	         "\tthing *t = &things[n++];\n\tmemset(t, 0, sizeof *t);\n\tt->x = x; t->y = y; t->hp = START_HP;\n}\n\n"
	         "void step(float dt)\n{\n\tfor (int i = 0; i < n; i++) {\n\t\tthing *t = &things[i];\n"
	         "\t\tt->vy += GRAVITY * dt; t->x += t->vx * dt; t->y += t->vy * dt;\n"
	         "\t\tif (t->y > FLOOR) { t->y = FLOOR; t->vy = -t->vy * BOUNCE; t->hp--; }\n\t}\n}\n\n"
	         "int alive(void)\n{\n\tint k = 0;\n\tfor (int i = 0; i < n; i++) k += things[i].hp > 0;\n\treturn k;\n}\n\n"
	         "int f(void) { return %d; }\n",
	         value);
	bench_put(dir, rel, src);
}

static void header(const char *dir, int value)
{
	char text[512];
	snprintf(text, sizeof text,
	         "#define MAX_THINGS 256\n#define START_HP %d\n#define GRAVITY 9.8f\n#define FLOOR 480.0f\n#define BOUNCE 0.5f\n",
	         value);
	bench_put(dir, "common.h", text);
}

struct daemon {
	char root[4200];
	int pid, fd;
	hrp_reader r;
};

/* hotreloadd on root (detached: it returns once ready), and a protocol peer subscribed to n modules m00... */
static void start(struct daemon *d, const char *exe, const char *const *names, int n)
{
	char *argv[] = {(char *)exe, "--root", d->root, "--quiet", NULL}, path[4400];
	if ((d->pid = bench_daemon(argv, d->root)) < 0)
		exit(1);
	snprintf(path, sizeof path, "%s/.hotreload/hotreloadd.sock", d->root);
	d->fd = hrp_connect(path, 5000);
	memset(&d->r, 0, sizeof d->r);
	hrp_msg hello = {.type = HRP_HELLO, .u.hello = {HRP_VERSION, HRP_ROLE_LIBRARY, (uint32_t)getpid(), "", "bench"}};
	if (d->fd < 0 || hrp_send(d->fd, &hello) < 0)
		exit(1);
	for (int i = 0; i < n; i++) {
		hrp_msg sub = {.type = HRP_SUBSCRIBE, .u.sub.module = names[i]};
		if (hrp_send(d->fd, &sub) < 0)
			exit(1);
	}
}

static void stop(struct daemon *d)
{
	close(d->fd);
	hrp_reader_free(&d->r);
	bench_stop(d->pid);
	if (bench_rm(d->root) < 0)
		exit(1);
}

/* Wait until each of n modules has announced version want or newer; the time the last one came. */
static double announced(struct daemon *d, int n, uint64_t want)
{
	double deadline = bench_now_ms() + 60000, last = 0;
	int got = 0;
	uint64_t seen[64] = {0};
	while (got < n) {
		hrp_msg m;
		int rc = hrp_recv(d->fd, &d->r, &m, (int)(deadline - bench_now_ms()));
		if (rc < 0 || m.type == HRP_FAILED) {
			fprintf(stderr, "bench: %s\n", rc < 0 ? strerror(-rc) : m.u.failed.message);
			exit(1);
		}
		if (m.type != HRP_BUILD || m.u.build.version < want)
			continue;
		int i = atoi(m.u.build.module + 1) % 64;
		if (seen[i] < want)
			got++;
		seen[i] = m.u.build.version;
		last = bench_now_ms();
	}
	return last;
}

static double report(const char *what, double *v, int n)
{
	bench_sort(v, n);
	printf("  %-44s p50 %7.1f  min %7.1f  max %7.1f ms\n", what, v[n / 2], v[0], v[n - 1]);
	fflush(stdout);
	return v[n / 2];
}

/* Source i of a folder module: 40 small functions (and, in the first, f() returning value). */
static void folder_source(const char *dir, int i, int value)
{
	char rel[64], src[8192];
	size_t len = 0;
	snprintf(rel, sizeof rel, "m00/s%02d.c", i);
	for (int k = 0; k < 40; k++)
		len += (size_t)snprintf(src + len, sizeof src - len,
		                        "int s%02d_%02d(int x)\n{\n\tint y = x * %d;\n\treturn y > %d ? y - %d : y + %d;\n}\n\n", i, k,
		                        k + value, k, i, k);
	if (i == 0)
		snprintf(src + len, sizeof src - len, "int f(void) { return %d; }\n", value);
	bench_put(dir, rel, src);
}

/* Run argv in dir, as the daemon runs cc: the time it took, in ms. */
static double bare(const char *dir, char *const *argv)
{
	double t0 = bench_now_ms();
	if (bench_run(argv, dir) < 0) {
		fprintf(stderr, "bench: %s failed\n", argv[0]);
		exit(1);
	}
	return bench_now_ms() - t0;
}

static void tmpdir(struct daemon *d)
{
	snprintf(d->root, sizeof d->root, "/tmp/hrbuild.XXXXXX");
	if (!mkdtemp(d->root))
		exit(1);
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: bench_build HOTRELOADD [ROUNDS]\n");
		return 2;
	}
	int rounds = argc > 2 ? atoi(argv[2]) : 10;
	rounds = rounds < 3 ? 3 : rounds > 200 ? 200 : rounds;
	char exe[4096];
	if (!realpath(argv[1], exe))
		return 1;
	unsetenv("HOTRELOAD_SOCKET");
	double *t = calloc((size_t)rounds, sizeof *t);
	long cores = sysconf(_SC_NPROCESSORS_ONLN);

	/* 1. One header included by 20 modules: a save rebuilds all 20, --jobs (the cores) at once. */
	struct daemon d;
	tmpdir(&d);
	char names[20][8];
	const char *list[20];
	header(d.root, 10);
	for (int i = 0; i < 20; i++) {
		snprintf(names[i], sizeof names[i], "m%02d", i);
		list[i] = names[i];
		module(d.root, names[i], i);
	}
	start(&d, exe, list, 20);
	uint64_t v = 1;
	announced(&d, 20, v);
	for (int r = 0; r < rounds; r++) {
		double t0 = bench_now_ms();
		header(d.root, 11 + r);
		t[r] = announced(&d, 20, ++v) - t0;
	}
	stop(&d);
	printf("builds as a project has them (%ld cores, %d rounds), from the save to the last announcement:\n", cores, rounds);
	report("a header included by 20 modules: all 20", t, rounds);

	/* 2. A revert: content built before comes back as a copy of its object, with no compile. */
	tmpdir(&d);
	header(d.root, 10);
	module(d.root, "m00", 1);
	start(&d, exe, list, 1);
	announced(&d, 1, v = 1);
	module(d.root, "m00", 2);
	announced(&d, 1, ++v);
	for (int r = 0; r < rounds; r++) {
		double t0 = bench_now_ms();
		module(d.root, "m00", 1 + r % 2);
		t[r] = announced(&d, 1, ++v) - t0;
	}
	stop(&d);
	report("a revert to content built before (reused)", t, rounds);

	/* 3. One module, new content each save, through each compiler. */
	static const char *const compilers[] = {"gcc", "tcc", "ccache gcc", NULL};
	for (int c = 0; compilers[c]; c++) {
		char conf[64], label[64], ccdir[4300];
		tmpdir(&d);
		snprintf(conf, sizeof conf, "cc = %s\n", compilers[c]);
		bench_put(d.root, "hotreload.conf", conf);
		snprintf(ccdir, sizeof ccdir, "%s/.ccache", d.root);
		setenv("CCACHE_DIR", ccdir, 1); /* a cache of its own: every save a miss, what ccache costs */
		header(d.root, 10);
		module(d.root, "m00", 1000);
		start(&d, exe, list, 1);
		announced(&d, 1, v = 1);
		for (int r = 0; r < rounds; r++) {
			double t0 = bench_now_ms();
			module(d.root, "m00", 2000 + r);
			t[r] = announced(&d, 1, ++v) - t0;
		}
		stop(&d);
		snprintf(label, sizeof label, "one module, new content, cc = %s", compilers[c]);
		report(label, t, rounds);
	}
	unsetenv("CCACHE_DIR");

	/* 4. A folder module of 20 sources: one saved compiles that one, then links; against the bare compile and link. */
	double *tc = calloc((size_t)rounds, sizeof *tc), *tl = calloc((size_t)rounds, sizeof *tl);
	char dir[4300];
	tmpdir(&d);
	snprintf(dir, sizeof dir, "%s/m00", d.root);
	if (mkdir(dir, 0755) < 0)
		return 1;
	for (int i = 0; i < 20; i++)
		folder_source(d.root, i, 1);
	start(&d, exe, list, 1);
	announced(&d, 1, v = 1);
	char *cc[] = {"cc", "-fPIC", "-g", "-c", "-MMD", "-MF", "bare.d", "-o", "bare.o", "m00/s07.c", NULL};
	char *ld[26] = {"cc", "-fPIC", "-g", "-shared", "-o", "bare.so"}, objs[20][48];
	for (int i = 0; i < 20; i++) {
		snprintf(objs[i], sizeof objs[i], "bare%02d.o", i);
		char src[16];
		snprintf(src, sizeof src, "m00/s%02d.c", i);
		char *one[] = {"cc", "-fPIC", "-g", "-c", "-o", objs[i], src, NULL};
		bare(d.root, one);
		ld[6 + i] = objs[i];
	}
	for (int r = 0; r < rounds; r++) {
		double t0 = bench_now_ms();
		folder_source(d.root, 7, 100 + r);
		t[r] = announced(&d, 1, ++v) - t0;
		tc[r] = bare(d.root, cc);
		tl[r] = bare(d.root, ld);
	}
	stop(&d);
	double save = report("a folder of 20 sources: one of them saved", t, rounds);
	double c1 = report("  bare compile of that source", tc, rounds), l1 = report("  bare link of the 20 objects", tl, rounds);
	printf("  %-44s %+7.1f ms over compile + link (target: within +5 ms)\n", "  save to announced, p50", save - c1 - l1);

	/* 5. The quick tier (quick = tcc): the tcc build goes live first, the configured one after; against bare tcc and cc. */
	char *tcc_v[] = {"tcc", "-v", NULL};
	posix_spawn_file_actions_t quiet;
	posix_spawn_file_actions_init(&quiet);
	posix_spawn_file_actions_addopen(&quiet, 1, "/dev/null", O_WRONLY, 0);
	pid_t probe;
	int st;
	if (posix_spawnp(&probe, "tcc", &quiet, NULL, tcc_v, environ) || waitpid(probe, &st, 0) < 0 || !WIFEXITED(st) ||
	    WEXITSTATUS(st)) {
		printf("  (no tcc: the quick tier is not measured; scripts/deps.sh test installs it)\n");
	} else {
		double *tq = calloc((size_t)rounds, sizeof *tq), *bt = calloc((size_t)rounds, sizeof *bt),
		       *bg = calloc((size_t)rounds, sizeof *bg);
		tmpdir(&d);
		bench_put(d.root, "hotreload.conf", "quick = tcc\n");
		header(d.root, 10);
		module(d.root, "m00", 1);
		start(&d, exe, list, 1);
		announced(&d, 1, v = 2); /* its first quick build, then its first final one */
		char *btcc[] = {"tcc", "-shared", "-o", "bare-tcc.so", "m00.c", NULL};
		char *bgcc[] = {"cc", "-shared", "-fPIC", "-g", "-o", "bare-cc.so", "m00.c", NULL};
		for (int r = 0; r < rounds; r++) {
			double t0 = bench_now_ms();
			module(d.root, "m00", 3000 + r);
			tq[r] = announced(&d, 1, ++v) - t0; /* the quick build */
			t[r] = announced(&d, 1, ++v) - t0;  /* the configured one */
			bt[r] = bare(d.root, btcc);
			bg[r] = bare(d.root, bgcc);
		}
		stop(&d);
		double q = report("quick = tcc: the tcc build live", tq, rounds), f = report("  then the configured build", t, rounds);
		double b1 = report("  bare tcc -shared", bt, rounds), b2 = report("  bare cc -shared", bg, rounds);
		printf("  %-44s %+7.1f ms over bare tcc (target: within +3 ms); %.0f%% of bare cc (target: at most 25%%)\n",
		       "  quick, p50", q - b1, 100 * q / b2);
		printf("  %-44s %+7.1f ms over bare cc (target: within +5 ms)\n", "  final, p50", f - b2);
		free(tq);
		free(bt);
		free(bg);
	}
	posix_spawn_file_actions_destroy(&quiet);
	free(tc);
	free(tl);
	free(t);
	return 0;
}
