/* bench.c: the helpers every benchmark uses (bench.h): clock, percentiles, commands, files, the daemon. */
#include "bench.h"

#include <errno.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

double bench_now_ms(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

double bench_now_us(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec * 1e6 + (double)t.tv_nsec / 1e3;
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

void bench_sort(double *v, int n)
{
	qsort(v, (size_t)n, sizeof *v, cmp);
}

double bench_pct(const double *v, int n, double p)
{
	return v[(int)(p * (n - 1) + 0.5)];
}

int bench_run(char *const argv[], const char *cwd)
{
	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	if (cwd)
		posix_spawn_file_actions_addchdir_np(&fa, cwd);
	pid_t pid;
	int rc = posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ), st;
	posix_spawn_file_actions_destroy(&fa);
	if (rc)
		return -1;
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : -1;
}

void bench_put(const char *dir, const char *name, const char *text)
{
	char path[4400];
	snprintf(path, sizeof path, "%s/%s", dir, name);
	FILE *f = fopen(path, "w");
	size_t n = strlen(text);
	if (!f || fwrite(text, 1, n, f) != n || fclose(f)) {
		perror(path);
		exit(1);
	}
}

int bench_daemon(char *const argv[], const char *root)
{
	if (bench_run(argv, NULL) < 0) {
		fprintf(stderr, "bench: %s did not start\n", argv[0]);
		return -1;
	}
	char lock[4400], text[32] = "";
	snprintf(lock, sizeof lock, "%s/.hotreload/hotreloadd.lock", root);
	FILE *f = fopen(lock, "r");
	int ok = f && fgets(text, sizeof text, f);
	if (f)
		fclose(f);
	if (!ok || atoi(text) <= 0) {
		fprintf(stderr, "bench: no pid in %s\n", lock);
		return -1;
	}
	return atoi(text);
}

void bench_stop(int pid)
{
	kill(pid, SIGTERM);
	while (kill(pid, 0) == 0)
		nanosleep(&(struct timespec){0, 5000000}, NULL);
}

int bench_rm(const char *dir)
{
	char *argv[] = {"rm", "-rf", (char *)dir, NULL};
	return bench_run(argv, NULL);
}
