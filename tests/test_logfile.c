/* test_logfile.c: the real daemon's hotreloadd.log: rotated by size with one old file kept, and a flood of lines of one kind cut to a bounded rate. */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "util.h"

#define WAIT_MS 30000 /* a deadline, not a delay */

static char *dir;
static t_daemon d;

static void setup(void)
{
	dir = t_tmpdir();
	d.pidfd = -1;
	char *a = t_fmt("%s/a.c", dir);
	cr_assert_eq(t_write(a, "int value(void) { return 1; }\n", 30), 0);
	free(a);
}

static void teardown(void)
{
	if (d.pidfd >= 0)
		t_daemon_stop(&d);
	t_rmtree(dir);
	free(dir);
}

TestSuite(logfile, .init = setup, .fini = teardown, .timeout = 120);

static void start(const char *const *env, const char *const *args)
{
	t_run r;
	int rc = t_daemon_start(&d, dir, env, args, &r);
	cr_assert_eq(rc, 0, "hotreloadd did not start (exit %d): %s", r.status, r.err);
	t_run_free(&r);
}

/* The log file as it was: it has changed once another line is in it, or it is a new file. */
struct was {
	const char *path;
	struct stat st;
};

static int changed(void *arg)
{
	struct was *w = arg;
	struct stat st;
	return stat(w->path, &st) == 0 && (st.st_ino != w->st.st_ino || st.st_size != w->st.st_size);
}

/* SIGHUP, which logs a line or two, and wait for them. */
static void log_more(void)
{
	struct was w = { .path = d.log };
	cr_assert_eq(stat(d.log, &w.st), 0);
	cr_assert_eq(kill(d.pid, SIGHUP), 0);
	cr_assert(t_until(changed, &w, WAIT_MS), "SIGHUP logged nothing");
}

static off_t size_of(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 ? st.st_size : -1;
}

Test(logfile, the_log_is_rotated_by_size_and_one_old_file_is_kept)
{
	start((const char *const[]){ "HOTRELOAD_LOG_MAX=4096", NULL }, NULL);
	char *old = t_fmt("%s.1", d.log), *older = t_fmt("%s.2", d.log);
	int i;
	for (i = 0; i < 1000 && access(old, F_OK) != 0; i++)
		log_more();
	cr_assert_eq(access(old, F_OK), 0, "no %s after %d SIGHUPs; the log has %lld bytes", old, i, (long long)size_of(d.log));
	cr_assert_leq(size_of(old), 4096 + 2048, "rotated at 4096 bytes, a line past it at most");
	char *first = t_read(old, NULL);
	/* once more: the old file is the one before, and there is no third */
	char *now = NULL;
	for (i = 0; i < 1000; i++) {
		log_more();
		free(now);
		now = t_read(old, NULL);
		if (strcmp(now, first) != 0)
			break;
	}
	cr_assert_str_neq(now, first, "the log was rotated only once");
	cr_assert_neq(access(older, F_OK), 0, "more than one old file is kept");
	cr_assert_leq(size_of(d.log), 4096 + 2048);
	/* and the daemon goes on writing to the new file */
	log_more();
	cr_assert(t_file_count(d.log, "SIGHUP") > 0);
	free(now);
	free(first);
	free(older);
	free(old);
}

/* As uid 65534, connect n times, each time reading until the daemon closes. */
static void refused_times(const char *sock, int n)
{
	pid_t pid = fork();
	if (pid == 0) {
		if (setgid(65534) < 0 || setuid(65534) < 0)
			_exit(100);
		for (int i = 0; i < n; i++) {
			struct sockaddr_un sa = { .sun_family = AF_UNIX };
			snprintf(sa.sun_path, sizeof sa.sun_path, "%s", sock);
			int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
			if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0)
				_exit(101);
			char buf[512];
			while (read(fd, buf, sizeof buf) > 0)
				;
			close(fd);
		}
		_exit(0);
	}
	int st;
	cr_assert_eq(waitpid(pid, &st, 0), pid);
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "the refused client failed (%d)", st);
}

/* The log says how many lines were left out: connect once more until it does. */
static int told(void *arg)
{
	const char *sock = arg;
	if (t_file_count(d.log, "more lines like \"refused a client of uid 65534"))
		return 1;
	refused_times(sock, 1);
	return 0;
}

Test(logfile, a_flood_of_refused_clients_is_logged_at_a_bounded_rate_and_what_was_left_out_is_counted)
{
	if (geteuid() != 0)
		cr_skip_test("needs root to act as another user");
	char sockdir[] = "/tmp/hr-sock-XXXXXX";
	cr_assert_not_null(mkdtemp(sockdir));
	chmod(sockdir, 0711);
	char *sock = t_fmt("%s/s", sockdir);
	start(NULL, (const char *const[]){ "--socket", sock, "--allow-uid", "12345", NULL });
	refused_times(sock, 1000);
	cr_assert(t_until(told, sock, WAIT_MS), "the log never said how many lines were left out");
	int written = t_file_count(d.log, "refused a client of uid 65534");
	cr_assert_lt(written, 500, "%d of 1000 refusals logged", written);
	cr_assert_gt(written, 10, "the first ones are logged");
	t_daemon_stop(&d);
	rmdir(sockdir);
	free(sock);
}
