/* bench_watch.c: what each watcher backend (inotify, fanotify, poll) costs, through the real hotreloadd
 * and libhotreload: CPU and wakeups while idle on 10,000 files (beside a naive stat sweep), save to
 * live, and on 100,000 files the time to ready and the memory; a table for the README at the end.
 * Usage: bench_watch HOTRELOADD [IDLE_SECONDS]   (make bench; fanotify needs root)
 * The idle window is IDLE_SECONDS, else $HR_BENCH_IDLE, else 60; 5 makes a quick run. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <hotreload.h>
#include <math.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

#define SMALL 10000  /* files for the idle and save figures */
#define LARGE 100000 /* files for the scale figures */
#define SAVES 20
#define SWEEP_MS 500 /* the naive sweep's period: the poll backend's default interval */
#define SETTLE_S 3   /* past the WAL checkpoint that follows the last build (2 s) */
#define TOPS 3       /* real modules at the top; m0 is the one saved */
#define NB 3

static const char *const backends[NB] = {"inotify", "fanotify", "poll"};
static const char *const tops[TOPS] = {"m0", "m1", "m2"};
enum { READY_SMALL, CPU, WAKE, FIRST, P50, P95, MAX, CC, READY, RSS, HWM, NFIG };
static double fig[NB][NFIG]; /* NAN: not measured */

static char tmp[4096], root[4200], exe[4096];
static pid_t running; /* the daemon to stop when we exit early */

static double now_ms(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

static void nap(long us)
{
	struct timespec t = {us / 1000000, us % 1000000 * 1000};
	while (nanosleep(&t, &t) < 0 && errno == EINTR)
		;
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

/* Run argv and wait; -1 when it could not run or failed. */
static int run(char *const argv[])
{
	pid_t pid;
	int st;
	if (posix_spawnp(&pid, argv[0], NULL, NULL, argv, environ))
		return -1;
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			return -1;
	return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : -1;
}

static void cleanup(void)
{
	if (running > 0) {
		kill(running, SIGTERM);
		waitpid(running, NULL, 0);
		running = 0;
	}
	char *rm[] = {"rm", "-rf", tmp, NULL};
	if (tmp[0] && run(rm) == 0)
		tmp[0] = '\0';
}

/* Write in place (O_TRUNC, the same inode), as an editor that does not rename over. */
static void put(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	size_t n = strlen(text);
	if (fd < 0 || write(fd, text, n) != (ssize_t)n || close(fd) < 0) {
		perror(path);
		exit(1);
	}
}

/* A module of 20-odd lines at the top of the root; value makes each save new content (no reuse). */
static void module(const char *name, int value)
{
	char path[4400], src[1024];
	snprintf(path, sizeof path, "%s/%s.c", root, name);
	snprintf(src, sizeof src,
	         "typedef struct { float x, y, vx, vy; int hp; } thing;\nstatic thing things[256];\nstatic int n;\n\n"
	         "void spawn(float x, float y)\n{\n\tif (n < 256) things[n++] = (thing){x, y, 0, 0, %d};\n}\n\n"
	         "void step(float dt)\n{\n\tfor (int i = 0; i < n; i++) {\n\t\tthing *t = &things[i];\n"
	         "\t\tt->vy += 9.8f * dt; t->x += t->vx * dt; t->y += t->vy * dt;\n"
	         "\t\tif (t->y > 480.0f) { t->y = 480.0f; t->vy = -t->vy * 0.5f; t->hp--; }\n\t}\n}\n\n"
	         "int f(void) { return %d; }\n", 10 + value % 7, value);
	put(path, src);
}

/* File i of the tree, root-relative: ten files (five .c, five .h) a folder, a hundred folders to a
 * parent, under ROOT/src/: deeper than ROOT/NAME/, so in no module, but watched as a project's are. */
static void tree_path(char *buf, size_t n, int i)
{
	snprintf(buf, n, "src/p%03d/d%05d/f%d.%c", i / 1000, i / 10, i % 10 / 2, i % 2 ? 'h' : 'c');
}

static void tree(int from, int to)
{
	char path[4400], text[96];
	size_t n = (size_t)snprintf(path, sizeof path, "%s/", root);
	for (int i = from; i < to; i++) {
		tree_path(path + n, sizeof path - n, i);
		for (char *s = path + n; i % 10 == 0 && (s = strchr(s, '/')); *s++ = '/') { /* a new folder */
			*s = '\0';
			if (mkdir(path, 0755) < 0 && errno != EEXIST) {
				perror(path);
				exit(1);
			}
		}
		snprintf(text, sizeof text, "/* file %d */\nint g%d(int x)\n{\n\treturn x + %d;\n}\n", i, i, i % 97);
		put(path, text);
	}
}

/* ---- what /proc says of the daemon ---- */

/* The number after "key:" in a /proc status file; 0 when there is none. */
static long field(const char *file, const char *key)
{
	char line[256];
	size_t n = strlen(key);
	long v = 0;
	FILE *f = fopen(file, "r");
	while (f && fgets(line, sizeof line, f))
		if (strncmp(line, key, n) == 0 && line[n] == ':')
			v = strtol(line + n + 1, NULL, 10);
	if (f)
		fclose(f);
	return v;
}

/* utime + stime of every thread, in clock ticks. */
static long cpu_ticks(pid_t pid)
{
	char path[64], buf[1024];
	long ut = 0, st = 0;
	snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
	FILE *f = fopen(path, "r");
	if (!f || !fgets(buf, sizeof buf, f))
		exit(1);
	fclose(f);
	/* utime and stime are fields 14 and 15; past the ')' of the name comes field 3 */
	sscanf(strrchr(buf, ')') + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %ld %ld", &ut, &st);
	return ut + st;
}

/* Context switches, voluntary and not, summed over the threads: each is a wakeup, or a preemption. */
static long switches(pid_t pid)
{
	char path[300];
	long sum = 0;
	snprintf(path, sizeof path, "/proc/%d/task", (int)pid);
	DIR *d = opendir(path);
	for (struct dirent *e; d && (e = readdir(d));) {
		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof path, "/proc/%d/task/%s/status", (int)pid, e->d_name);
		sum += field(path, "voluntary_ctxt_switches") + field(path, "nonvoluntary_ctxt_switches");
	}
	if (d)
		closedir(d);
	return sum;
}

/* ---- one daemon, and the library in this process that makes its builds live ---- */

struct daemon {
	const char *backend;
	pid_t pid;
	hr_client *c;
	hr_module *m[TOPS];
	char log[4400], sock[4400];
};

/* The daemon's log (its stderr), or its first 256 KB; "" when unreadable. */
static char *log_text(const struct daemon *d)
{
	static char buf[1 << 18];
	ssize_t n = 0;
	int fd = open(d->log, O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		n = read(fd, buf, sizeof buf - 1);
		close(fd);
	}
	buf[n > 0 ? n : 0] = '\0';
	return buf;
}

/* hotreloadd --foreground with a new state dir beside the root (tag tells it from the earlier ones) and
 * its stderr in a file; the time from its start until it logs "ready:", or -1 (its log is printed). */
static double start(struct daemon *d, const char *backend, const char *tag)
{
	char state[4300];
	memset(d, 0, sizeof *d);
	d->backend = backend;
	snprintf(state, sizeof state, "%s/state-%s-%s", tmp, backend, tag);
	snprintf(d->sock, sizeof d->sock, "%s/hotreloadd.sock", state);
	snprintf(d->log, sizeof d->log, "%s/%s-%s.log", tmp, backend, tag);
	char *argv[] = {exe, "--root", root, "--state-dir", state, "--watcher", (char *)backend, "--foreground", NULL};
	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 2, d->log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	posix_spawn_file_actions_adddup2(&fa, 2, 1);
	double t0 = now_ms();
	int rc = posix_spawn(&d->pid, exe, &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	if (rc) {
		fprintf(stderr, "bench: %s: %s\n", exe, strerror(rc));
		exit(1);
	}
	running = d->pid;
	while (!strstr(log_text(d), "ready:")) {
		if (waitpid(d->pid, NULL, WNOHANG) == d->pid || now_ms() - t0 > 120000) {
			printf("  hotreloadd --watcher %s was not ready; its log:\n%s", backend, log_text(d));
			kill(d->pid, SIGKILL);
			waitpid(d->pid, NULL, 0);
			running = 0;
			return -1;
		}
		nap(1000);
	}
	return now_ms() - t0;
}

/* Call hr_update on the first n top modules, as a game does each frame (every 250 us here, to time
 * it finely), until each has version want or newer live; the time the last went live, or -1. */
static double live(struct daemon *d, int n, uint64_t want)
{
	double deadline = now_ms() + 30000;
	for (int i = 0;; nap(250)) {
		if (hr_update(d->m[i]) < 0 || now_ms() > deadline) {
			printf("  --watcher %s: version %llu of %s never went live\n", d->backend, (unsigned long long)want, tops[i]);
			return -1;
		}
		while (i < n && hr_version(d->m[i]) >= want)
			i++;
		if (i == n)
			return now_ms();
	}
}

/* Connect the library, and wait for the first builds of the top modules. Returns 0 or -1. */
static int connect_all(struct daemon *d)
{
	if (!(d->c = hr_connect(d->sock)))
		return -1;
	hr_set_note_sink(d->c, NULL, NULL); /* no "hotreload: m0 v2 live" lines */
	for (int i = 0; i < TOPS; i++)
		if (!(d->m[i] = hr_open(d->c, tops[i])))
			return -1;
	return live(d, TOPS, 1) < 0 ? -1 : 0;
}

/* SIGTERM, and what it warned about, if anything. */
static void stop(struct daemon *d)
{
	hr_disconnect(d->c);
	kill(d->pid, SIGTERM);
	while (waitpid(d->pid, NULL, 0) < 0 && errno == EINTR)
		;
	running = 0;
	int shown = 0;
	for (char *l = strtok(log_text(d), "\n"); l; l = strtok(NULL, "\n"))
		if ((strstr(l, "Z warn ") || strstr(l, "Z error ")) && shown++ < 5)
			printf("  hotreloadd --watcher %s logged: %s\n", d->backend, l);
}

/* ---- the measures ---- */

/* CPU (% of one core) and context switches per second of the idle daemon over the window. */
static void idle(const struct daemon *d, int b, int seconds)
{
	nap(SETTLE_S * 1000000L);
	long c0 = cpu_ticks(d->pid), s0 = switches(d->pid);
	double t0 = now_ms();
	nap(seconds * 1000000L);
	long c1 = cpu_ticks(d->pid), s1 = switches(d->pid);
	double t1 = now_ms();
	fig[b][CPU] = (double)(c1 - c0) * 1e3 / (double)sysconf(_SC_CLK_TCK) / (t1 - t0) * 100;
	fig[b][WAKE] = (double)(s1 - s0) / ((t1 - t0) / 1e3);
}

/* Save m0 in place SAVES times (after a first save, reported apart), each time new content, and
 * time each to live; beside each, the bare cc of the same file, run just before. */
static void saves(struct daemon *d, int b)
{
	char bare[4300], src[4300];
	char *cc[] = {"cc", "-shared", "-fPIC", "-g", "-o", bare, src, NULL};
	double t[SAVES], c[SAVES];
	snprintf(bare, sizeof bare, "%s/bare.so", tmp);
	snprintf(src, sizeof src, "%s/m0.c", root);
	for (int i = -1; i < SAVES; i++) {
		double c0 = now_ms();
		if (run(cc) < 0)
			exit(1);
		double c1 = now_ms();
		module("m0", i + 10);
		double done = live(d, 1, (uint64_t)i + 3); /* after the first build, version 1 */
		if (done < 0)
			return;
		if (i < 0) {
			fig[b][FIRST] = done - c1;
		} else {
			t[i] = done - c1;
			c[i] = c1 - c0;
		}
	}
	qsort(t, SAVES, sizeof *t, cmp);
	qsort(c, SAVES, sizeof *c, cmp);
	fig[b][P50] = t[SAVES / 2];
	fig[b][P95] = t[(int)(0.95 * (SAVES - 1) + 0.5)];
	fig[b][MAX] = t[SAVES - 1];
	fig[b][CC] = c[SAVES / 2];
}

static double cpu_ms(void)
{
	struct rusage u;
	getrusage(RUSAGE_THREAD, &u);
	return (double)(u.ru_utime.tv_sec + u.ru_stime.tv_sec) * 1e3 + (double)(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e3;
}

/* The naive way, here: fstatat every file of the small tree every SWEEP_MS for the window; CPU %. */
static double naive(int seconds)
{
	char (*rel)[32] = malloc(SMALL * sizeof *rel);
	int dfd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (!rel || dfd < 0)
		exit(1);
	for (int i = 0; i < SMALL; i++)
		tree_path(rel[i], sizeof rel[i], i);
	struct timespec next;
	struct stat st;
	clock_gettime(CLOCK_MONOTONIC, &next);
	double t0 = now_ms(), c0 = cpu_ms();
	for (int k = 0; k < seconds * 1000 / SWEEP_MS; k++) {
		for (int i = 0; i < SMALL; i++)
			if (fstatat(dfd, rel[i], &st, 0) < 0)
				exit(1);
		next.tv_nsec += SWEEP_MS * 1000000L;
		next.tv_sec += next.tv_nsec / 1000000000L;
		next.tv_nsec %= 1000000000L;
		clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &next, NULL);
	}
	double pct = (cpu_ms() - c0) / (now_ms() - t0) * 100;
	close(dfd);
	free(rel);
	return pct;
}

/* One line of the table: each backend's figure k, then the extra column, then the target. */
static void row(const char *label, int k, int decimals, double extra, const char *target)
{
	printf("  %-34s", label);
	for (int b = 0; b <= NB; b++) {
		double v = b < NB ? fig[b][k] : extra;
		if (isnan(v))
			printf(" %10s", "-");
		else
			printf(" %10.*f", decimals, v);
	}
	printf("   %s\n", target);
}

int main(int argc, char **argv)
{
	const char *env = getenv("HR_BENCH_IDLE"), *t = getenv("TMPDIR");
	int secs = argc > 2 ? atoi(argv[2]) : env ? atoi(env) : 60;
	if (argc < 2 || secs < 1) {
		fprintf(stderr, "usage: bench_watch HOTRELOADD [IDLE_SECONDS]   (or $HR_BENCH_IDLE; default 60)\n");
		return 2;
	}
	if (!realpath(argv[1], exe)) {
		perror(argv[1]);
		return 1;
	}
	unsetenv("HOTRELOAD_SOCKET");
	unsetenv("JOURNAL_STREAM"); /* the daemon's log lines as a terminal gets them */
	setvbuf(stdout, NULL, _IOLBF, 0);
	snprintf(tmp, sizeof tmp, "%s/hrwatch.XXXXXX", t && *t ? t : "/tmp");
	if (!mkdtemp(tmp)) {
		perror(tmp);
		return 1;
	}
	atexit(cleanup);
	for (int b = 0; b < NB; b++)
		for (int k = 0; k < NFIG; k++)
			fig[b][k] = NAN;
	char model[256] = "unknown", line[512];
	FILE *f = fopen("/proc/cpuinfo", "r");
	while (f && fgets(line, sizeof line, f))
		if (sscanf(line, "model name : %255[^\n]", model) == 1)
			break;
	if (f)
		fclose(f);
	long cores = sysconf(_SC_NPROCESSORS_ONLN);

	snprintf(root, sizeof root, "%s/root", tmp);
	if (mkdir(root, 0755) < 0)
		return 1;
	for (int i = 0; i < TOPS; i++)
		module(tops[i], i);
	double g0 = now_ms();
	tree(0, SMALL);
	printf("bench_watch: %d files in %d folders under %s (made in %.1f s), idle window %d s\n", SMALL,
	       SMALL / 10, tmp, (now_ms() - g0) / 1e3, secs);

	/* 1-3. Each backend on the small tree: idle, then saves; the naive sweep after the poll backend. */
	double sweep = NAN;
	for (int b = 0; b < NB; b++) {
		struct daemon d;
		double ready = start(&d, backends[b], "small");
		if (ready < 0)
			continue;
		fig[b][READY_SMALL] = ready;
		if (connect_all(&d) == 0) {
			idle(&d, b, secs);
			saves(&d, b);
		}
		stop(&d);
		printf("  %-8s idle %.2f%% of a core, %.1f wakeups/s; save to live p50 %.0f ms\n", backends[b],
		       fig[b][CPU], fig[b][WAKE], fig[b][P50]);
		if (strcmp(backends[b], "poll") == 0)
			printf("  naive fstatat sweep every %d ms: %.2f%% of a core\n", SWEEP_MS, sweep = naive(secs));
	}

	/* 4. Scale: the same tree grown to LARGE files, once, for every backend. */
	g0 = now_ms();
	tree(SMALL, LARGE);
	printf("grown to %d files in %d folders (in %.1f s)\n", LARGE, LARGE / 10, (now_ms() - g0) / 1e3);
	for (int b = 0; b < NB; b++) {
		struct daemon d;
		char status[64];
		double ready = start(&d, backends[b], "large");
		if (ready < 0)
			continue;
		fig[b][READY] = ready;
		snprintf(status, sizeof status, "/proc/%d/status", (int)d.pid);
		if (connect_all(&d) == 0) { /* ready, and its first builds are out */
			fig[b][RSS] = (double)field(status, "VmRSS") / 1024;
			fig[b][HWM] = (double)field(status, "VmHWM") / 1024;
		}
		stop(&d);
		printf("  %-8s ready %.0f ms, VmRSS %.1f MB, VmHWM %.1f MB\n", backends[b], fig[b][READY], fig[b][RSS],
		       fig[b][HWM]);
	}

	printf("\nwatcher backends of hotreloadd: %s, %ld cores (nproc), idle window %d s\n", model, cores, secs);
	printf("  %-34s %10s %10s %10s %10s   %s\n", "", "inotify", "fanotify", "poll 500ms", "naive", "target");
	printf("%d files in %d folders, idle:\n", SMALL, SMALL / 10);
	row("CPU, % of one core", CPU, 2, sweep, "poll <= 1%");
	row("wakeups per second", WAKE, 1, NAN, "~0 (fanotify: + writes elsewhere on the fs)");
	row("start to ready, ms", READY_SMALL, 0, NAN, "");
	printf("save to live (m0 saved in place %d times), ms:\n", SAVES);
	row("p50", P50, 0, NAN, "");
	row("p95", P95, 0, NAN, "");
	row("max", MAX, 0, NAN, "");
	row("first save after the idle window", FIRST, 0, NAN, "");
	row("bare cc of m0, p50", CC, 0, NAN, "");
	printf("%d files in %d folders:\n", LARGE, LARGE / 10);
	row("start to ready, ms", READY, 0, NAN, "<= 2000");
	row("VmRSS once ready, MB", RSS, 1, NAN, "<= 64");
	row("VmHWM, MB", HWM, 1, NAN, "");
	return 0;
}
