/* host.c: a game loop for the end-to-end tests, linked to the real libhotreload; it prints what a test waits for. */
#include <hotreload.h>

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <ucontext.h>
#include <time.h>
#include <unistd.h>

/*
 * Usage: host [OPTIONS] SOCKET MODULE...
 * Each module may export int value(void), called through hr_guard. Lines printed:
 *   open NAME v=VERSION sym=SYM     after hr_open (SYM: hr_sym of value, found or NULL)
 *   first NAME RC v=VERSION value=N the hr_update right after hr_open
 *   update NAME RC v=VERSION value=N sym=SYM   when hr_update returned non-zero later
 *                                   (SYM: hr_sym of a symbol no build defines; N is
 *                                   "crashed" when value() crashed)
 *   note KIND SEVERITY NAME vV: TEXT   (--notes) each notification, as the sink gets it
 *   old=N                           (--old) at each of the first W switches after the first load:
 *                                   value() of the first build, through the pointer taken then
 *   syscalls=N control=N            (--syscalls) after the first load: the system calls made by
 *                                   10^6 hr_update calls with nothing new, and by one getppid()
 *   cost NAME vV syscalls=N minflt=F   (--switch-cost) before each "update" line after the first load:
 *                                   the system calls made and the minor faults taken (getrusage
 *                                   RUSAGE_THREAD) by the hr_update that returned non-zero
 *   byte_builds=N                   at SIGTERM, when builds came as bytes (no descriptor reached it)
 *   stats switches=N refusals=N crashes=N reconnects=N   at SIGTERM
 *   bye                             at SIGTERM, after hr_disconnect
 * Options: --syscalls; --switch-cost (not with --threads); --notes; --lazy (hr_connect_lazy); --window W (hr_set_window; W "forever");
 * --old; --threads (each module's loop on a thread of its own, back to back, no frame pause).
 * SOCKET "-" means hr_connect(NULL).
 */

#ifndef PR_SET_SYSCALL_USER_DISPATCH
#define PR_SET_SYSCALL_USER_DISPATCH 59
#define PR_SYS_DISPATCH_OFF 0
#define PR_SYS_DISPATCH_ON 1
#define SYSCALL_DISPATCH_FILTER_ALLOW 0
#define SYSCALL_DISPATCH_FILTER_BLOCK 1
#endif

static atomic_int stop; /* lock-free, so the handler may set it; the loops read it on any thread */
static volatile char selector;
static volatile sig_atomic_t trapped;
#ifdef __x86_64__
static int restorer_exempt; /* the return from on_sys goes through with the filter on (x86-64 only) */
#endif

static void on_term(int sig)
{
	(void)sig;
	stop = 1;
}

/*
 * A system call while blocked lands here, not made: count it. On x86-64 it is
 * made here on the caller's behalf, and the filter stays on, so that every one
 * is counted (see dispatch_on); elsewhere the rest are let through (the count is then 0 or 1).
 */
static void on_sys(int sig, siginfo_t *si, void *ctx)
{
	(void)sig;
	trapped++;
	selector = SYSCALL_DISPATCH_FILTER_ALLOW;
#ifdef __x86_64__
	greg_t *g = ((ucontext_t *)ctx)->uc_mcontext.gregs;
	int saved = errno;
	long r = syscall(si->si_syscall, g[REG_RDI], g[REG_RSI], g[REG_RDX], g[REG_R10], g[REG_R8], g[REG_R9]);
	g[REG_RAX] = r == -1 ? -errno : r;
	errno = saved;
	/* The mask the caller set would be lost at the return from this handler, which restores the one saved here. */
	if (si->si_syscall == SYS_rt_sigprocmask)
		pthread_sigmask(SIG_SETMASK, NULL, &((ucontext_t *)ctx)->uc_sigmask);
	if (restorer_exempt)
		selector = SYSCALL_DISPATCH_FILTER_BLOCK;
#else
	(void)si;
	(void)ctx;
#endif
}

/* Catch the system calls of this thread, while the selector says so. 0, or -1 (printed why). */
static int dispatch_on(void)
{
	/* SA_NODEFER: the mask seen inside the handler is the caller's, as a call made there must see it. */
	struct sigaction sa = {.sa_sigaction = on_sys, .sa_flags = SA_SIGINFO | SA_NODEFER};
	sigaction(SIGSYS, &sa, NULL);
	selector = SYSCALL_DISPATCH_FILTER_ALLOW;
	unsigned long exempt = 0, len = 0;
#ifdef __x86_64__
	/* The return from the handler is a system call too (rt_sigreturn, in libc's restorer): let it through
	 * always, so that the handler may leave the filter on. glibc's sigaction does not show the restorer. */
	struct {
		void *handler;
		unsigned long flags;
		void *restorer;
		unsigned long mask;
	} k;
	if (syscall(SYS_rt_sigaction, SIGSYS, NULL, &k, sizeof k.mask) == 0 && k.restorer)
		exempt = (unsigned long)k.restorer, len = 16;
	restorer_exempt = len != 0;
#endif
	if (prctl(PR_SET_SYSCALL_USER_DISPATCH, PR_SYS_DISPATCH_ON, exempt, len, &selector) < 0) {
		printf("syscalls=unavailable (%s)\n", strerror(errno));
		return -1;
	}
	return 0;
}

static int switch_cost; /* --switch-cost, once dispatch is on */

/* hr_update(m), counting its system calls and minor faults, printed when it did something. */
static int counted_update(hr_module *m, const char *name)
{
	struct rusage before, after;
	getrusage(RUSAGE_THREAD, &before);
	int from = trapped;
	selector = SYSCALL_DISPATCH_FILTER_BLOCK;
	int rc = hr_update(m);
	selector = SYSCALL_DISPATCH_FILTER_ALLOW;
	int n = trapped - from;
	getrusage(RUSAGE_THREAD, &after);
	if (rc)
		printf("cost %s v%llu syscalls=%d minflt=%ld\n", name, (unsigned long long)hr_version(m), n,
		       after.ru_minflt - before.ru_minflt);
	return rc;
}

static const char *show(void *p)
{
	return p ? "found" : "NULL";
}

struct call {
	int (*fn)(void);
	int value;
};

static void call_value(void *arg)
{
	struct call *k = arg;
	k->value = k->fn();
}

/* value() of m's live build (-1 without one), called through hr_guard, as text: "crashed" when it crashed. */
static const char *value(hr_module *m, char *buf, size_t n)
{
	struct call k = {(int (*)(void))hr_sym(m, "value"), -1};
	if (k.fn && hr_guard(m, call_value, &k) < 0)
		return "crashed";
	snprintf(buf, n, "%d", k.value);
	return buf;
}

static const char *const kinds[] = {"?", "loaded", "failed", "refused", "crashed", "reset", "disconnected", "connected", "globals"};
static const char *const severities[] = {"info", "warning", "error"};

static void print_note(const hr_note *n, void *arg)
{
	(void)arg;
	printf("note %s %s %s v%llu: %s\n", kinds[n->kind < 9 ? n->kind : 0], severities[n->severity % 3],
	       n->module[0] ? n->module : "-", (unsigned long long)n->version, n->text);
}

static hr_module *old_module; /* --old: the first module */
static int old_left;           /* switches left in the window */
static int (*old_value)(void); /* its first build's value() */

/* One module's turn of the loop. */
static void step(hr_module *m, const char *name)
{
	int rc = switch_cost ? counted_update(m, name) : hr_update(m);
	if (!rc)
		return;
	char buf[16];
	/* One printf a line: the sink prints from the library's thread. */
	printf("update %s %d v=%llu value=%s sym=%s\n", name, rc, (unsigned long long)hr_version(m),
	       value(m, buf, sizeof buf), show(hr_sym(m, "no_such_symbol")));
	if (rc == 1 && m == old_module && old_value && old_left > 0) {
		old_left--;
		printf("old=%d\n", old_value());
	}
}

struct follower {
	pthread_t thread;
	hr_module *m;
	const char *name;
};

static void *follow(void *arg)
{
	struct follower *f = arg;
	while (!stop)
		step(f->m, f->name);
	return NULL;
}

/* Count the system calls of n calls of hr_update on this thread, with syscall user dispatch. */
static void count_syscalls(hr_module *m, long n)
{
	if (dispatch_on() < 0)
		return;
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
	int syscalls = 0, lazy = 0, threads = 0, old = 0, notes = 0, cost = 0;
	long window = -1;
	for (; argc > 1 && strncmp(argv[1], "--", 2) == 0; argv++, argc--)
		if (strcmp(argv[1], "--syscalls") == 0)
			syscalls = 1;
		else if (strcmp(argv[1], "--switch-cost") == 0)
			cost = 1;
		else if (strcmp(argv[1], "--lazy") == 0)
			lazy = 1;
		else if (strcmp(argv[1], "--threads") == 0)
			threads = 1;
		else if (strcmp(argv[1], "--old") == 0)
			old = 1;
		else if (strcmp(argv[1], "--notes") == 0)
			notes = 1;
		else if (strcmp(argv[1], "--window") == 0 && argc > 2) {
			window = strcmp(argv[2], "forever") == 0 ? (long)HR_WINDOW_FOREVER : atol(argv[2]);
			argv++, argc--;
		}
	if (argc < 3) {
		fprintf(stderr, "usage: host [OPTIONS] SOCKET MODULE...\n");
		return 2;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	struct sigaction sa = {.sa_handler = on_term};
	sigaction(SIGTERM, &sa, NULL);
	const char *sock = strcmp(argv[1], "-") == 0 ? NULL : argv[1];
	hr_client *c = lazy ? hr_connect_lazy(sock) : hr_connect(sock);
	if (!c) {
		printf("connect failed: %s\n", strerror(errno));
		return 3;
	}
	if (notes)
		hr_set_note_sink(c, print_note, NULL); /* otherwise the default: one line on stderr */
	if (window >= 0)
		hr_set_window(c, (uint32_t)window);
	old_left = window >= 0 ? (int)window : (int)HR_WINDOW_DEFAULT;
	int n = argc - 2;
	struct follower f[16];
	for (int i = 0; i < n && i < 16; i++) {
		hr_module *m = f[i].m = hr_open(c, argv[2 + i]);
		f[i].name = argv[2 + i];
		if (!m) {
			printf("open %s failed: %s\n", argv[2 + i], strerror(errno));
			return 4;
		}
		hr_set_userdata(m, argv[2 + i]);
		printf("open %s v=%llu sym=%s\n", argv[2 + i], (unsigned long long)hr_version(m),
		       show(hr_sym(m, "value")));
		/* hr_open returned once the newest build was loaded: the first hr_update switches to it. */
		int rc = hr_update(m);
		char buf[16];
		printf("first %s %d v=%llu value=%s\n", argv[2 + i], rc, (unsigned long long)hr_version(m),
		       value(m, buf, sizeof buf));
		if (old && i == 0) {
			old_module = m;
			*(void **)&old_value = hr_sym(m, "value");
		}
		if (syscalls && rc == 1) {
			count_syscalls(m, 1000000);
			syscalls = 0;
		}
	}
	if (cost && !threads && dispatch_on() == 0)
		switch_cost = 1;
	for (int i = 0; threads && i < n; i++)
		pthread_create(&f[i].thread, NULL, follow, &f[i]);
	while (!stop && !threads) {
		for (int i = 0; i < n; i++)
			step(f[i].m, f[i].name);
		/* The frame's length, as in a game's loop: the tests wait on what the host prints, never on this. */
		struct timespec ts = {0, 1000000};
		nanosleep(&ts, NULL);
	}
	for (int i = 0; threads && i < n; i++)
		pthread_join(f[i].thread, NULL);
	hr_stats st;
	hr_get_stats(c, &st);
	hr_disconnect(c);
	if (st.byte_builds)
		printf("byte_builds=%llu\n", (unsigned long long)st.byte_builds);
	printf("stats switches=%llu refusals=%llu crashes=%llu reconnects=%llu\n", (unsigned long long)st.switches,
	       (unsigned long long)st.refusals, (unsigned long long)st.crashes, (unsigned long long)st.reconnects);
	printf("bye\n");
	return 0;
}
