/* test_compilers.c: other compilers and wrappers as hotreload.conf names them: tcc, ccache, and distcc through a real distccd on 127.0.0.1. */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <unistd.h>

#include "e2e.h"

static int distccd_pid;

static void setup(void)
{
	e2e_setup();
	distccd_pid = 0;
}

static void teardown(void)
{
	if (distccd_pid > 0) {
		kill(distccd_pid, SIGTERM);
		waitpid(distccd_pid, NULL, 0);
	}
	e2e_teardown();
}

TestSuite(compilers, .init = setup, .fini = teardown, .timeout = 240);

static const char module_src[] = "#include \"h.h\"\nint value(void) { return V; }\n";

Test(compilers, tcc_builds_modules_and_follows_their_headers)
{
	e2e_put("hotreload.conf", "cc = tcc\n");
	e2e_put("h.h", "#define V 1\n");
	e2e_put("a.c", module_src);
	e2e_start_daemon(NULL);
	t_proc *h = e2e_host(0, NULL, (const char *const[]){"a", NULL});
	e2e_expect(h, "first a 1 v=1 value=1");
	e2e_put("h.h", "#define V 2\n");
	e2e_expect(h, "update a 1 v=2 value=2");
	e2e_wait_history(".[0].source_hash | length", "64");
}

static int ccache_hits(const char *dir)
{
	char *env = t_fmt("CCACHE_DIR=%s", dir);
	t_run r = t_exec(NULL, (const char *const[]){env, NULL}, (const char *const[]){"ccache", "--print-stats", NULL});
	int hits = 0;
	/* lines of "name<TAB>value" */
	for (char *l = r.out ? strtok(r.out, "\n") : NULL; l; l = strtok(NULL, "\n"))
		if (strncmp(l, "direct_cache_hit\t", 17) == 0 || strncmp(l, "preprocessed_cache_hit\t", 23) == 0)
			hits += atoi(strchr(l, '\t') + 1);
	t_run_free(&r);
	free(env);
	return hits;
}

Test(compilers, ccache_takes_each_compile)
{
	char *cache = t_fmt("%s/.ccache", e2e_dir), *env = t_fmt("CCACHE_DIR=%s", cache);
	e2e_put("hotreload.conf", "cc = ccache cc\n");
	e2e_put("h.h", "#define V 1\n");
	e2e_put("a.c", module_src);
	e2e_start_daemon((const char *const[]){env, NULL});
	e2e_wait_history(".[0] | \"\\(.status) \\(.version)\"", "ok 1");
	int before = ccache_hits(cache); /* a header younger than the build makes it compile twice */
	/* A history started afresh compiles the same text again: ccache has it. */
	char *state = strdup(e2e_d.state);
	cr_assert_eq(t_daemon_stop(&e2e_d), 0);
	e2e_d.pidfd = -1;
	t_rmtree(state);
	e2e_start_daemon((const char *const[]){env, NULL});
	e2e_wait_history(".[0] | \"\\(.status) \\(.version)\"", "ok 1");
	cr_assert_gt(ccache_hits(cache), before, "the second history's compile was not a hit");
	t_proc *h = e2e_host(0, NULL, (const char *const[]){"a", NULL});
	e2e_expect(h, "first a 1 v=1 value=1");
	free(state);
	free(cache);
	free(env);
}

/* A free TCP port on 127.0.0.1. */
static int free_port(void)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof a;
	cr_assert(fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
	          getsockname(fd, (struct sockaddr *)&a, &len) == 0);
	close(fd);
	return ntohs(a.sin_port);
}

static int accepts(void *arg)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t) * (int *)arg),
	                        .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	int ok = fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof a) == 0;
	if (fd >= 0)
		close(fd);
	return ok;
}

Test(compilers, distcc_sends_each_compile_to_a_distccd)
{
	int port = free_port();
	char *log = t_fmt("%s/.distccd.log", e2e_dir), *port_s = t_fmt("%d", port);
	fflush(NULL);
	distccd_pid = fork();
	if (distccd_pid == 0) {
		/* Its log on stderr, a file opened here: as root it becomes nobody, who could not open one in our folder. */
		int null = open("/dev/null", O_RDWR), out = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		dup2(null, 0), dup2(null, 1), dup2(out, 2);
		execlp("distccd", "distccd", "--daemon", "--no-detach", "--listen", "127.0.0.1", "--port", port_s, "--allow",
		       "127.0.0.1", "--log-stderr", "--log-level=info", "--user", "nobody", (char *)NULL);
		_exit(127);
	}
	cr_assert(t_until(accepts, &port, E2E_WAIT_MS), "distccd did not listen on %d", port);
	char *hosts = t_fmt("DISTCC_HOSTS=127.0.0.1:%d", port);
	e2e_put("hotreload.conf", "cc = distcc cc\n");
	e2e_put("h.h", "#define V 1\n");
	e2e_put("a.c", module_src);
	/* No falling back to a local compile: the test is that distccd did it. */
	e2e_start_daemon((const char *const[]){hosts, "DISTCC_FALLBACK=0", NULL});
	t_proc *h = e2e_host(0, NULL, (const char *const[]){"a", NULL});
	e2e_expect(h, "first a 1 v=1 value=1");
	e2e_put("h.h", "#define V 2\n");
	e2e_expect(h, "update a 1 v=2 value=2");
	cr_assert(t_until_in_file(log, "COMPILE_OK", 2, E2E_WAIT_MS), "distccd compiled fewer than two");
	free(log);
	free(port_s);
	free(hosts);
}
