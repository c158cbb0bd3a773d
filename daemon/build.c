/* build.c: spawn a compiler with posix_spawn, capture its output, reap it through a pidfd, read its result. */
#include "build.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

/* Read what is in the pipe; 1 at its end, else 0. */
static int drain(hrd_job *j)
{
	for (;;) {
		if (j->outcap - j->outlen < 4096 && j->outcap < HRD_JOB_OUTPUT_MAX) {
			size_t cap = j->outcap ? j->outcap * 2 : 8192;
			char *grown = realloc(j->out, cap + 1);
			if (grown) {
				j->out = grown;
				j->outcap = cap;
				j->out[j->outlen] = '\0';
			}
		}
		char sink[4096];
		/* Past the bound (or out of memory), keep the head, where the first
		 * error is, and read the rest to nowhere. */
		int keep = j->outcap - j->outlen >= 4096;
		ssize_t n = keep ? read(j->outio.fd, j->out + j->outlen, j->outcap - j->outlen)
		                 : read(j->outio.fd, sink, sizeof sink);
		if (n <= 0)
			return n == 0;
		if (keep) {
			j->outlen += (size_t)n;
			j->out[j->outlen] = '\0';
		} else {
			j->cut = 1;
		}
	}
}

static void on_output(hrd_io *io, uint32_t events)
{
	hrd_job *j = hrd_container_of(io, hrd_job, outio);
	(void)events;
	/* At the end of the pipe, stop listening (it would stay readable), but
	 * keep it open: the pidfd ends the job. */
	if (drain(j))
		hrd_loop_del(j->loop, &j->outio);
}

static void close_fds(hrd_job *j)
{
	if (j->pidio.fd >= 0) {
		hrd_loop_del(j->loop, &j->pidio);
		close(j->pidio.fd);
		j->pidio.fd = -1;
	}
	if (j->outio.fd >= 0) {
		hrd_loop_del(j->loop, &j->outio);
		close(j->outio.fd);
		j->outio.fd = -1;
	}
}

static void on_exit_(hrd_io *io, uint32_t events)
{
	hrd_job *j = hrd_container_of(io, hrd_job, pidio);
	(void)events;
	if (waitpid(j->pid, &j->status, WNOHANG) == 0)
		return;
	/* The compiler is gone; what it wrote is in the pipe. A grandchild that
	 * kept the pipe open does not hold the build up. */
	drain(j);
	close_fds(j);
	j->pid = -1;
	j->on_done(j);
}

int hrd_job_start(hrd_job *j, hrd_loop *loop, char *const argv[], int dirfd)
{
	j->loop = loop;
	j->pid = -1;
	j->pidio.fd = j->outio.fd = -1;
	j->out = NULL;
	j->outlen = j->outcap = 0;
	j->cut = 0;
	int p[2];
	if (pipe2(p, O_CLOEXEC) < 0)
		return -1;
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t at;
	sigset_t none, all;
	sigemptyset(&none);
	sigfillset(&all);
	int rc = posix_spawn_file_actions_init(&fa);
	if (rc) {
		close(p[0]);
		close(p[1]);
		errno = rc;
		return -1;
	}
	rc = posix_spawnattr_init(&at);
	/* The daemon blocks the signals it reads through signalfd; a child must not inherit that. */
	if (!rc)
		rc = posix_spawnattr_setsigmask(&at, &none);
	if (!rc)
		rc = posix_spawnattr_setsigdefault(&at, &all);
	if (!rc)
		rc = posix_spawnattr_setpgroup(&at, 0);
	if (!rc)
		rc = posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETPGROUP);
	/* The folder by descriptor, first, while it is open: the compiler reads
	 * the very tree the key was taken from, even if the path now names another. */
	if (!rc)
		rc = posix_spawn_file_actions_addfchdir_np(&fa, dirfd);
	if (!rc)
		rc = posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	if (!rc)
		rc = posix_spawn_file_actions_adddup2(&fa, p[1], 1);
	if (!rc)
		rc = posix_spawn_file_actions_adddup2(&fa, p[1], 2);
	/* libinotifytools' descriptor is not CLOEXEC: close everything else. */
	if (!rc)
		rc = posix_spawn_file_actions_addclosefrom_np(&fa, 3);
	pid_t pid;
	if (!rc)
		rc = posix_spawnp(&pid, argv[0], &fa, &at, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&at);
	close(p[1]);
	if (rc) {
		close(p[0]);
		errno = rc;
		return -1;
	}
	j->pid = pid;
	j->outio.fd = p[0];
	j->outio.fn = on_output;
	j->pidio.fd = (int)syscall(SYS_pidfd_open, pid, 0);
	j->pidio.fn = on_exit_;
	fcntl(p[0], F_SETFL, O_NONBLOCK);
	if (j->pidio.fd < 0 || hrd_loop_add(loop, &j->outio, EPOLLIN) < 0 ||
	    hrd_loop_add(loop, &j->pidio, EPOLLIN) < 0) {
		int e = errno;
		hrd_job_reap(j);
		errno = e;
		return -1;
	}
	return 0;
}

void hrd_job_kill(hrd_job *j)
{
	if (j->pid > 0)
		kill(-j->pid, SIGKILL);
}

void hrd_job_reap(hrd_job *j)
{
	if (j->pid > 0) {
		kill(-j->pid, SIGKILL);
		while (waitpid(j->pid, &j->status, 0) < 0 && errno == EINTR)
			;
		j->pid = -1;
	}
	close_fds(j);
}

void hrd_job_free(hrd_job *j)
{
	free(j->out);
	j->out = NULL;
}

void hrd_job_describe(int status, char *buf, size_t n)
{
	if (WIFEXITED(status))
		snprintf(buf, n, "exited with status %d", WEXITSTATUS(status));
	else if (WIFSIGNALED(status))
		snprintf(buf, n, "killed by signal %d (%s)", WTERMSIG(status), strsignal(WTERMSIG(status)));
	else
		snprintf(buf, n, "ended with wait status %#x", (unsigned)status);
}

void hrd_job_message(const char *out, int status, char *msg, size_t n)
{
	const char *pick = NULL, *first = NULL;
	for (const char *l = out; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL) {
		size_t len = strcspn(l, "\n");
		if (!len)
			continue;
		if (!first)
			first = l;
		const char *err = memmem(l, len, "error:", 6);
		if (err && !memmem(l, len, "ld returned", 11)) {
			pick = l;
			break;
		}
		if (!pick && (memmem(l, len, "undefined reference", 19) || memmem(l, len, "multiple definition", 19)))
			pick = l;
	}
	if (!pick)
		pick = first;
	if (pick) {
		snprintf(msg, n, "%.*s", (int)strcspn(pick, "\n"), pick);
		return;
	}
	char how[128];
	hrd_job_describe(status, how, sizeof how);
	snprintf(msg, n, "the compiler ended (%s) without a message", how);
}

int hrd_job_warnings(const char *out, char *first, size_t n)
{
	int count = 0;
	if (n)
		first[0] = '\0';
	for (const char *l = out; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL) {
		size_t len = strcspn(l, "\n");
		if (!memmem(l, len, ": warning:", 10))
			continue;
		if (!count++)
			snprintf(first, n, "%.*s", (int)len, l);
	}
	return count;
}

char *hrd_job_cmdline(char *const argv[])
{
	size_t cap = 1;
	for (size_t i = 0; argv[i]; i++)
		cap += 4 * strlen(argv[i]) + 3;
	char *s = malloc(cap), *p = s;
	if (!s)
		return NULL;
	for (size_t i = 0; argv[i]; i++) {
		const char *a = argv[i];
		int plain = *a && strspn(a, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-+=./,:@%") == strlen(a);
		if (i)
			*p++ = ' ';
		if (plain) {
			p = stpcpy(p, a);
			continue;
		}
		*p++ = '\'';
		for (; *a; a++)
			p = *a == '\'' ? stpcpy(p, "'\\''") : (*p = *a, p + 1);
		*p++ = '\'';
	}
	*p = '\0';
	return s;
}

int hrd_job_verdict(int status, const char *out)
{
	static const char *const elsewhere[] = {
		"internal compiler error", "terminated", "Killed", "No space left", "File size limit",
		"File too large", "No such file or directory", "Permission denied", "Cannot allocate memory",
		"out of memory", "Input/output error",
	};
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 1)
		return 0;
	for (size_t i = 0; i < sizeof elsewhere / sizeof *elsewhere; i++)
		if (out && strstr(out, elsewhere[i]))
			return 0;
	return 1;
}
