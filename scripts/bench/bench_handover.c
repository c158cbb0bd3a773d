/* bench_handover.c: a build handed to the game by path (protocol v1) against by descriptor (v2 on), for a ~10 KiB
 * and a ~1 MiB object: what differs between the two, done the library's way, from the send to the dlclose.
 * Usage: bench_handover [ROUNDS]   (make bench) */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../../proto/hrp.h"
#include "bench.h"

static char tmp[] = "/tmp/hrhandover.XXXXXX";

static void die(const char *what, const char *why)
{
	fprintf(stderr, "bench_handover: %s: %s\n", what, why);
	exit(1);
}

/* Build tmp/name.so with cc from a source whose table of table_bytes sets the object's size. */
static void build(const char *name, long table_bytes, char *so, size_t n)
{
	char src[4200], cmd[9000];
	snprintf(src, sizeof src, "%s/%s.c", tmp, name);
	snprintf(so, n, "%s/%s.so", tmp, name);
	FILE *f = fopen(src, "w");
	if (!f || fprintf(f, "const unsigned char table[%ld] = { 7, 1, 2, 3 };\n"
	                     "int value(void) { return table[0]; }\n", table_bytes) < 0 || fclose(f))
		die(src, strerror(errno));
	/* No separate code segment: the small object is then ~12 KiB, not ~20 (pages: its size steps by 4 KiB). */
	snprintf(cmd, sizeof cmd, "cc -shared -fPIC -g -Wl,-z,noseparate-code -o '%s' '%s'", so, src);
	if (system(cmd) != 0)
		die(cmd, "failed");
}

/* A fresh copy of so at to: another inode, so that glibc opens it anew rather than reuse the handle it has. */
static void copy(const char *so, const char *to)
{
	char buf[65536];
	int in = open(so, O_RDONLY | O_CLOEXEC), out = open(to, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	ssize_t k;
	if (in < 0 || out < 0)
		die(to, strerror(errno));
	while ((k = read(in, buf, sizeof buf)) > 0)
		if (write(out, buf, (size_t)k) != k)
			die(to, strerror(errno));
	if (k < 0 || close(out) < 0)
		die(to, strerror(errno));
	close(in);
}

/* The daemon's side: a BUILD frame, with fd (unless -1) on its first byte. */
static void send_build(int sock, const char *path, int fd)
{
	hrp_msg m = {.type = HRP_BUILD, .u.build = {"enemy", 42, HRP_KIND_OK, path, "", 0}};
	hrp_buf b = {0};
	if (hrp_encode(&m, &b) < 0 || hrp_send_fd(sock, b.data, b.len, fd) != (long)b.len)
		die("send", strerror(errno));
	hrp_buf_free(&b);
}

/* The game's side: the next frame, and the descriptor that came with it (or -1). */
static void recv_build(hrp_reader *r, int sock, hrp_msg *m, int *fd)
{
	int cut = 0, rc;
	*fd = -1;
	while ((rc = hrp_reader_next(r, m)) == 0)
		if (hrp_reader_recv(r, sock, fd, &cut) <= 0)
			die("recv", "the frame did not come");
	if (rc < 0 || m->type != HRP_BUILD)
		die("recv", r->why ? r->why : "not a BUILD");
}

/* dlopen, dlsym, dlclose of name: how long they took, in µs (the part both ways share). */
static double load(const char *name)
{
	double a = bench_now_us();
	void *h = dlopen(name, RTLD_NOW | RTLD_LOCAL);
	if (!h)
		die(name, dlerror());
	int (*value)(void);
	*(void **)&value = dlsym(h, "value");
	if (!value || value() != 7)
		die(name, "no value(), or not the one built");
	dlclose(h);
	return bench_now_us() - a;
}

/* v1: the game is told the path, and dlopens it. */
static double by_path(int d, int g, hrp_reader *r, const char *path)
{
	hrp_msg m;
	int fd;
	send_build(d, path, -1);
	recv_build(r, g, &m, &fd);
	return load(m.u.build.path);
}

/* v2 on: the daemon opens the object and sends the descriptor; the game names it as client/thread.c's load does. */
static double by_descriptor(int d, int g, hrp_reader *r, const char *path)
{
	hrp_msg m;
	int got, sent = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	struct stat st, named;
	char self[32], name[64];
	if (sent < 0)
		die(path, strerror(errno));
	send_build(d, "", sent);
	close(sent);
	recv_build(r, g, &m, &got);
	/* Each build keeps a descriptor of its own (on_build); the ELF check that follows is left out: a path could
	 * have it too. */
	int fd = got >= 0 ? fcntl(got, F_DUPFD_CLOEXEC, 3) : -1;
	if (got >= 0)
		close(got);
	if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))
		die("recv", "no descriptor of a file came");
	ssize_t len = readlink("/proc/self", self, sizeof self - 1);
	if (len <= 0)
		die("/proc/self", strerror(errno));
	self[len] = '\0';
	snprintf(name, sizeof name, "/proc/%s/fd/%d", self, fd);
	/* The library's check that the name is the build handed over: one more open and fstat. */
	int again = open(name, O_RDONLY | O_CLOEXEC);
	if (again < 0 || fstat(again, &named) < 0 || named.st_ino != st.st_ino)
		die(name, "is not the descriptor received");
	close(again);
	double t = load(name);
	close(fd);
	return t;
}

/* rounds of each way on the object so, alternated so that both see the same machine. */
static void bench(const char *label, const char *so, int rounds)
{
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		die("socketpair", strerror(errno));
	hrp_reader r = {0};
	/* t[way]: the whole hand-over; t[2 + way]: its dlopen, dlsym and dlclose alone */
	double *t[4];
	struct stat st;
	char path[4200];
	for (int k = 0; k < 4; k++)
		if (!(t[k] = calloc((size_t)rounds, sizeof(double))))
			die(so, "out of memory");
	if (stat(so, &st) < 0)
		die(so, strerror(errno));
	for (int i = 0; i < rounds; i++)
		for (int way = 0; way < 2; way++) {
			snprintf(path, sizeof path, "%s/copy-%d-%d.so", tmp, way, i);
			copy(so, path);
			double a = bench_now_us();
			t[2 + way][i] = (way ? by_descriptor : by_path)(sv[0], sv[1], &r, path);
			t[way][i] = bench_now_us() - a;
			unlink(path);
		}
	for (int k = 0; k < 4; k++)
		bench_sort(t[k], rounds);
	printf("handover_%s (%lld bytes) path p50=%.1f p95=%.1f us; descriptor p50=%.1f p95=%.1f us; "
	       "descriptor-path p50=%+.1f us; of which dlopen+dlsym+dlclose p50 path=%.1f descriptor=%.1f us (n=%d)\n",
	       label, (long long)st.st_size, t[0][rounds / 2], t[0][rounds * 95 / 100], t[1][rounds / 2],
	       t[1][rounds * 95 / 100], t[1][rounds / 2] - t[0][rounds / 2], t[2][rounds / 2], t[3][rounds / 2], rounds);
	for (int k = 0; k < 4; k++)
		free(t[k]);
	hrp_reader_free(&r);
	close(sv[0]);
	close(sv[1]);
}

int main(int argc, char **argv)
{
	int rounds = argc > 1 ? atoi(argv[1]) : 400;
	char small[4300], big[4300];
	if (rounds < 20)
		die(argv[1], "give at least 20 rounds");
	if (!mkdtemp(tmp))
		die(tmp, strerror(errno));
	build("small", 4096, small, sizeof small);
	build("big", 1L << 20, big, sizeof big);
	bench("10k", small, rounds);
	bench("1m", big, rounds);
	return bench_rm(tmp) != 0;
}
