/* bench_patch.c: program patching through the real hotreloadd --patch, real cc and a real program built with the
 * patch flags (bench_patch_prog.c): save to live of one unit next to its bare compile and link in the same run,
 * the cost inside hr_update of applying a 100-function unit, and hr_update with nothing new.
 * Usage: bench_patch HOTRELOADD PROG.c [EDITS]   (make bench; built with -DPATCH_FLAGS and -DHR_BUILD_DIR) */
#include <poll.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench.h"

extern char **environ;

/* The unit saved for save to live: bench_reload's module of a realistic size, its int f() become value(). */
static const char enemy[] = BENCH_ENEMY("value");

/* The database's command for a unit; the bench runs it as the bare compile, the daemon as the patch's. */
#define COMMAND(unit) "cc " PATCH_FLAGS " -O0 -c " unit ".c -o " unit ".o"

/* Run a command of words split at spaces (ours have no quotes) in cwd and wait; -1 when it failed. */
static int run(const char *cmd, const char *cwd)
{
	char buf[4096], *argv[64];
	int n = 0;
	snprintf(buf, sizeof buf, "%s", cmd);
	for (char *s = strtok(buf, " "); s && n < 63; s = strtok(NULL, " "))
		argv[n++] = s;
	argv[n] = NULL;
	if (bench_run(argv, cwd) < 0) {
		fprintf(stderr, "bench: failed: %s\n", cmd);
		return -1;
	}
	return 0;
}

static void write_enemy(const char *dir, int v)
{
	char src[sizeof enemy + 64];
	snprintf(src, sizeof src, enemy, 3 + v % 5, 7 + v % 3, v);
	bench_put(dir, "enemy.c", src);
}

/* 100 functions, each with a static of its own; many_value() = 4950 + 100 * k. */
static void write_many(const char *dir, int k)
{
	static char src[64 * 1024];
	int n = 0;
	for (int i = 0; i < 100; i++)
		n += snprintf(src + n, sizeof src - (size_t)n,
			      "int m_%d(int x)\n{\n\tstatic int calls;\n\tcalls++;\n\treturn x * %d + %d + (calls < 0);\n}\n\n",
			      i, i, k);
	n += snprintf(src + n, sizeof src - (size_t)n, "int many_value(void)\n{\n\tint s = 0;\n");
	for (int i = 0; i < 100; i++)
		n += snprintf(src + n, sizeof src - (size_t)n, "\ts += m_%d(1);\n", i);
	snprintf(src + n, sizeof src - (size_t)n, "\treturn s;\n}\n");
	bench_put(dir, "many.c", src);
}

/* The program's stdout, a line at a time. */
static int out_fd;
static char obuf[4096];
static size_t olen;

/* The next line from the program (NUL-terminated in line), within ms; -1 when none came. */
static int next_line(char *line, size_t size, int ms)
{
	double deadline = bench_now_ms() + ms;
	for (;;) {
		char *nl = memchr(obuf, '\n', olen);
		if (nl) {
			size_t n = (size_t)(nl - obuf);
			snprintf(line, size, "%.*s", (int)n, obuf);
			memmove(obuf, nl + 1, olen - n - 1);
			olen -= n + 1;
			return 0;
		}
		int left = (int)(deadline - bench_now_ms());
		struct pollfd p = {.fd = out_fd, .events = POLLIN};
		if (left <= 0 || poll(&p, 1, left) <= 0)
			return -1;
		ssize_t r = read(out_fd, obuf + olen, sizeof obuf - olen);
		if (r <= 0)
			return -1;
		olen += (size_t)r;
	}
}

/*
 * After a save at t_save: read the program's lines until what (value or many) reads want; the time it saw it, in
 * ms after t_save, and the last hr_update that applied before it, in us. 0, or -1 (said why).
 */
static int wait_live(const char *what, int want, double t_save, double *live, double *apply)
{
	char line[256], name[16];
	*apply = -1;
	for (;;) {
		if (next_line(line, sizeof line, 30000) < 0) {
			fprintf(stderr, "bench: %s %d never went live\n", what, want);
			return -1;
		}
		long long a, t;
		int v;
		if (sscanf(line, "applied %lld", &a) == 1)
			*apply = (double)a / 1e3;
		else if (strncmp(line, "refused", 7) == 0) {
			fprintf(stderr, "bench: the program %s\n", line);
			return -1;
		} else if (sscanf(line, "%15s %d %lld", name, &v, &t) == 3 && strcmp(name, what) == 0 && v == want) {
			*live = (double)t / 1e6 - t_save;
			return 0;
		}
	}
}

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: bench_patch HOTRELOADD PROG.c [EDITS]\n");
		return 2;
	}
	int n = argc > 3 ? atoi(argv[3]) : 30, napply = 60;
	if (n < 20)
		n = 20;
	char tmp[] = "/tmp/hrpbench.XXXXXX", root[4200], dir[4200], db[4300], sock[4300], cmd[12288], exe[4096], src[4096];
	if (!mkdtemp(tmp) || !realpath(argv[1], exe) || !realpath(argv[2], src)) {
		perror("bench");
		return 1;
	}
	snprintf(root, sizeof root, "%s/root", tmp);
	snprintf(dir, sizeof dir, "%s/prog", tmp);
	snprintf(db, sizeof db, "%s/compile_commands.json", dir);
	snprintf(sock, sizeof sock, "%s/.hotreload/hotreloadd.sock", root);
	mkdir(root, 0700);
	mkdir(dir, 0700);
	unsetenv("HOTRELOAD_SOCKET");

	/* The program, built as its own build would: each unit with the database's command. */
	write_enemy(dir, 0);
	write_many(dir, 0);
	snprintf(cmd, sizeof cmd,
		 "[\n {\"directory\": \"%s\", \"file\": \"enemy.c\", \"command\": \"%s\"},\n"
		 " {\"directory\": \"%s\", \"file\": \"many.c\", \"command\": \"%s\"}\n]\n",
		 dir, COMMAND("enemy"), dir, COMMAND("many"));
	bench_put(dir, "compile_commands.json", cmd);
	if (run(COMMAND("enemy"), dir) < 0 || run(COMMAND("many"), dir) < 0)
		return 1;
	snprintf(cmd, sizeof cmd, "cc " PATCH_FLAGS " -O2 -I" HR_SOURCE_DIR "/client -c %s -o main.o", src);
	if (run(cmd, dir) < 0 ||
	    run("cc -o prog main.o enemy.o many.o -L" HR_BUILD_DIR " -lhotreload -ldl -lpthread -lm -Wl,-rpath," HR_BUILD_DIR,
		dir) < 0)
		return 1;

	char *daemon[] = {exe, "--root", root, "--patch", db, "--quiet", NULL};
	int pid = bench_daemon(daemon, root), st;
	if (pid < 0)
		return 1;

	/* The program, its stdin ("idle") and stdout (its reports) ours. */
	int in[2], out[2];
	if (pipe(in) || pipe(out))
		return 1;
	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, in[0], 0);
	posix_spawn_file_actions_adddup2(&fa, out[1], 1);
	posix_spawn_file_actions_addclose(&fa, in[1]);
	posix_spawn_file_actions_addclose(&fa, out[0]);
	char progpath[4300], line[256];
	snprintf(progpath, sizeof progpath, "%s/prog", dir);
	char *pargv[] = {progpath, sock, NULL};
	pid_t ppid;
	if (posix_spawn(&ppid, progpath, &fa, NULL, pargv, environ))
		return 1;
	close(in[0]);
	close(out[1]);
	out_fd = out[0];
	if (next_line(line, sizeof line, 30000) < 0 || strcmp(line, "ready") != 0) {
		fprintf(stderr, "bench: the program did not start\n");
		return 1;
	}

	/* 1. Save to live of enemy.c, each round after the bare compile and link of the same unit. */
	double *cc = calloc((size_t)n, sizeof *cc), *link = calloc((size_t)n, sizeof *link);
	double *bare = calloc((size_t)n, sizeof *bare), *live = calloc((size_t)n, sizeof *live);
	double *small = calloc((size_t)n, sizeof *small), *apply = calloc((size_t)napply, sizeof *apply);
	for (int i = -3; i < n; i++) { /* three warm-up rounds */
		double t0 = bench_now_ms();
		if (run(COMMAND("enemy"), dir) < 0)
			return 1;
		double t1 = bench_now_ms();
		if (run("cc -shared -o bare.so enemy.o -lm", dir) < 0)
			return 1;
		double t2 = bench_now_ms(), l, a;
		write_enemy(dir, 100 + i);
		if (wait_live("value", 100 + i, t2, &l, &a) < 0)
			return 1;
		if (i >= 0) {
			cc[i] = t1 - t0;
			link[i] = t2 - t1;
			bare[i] = t2 - t0;
			live[i] = l;
			small[i] = a;
		}
	}

	/* 2. Applying the 100-function unit: the hr_update that switched to each save of many.c. */
	for (int i = -2; i < napply; i++) {
		double l, a;
		write_many(dir, 1 + i + 2);
		if (wait_live("many", 4950 + 100 * (i + 3), bench_now_ms(), &l, &a) < 0)
			return 1;
		if (i >= 0)
			apply[i] = a;
	}

	/* 3. hr_update with nothing new. */
	double idle_ns = 0;
	long calls = 0, sys = -1, counted = 0;
	if (write(in[1], "idle\n", 5) != 5 || next_line(line, sizeof line, 60000) < 0 ||
	    sscanf(line, "idle %lf %ld %ld %ld", &idle_ns, &calls, &sys, &counted) != 4) {
		fprintf(stderr, "bench: no idle figures from the program\n");
		return 1;
	}

	double *all[] = {cc, link, bare, live, small};
	for (size_t i = 0; i < sizeof all / sizeof *all; i++)
		bench_sort(all[i], n);
	bench_sort(apply, napply);
	printf("%d saves of a %zu-byte unit (%s), in ms:\n", n, sizeof enemy, COMMAND("enemy"));
	printf("  bare compile            p50 %6.1f  p95 %6.1f\n", bench_pct(cc, n, .5), bench_pct(cc, n, .95));
	printf("  bare cc -shared of it   p50 %6.1f  p95 %6.1f\n", bench_pct(link, n, .5), bench_pct(link, n, .95));
	printf("  bare compile + link     p50 %6.1f  p95 %6.1f\n", bench_pct(bare, n, .5), bench_pct(bare, n, .95));
	printf("  save to live (patch)    p50 %6.1f  p95 %6.1f  min %6.1f  max %6.1f\n", bench_pct(live, n, .5),
	       bench_pct(live, n, .95), live[0], live[n - 1]);
	printf("  live - (compile + link) p50 %+6.1f  (target: within +5 ms)\n",
	       bench_pct(live, n, .5) - bench_pct(bare, n, .5));
	printf("  live - compile          p50 %+6.1f  (our loader needs no link)\n",
	       bench_pct(live, n, .5) - bench_pct(cc, n, .5));
	printf("  the applying hr_update of that unit (5 functions): p50 %.0f us  p95 %.0f us\n", bench_pct(small, n, .5),
	       bench_pct(small, n, .95));
	printf("applying a 100-function unit inside hr_update, %d applies: p50 %.0f us  p95 %.0f us  max %.0f us "
	       "(target: 200 us)\n",
	       napply, bench_pct(apply, napply, .5), bench_pct(apply, napply, .95), apply[napply - 1]);
	printf("hr_update with nothing new: %.2f ns a call over %ld calls; %ld system calls over %ld calls (target: 0)\n",
	       idle_ns, calls, sys, counted);

	close(in[1]);
	waitpid(ppid, &st, 0);
	bench_stop(pid);
	free(cc);
	free(link);
	free(bare);
	free(live);
	free(small);
	free(apply);
	return bench_rm(tmp) != 0;
}
