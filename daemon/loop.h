/* loop.h: the daemon's single-threaded event loop (epoll): descriptors, timers, and their handlers. */
#ifndef HRD_LOOP_H
#define HRD_LOOP_H

#include <stddef.h>
#include <stdint.h>

/*
 * Errors: functions that can fail return 0, or -1 with errno set (as the
 * system calls beneath them do).
 */

/* The struct that member ptr is in (libuv's container_of): a handler finds its owner from its io or timer. */
#define hrd_container_of(ptr, type, member) ((type *)(void *)((char *)(ptr) - offsetof(type, member)))

typedef struct hrd_io hrd_io;
/* A watched descriptor: embed it in the owner's struct and set fd and fn. */
struct hrd_io {
	int fd;
	void (*fn)(hrd_io *io, uint32_t events); /* EPOLLIN, EPOLLOUT, EPOLLHUP, ... */
};

typedef struct hrd_timer hrd_timer;
/* A timer of the loop (redis ae's time events): embed it in the owner's struct and set fn. */
struct hrd_timer {
	void (*fn)(hrd_timer *t);
	int64_t due;     /* monotonic ms when it fires; 0 while stopped */
	int64_t every;   /* ms between firings, 0: once */
	hrd_timer *next; /* in the loop's list of started timers */
};

typedef struct hrd_loop {
	int epfd;
	int stop;          /* set by a handler: run() returns after it */
	hrd_timer *timers; /* started ones, unsorted: a daemon has a handful */
} hrd_loop;

int hrd_loop_open(hrd_loop *l);
void hrd_loop_close(hrd_loop *l);
/* Start, change or stop watching io->fd (level-triggered). Return 0 or -1 with errno. */
int hrd_loop_add(hrd_loop *l, hrd_io *io, uint32_t events);
int hrd_loop_mod(hrd_loop *l, hrd_io *io, uint32_t events);
void hrd_loop_del(hrd_loop *l, hrd_io *io);
/*
 * Fire t after ms (0: at the loop's next turn), then every `every` ms if that
 * is not 0. Starting a started timer moves it. A stopped timer never fires;
 * stopping a stopped one does nothing. Neither fails.
 */
void hrd_timer_start(hrd_loop *l, hrd_timer *t, int64_t ms, int64_t every);
void hrd_timer_stop(hrd_loop *l, hrd_timer *t);
/* Whether t is started. */
int hrd_timer_active(const hrd_timer *t);
/* The monotonic clock, in ms: what timers count in. */
int64_t hrd_loop_now_ms(void);
/*
 * Dispatch until a handler sets l->stop: one event or one due timer at a
 * time. With nothing ready and no timer started it sleeps in epoll_wait
 * without a timeout: no periodic wakeup. Returns 0, or -1 when epoll_wait
 * fails.
 */
int hrd_loop_run(hrd_loop *l);

#endif
