/* test_service.c: hotreloadd under systemd: readiness told on $NOTIFY_SOCKET, and a socket passed by socket activation. */
#include <criterion/criterion.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "util.h"

#define WAIT_MS 30000 /* a deadline, not a delay */

static char *dir;
static t_daemon d;
static t_proc p;

static void setup(void)
{
	dir = t_tmpdir();
	d.pidfd = -1;
	p.pid = 0;
	p.out = p.pidfd = -1;
}

static void teardown(void)
{
	if (p.pid > 0)
		t_proc_end(&p, NULL);
	if (d.pidfd >= 0)
		t_daemon_stop(&d);
	t_rmtree(dir);
	free(dir);
}

TestSuite(service, .init = setup, .fini = teardown, .timeout = 120);

/* The next datagram on fd, up to ms; "" on timeout. */
static char *next_notice(int fd, char *buf, size_t n, int ms)
{
	struct pollfd w = { fd, POLLIN, 0 };
	buf[0] = '\0';
	if (poll(&w, 1, ms) == 1) {
		ssize_t got = recv(fd, buf, n - 1, 0);
		buf[got > 0 ? got : 0] = '\0';
	}
	return buf;
}

Test(service, readiness_and_stopping_are_told_on_notify_socket)
{
	char *path = t_fmt("%s/notify.sock", dir), *env = t_fmt("NOTIFY_SOCKET=%s", path);
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	snprintf(sa.sun_path, sizeof sa.sun_path, "%s", path);
	cr_assert_eq(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
	char *src = t_fmt("%s/a.c", dir);
	cr_assert_eq(t_write(src, "int f(void) { return 1; }\n", 26), 0);
	t_run r;
	cr_assert_eq(t_daemon_start(&d, dir, (const char *const[]){ env, NULL }, NULL, &r), 0, "%s", r.err);
	t_run_free(&r);
	char buf[512];
	next_notice(fd, buf, sizeof buf, WAIT_MS);
	cr_assert(strncmp(buf, "READY=1\nSTATUS=watching ", 24) == 0, "the first notice: \"%s\"", buf);
	/* Ready means the socket answers. */
	t_run st = t_cli(dir, NULL, (const char *const[]){ "--state-dir", d.state, "status", NULL });
	cr_assert_eq(st.status, 0, "%s", st.err);
	t_run_free(&st);
	kill(d.pid, SIGTERM);
	cr_assert_str_eq(next_notice(fd, buf, sizeof buf, WAIT_MS), "STOPPING=1");
	close(fd);
	free(src);
	free(env);
	free(path);
}

static int exists(void *path)
{
	struct stat sb;
	return stat(path, &sb) == 0;
}

/* The socket takes connections (its file appears at bind, before listen). */
static int listening(void *path)
{
	int fd = hrp_connect(path, 1000);
	if (fd >= 0)
		close(fd);
	return fd >= 0;
}

Test(service, a_socket_passed_by_systemd_is_served_and_left_in_place)
{
	char *sock = t_fmt("%s/given.sock", dir), *state = t_fmt("%s/state", dir);
	char *src = t_fmt("%s/a.c", dir);
	cr_assert_eq(t_write(src, "int f(void) { return 1; }\n", 26), 0);
	const char *exe = getenv("HR_DAEMON") ? getenv("HR_DAEMON") : HR_BUILD_DIR "/hotreloadd";
	/* systemd's own tool: it listens, and starts the daemon with the socket at the first connection. */
	const char *argv[] = { "systemd-socket-activate", "-l", sock, exe, "--foreground", "--root", dir,
		               "--state-dir", state, NULL };
	cr_assert_eq(t_proc_start(&p, dir, (const char *const[]){ "HOTRELOAD_SOCKET=", NULL }, argv), 0);
	cr_assert(t_until(listening, sock, WAIT_MS), "systemd-socket-activate never listened");
	t_run st = t_cli(dir, NULL, (const char *const[]){ "--socket", sock, "status", "--json", NULL });
	cr_assert_eq(st.status, 0, "status through the given socket: %s", st.err);
	int jq;
	char *root = t_jq(st.out, ".daemon.root", &jq);
	cr_assert_str_eq(root, dir);
	free(root);
	t_run_free(&st);
	char *err = NULL;
	cr_assert_eq(t_proc_end(&p, &err), 0, "the daemon stopped with an error: %s", err);
	cr_assert(err && strstr(err, "(from systemd)"), "its log: %s", err);
	free(err);
	cr_assert(exists(sock), "the given socket is systemd's: the daemon leaves it");
	free(src);
	free(state);
	free(sock);
}

Test(service, with_stderr_on_the_journal_lines_carry_a_priority_and_no_time)
{
	char *src = t_fmt("%s/a.c", dir);
	cr_assert_eq(t_write(src, "int f(void) { return 1; }\n", 26), 0);
	const char *exe = getenv("HR_DAEMON") ? getenv("HR_DAEMON") : HR_BUILD_DIR "/hotreloadd";
	/* As systemd does: JOURNAL_STREAM names the device and inode of the stream that is stderr. */
	const char *argv[] = { "sh", "-c", "JOURNAL_STREAM=$(stat -L -c %d:%i /proc/$$/fd/2) exec \"$0\" \"$@\"", exe,
		               "--foreground", "--root", dir, "--log-level", "debug", NULL };
	cr_assert_eq(t_proc_start(&p, dir, (const char *const[]){ "HOTRELOAD_SOCKET=", NULL }, argv), 0);
	char *sock = t_fmt("%s/.hotreload/hotreloadd.sock", dir);
	cr_assert(t_until(listening, sock, WAIT_MS), "the daemon never listened");
	char *err = NULL;
	cr_assert_eq(t_proc_end(&p, &err), 0, "%s", err);
	cr_assert(err && strstr(err, "<6>ready: watching ") && strstr(err, "<7>"), "%s", err);
	cr_assert(err[0] == '<' && !strstr(err, "Z info"), "a line kept its time: %s", err);
	free(err);
	free(sock);
	free(src);
}

Test(service, log_level_warn_keeps_info_out_and_a_bad_level_is_a_usage_error)
{
	char *src = t_fmt("%s/a.c", dir);
	cr_assert_eq(t_write(src, "int f(void) { return 1; }\n", 26), 0);
	const char *exe = getenv("HR_DAEMON") ? getenv("HR_DAEMON") : HR_BUILD_DIR "/hotreloadd";
	t_run bad = t_exec(dir, NULL, (const char *const[]){ exe, "--log-level", "loud", NULL });
	cr_assert_eq(bad.status, 2);
	cr_assert(strstr(bad.err, "--log-level takes error, warn, info or debug, not 'loud'"), "%s", bad.err);
	t_run_free(&bad);
	const char *argv[] = { exe, "--foreground", "--root", dir, "--log-level", "warn", NULL };
	cr_assert_eq(t_proc_start(&p, dir, (const char *const[]){ "HOTRELOAD_SOCKET=", "JOURNAL_STREAM=", NULL }, argv), 0);
	char *sock = t_fmt("%s/.hotreload/hotreloadd.sock", dir);
	cr_assert(t_until(listening, sock, WAIT_MS), "the daemon never listened");
	char *err = NULL;
	cr_assert_eq(t_proc_end(&p, &err), 0, "%s", err);
	cr_assert(err && !strstr(err, "info"), "info lines at --log-level warn: %s", err);
	free(err);
	free(sock);
	free(src);
}
