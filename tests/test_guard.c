/* test_guard.c: the fault guard in process: each signal caught per thread, the mask restored, everything else chained. */
#include <criterion/criterion.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
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
	/* A lent stack was taken back: the thread's is as before (none, or a sanitizer's). */
	stack_t ss;
	cr_assert_eq(sigaltstack(NULL, &ss), 0);
	cr_assert_eq(ss.ss_flags, before.ss_flags);
	cr_assert_eq(ss.ss_sp, before.ss_sp);
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
