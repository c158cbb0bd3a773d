/* test_bytes.c: objects that travel as bytes where descriptors cannot pass: a real sshd's forwarded socket, and a relay of our own. */
#include <criterion/criterion.h>
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "e2e.h"
#include "util.h"

TestSuite(bytes, .init = e2e_setup, .fini = e2e_teardown, .timeout = 180);

/* ---- a relay of the test's own: two Unix sockets, bytes only (read and write drop descriptors) ---- */

enum relay_mode { PASS, FLIP, CUT, KILL };
static int kill_pid; /* KILL: the daemon the relay kills */

static uint32_t be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* The version an OBJECT frame is of: after its module string (u32 n, n bytes, NUL). */
static uint64_t object_version(const uint8_t *f)
{
	const uint8_t *p = f + HRP_HEADER_SIZE;
	p += 4 + be32(p) + 1;
	return (uint64_t)be32(p) << 32 | be32(p + 4);
}

static int write_all(int fd, const uint8_t *p, size_t n)
{
	while (n) {
		ssize_t k = write(fd, p, n);
		if (k <= 0)
			return -1;
		p += k;
		n -= (size_t)k;
	}
	return 0;
}

/*
 * Forward one client to the daemon until either side ends. From the daemon,
 * whole frames: with FLIP, one byte of the first OBJECT frame of version is
 * flipped; with CUT, both sides are closed after the first OBJECT frame of
 * version; with KILL, the daemon is killed there too. Returns 1 when it did its one change (the next client passes).
 */
static int relay_one(int c, const char *daemon, enum relay_mode mode, uint64_t version)
{
	int d = hrp_connect(daemon, 5000), done = 0;
	if (d < 0)
		return 0;
	static uint8_t buf[HRP_MAX_FRAME + 65536];
	size_t len = 0;
	for (;;) {
		struct pollfd p[2] = { { c, POLLIN, 0 }, { d, POLLIN, 0 } };
		if (poll(p, 2, -1) < 0)
			continue;
		if (p[0].revents) {
			uint8_t tmp[65536];
			ssize_t n = read(c, tmp, sizeof tmp);
			if (n <= 0 || write_all(d, tmp, (size_t)n) < 0)
				break;
		}
		if (p[1].revents) {
			ssize_t n = read(d, buf + len, sizeof buf - len);
			if (n <= 0)
				break;
			len += (size_t)n;
			size_t at = 0;
			while (len - at >= HRP_HEADER_SIZE && len - at >= be32(buf + at)) {
				uint8_t *f = buf + at;
				size_t flen = be32(f);
				int object = (f[4] << 8 | f[5]) == HRP_OBJECT && object_version(f) == version;
				if (object && mode == FLIP && !done) {
					f[flen - 1] ^= 0x5a; /* the chunk's last byte */
					done = 1;
				}
				if (write_all(c, f, flen) < 0)
					goto out;
				at += flen;
				if (object && (mode == CUT || mode == KILL) && !done) {
					done = 1;
					if (mode == KILL)
						kill(kill_pid, SIGKILL); /* the daemon dies during the send */
					goto out; /* partway through the object: the connection is cut */
				}
			}
			memmove(buf, buf + at, len - at);
			len -= at;
		}
	}
out:
	close(d);
	close(c);
	return done;
}

/* A child that relays every client of listen_path to daemon, one at a time; its pid. */
static int relay_start(const char *listen_path, const char *daemon, enum relay_mode mode, uint64_t version)
{
	int l = hrp_listen(listen_path, 8);
	cr_assert_geq(l, 0, "cannot listen on %s: %s", listen_path, strerror(-l));
	pid_t pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL); /* it ends with the test, whatever becomes of it */
		signal(SIGPIPE, SIG_IGN);
		for (;;) {
			struct pollfd p = { l, POLLIN, 0 };
			poll(&p, 1, -1);
			int c = accept4(l, NULL, NULL, SOCK_CLOEXEC);
			if (c < 0)
				continue;
			if (relay_one(c, daemon, mode, version))
				mode = PASS;
		}
	}
	close(l);
	return pid;
}

static void relay_stop(int pid)
{
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
}

/* A module whose object is large (a ~300 KiB initialised table, many chunks), value() is tag. */
static void big_module(const char *rel, int tag)
{
	char *src = t_fmt("const unsigned char table[300000] = { %d, 1, 2, 3 };\n"
	                  "int value(void) { return table[0] + table[3]; }\n",
	                  tag);
	e2e_put(rel, src);
	free(src);
}

static t_proc *host_on(const char *sock, const char *const *opts)
{
	const char *args[8];
	size_t n = 0;
	for (size_t k = 0; opts && opts[k]; k++)
		args[n++] = opts[k];
	args[n++] = sock;
	args[n++] = "a";
	args[n] = NULL;
	cr_assert_eq(t_host_start(&e2e_hosts[0], e2e_dir, args), 0, "cannot start the host");
	return &e2e_hosts[0];
}

/* ---- tests ---- */

Test(bytes, a_game_whose_descriptors_do_not_pass_gets_the_objects_as_bytes_and_a_bad_hash_is_refused)
{
	e2e_module("a.c", 1, 0);
	e2e_start_daemon(NULL);
	char *relay = t_fmt("%s/relay.sock", e2e_dir);
	int rp = relay_start(relay, e2e_d.sock, FLIP, 2);
	t_proc *h = host_on(relay, (const char *const[]){ "--notes", NULL });
	e2e_expect(h, "first a 1 v=1 value=1");

	/* v2's bytes are changed on the way: refused, by its hash, and v1 stays live. */
	e2e_module("a.c", 2, 0);
	const char *note = e2e_expect(h, "v2 refused");
	cr_assert(strstr(note, "SHA-256"), "the refusal names the hash: %s", note);
	e2e_wait_history("[.[] | select(.status == \"refused\" and .version == 2) | .message | test(\"SHA-256 is [0-9a-f]{64}, "
	                 "not [0-9a-f]{64}\")] | any",
	                 "true");
	/* The game kept v1 (hr_update tells the refusal, v1 still live), and the next build is the next switch. */
	e2e_expect(h, "update a -");
	cr_assert(strstr(h->line, " v=1 value=1 "), "after the refusal: %s", h->line);
	e2e_module("a.c", 3, 0);
	e2e_expect_next(h, "update", "update a 1 v=3 value=3 sym=NULL");
	cr_assert_str_eq(e2e_end_at(h, "byte_builds"), "byte_builds=2");
	relay_stop(rp);
	free(relay);
}

Test(bytes, bytes_cut_mid_transfer_leave_the_old_build_live_and_the_good_one_comes_after_reconnect)
{
	big_module("a.c", 1);
	e2e_start_daemon(NULL);
	char *relay = t_fmt("%s/relay.sock", e2e_dir);
	int rp = relay_start(relay, e2e_d.sock, CUT, 2);
	t_proc *h = host_on(relay, NULL);
	e2e_expect(h, "first a 1 v=1 value=4");
	big_module("a.c", 5);
	/* The relay cuts the connection after v2's first chunk: the game runs v1 on, reconnects, and gets v2 whole. */
	e2e_expect_next(h, "update", "update a 1 v=2 value=8 sym=NULL");
	cr_assert_str_eq(e2e_end_at(h, "byte_builds"), "byte_builds=2");
	e2e_expect_next(h, "stats", "stats switches=2 refusals=0 crashes=0 reconnects=1");
	relay_stop(rp);
	free(relay);
}

Test(bytes, the_daemon_killed_during_a_send_leaves_the_old_build_live_and_its_successor_sends_the_new_one)
{
	big_module("a.c", 1);
	e2e_start_daemon(NULL);
	char *relay = t_fmt("%s/relay.sock", e2e_dir);
	kill_pid = e2e_d.pid;
	int rp = relay_start(relay, e2e_d.sock, KILL, 2);
	t_proc *h = host_on(relay, NULL);
	e2e_expect(h, "first a 1 v=1 value=4");
	big_module("a.c", 5);
	/* v2's first chunk reaches the game, then the daemon is killed: v1 runs on, nothing of v2 is loaded. */
	cr_assert(t_wait_gone(e2e_d.pidfd, 60000), "the relay did not kill the daemon");
	t_daemon_stop(&e2e_d);
	e2e_start_daemon(NULL);
	/* A new daemon, on the same history: the game reconnects and gets v2 whole, its first switch since v1. */
	e2e_expect_next(h, "update", "update a 1 v=2 value=8 sym=NULL");
	cr_assert_str_eq(e2e_end_at(h, "byte_builds"), "byte_builds=2");
	relay_stop(rp);
	free(relay);
}

Test(bytes, a_local_game_still_gets_descriptors)
{
	e2e_module("a.c", 1, 0);
	e2e_start_daemon(NULL);
	t_proc *h = e2e_host(0, NULL, (const char *const[]){ "a", NULL });
	e2e_expect(h, "first a 1 v=1 value=1");
	e2e_module("a.c", 2, 0);
	e2e_expect(h, "update a 1 v=2 value=2");
	/* Mapped from the daemon's objects/ (its descriptor), not from a memfd of bytes. */
	e2e_wait_reported(2, 1);
	int has;
	e2e_mapped(h->pid, 2, &has);
	cr_assert(has, "v2 is not mapped from the daemon's object");
	/* No byte_builds line: both came as descriptors. */
	cr_assert_str_eq(e2e_end_at(h, "stats"), "stats switches=2 refusals=0 crashes=0 reconnects=0");
}

/* ---- a real sshd on 127.0.0.1, and ssh -L of the daemon's socket ---- */

static int free_port(void)
{
	int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t n = sizeof a;
	cr_assert(s >= 0 && bind(s, (struct sockaddr *)&a, sizeof a) == 0 && getsockname(s, (struct sockaddr *)&a, &n) == 0);
	close(s);
	return ntohs(a.sin_port);
}

static int listening(void *arg)
{
	int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)*(int *)arg),
		                 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	int ok = connect(s, (struct sockaddr *)&a, sizeof a) == 0;
	close(s);
	return ok;
}

static int exists(void *arg)
{
	struct stat st;
	return lstat(arg, &st) == 0;
}

static void keygen(const char *path)
{
	t_run r = t_exec(NULL, NULL, (const char *const[]){ "ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", path, NULL });
	cr_assert_eq(r.status, 0, "ssh-keygen: %s", r.err);
	t_run_free(&r);
}

Test(bytes, a_game_through_an_ssh_forwarded_socket_reloads_with_bytes)
{
	if (access("/usr/sbin/sshd", X_OK) != 0 || access("/usr/bin/ssh", X_OK) != 0)
		cr_skip_test("needs sshd and ssh (scripts/deps.sh test installs openssh-server and openssh-client)");
	if (geteuid() != 0)
		cr_skip_test("needs root to start sshd");
	mkdir("/run/sshd", 0755); /* sshd's privilege separation directory, as its package makes it */
	e2e_module("a.c", 1, 0);
	e2e_start_daemon(NULL);
	char *ssh = t_fmt("%s/.t-ssh", e2e_dir), *hostkey = t_fmt("%s/host_key", ssh), *userkey = t_fmt("%s/user_key", ssh),
	     *auth = t_fmt("%s/authorized_keys", ssh), *conf = t_fmt("%s/sshd_config", ssh),
	     *game = t_fmt("%s/game.sock", e2e_dir);
	cr_assert_eq(mkdir(ssh, 0700), 0);
	keygen(hostkey);
	keygen(userkey);
	char *pub = t_fmt("%s.pub", userkey);
	size_t n;
	char *key = t_read(pub, &n);
	cr_assert(key);
	cr_assert_eq(t_write(auth, key, n), 0);
	int port = free_port();
	char *text = t_fmt("Port %d\nListenAddress 127.0.0.1\nHostKey %s\nPidFile %s/sshd.pid\nAuthorizedKeysFile %s\n"
	                   "StrictModes no\nUsePAM no\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n"
	                   "PubkeyAuthentication yes\nPermitRootLogin prohibit-password\n"
	                   "AllowStreamLocalForwarding yes\nStreamLocalBindUnlink yes\nX11Forwarding no\n",
	                   port, hostkey, ssh, auth);
	cr_assert_eq(t_write(conf, text, strlen(text)), 0);
	t_proc sshd = { .out = -1, .pidfd = -1 }, fwd = { .out = -1, .pidfd = -1 };
	/* setpriv --pdeathsig: sshd and ssh end with the test, whatever becomes of it. */
	cr_assert_eq(t_proc_start(&sshd, ssh, NULL,
	                          (const char *const[]){ "setpriv", "--pdeathsig", "KILL", "/usr/sbin/sshd", "-D", "-e", "-f",
	                                                 conf, NULL }),
	             0);
	if (!t_until(listening, &port, E2E_WAIT_MS)) {
		char *err = NULL;
		t_proc_end(&sshd, &err);
		cr_skip_test("sshd did not start: %s", err ? err : "");
	}
	struct passwd *pw = getpwuid(geteuid());
	cr_assert(pw);
	char *portarg = t_fmt("%d", port), *fwdarg = t_fmt("%s:%s", game, e2e_d.sock), *login = t_fmt("%s@127.0.0.1", pw->pw_name);
	cr_assert_eq(t_proc_start(&fwd, ssh, NULL,
	                          (const char *const[]){ "setpriv", "--pdeathsig", "KILL", "ssh", "-N", "-F", "/dev/null", "-i", userkey, "-p", portarg, "-o",
	                                                 "BatchMode=yes", "-o", "StrictHostKeyChecking=no", "-o",
	                                                 "UserKnownHostsFile=/dev/null", "-o", "ExitOnForwardFailure=yes",
	                                                 "-o", "StreamLocalBindUnlink=yes", "-L", fwdarg, login, NULL }),
	             0);
	cr_assert(t_until(exists, game, E2E_WAIT_MS), "ssh -L never made %s", game);

	t_proc *h = host_on(game, NULL);
	e2e_expect(h, "first a 1 v=1 value=1");
	e2e_module("a.c", 2, 0);
	e2e_expect_next(h, "update", "update a 1 v=2 value=2 sym=NULL");
	cr_assert_str_eq(e2e_end_at(h, "byte_builds"), "byte_builds=2");
	e2e_end(h);

	char *err = NULL;
	t_proc_end(&fwd, &err);
	free(err);
	err = NULL;
	t_proc_end(&sshd, &err);
	free(err);
	free(portarg);
	free(fwdarg);
	free(login);
	free(text);
	free(key);
	free(pub);
	free(ssh);
	free(hostkey);
	free(userkey);
	free(auth);
	free(conf);
	free(game);
}
