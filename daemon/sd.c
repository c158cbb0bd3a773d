/* sd.c: socket activation and sd_notify, by hand: the two are a few lines of protocol, not worth libsystemd. */
#include "sd.h"

#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

enum { LISTEN_FDS_START = 3 };

static char notify[sizeof ((struct sockaddr_un *)0)->sun_path];

int hrd_sd_start(char *err, unsigned errsz)
{
	const char *ns = getenv("NOTIFY_SOCKET");
	if (ns && strlen(ns) < sizeof notify)
		memcpy(notify, ns, strlen(ns) + 1);
	unsetenv("NOTIFY_SOCKET");
	const char *pid = getenv("LISTEN_PID"), *fds = getenv("LISTEN_FDS");
	char *end = NULL;
	long n = fds ? strtol(fds, &end, 10) : 0;
	int ours = pid && fds && strtol(pid, NULL, 10) == (long)getpid() && *end == '\0';
	unsetenv("LISTEN_PID");
	unsetenv("LISTEN_FDS");
	unsetenv("LISTEN_FDNAMES");
	if (!ours || n == 0)
		return -1;
	if (n != 1) {
		snprintf(err, errsz, "systemd passed %ld sockets; the unit must have one ListenStream", n);
		return -2;
	}
	int fd = LISTEN_FDS_START, type = 0, listening = 0;
	socklen_t len = sizeof type;
	struct sockaddr_un sa;
	socklen_t salen = sizeof sa;
	if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) < 0 || type != SOCK_STREAM ||
	    getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &(socklen_t){sizeof listening}) < 0 || !listening ||
	    getsockname(fd, (struct sockaddr *)&sa, &salen) < 0 || sa.sun_family != AF_UNIX) {
		snprintf(err, errsz, "the socket systemd passed is not a listening Unix stream socket: use ListenStream=PATH");
		return -2;
	}
	if (fcntl(fd, F_SETFD, FD_CLOEXEC) < 0 || fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) < 0) {
		snprintf(err, errsz, "cannot use the socket systemd passed: %s", strerror(errno));
		return -2;
	}
	return fd;
}

void hrd_sd_notify(const char *state)
{
	const char *path = notify;
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	size_t n = strlen(path);
	if (n < 2 || n >= sizeof sa.sun_path || (path[0] != '/' && path[0] != '@'))
		return;
	memcpy(sa.sun_path, path, n);
	if (path[0] == '@')
		sa.sun_path[0] = '\0'; /* an abstract socket */
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return;
	(void)!sendto(fd, state, strlen(state), MSG_NOSIGNAL, (struct sockaddr *)&sa,
	              (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n));
	close(fd);
}
