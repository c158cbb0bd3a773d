/* loop.c: epoll, one event per wait, so a handler may free any other io it closes; and the timers, fired between. */
#include "loop.h"

#include <assert.h>
#include <errno.h>
#include <limits.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

int hrd_loop_open(hrd_loop *l)
{
	l->stop = 0;
	l->timers = NULL;
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
	assert(io->fd >= 0);
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

int64_t hrd_loop_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int hrd_timer_active(const hrd_timer *t)
{
	return t->due != 0;
}

void hrd_timer_stop(hrd_loop *l, hrd_timer *t)
{
	if (!t->due)
		return;
	for (hrd_timer **p = &l->timers; *p; p = &(*p)->next)
		if (*p == t) {
			*p = t->next;
			break;
		}
	t->next = NULL;
	t->due = 0;
}

void hrd_timer_start(hrd_loop *l, hrd_timer *t, int64_t ms, int64_t every)
{
	assert(ms >= 0 && every >= 0);
	hrd_timer_stop(l, t);
	t->due = hrd_loop_now_ms() + ms;
	t->due += !t->due; /* 0 means stopped */
	t->every = every;
	t->next = l->timers;
	l->timers = t;
}

/* The started timer due first, or NULL. */
static hrd_timer *first(const hrd_loop *l)
{
	hrd_timer *f = NULL;
	for (hrd_timer *t = l->timers; t; t = t->next)
		if (!f || t->due < f->due)
			f = t;
	return f;
}

int hrd_loop_run(hrd_loop *l)
{
	/*
	 * One event per epoll_wait: a handler that closes and frees another io
	 * can never leave a stale pointer in this batch. The daemon's event rate
	 * is that of saves and clients, where one more system call costs nothing.
	 * A due timer fires before the next wait, one per turn, for the same reason.
	 */
	while (!l->stop) {
		hrd_timer *t = first(l);
		int64_t now = hrd_loop_now_ms();
		if (t && t->due <= now) {
			if (t->every)
				hrd_timer_start(l, t, t->every, t->every);
			else
				hrd_timer_stop(l, t);
			t->fn(t);
			continue;
		}
		int64_t wait = t ? t->due - now : -1;
		struct epoll_event ev;
		int n = epoll_wait(l->epfd, &ev, 1, wait > INT_MAX ? INT_MAX : (int)wait);
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
