/* bench_remote.c: save-to-live through the daemon's own socket (objects as descriptors) against the same socket
 * forwarded by a real ssh -L on loopback (objects as bytes), for a ~10 KiB and a ~1 MiB object.
 * Usage: bench_remote HOTRELOADD [EDITS]   (make bench; the ssh half needs root, sshd and ssh, else it is skipped) */
#include <errno.h>
#include <hotreload.h>
#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"

extern char **environ;

/* Start argv (quietly), and wait for it with wait: its pid, or -1. */
static pid_t spawn(char *const argv[], int wait)
{
	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
	posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
	pid_t pid;
	int rc = posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ), st;
	posix_spawn_file_actions_destroy(&fa);
	if (rc)
		return -1;
	if (!wait)
		return pid;
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? pid : -1;
}

/* Module name's source, tag its value; big: a 1 MiB initialised table makes a ~1 MiB object. */
static void write_module(const char *root, const char *name, int big, int tag)
{
	char rel[300], src[512];
	snprintf(rel, sizeof rel, "%s.c", name);
	if (big)
		snprintf(src, sizeof src, "const unsigned char table[1 << 20] = { %d, 1, 2, 3 };\n"
		                          "int value(void) { return table[0]; }\n", tag % 200);
	else
		snprintf(src, sizeof src, "static int calls;\nint value(void) { calls++; return %d; }\n", tag);
	bench_put(root, rel, src);
}

/* The size of the newest published object of name, from the daemon's objects/. */
static long object_size(const char *root, const char *name)
{
	char dir[4400], path[4800];
	snprintf(dir, sizeof dir, "%s/.hotreload/objects", root);
	DIR *d = opendir(dir);
	long size = -1;
	time_t newest = 0;
	for (struct dirent *e; d && (e = readdir(d));) {
		struct stat st;
		snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
		if (strncmp(e->d_name, name, strlen(name)) == 0 && e->d_name[strlen(name)] == '.' && stat(path, &st) == 0 &&
		    st.st_mtime >= newest) {
			newest = st.st_mtime;
			size = (long)st.st_size;
		}
	}
	if (d)
		closedir(d);
	return size;
}

static void quiet(const hr_note *note, void *arg)
{
	(void)note;
	(void)arg;
}

/* n saves of name, each timed from the write to the hr_update that switches to it; the p50 in ms, or -1. */
static double save_to_live(const char *sock, const char *root, const char *name, int big, int n, int *tag)
{
	hr_client *c = hr_connect(sock);
	if (c)
		hr_set_note_sink(c, quiet, NULL);
	hr_module *m = c ? hr_open(c, name) : NULL;
	if (!m)
		return -1;
	double *t = calloc((size_t)n, sizeof *t), p50 = -1;
	for (int i = -2; i < n; i++) { /* two warm-up rounds */
		while (hr_update(m) > 0)
			;
		uint64_t v = hr_version(m);
		double t0 = bench_now_ms(), deadline = t0 + 60000;
		write_module(root, name, big, ++*tag);
		int up = 0;
		while ((up = hr_update(m)) == 0 || hr_version(m) <= v) {
			if (up < 0 || bench_now_ms() > deadline) {
				fprintf(stderr, "bench_remote: %s never went live through %s\n", name, sock);
				goto out;
			}
			nanosleep(&(struct timespec){0, 50000}, NULL);
		}
		if (i >= 0)
			t[i] = bench_now_ms() - t0;
	}
	bench_sort(t, n);
	p50 = t[n / 2];
	hr_stats st;
	hr_get_stats(c, &st);
	if (strstr(sock, "fwd") && st.byte_builds == 0)
		fprintf(stderr, "bench_remote: nothing came as bytes through %s\n", sock);
out:
	free(t);
	hr_disconnect(c);
	return p50;
}

static int free_port(void)
{
	int s = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof a;
	if (s < 0 || bind(s, (struct sockaddr *)&a, sizeof a) < 0 || getsockname(s, (struct sockaddr *)&a, &len) < 0)
		return -1;
	close(s);
	return ntohs(a.sin_port);
}

static int wait_for(const char *path)
{
	struct stat st;
	for (double until = bench_now_ms() + 20000; bench_now_ms() < until; nanosleep(&(struct timespec){0, 20000000}, NULL))
		if (lstat(path, &st) == 0)
			return 0;
	return -1;
}

/* sshd on 127.0.0.1 and ssh -L fwd:sock, with keys made here: 0, or -1 with why said. */
static int forward(const char *tmp, const char *sock, const char *fwd, pid_t *sshd, pid_t *ssh)
{
	char hk[4200], uk[4200], auth[4200], conf[4200], pub[4300], text[16384], port[16], spec[9000], login[300];
	if (geteuid() != 0 || access("/usr/sbin/sshd", X_OK) != 0) {
		printf("ssh-forwarded: skipped (needs root and /usr/sbin/sshd: scripts/deps.sh test)\n");
		return -1;
	}
	mkdir("/run/sshd", 0755);
	snprintf(hk, sizeof hk, "%s/host_key", tmp);
	snprintf(uk, sizeof uk, "%s/user_key", tmp);
	snprintf(auth, sizeof auth, "%s/authorized_keys", tmp);
	snprintf(conf, sizeof conf, "%s/sshd_config", tmp);
	snprintf(pub, sizeof pub, "%s.pub", uk);
	char *kh[] = {"ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", hk, NULL};
	char *ku[] = {"ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", uk, NULL};
	char *cp[] = {"cp", pub, auth, NULL};
	if (spawn(kh, 1) < 0 || spawn(ku, 1) < 0 || spawn(cp, 1) < 0)
		return -1;
	int p = free_port();
	snprintf(port, sizeof port, "%d", p);
	snprintf(text, sizeof text,
	         "Port %d\nListenAddress 127.0.0.1\nHostKey %s\nPidFile %s/sshd.pid\nAuthorizedKeysFile %s\n"
	         "StrictModes no\nUsePAM no\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n"
	         "PermitRootLogin prohibit-password\nAllowStreamLocalForwarding yes\nStreamLocalBindUnlink yes\n",
	         p, hk, tmp, auth);
	bench_put(tmp, "sshd_config", text);
	char *d[] = {"/usr/sbin/sshd", "-D", "-f", conf, NULL};
	*sshd = spawn(d, 0);
	snprintf(spec, sizeof spec, "%s:%s", fwd, sock);
	struct passwd *pw = getpwuid(geteuid());
	snprintf(login, sizeof login, "%s@127.0.0.1", pw ? pw->pw_name : "root");
	char *s[] = {"ssh", "-N", "-F", "/dev/null", "-i", uk, "-p", port, "-o", "BatchMode=yes", "-o",
	             "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "ExitOnForwardFailure=yes",
	             "-o", "StreamLocalBindUnlink=yes", "-L", spec, login, NULL};
	for (int i = 0; i < 100 && *sshd > 0; i++) { /* until sshd listens */
		*ssh = spawn(s, 0);
		if (wait_for(fwd) == 0)
			return 0;
		kill(*ssh, SIGTERM);
		waitpid(*ssh, NULL, 0);
	}
	printf("ssh-forwarded: skipped (sshd or ssh -L did not come up)\n");
	return -1;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: bench_remote HOTRELOADD [EDITS]\n");
		return 2;
	}
	int n = argc > 2 ? atoi(argv[2]) : 20, tag = 0;
	if (n < 10)
		n = 10;
	char tmp[] = "/tmp/hrremote.XXXXXX", root[4200], sock[4300], fwd[4300], exe[PATH_MAX];
	if (!mkdtemp(tmp) || !realpath(argv[1], exe))
		return 1;
	snprintf(root, sizeof root, "%s/modules", tmp);
	snprintf(sock, sizeof sock, "%s/.hotreload/hotreloadd.sock", root);
	snprintf(fwd, sizeof fwd, "%s/fwd.sock", tmp);
	mkdir(root, 0700);
	write_module(root, "small", 0, ++tag);
	write_module(root, "big", 1, ++tag);
	unsetenv("HOTRELOAD_SOCKET");
	char *daemon[] = {exe, "--root", root, "--quiet", NULL};
	int pid = bench_daemon(daemon, root);
	if (pid < 0)
		return 1;
	pid_t sshd = -1, ssh = -1;
	int remote = forward(tmp, sock, fwd, &sshd, &ssh) == 0;
	printf("save to live, p50 over %d saves each (the compile included):\n", n);
	const char *names[] = {"small", "big"};
	for (int big = 0; big < 2; big++) {
		double local = save_to_live(sock, root, names[big], big, n, &tag);
		double far = remote ? save_to_live(fwd, root, names[big], big, n, &tag) : -1;
		long size = object_size(root, names[big]);
		printf("  a %ld-byte object: local socket (descriptor) %.1f ms", size, local);
		if (remote)
			printf(", ssh -L on loopback (bytes) %.1f ms: %+.1f ms", far, far - local);
		printf("\n");
	}
	if (ssh > 0) {
		kill(ssh, SIGTERM);
		waitpid(ssh, NULL, 0);
	}
	if (sshd > 0) {
		kill(sshd, SIGTERM);
		waitpid(sshd, NULL, 0);
	}
	bench_stop(pid);
	return bench_rm(tmp) != 0;
}
