/* bench_patch_prog.c: the program bench_patch patches: built with the patch flags, it calls hr_update each frame
 * and reports on stdout, with CLOCK_MONOTONIC times, what it sees; then measures hr_update with nothing new.
 * Usage (by bench_patch): prog SOCKET. Lines out:
 *   ready
 *   applied NS          an hr_update that returned 1, and how long it took
 *   value V NS          value() returned something new at NS;  many V NS: the same for many_value()
 *   refused RC          an hr_update that refused
 *   idle NS_PER_CALL CALLS SYSCALLS SYSCALL_CALLS   after "idle" on stdin; then it exits */
#define _GNU_SOURCE /* REG_* of ucontext */
#include <errno.h>
#include <hotreload.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <time.h>
#include <ucontext.h>
#include <unistd.h>

#ifndef PR_SET_SYSCALL_USER_DISPATCH
#define PR_SET_SYSCALL_USER_DISPATCH 59
#define PR_SYS_DISPATCH_OFF 0
#define PR_SYS_DISPATCH_ON 1
#define SYSCALL_DISPATCH_FILTER_ALLOW 0
#define SYSCALL_DISPATCH_FILTER_BLOCK 1
#endif

int value(void);      /* enemy.c: the unit saved for save to live */
int many_value(void); /* many.c: the 100-function unit */

static volatile char selector;
static volatile sig_atomic_t trapped;

static long long now_ns(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (long long)t.tv_sec * 1000000000 + t.tv_nsec;
}

/* The way tests/host.c counts system calls (Syscall User Dispatch): a call made while the selector blocks lands
 * here, is counted, and is made on the caller's behalf; the return from here (the restorer) is exempt. */
static void on_sys(int sig, siginfo_t *si, void *ctx)
{
	(void)sig;
	trapped++;
	selector = SYSCALL_DISPATCH_FILTER_ALLOW;
	greg_t *g = ((ucontext_t *)ctx)->uc_mcontext.gregs;
	int saved = errno;
	long r = syscall(si->si_syscall, g[REG_RDI], g[REG_RSI], g[REG_RDX], g[REG_R10], g[REG_R8], g[REG_R9]);
	g[REG_RAX] = r == -1 ? -errno : r;
	errno = saved;
	if (si->si_syscall == SYS_rt_sigprocmask)
		pthread_sigmask(SIG_SETMASK, NULL, &((ucontext_t *)ctx)->uc_sigmask);
	selector = SYSCALL_DISPATCH_FILTER_BLOCK;
}

static int dispatch_on(void)
{
	struct sigaction sa = {.sa_sigaction = on_sys, .sa_flags = SA_SIGINFO | SA_NODEFER};
	sigaction(SIGSYS, &sa, NULL);
	selector = SYSCALL_DISPATCH_FILTER_ALLOW;
	struct {
		void *handler;
		unsigned long flags;
		void *restorer;
		unsigned long mask;
	} k;
	if (syscall(SYS_rt_sigaction, SIGSYS, NULL, &k, sizeof k.mask) != 0 || !k.restorer)
		return -1;
	return prctl(PR_SET_SYSCALL_USER_DISPATCH, PR_SYS_DISPATCH_ON, (unsigned long)k.restorer, 16UL, &selector);
}

/* hr_update with nothing new: the time a call over a long run, then the system calls over a shorter one. */
static void idle(hr_module *m)
{
	long calls = 100000000, counted = 1000000;
	int sum = 0;
	long long t0 = now_ns();
	for (long i = 0; i < calls; i++)
		sum += hr_update(m);
	double ns = (double)(now_ns() - t0) / (double)calls;
	long sys = -1;
	if (dispatch_on() == 0) {
		selector = SYSCALL_DISPATCH_FILTER_BLOCK;
		for (long i = 0; i < counted; i++)
			sum += hr_update(m);
		selector = SYSCALL_DISPATCH_FILTER_ALLOW;
		sys = trapped;
	}
	printf("idle %.2f %ld %ld %ld%s\n", ns, calls, sys, counted, sum ? " (something was applied)" : "");
}

int main(int argc, char **argv)
{
	if (argc < 2)
		return 2;
	setvbuf(stdout, NULL, _IOLBF, 0);
	hr_client *c = hr_connect(argv[1]);
	if (c)
		hr_set_note_sink(c, NULL, NULL); /* no "live" line for each save in the bench's output */
	hr_module *m = c ? hr_open_program(c) : NULL;
	if (!m) {
		fprintf(stderr, "prog: %s\n", hr_last_error());
		return 1;
	}
	int v = value(), w = many_value();
	printf("ready\n");
	/* A frame every 100 us: a fast game's hr_update, without taking a core from the compiler. */
	for (;;) {
		long long t0 = now_ns();
		int rc = hr_update(m);
		long long t1 = now_ns();
		if (rc > 0)
			printf("applied %lld\n", t1 - t0);
		else if (rc < 0)
			printf("refused %d\n", rc);
		int nv = value(), nw = many_value();
		if (nv != v)
			printf("value %d %lld\n", v = nv, now_ns());
		if (nw != w)
			printf("many %d %lld\n", w = nw, now_ns());
		struct pollfd p = {.fd = 0, .events = POLLIN};
		if (poll(&p, 1, 0) == 1)
			break; /* "idle", or the bench went away */
		nanosleep(&(struct timespec){0, 100000}, NULL);
	}
	idle(m);
	hr_close(m);
	hr_disconnect(c);
	return 0;
}
