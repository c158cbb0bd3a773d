/* host.c: a game loop for the end-to-end tests, linked to the real libhotreload; it prints what a test waits for. */
#include <hotreload.h>

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>

/*
 * Usage: host [--syscalls] SOCKET MODULE...
 * Each module may export int value(void). Lines printed:
 *   open NAME v=VERSION sym=SYM     after hr_open (SYM: hr_sym of value, found or NULL)
 *   first NAME RC v=VERSION value=N the hr_update right after hr_open
 *   update NAME RC v=VERSION value=N sym=SYM   when hr_update returned non-zero later
 *                                   (SYM: hr_sym of a symbol no build defines)
 *   syscalls=N control=N            (--syscalls) after the first load: the system calls made by
 *                                   10^6 hr_update calls with nothing new, and by one getppid()
 *   bye                             at SIGTERM, after hr_disconnect
 * SOCKET "-" means hr_connect(NULL).
 */

#ifndef PR_SET_SYSCALL_USER_DISPATCH
#define PR_SET_SYSCALL_USER_DISPATCH 59
#define PR_SYS_DISPATCH_OFF 0
#define PR_SYS_DISPATCH_ON 1
#define SYSCALL_DISPATCH_FILTER_ALLOW 0
#define SYSCALL_DISPATCH_FILTER_BLOCK 1
#endif

static volatile sig_atomic_t stop;
static volatile char selector;
static volatile sig_atomic_t trapped;

static void on_term(int sig)
{
	(void)sig;
	stop = 1;
}

/* A system call while blocked lands here (and is not made): count it, and let the rest through. */
static void on_sys(int sig)
{
	(void)sig;
	trapped++;
	selector = SYSCALL_DISPATCH_FILTER_ALLOW;
}

static const char *show(void *p)
{
	return p ? "found" : "NULL";
}

static int value(hr_module *m)
{
	int (*fn)(void) = (int (*)(void))hr_sym(m, "value");
	return fn ? fn() : -1;
}

/* Count the system calls of n calls of hr_update on this thread, with syscall user dispatch. */
static void count_syscalls(hr_module *m, long n)
{
	struct sigaction sa = {.sa_handler = on_sys};
	sigaction(SIGSYS, &sa, NULL);
	selector = SYSCALL_DISPATCH_FILTER_ALLOW;
	if (prctl(PR_SET_SYSCALL_USER_DISPATCH, PR_SYS_DISPATCH_ON, 0, 0, &selector) < 0) {
		printf("syscalls=unavailable (%s)\n", strerror(errno));
		return;
	}
	int rc = 0;
	selector = SYSCALL_DISPATCH_FILTER_BLOCK;
	for (long i = 0; i < n; i++)
		rc |= hr_update(m);
	selector = SYSCALL_DISPATCH_FILTER_ALLOW;
	int during = trapped;
	/* The control: one real system call must be seen, or the count above means nothing. */
	selector = SYSCALL_DISPATCH_FILTER_BLOCK;
	getppid();
	selector = SYSCALL_DISPATCH_FILTER_ALLOW;
	prctl(PR_SET_SYSCALL_USER_DISPATCH, PR_SYS_DISPATCH_OFF, 0, 0, 0);
	printf("syscalls=%d control=%d rc=%d\n", during, (int)trapped - during, rc);
}

int main(int argc, char **argv)
{
	int syscalls = argc > 1 && strcmp(argv[1], "--syscalls") == 0;
	argv += syscalls;
	argc -= syscalls;
	if (argc < 3) {
		fprintf(stderr, "usage: host [--syscalls] SOCKET MODULE...\n");
		return 2;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	struct sigaction sa = {.sa_handler = on_term};
	sigaction(SIGTERM, &sa, NULL);
	hr_client *c = hr_connect(strcmp(argv[1], "-") == 0 ? NULL : argv[1]);
	if (!c) {
		printf("connect failed: %s\n", strerror(errno));
		return 3;
	}
	int n = argc - 2;
	hr_module *mods[16];
	for (int i = 0; i < n && i < 16; i++) {
		if (!(mods[i] = hr_open(c, argv[2 + i]))) {
			printf("open %s failed: %s\n", argv[2 + i], strerror(errno));
			return 4;
		}
		hr_set_userdata(mods[i], argv[2 + i]);
		printf("open %s v=%llu sym=%s\n", argv[2 + i], (unsigned long long)hr_version(mods[i]),
		       show(hr_sym(mods[i], "value")));
		/* hr_open returned once the newest build was loaded: the first hr_update switches to it. */
		int rc = hr_update(mods[i]);
		printf("first %s %d v=%llu value=%d\n", argv[2 + i], rc, (unsigned long long)hr_version(mods[i]),
		       value(mods[i]));
		if (syscalls && rc == 1) {
			count_syscalls(mods[i], 1000000);
			syscalls = 0;
		}
	}
	while (!stop) {
		for (int i = 0; i < n; i++) {
			int rc = hr_update(mods[i]);
			if (!rc)
				continue;
			printf("update %s %d v=%llu value=%d sym=%s\n", argv[2 + i], rc,
			       (unsigned long long)hr_version(mods[i]), value(mods[i]), show(hr_sym(mods[i], "no_such_symbol")));
		}
		/* The frame's length, as in a game's loop: the tests wait on what the host prints, never on this. */
		struct timespec ts = {0, 1000000};
		nanosleep(&ts, NULL);
	}
	hr_disconnect(c);
	printf("bye\n");
	return 0;
}
