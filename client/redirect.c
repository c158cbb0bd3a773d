/* redirect.c: memory near the executable, per-function thunks, and the switch of a function's entry to its thunk. */
#include "patch_impl.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/membarrier.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#define PAGE 4096ull
/* Keep a margin inside the +-2 GB reach: a reference from the far end of the block to the far end of the image. */
#define REACH ((1ull << 31) - (64ull << 20))

/*
 * [at, at + size) if it and a guard page at each side are free: one mapping over the three, tried without
 * replacing anything, then the guards given back. NULL when any of it is taken (or out of the window).
 */
static void *try_at(uint64_t at, size_t size, uint64_t wlo, uint64_t whi)
{
	if (at < wlo + PAGE || at + size + PAGE > whi)
		return NULL;
	uint8_t *g = mmap((void *)(at - PAGE), size + 2 * PAGE, PROT_READ | PROT_WRITE,
			  MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
	if (g == MAP_FAILED)
		return NULL;
	if (g != (uint8_t *)(at - PAGE)) { /* a kernel without MAP_FIXED_NOREPLACE placed it elsewhere */
		munmap(g, size + 2 * PAGE);
		return NULL;
	}
	munmap(g, PAGE);
	munmap(g + PAGE + size, PAGE);
	return g + PAGE;
}

/* Remember a block, so that the next one is tried right beside it, on the side away from the image. */
static void *placed(hrc_prog *p, void *m, size_t size)
{
	p->near_lo = (uint64_t)m;
	p->near_hi = (uint64_t)m + size;
	return m;
}

void *hrc_near_alloc(hrc_prog *p, size_t size)
{
	size = (size + PAGE - 1) & ~(PAGE - 1);
	uint64_t span = p->hi - p->lo;
	if (span + size > REACH) {
		errno = E2BIG;
		return NULL;
	}
	uint64_t wlo = p->hi > REACH ? p->hi - REACH : 0x10000, whi = p->lo + REACH;
	/* Reading /proc/self/maps costs a patch more than all the rest of its layout: the place beside the last
	 * block is free nearly always, and its guard pages are checked by the same mapping. */
	if (p->near_lo) {
		uint64_t at = p->near_lo <= p->lo ? p->near_lo - PAGE - size : p->near_hi + PAGE;
		void *m = p->near_lo > size + PAGE ? try_at(at, size, wlo, whi) : NULL;
		if (m)
			return placed(p, m, size);
	}
	for (int attempt = 0; attempt < 4; attempt++) {
		int fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			return NULL;
		FILE *f = fdopen(fd, "r");
		if (!f) {
			close(fd);
			return NULL;
		}
		char line[512];
		uint64_t prev = 0x10000, best = 0, bestd = ~0ull;
		int more = 1;
		while (more) {
			unsigned long long s, e;
			if (!fgets(line, sizeof line, f)) {
				more = 0;
				s = e = 0x7ffffffff000ull;
			} else {
				if (!strchr(line, '\n')) { /* a long path: skip the rest of the line */
					int c;
					while ((c = fgetc(f)) != EOF && c != '\n')
						;
				}
				if (sscanf(line, "%llx-%llx", &s, &e) != 2)
					continue;
			}
			/* the gap [prev, s), less a guard page at each side */
			uint64_t a = prev + PAGE, b = s > PAGE ? s - PAGE : 0;
			if (a < wlo)
				a = wlo;
			if (b > whi)
				b = whi;
			if (b > a && b - a >= size) {
				uint64_t at = b <= p->lo ? b - size : a;
				uint64_t d = at < p->lo ? p->lo - at : at - p->lo;
				if (d < bestd) {
					bestd = d;
					best = at;
				}
			}
			if (e > prev)
				prev = e;
		}
		fclose(f);
		if (!best) {
			errno = ENOMEM;
			return NULL;
		}
		void *m = mmap((void *)best, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE,
			       -1, 0);
		if (m == (void *)best)
			return placed(p, m, size);
		if (m != MAP_FAILED)
			munmap(m, size); /* a kernel without MAP_FIXED_NOREPLACE placed it elsewhere */
		else if (errno != EEXIST)
			return NULL;
	}
	errno = ENOMEM;
	return NULL;
}

uint8_t *hrc_thunk_new(hrc_prog *p)
{
	if (!p->thunks || p->thunks_used == PAGE / 16) {
		uint8_t *t = hrc_near_alloc(p, PAGE);
		if (!t)
			return NULL;
		memset(t, 0xcc, PAGE); /* int3 wherever no thunk is */
		if (mprotect(t, PAGE, PROT_READ | PROT_EXEC) < 0) {
			munmap(t, PAGE);
			return NULL;
		}
		p->thunks = t;
		p->thunks_used = 0;
	}
	return p->thunks + 16 * p->thunks_used++;
}

/*
 * Without membarrier's SYNC_CORE (hrc_prog_open said so): a page just written
 * made read-only. The kernel must flush it from the TLB of every core that
 * runs this process, by an interrupt there, and returning from it serialises
 * that core. Weaker (a core inside a system call returns to the program by a
 * sysret, which does not), hence the message; never nothing at all.
 */
static int flush_cores(void)
{
	static uint8_t *page; /* applies are serialised (program.c) */
	if (!page) {
		void *m = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (m == MAP_FAILED)
			return -errno;
		page = m;
	}
	if (mprotect(page, PAGE, PROT_READ | PROT_WRITE) < 0)
		return -errno;
	*(volatile uint8_t *)page = 1;
	return mprotect(page, PAGE, PROT_READ) < 0 ? -errno : 0;
}

/*
 * Never fails: it comes after the first write, when a thunk may lead to the
 * new code already, and a refusal would unmap that code under its callers.
 * A membarrier that fails here (a seccomp filter added since) falls back.
 */
static void serialise(const hrc_prog *p)
{
	if (p->membarrier_ok && syscall(SYS_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED_SYNC_CORE, 0, 0) == 0)
		return;
	(void)flush_cores(); /* failing too (no memory for one page): the writes stay, as safe as they can be */
}

/* The distinct pages a batch writes: each made writable once, and put back once. */
typedef struct pages {
	uint64_t *at;
	size_t n, cap;
} pages;

static int add_page(pages *pg, uint64_t a)
{
	a &= ~(PAGE - 1);
	for (size_t i = pg->n; i-- > 0;)
		if (pg->at[i] == a)
			return 0;
	if (pg->n == pg->cap) {
		size_t c = pg->cap ? pg->cap * 2 : 32;
		void *q = realloc(pg->at, c * sizeof *pg->at);
		if (!q)
			return -ENOMEM;
		pg->at = q;
		pg->cap = c;
	}
	pg->at[pg->n++] = a;
	return 0;
}

/* Writable while keeping them executable (other threads run them meanwhile), or back to read+exec. */
static int text_prot(uint64_t page, int writable)
{
	int prot = PROT_READ | PROT_EXEC | (writable ? PROT_WRITE : 0);
	return mprotect((void *)page, PAGE, prot) < 0 ? -errno : 0;
}

static void store2(uint8_t *at, uint16_t v)
{
	/* one 16-bit store (within a cache line: checked before) */
#if defined(__x86_64__)
	__asm__ volatile("movw %1, %0" : "=m"(*(uint16_t *)(void *)at) : "r"(v) : "memory");
#else
	/* never reached: the program is refused before (elffile.c: x86-64 only); this keeps the library building
	 * for other machines (make CROSS=...) */
	__atomic_store_n((uint16_t *)(void *)at, v, __ATOMIC_RELAXED);
#endif
}

/*
 * One 1-byte store to the program's text, as one instruction and never
 * instrumented: ThreadSanitizer's atomic store writes shadow for the address,
 * which it has not mapped for an executable's code (it crashed there).
 */
static void store1(uint8_t *at, uint8_t v)
{
#if defined(__x86_64__)
	__asm__ volatile("movb %1, %0" : "=m"(*at) : "q"(v) : "memory");
#else
	__atomic_store_n(at, v, __ATOMIC_RELEASE); /* never reached, as in store2 */
#endif
}

static const uint8_t NOP5[5] = { 0x90, 0x90, 0x90, 0x90, 0x90 };
static const uint8_t ENDBR64[4] = { 0xf3, 0x0f, 0x1e, 0xfa };

/*
 * Where an entry's two NOP bytes are: right at it, or after an endbr64
 * (-fcf-protection, the default of some distributions' gcc). The short jump
 * written over them goes back to the room 5 bytes before the entry; its
 * displacement byte (F9 = -7, or F5 = -11 after endbr64) is on its own a
 * harmless one-byte instruction: stc, or cmc.
 */
static size_t nop_at(const uint8_t *e)
{
	return memcmp(e, ENDBR64, 4) ? 0 : 4;
}

static uint8_t back(size_t o)
{
	return (uint8_t)(-(int)(o + 2 + 5));
}

/* What an entry holds: 1 gcc's two NOPs, 2 clang's 66 90, 3 already switched, 0 something else. */
static int entry_kind(const uint8_t *e)
{
	size_t o = nop_at(e);
	if (e[o] == 0xeb && e[o + 1] == back(o))
		return 3;
	if (memcmp(e - 5, NOP5, 5))
		return 0;
	if (e[o] == 0x90 && e[o + 1] == 0x90)
		return 1;
	if (e[o] == 0x66 && e[o + 1] == 0x90)
		return 2;
	return 0;
}

int hrc_redirect(hrc_prog *p, hrc_redir *r, size_t n, char *err, size_t errsz)
{
	size_t done = 0;
	int rc = 0;
	/* checks: nothing is written until all pass */
	for (size_t i = 0; i < n; i++) {
		if (!r[i].switch_entry)
			continue;
		int k = entry_kind(r[i].entry);
		if (!k) {
			snprintf(err, errsz,
				 "%s: function '%s' has no room at its entry: built without the patching flags "
				 "(-fpatchable-function-entry=7,5, see pkg-config hotreload-patch); rebuild and restart the program",
				 r[i].unit, r[i].name);
			return -ENOEXEC;
		}
		if (k == 2 && ((uint64_t)(r[i].entry + nop_at(r[i].entry)) & 63) == 63) {
			snprintf(err, errsz, "%s: function '%s': its entry crosses a cache line", r[i].unit, r[i].name);
			return -ENOEXEC;
		}
		int64_t d = (int64_t)(r[i].thunk + 2 - r[i].entry);
		if (d != (int32_t)d) {
			snprintf(err, errsz, "%s: function '%s' is out of a jump's reach of its thunk", r[i].unit, r[i].name);
			return -ERANGE;
		}
		if (k == 3)
			r[i].switch_entry = 0;
	}
	pages pg = { NULL, 0, 0 };
	for (size_t i = 0; i < n && !rc; i++) {
		if (r[i].switch_entry)
			rc = add_page(&pg, (uint64_t)(r[i].entry - 5)) || add_page(&pg, (uint64_t)(r[i].entry + 5)) ? -ENOMEM : 0;
		if (!rc)
			rc = add_page(&pg, (uint64_t)r[i].thunk) ? -ENOMEM : 0;
	}
	if (rc < 0) {
		snprintf(err, errsz, "out of memory");
		goto restore;
	}
	for (; done < pg.n; done++) {
		if ((rc = text_prot(pg.at[done], 1)) < 0) {
			snprintf(err, errsz,
				 "the system will not let the program write its code (mprotect: %s; SELinux execmod "
				 "or a PaX-style MPROTECT forbids it): allow it for this program to patch it",
				 strerror(-rc));
			goto restore;
		}
	}
	/* thunks first: a fresh slot is not reachable yet; an old one switches with one aligned store */
	for (size_t i = 0; i < n; i++) {
		uint8_t *t = r[i].thunk;
		if (r[i].fresh) {
			static const uint8_t jmp[8] = { 0xcc, 0xcc, 0xff, 0x25, 0, 0, 0, 0 };
			__atomic_store_n((uint64_t *)(void *)(t + 8), r[i].target, __ATOMIC_RELEASE);
			memcpy(t, jmp, 8);
		} else {
			__atomic_store_n((uint64_t *)(void *)(t + 8), r[i].target, __ATOMIC_RELEASE);
		}
	}
	/* step 1: the jump in the room before the entry (never executed yet); gcc's second NOP becomes stc */
	for (size_t i = 0; i < n; i++) {
		if (!r[i].switch_entry)
			continue;
		uint8_t *e = r[i].entry;
		int32_t rel = (int32_t)(r[i].thunk + 2 - e);
		uint8_t j[5] = { 0xe9 };
		memcpy(j + 1, &rel, 4);
		memcpy(e - 5, j, 5);
		size_t o = nop_at(e);
		if (e[o] == 0x90)
			store1(e + o + 1, back(o));
	}
	serialise(p);
	/* step 2: the entry jumps back 7 bytes into the room (gcc: one byte; clang: its one 2-byte NOP) */
	for (size_t i = 0; i < n; i++) {
		if (!r[i].switch_entry)
			continue;
		uint8_t *e = r[i].entry;
		size_t o = nop_at(e);
		if (e[o] == 0x90)
			store1(e + o, 0xeb);
		else
			store2(e + o, (uint16_t)(0xeb | back(o) << 8));
	}
	serialise(p);
restore:
	for (size_t i = 0; i < done; i++)
		text_prot(pg.at[i], 0);
	free(pg.at);
	return rc;
}
