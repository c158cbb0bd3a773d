/* loop.h: the daemon's single-threaded event loop (epoll): descriptors and their handlers. */
#ifndef HRD_LOOP_H
#define HRD_LOOP_H

#include <stdint.h>

typedef struct hrd_io hrd_io;
/* A watched descriptor: embed it in the owner's struct and set fd and fn. */
struct hrd_io {
	int fd;
	void (*fn)(hrd_io *io, uint32_t events); /* EPOLLIN, EPOLLOUT, EPOLLHUP, ... */
};

typedef struct hrd_loop {
	int epfd;
	int stop; /* set by a handler: run() returns after it */
} hrd_loop;

int hrd_loop_open(hrd_loop *l);
void hrd_loop_close(hrd_loop *l);
/* Start, change or stop watching io->fd (level-triggered). Return 0 or -1 with errno. */
int hrd_loop_add(hrd_loop *l, hrd_io *io, uint32_t events);
int hrd_loop_mod(hrd_loop *l, hrd_io *io, uint32_t events);
void hrd_loop_del(hrd_loop *l, hrd_io *io);
/*
 * Dispatch until a handler sets l->stop. With nothing ready it sleeps in
 * epoll_wait without a timeout: no periodic wakeup. Returns 0, or -1 when
 * epoll_wait fails.
 */
int hrd_loop_run(hrd_loop *l);

#endif
