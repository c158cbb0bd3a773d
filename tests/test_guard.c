/* test_guard.c: the fault guard in process: each signal caught per thread, the mask restored, everything else chained. */
#include <criterion/criterion.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "../client/guard.h"

static void segv(void *arg)
{
	(void)arg;
	int *volatile p = (int *)8;
	*p = 1;
}

static void bus(void *arg)
{
	(void)arg;
	int fd = memfd_create("t", 0);
	cr_assert(fd >= 0 && ftruncate(fd, 4096) == 0);
	volatile char *p = mmap(NULL, 4096, PROT_READ, MAP_SHARED, fd, 0);
	cr_assert(p != MAP_FAILED && ftruncate(fd, 0) == 0);
	(void)p[0];
}

static void ill(void *arg)
{
	(void)arg;
	__builtin_trap();
}

/* UBSan would report the division first: the point is the CPU's trap. */
__attribute__((no_sanitize_undefined)) static void fpe(void *arg)
{
	(void)arg;
	volatile int n = 7, zero = 0, r = n / zero;
	(void)r;
}

static void abrt(void *arg)
{
	(void)arg;
	abort();
}

static volatile int forever = 1;

static int deep(int n)
{
	volatile char pad[4096];
	pad[0] = (char)n;
	return forever ? deep(n + 1) + pad[0] : 0;
}

static void overflow(void *arg)
{
	(void)arg;
	deep(0);
}

static void fine(void *arg)
{
	*(int *)arg = 42;
}

Test(guard, each_fault_is_caught_and_the_signal_mask_is_restored)
{
	static const struct {
		void (*fn)(void *);
		int sig;
		const char *why;
	} cases[] = {
		{ segv, SIGSEGV, "SIGSEGV (Segmentation fault) at address 0x8" },
		{ bus, SIGBUS, "SIGBUS (Bus error) at address 0x" },
		{ ill, SIGILL, "SIGILL (Illegal instruction) at address 0x" },
		{ fpe, SIGFPE, "SIGFPE (Floating point exception) at address 0x" },
		{ abrt, SIGABRT, "SIGABRT (Aborted)" },
		{ overflow, SIGSEGV, "SIGSEGV (Segmentation fault) at address 0x" },
	};
	stack_t before;
	cr_assert_eq(sigaltstack(NULL, &before), 0);
	cr_assert_eq(hrc_guard_install(), 0);
	for (int round = 0; round < 2; round++)
		for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
			char why[160];
			cr_assert_eq(hrc_guard_run(cases[i].fn, NULL, why, sizeof why), cases[i].sig, "case %zu", i);
			cr_assert(strncmp(why, cases[i].why, strlen(cases[i].why)) == 0, "%s", why);
			sigset_t now;
			pthread_sigmask(SIG_SETMASK, NULL, &now);
			cr_assert(!sigismember(&now, cases[i].sig), "SIG%s stayed blocked", sigabbrev_np(cases[i].sig));
		}
	int out = 0;
	char why[160];
	cr_assert_eq(hrc_guard_run(fine, &out, why, sizeof why), 0);
	cr_assert_eq(out, 42);
	/* A thread that had none keeps the one it was lent; one that had one (a sanitizer's) keeps its own. */
	stack_t ss;
	cr_assert_eq(sigaltstack(NULL, &ss), 0);
	cr_assert_eq(ss.ss_flags, 0);
	if (!(before.ss_flags & SS_DISABLE))
		cr_assert_eq(ss.ss_sp, before.ss_sp);
}

#ifndef PR_SET_SYSCALL_USER_DISPATCH
#define PR_SET_SYSCALL_USER_DISPATCH 59
#define PR_SYS_DISPATCH_OFF 0
#define PR_SYS_DISPATCH_ON 1
#define SYSCALL_DISPATCH_FILTER_ALLOW 0
#define SYSCALL_DISPATCH_FILTER_BLOCK 1
#endif

static volatile char selector;
static volatile sig_atomic_t trapped;

/* A system call while blocked lands here, not made: count it, and let the rest through. */
static void on_sys(int sig)
{
	(void)sig;
	trapped++;
	selector = SYSCALL_DISPATCH_FILTER_ALLOW;
}

/* The system calls of hrc_guard_run(fine) on this thread: 0, or 1 for any. */
static int guarded_syscalls(void)
{
	struct sigaction sa = { .sa_handler = on_sys };
	cr_assert_eq(sigaction(SIGSYS, &sa, NULL), 0);
	selector = SYSCALL_DISPATCH_FILTER_ALLOW;
	cr_assert_eq(prctl(PR_SET_SYSCALL_USER_DISPATCH, PR_SYS_DISPATCH_ON, 0, 0, &selector), 0);
	int out = 0, from = trapped, rc;
	char why[160];
	selector = SYSCALL_DISPATCH_FILTER_BLOCK;
	rc = hrc_guard_run(fine, &out, why, sizeof why);
	selector = SYSCALL_DISPATCH_FILTER_ALLOW;
	int n = trapped - from;
	/* The control: the same filter sees a real one. */
	selector = SYSCALL_DISPATCH_FILTER_BLOCK;
	getppid();
	selector = SYSCALL_DISPATCH_FILTER_ALLOW;
	prctl(PR_SET_SYSCALL_USER_DISPATCH, PR_SYS_DISPATCH_OFF, 0, 0, 0);
	cr_assert_eq(trapped - from - n, 1, "the filter saw no system call at all");
	cr_assert_eq(rc, 0);
	cr_assert_eq(out, 42);
	return n;
}

static void *guard_twice(void *arg)
{
	(void)arg;
	char why[160];
	int out = 0;
	cr_assert_eq(hrc_guard_run(fine, &out, why, sizeof why), 0);
	return (void *)(intptr_t)guarded_syscalls();
}

Test(guard, a_guarded_call_makes_no_system_call_once_its_thread_was_prepared)
{
	cr_assert_eq(hrc_guard_install(), 0);
	/* A switch runs the hooks under the guard, and must make no system call: the stack is lent once. */
	hrc_guard_prepare();
	cr_assert_eq(guarded_syscalls(), 0);
	/* Prepared by its first guarded call, on a thread that starts with no alternate stack. */
	pthread_t t;
	void *n;
	cr_assert_eq(pthread_create(&t, NULL, guard_twice, NULL), 0);
	cr_assert_eq(pthread_join(t, &n), 0);
	cr_assert_eq((intptr_t)n, 0);
}

static volatile sig_atomic_t chained, chained_code;

static void before(int sig)
{
	(void)sig;
	chained++;
}

static void before_info(int sig, siginfo_t *si, void *uc)
{
	(void)sig;
	(void)uc;
	chained_code = si->si_code;
}

static void sent(void *arg)
{
	(void)arg;
	kill(getpid(), SIGABRT); /* from outside the code's own faults: not ours */
}

Test(guard, signals_that_are_not_a_guarded_fault_go_to_the_handler_installed_before)
{
	struct sigaction sa = { .sa_handler = before }, si = { .sa_sigaction = before_info, .sa_flags = SA_SIGINFO };
	cr_assert_eq(sigaction(SIGABRT, &sa, NULL), 0);
	cr_assert_eq(sigaction(SIGFPE, &si, NULL), 0);
	cr_assert_eq(hrc_guard_install(), 0);
	cr_assert_eq(hrc_guard_install(), 0, "once for good: a second call changes nothing");
	raise(SIGABRT); /* no guarded call on this thread */
	cr_assert_eq(chained, 1);
	char why[160];
	cr_assert_eq(hrc_guard_run(sent, NULL, why, sizeof why), 0);
	cr_assert_eq(chained, 2);
	raise(SIGFPE);
	cr_assert_eq(chained_code, SI_TKILL, "an SA_SIGINFO handler gets the siginfo");
}

#ifdef __SANITIZE_ADDRESS__
/* ASan's handler was there before ours: the fault goes on to it, and it reports and exits with 1. */
#define ENDS_AS .exit_code = 1
#else
#define ENDS_AS .signal = SIGSEGV
#endif

Test(guard, a_fault_outside_a_guarded_call_still_ends_the_program, ENDS_AS)
{
	cr_assert_eq(hrc_guard_install(), 0);
	segv(NULL);
}

static void inner(void *arg)
{
	char why[160];
	*(int *)arg = hrc_guard_run(segv, NULL, why, sizeof why);
	ill(NULL);
}

Test(guard, guarded_calls_nest)
{
	cr_assert_eq(hrc_guard_install(), 0);
	int in = 0;
	char why[160];
	cr_assert_eq(hrc_guard_run(inner, &in, why, sizeof why), SIGILL);
	cr_assert_eq(in, SIGSEGV);
}

static void *crash_often(void *arg)
{
	(void)arg;
	for (int i = 0; i < 2000; i++) {
		char why[160];
		if (hrc_guard_run(i % 2 ? segv : abrt, NULL, why, sizeof why) != (i % 2 ? SIGSEGV : SIGABRT))
			return (void *)1;
	}
	return NULL;
}

Test(guard, threads_crash_at_the_same_time_and_each_is_caught_on_its_own)
{
	cr_assert_eq(hrc_guard_install(), 0);
	pthread_t t[4];
	for (int i = 0; i < 4; i++)
		cr_assert_eq(pthread_create(&t[i], NULL, crash_often, NULL), 0);
	for (int i = 0; i < 4; i++) {
		void *rc;
		pthread_join(t[i], &rc);
		cr_assert_null(rc, "thread %d missed a catch", i);
	}
}
