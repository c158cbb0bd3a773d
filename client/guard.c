/* guard.c: catch a fault in module code on the thread that runs it, and chain every other fault to the program's handler. */
#include "guard.h"

#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <ucontext.h>
#include <unistd.h>

/* Enough for our handler and for a chained one (sanitizers' handlers are the hungry ones). */
enum { ALT_SIZE = 128 * 1024 };

const int hrc_guard_sigs[HRC_GUARD_NSIGS] = {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT};
#define sigs hrc_guard_sigs
#define NSIGS HRC_GUARD_NSIGS

/* A guarded call in progress, on the stack of the thread that makes it. */
typedef struct frame {
	sigjmp_buf jb;
	struct frame *up; /* the guarded call this one runs inside, or NULL */
	volatile int sig, code;
	void *volatile addr;
	sigset_t mask; /* the faulting code's, set by the handler */
} frame;

/* initial-exec: reading it in the handler must not allocate, as the dynamic TLS model may. */
static __thread frame *top __attribute__((tls_model("initial-exec")));

static pthread_once_t installed = PTHREAD_ONCE_INIT;
static int install_rc = -1;
static struct sigaction prev[NSIGS]; /* what was installed before us; read by the handler */

static pthread_once_t alt_once = PTHREAD_ONCE_INIT;
static pthread_key_t alt_key;
static int alt_ok;
/* This thread was lent its alternate stack, or had one: a guarded call then makes no system call. */
static __thread int stack_ready __attribute__((tls_model("initial-exec")));

static size_t slot(int sig)
{
	size_t i = 0;
	while (i < NSIGS - 1 && sigs[i] != sig)
		i++;
	return i;
}

/* A fault of the code running here (the kernel's, or a raise/abort in this process), not a signal sent from outside. */
static int caught(const siginfo_t *si)
{
	return si->si_code > 0 || (si->si_code == SI_TKILL && si->si_pid == getpid());
}

/* Do what the program would have done without us. */
static void chain(int sig, siginfo_t *si, void *uc)
{
	const struct sigaction *p = &prev[slot(sig)];
	if (p->sa_flags & SA_SIGINFO) {
		p->sa_sigaction(sig, si, uc);
		return;
	}
	if (p->sa_handler != SIG_DFL && p->sa_handler != SIG_IGN) {
		p->sa_handler(sig);
		return;
	}
	if (p->sa_handler == SIG_IGN && si->si_code <= 0)
		return; /* a sent signal that the program ignores */
	/* The default action: a fault happens again when the instruction re-runs; a sent signal is raised again. */
	struct sigaction dfl = {.sa_handler = SIG_DFL};
	sigaction(sig, &dfl, NULL);
	if (si->si_code <= 0)
		raise(sig);
}

static void on_fault(int sig, siginfo_t *si, void *uc)
{
	frame *f = top;
	if (!f || !caught(si)) {
		chain(sig, si, uc);
		return;
	}
	f->sig = sig;
	f->code = si->si_code;
	f->addr = si->si_addr;
	f->mask = ((ucontext_t *)uc)->uc_sigmask;
	top = f->up;
	siglongjmp(f->jb, 1);
}

static void install(void)
{
	struct sigaction sa = {.sa_sigaction = on_fault, .sa_flags = SA_SIGINFO | SA_ONSTACK};
	sigemptyset(&sa.sa_mask);
	for (size_t i = 0; i < NSIGS; i++)
		if (sigaction(sigs[i], &sa, &prev[i]) < 0) {
			while (i-- > 0)
				sigaction(sigs[i], &prev[i], NULL);
			return;
		}
	install_rc = 0;
}

int hrc_guard_install(void)
{
	pthread_once(&installed, install);
	return install_rc;
}

/* At the end of a thread that was lent a stack: taken back before it is freed, if it is still the one in use. */
static void alt_free(void *mem)
{
	stack_t cur;
	if (sigaltstack(NULL, &cur) == 0 && cur.ss_sp == mem && !(cur.ss_flags & SS_DISABLE)) {
		stack_t off = {.ss_flags = SS_DISABLE};
		sigaltstack(&off, NULL);
	}
	free(mem);
}

static void alt_init(void)
{
	alt_ok = pthread_key_create(&alt_key, alt_free) == 0;
}

/*
 * A stack overflow can only be caught on another stack. If this thread has
 * none, lend it one, once, for the rest of its life: a switch must make no
 * system call, and lending one for each call would take three. A program that
 * sets up its own later replaces it (and keeps its own: this never looks again).
 */
static void lend_stack(void)
{
	stack_t cur;
	stack_ready = 1;
	if (sigaltstack(NULL, &cur) < 0 || !(cur.ss_flags & SS_DISABLE))
		return; /* the program set one up, or we are on it */
	pthread_once(&alt_once, alt_init);
	void *mem = malloc(ALT_SIZE);
	stack_t ss = {.ss_sp = mem, .ss_size = ALT_SIZE};
	/* Freed when the thread ends: the key's destructor takes it back first. */
	if (!mem || !alt_ok || pthread_setspecific(alt_key, mem) != 0) {
		free(mem);
		return;
	}
	if (sigaltstack(&ss, NULL) < 0) {
		pthread_setspecific(alt_key, NULL);
		free(mem);
	}
}

void hrc_guard_prepare(void)
{
	if (!stack_ready)
		lend_stack();
}

int hrc_guard_run(void (*fn)(void *), void *arg, char *why, size_t whysz)
{
	frame f = {.up = top};
	hrc_guard_prepare();
	/* savemask 0: saving the mask is a system call. The handler records the mask of the faulting code
	 * (it runs with its signal blocked besides), which is restored after the jump back. */
	if (sigsetjmp(f.jb, 0) == 0) {
		top = &f;
		fn(arg);
	}
	top = f.up;
	if (!f.sig)
		return 0;
	pthread_sigmask(SIG_SETMASK, &f.mask, NULL);
	/* sigdescr_np, not strsignal: no locale, no allocation, as the crash may have been inside malloc. */
	const char *abbrev = sigabbrev_np(f.sig), *descr = sigdescr_np(f.sig);
	if (f.sig == SIGABRT)
		snprintf(why, whysz, "SIG%s (%s)", abbrev, descr);
	else
		snprintf(why, whysz, "SIG%s (%s) at address %p", abbrev, descr, f.addr);
	return f.sig;
}
