/* test_trust.c: a game runs only what a daemon it trusts published: other users' daemons, planted sockets, paths. */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../proto/hrp.h"
#include "util.h"

#define WAIT_MS 30000
#define NOBODY 65534
#define OTHER 12345 /* a user with no name: a daemon of someone else's */
#define GAMER 23456

static char *dir;
static int fake = -1; /* the stand-in daemon's pid */
static t_proc host = { .pid = -1, .pidfd = -1 };
static t_daemon d = { .pidfd = -1 };

static void setup(void)
{
	dir = t_tmpdir();
	chmod(dir, 0755);
}

static void teardown(void)
{
	if (host.pid > 0)
		t_proc_end(&host, NULL);
	if (fake > 0) {
		kill(fake, SIGKILL);
		waitpid(fake, NULL, 0);
	}
	fake = -1;
	if (d.pidfd >= 0)
		t_daemon_stop(&d);
	d.pidfd = -1;
	t_rmtree(dir);
	free(dir);
}

TestSuite(trust, .init = setup, .fini = teardown, .timeout = 120);

static void need_root(void)
{
	if (geteuid() != 0)
		cr_skip_test("needs root to act as other users");
}

/* An object whose constructor writes who ran it into DIR/marker: what a planted daemon would hand a game. */
static char *evil_so(void)
{
	char *src = t_fmt("%s/evil.c", dir), *so = t_fmt("%s/evil.so", dir);
	char *text = t_fmt("#include <stdio.h>\n#include <unistd.h>\n"
	                   "__attribute__((constructor)) static void run(void) {\n"
	                   "  FILE *f = fopen(\"%s/marker\", \"w\"); if (f) { fprintf(f, \"uid=%%d\\n\", (int)getuid()); fclose(f); }\n}\n"
	                   "int value(void) { return 666; }\n",
	                   dir);
	cr_assert_eq(t_write(src, text, strlen(text)), 0);
	t_run r = t_exec(dir, NULL, (const char *const[]){ "cc", "-shared", "-fPIC", "-o", so, src, NULL });
	cr_assert_eq(r.status, 0, "%s", r.err);
	t_run_free(&r);
	chmod(so, 0755);
	free(src);
	free(text);
	return so;
}

/* Send m on fd, with a descriptor attached if attach >= 0. */
static void send_with(int fd, const hrp_msg *m, int attach)
{
	hrp_buf b = { 0 };
	cr_assert_gt(hrp_encode(m, &b), 0);
	(void)!hrp_send_fd(fd, b.data, b.len, attach);
	hrp_buf_free(&b);
}

/*
 * A stand-in daemon of a few lines, run as uid: it answers HELLO, and
 * SUBSCRIBE with a BUILD of so (its descriptor attached if attach), and writes
 * each REFUSED's reason to DIR/refused. The socket is ready when this returns.
 */
static void stand_in(const char *sock, uid_t uid, const char *so, int attach)
{
	int ready[2];
	cr_assert_eq(pipe(ready), 0);
	fake = fork();
	cr_assert_geq(fake, 0);
	if (fake == 0) {
		close(ready[0]);
		if (setgid(uid) < 0 || setuid(uid) < 0)
			_exit(1);
		char *folder = strdup(sock);
		*strrchr(folder, '/') = '\0';
		mkdir(folder, 0700);
		int l = hrp_listen(sock, 4);
		if (l < 0)
			_exit(2);
		(void)!write(ready[1], "", 1);
		for (;;) {
			int fd = accept4(l, NULL, NULL, SOCK_CLOEXEC);
			if (fd < 0)
				continue;
			hrp_reader r = { 0 };
			hrp_msg m;
			while (hrp_recv(fd, &r, &m, 60000) == 0) {
				if (m.type == HRP_HELLO) {
					hrp_msg h = { .type = HRP_HELLO,
						      .u.hello = { HRP_VERSION, HRP_ROLE_DAEMON, (uint32_t)getpid(),
								   "00000000000000000000000000000000", "stand-in" } };
					send_with(fd, &h, -1);
				} else if (m.type == HRP_SUBSCRIBE) {
					hrp_msg b = { .type = HRP_BUILD, .u.build = { m.u.sub.module, 1, HRP_KIND_OK, so, "", 0 } };
					int obj = attach ? open(so, O_RDONLY | O_CLOEXEC) : -1;
					send_with(fd, &b, obj);
					if (obj >= 0)
						close(obj);
				} else if (m.type == HRP_OBJECT_REQ) {
					char *p = t_fmt("%s/asked", dir), *what = t_fmt("%s v%llu", m.u.object_req.module,
					                                                (unsigned long long)m.u.object_req.version);
					t_write(p, what, strlen(what));
					free(p);
					free(what);
				} else if (m.type == HRP_REFUSED) {
					char *p = t_fmt("%s/refused", dir);
					t_write(p, m.u.refused.reason, strlen(m.u.refused.reason));
					free(p);
				} else if (m.type == HRP_STATUS_REQ) {
					hrp_msg st = { .type = HRP_STATUS, .u.status = { .root = "", .state_dir = "", .backend = "", .reason = "" } };
					send_with(fd, &st, -1);
				}
			}
			hrp_reader_free(&r);
			close(fd);
		}
	}
	close(ready[1]);
	char c;
	cr_assert_eq(read(ready[0], &c, 1), 1, "the stand-in daemon did not start");
	close(ready[0]);
}

static int exists(const char *rel)
{
	char *p = t_fmt("%s/%s", dir, rel);
	int yes = access(p, F_OK) == 0;
	free(p);
	return yes;
}

/* Run the host as root in cwd with env, on module a, and wait for want. */
static void run_host(const char *cwd, const char *const *env, const char *const *opts, const char *want)
{
	const char *exe = getenv("HR_HOST") ? getenv("HR_HOST") : HR_BUILD_DIR "/tests/host";
	const char *argv[8] = { exe };
	size_t n = 1;
	for (size_t i = 0; opts && opts[i]; i++)
		argv[n++] = opts[i];
	argv[n++] = "-";
	argv[n++] = "a";
	cr_assert_eq(t_proc_start(&host, cwd, env, argv), 0);
	cr_assert(t_proc_expect(&host, want, WAIT_MS), "the game never printed '%s' (last: %s)", want, host.line);
}

/*
 * The reproduction: nobody plants DIR/.hotreload/hotreloadd.sock, a stand-in
 * that answers SUBSCRIBE with an object of its own (descriptor and all), in
 * a folder a game of root's runs in. The game must connect to nothing there.
 */
Test(trust, a_socket_planted_by_another_user_is_never_connected_to)
{
	need_root();
	char *so = evil_so();
	char *sub = t_fmt("%s/game/sub", dir), *sock = t_fmt("%s/.hotreload/hotreloadd.sock", dir);
	char *game = t_fmt("%s/game", dir);
	cr_assert_eq(mkdir(game, 0755), 0);
	cr_assert_eq(mkdir(sub, 0755), 0);
	free(game);
	cr_assert_eq(chown(dir, NOBODY, NOBODY), 0);
	stand_in(sock, NOBODY, so, 1);

	/* Going up from DIR/game/sub: nobody's .hotreload is passed over, and nothing else is found. */
	run_host(sub, (const char *const[]){ "HOTRELOAD_SOCKET=", NULL }, NULL, "connect failed");
	cr_assert(strstr(host.line, strerror(ENOENT)), "%s", host.line);
	t_proc_end(&host, NULL);
	/* Named outright: the kernel says who listens, and that uid is not trusted. */
	char *env = t_fmt("HOTRELOAD_SOCKET=%s", sock);
	run_host(sub, (const char *const[]){ env, NULL }, NULL, "connect failed");
	cr_assert(strstr(host.line, strerror(EACCES)), "%s", host.line);
	t_proc_end(&host, NULL);
	/* Lazily: a note says so, once, and nothing loads. */
	run_host(sub, (const char *const[]){ env, NULL }, (const char *const[]){ "--lazy", "--notes", NULL },
		 "runs as uid 65534, which this program (uid 0) does not trust");
	t_proc_end(&host, NULL);
	/* nobody can never be trusted. */
	run_host(sub, (const char *const[]){ env, "HOTRELOAD_TRUST_UID=65534", NULL }, NULL, "connect failed");
	cr_assert(strstr(host.line, strerror(EINVAL)), "%s", host.line);
	cr_assert(!exists("marker"), "the planted object ran in the game");
	free(env);
	free(sub);
	free(sock);
	free(so);
}

/* A daemon that is trusted, but names a path with no descriptor: the game refuses it, and never opens the path. */
Test(trust, a_build_is_loaded_from_its_descriptor_never_from_the_path_it_names)
{
	need_root();
	char *so = evil_so();
	char *sock = t_fmt("%s/s/hotreloadd.sock", dir);
	stand_in(sock, 0, so, 0);
	char *env = t_fmt("HOTRELOAD_SOCKET=%s", sock);
	/* A BUILD without its descriptor: the game asks for the object's bytes (OBJECT_REQ), and opens no path. */
	run_host(dir, (const char *const[]){ env, NULL }, (const char *const[]){ "--notes", NULL }, "open a");
	char *asked = t_fmt("%s/asked", dir);
	cr_assert(t_until_in_file(asked, "a v1", 1, WAIT_MS), "no OBJECT_REQ reached the daemon");
	free(asked);
	cr_assert(!exists("marker"), "the game opened the path it was told");
	free(env);
	free(sock);
	free(so);
}

/*
 * The real daemon, run as another user: not trusted by default; trusted
 * through HOTRELOAD_TRUST_UID, its builds go live. The game of a third user
 * cannot open the objects (0700 under a umask of 077) again by name: it loads
 * them from a copy in memory, through the descriptor it was given.
 */
Test(trust, a_daemon_of_a_uid_the_game_trusts_is_used_and_its_objects_load_from_descriptors)
{
	need_root();
	char *src = t_fmt("%s/a.c", dir), *text = "int value(void) { return 1; }\n";
	cr_assert_eq(t_write(src, text, strlen(text)), 0);
	cr_assert_eq(chown(dir, OTHER, OTHER), 0);
	cr_assert_eq(chown(src, OTHER, OTHER), 0);
	char *allow = t_fmt("%d", GAMER);
	t_run r;
	int rc = t_daemon_start_under(&d,
				      (const char *const[]){ "setpriv", "--reuid", "12345", "--regid", "12345", "--clear-groups",
							     "sh", "-c", "umask 077; exec \"$0\" \"$@\"", NULL },
				      dir, NULL, (const char *const[]){ "--allow-uid", allow, NULL }, &r);
	cr_assert_eq(rc, 0, "hotreloadd did not start as uid %d: %s", OTHER, r.err);
	t_run_free(&r);
	char *env = t_fmt("HOTRELOAD_SOCKET=%s", d.sock);

	/* Root's game does not trust uid 12345 ... */
	run_host(dir, (const char *const[]){ env, NULL }, NULL, "connect failed");
	cr_assert(strstr(host.line, strerror(EACCES)), "%s", host.line);
	t_proc_end(&host, NULL);
	/* ... unless told to. */
	run_host(dir, (const char *const[]){ env, "HOTRELOAD_TRUST_UID=12345", NULL }, NULL, "first a 1 v=1 value=1");
	t_proc_end(&host, NULL);

	/* A third user's game, trusting 12345, cannot open the object by name: a memfd copy goes live. */
	const char *exe = getenv("HR_HOST") ? getenv("HR_HOST") : HR_BUILD_DIR "/tests/host";
	cr_assert_eq(t_proc_start(&host, "/", (const char *const[]){ env, "HOTRELOAD_TRUST_UID=12345", NULL },
				  (const char *const[]){ "setpriv", "--reuid", "23456", "--regid", "23456", "--clear-groups",
							 exe, "-", "a", NULL }),
		     0);
	cr_assert(t_proc_expect(&host, "first a 1 v=1 value=1", WAIT_MS), "last: %s", host.line);
	char *mpath = t_fmt("/proc/%d/maps", host.pid), *maps = t_read(mpath, NULL);
	free(mpath);
	cr_assert(maps && strstr(maps, "/memfd:hotreload-v1"), "not loaded from a memfd:\n%s", maps);
	free(maps);
	text = "int value(void) { return 2; }\n";
	cr_assert_eq(t_write(src, text, strlen(text)), 0);
	cr_assert(t_proc_expect(&host, "update a 1 v=2 value=2", WAIT_MS), "last: %s", host.line);
	free(env);
	free(allow);
	free(src);
}
