/* loop.c: epoll, one event per wait, so a handler may free any other io it closes. */
#include "loop.h"

#include <errno.h>
#include <sys/epoll.h>
#include <unistd.h>

int hrd_loop_open(hrd_loop *l)
{
	l->stop = 0;
	l->epfd = epoll_create1(EPOLL_CLOEXEC);
	return l->epfd < 0 ? -1 : 0;
}

void hrd_loop_close(hrd_loop *l)
{
	if (l->epfd >= 0)
		close(l->epfd);
	l->epfd = -1;
}

static int ctl(hrd_loop *l, int op, hrd_io *io, uint32_t events)
{
	struct epoll_event ev = {.events = events, .data.ptr = io};
	return epoll_ctl(l->epfd, op, io->fd, &ev);
}

int hrd_loop_add(hrd_loop *l, hrd_io *io, uint32_t events)
{
	return ctl(l, EPOLL_CTL_ADD, io, events);
}

int hrd_loop_mod(hrd_loop *l, hrd_io *io, uint32_t events)
{
	return ctl(l, EPOLL_CTL_MOD, io, events);
}

void hrd_loop_del(hrd_loop *l, hrd_io *io)
{
	epoll_ctl(l->epfd, EPOLL_CTL_DEL, io->fd, NULL);
}

int hrd_loop_run(hrd_loop *l)
{
	/*
	 * One event per epoll_wait: a handler that closes and frees another io
	 * can never leave a stale pointer in this batch. The daemon's event rate
	 * is that of saves and clients, where one more system call costs nothing.
	 */
	while (!l->stop) {
		struct epoll_event ev;
		int n = epoll_wait(l->epfd, &ev, 1, -1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		if (n == 1) {
			hrd_io *io = ev.data.ptr;
			io->fn(io, ev.events);
		}
	}
	return 0;
}
