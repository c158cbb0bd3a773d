/* patch_impl.h: what the patch modules (program, loader, redirect) share; internal to them. */
#ifndef HRC_PATCH_IMPL_H
#define HRC_PATCH_IMPL_H

#include <stdint.h>

#include "dwarf.h"
#include "elffile.h"
#include "patch.h"

/* An ELF symbol of the executable, by name. */
typedef struct hrc_xsym {
	const char *name;
	uint64_t addr; /* with the load bias */
	uint64_t size;
	unsigned char type, bind;
} hrc_xsym;

/* A variable with static storage that new code must use: the program's own, or added by a patch. */
typedef struct hrc_var {
	char *key; /* unit \n function \n name \n ordinal */
	uint64_t addr, size;
} hrc_var;

/* A function of some unit that patches have provided: where its calls go. */
typedef struct hrc_fn {
	char *unit, *name;
	uint8_t *thunk; /* 16-byte slot: jmp *8(slot); the target at slot+8; NULL until first patched */
	uint64_t current; /* the entry that is not yet redirected: the program's, or the last patch's */
} hrc_fn;

struct hrc_prog {
	hrc_elf exe;
	uint64_t bias, lo, hi; /* the executable's image in memory */
	hrc_dwarf dw;
	hrc_xsym *syms; /* functions and objects, sorted by name */
	size_t nsyms;
	hrc_xsym **byaddr; /* objects sorted by address (sizes) */
	size_t nbyaddr;
	hrc_var *vars;
	size_t nvars, capvars, nsorted; /* vars[0..nsorted) sorted by key; the rest (from patches) unsorted */
	hrc_fn *fns;
	size_t nfns, capfns;
	uint8_t *thunks; /* current thunk page, and slots used in it */
	size_t thunks_used;
	uint64_t near_lo, near_hi; /* where hrc_near_alloc placed its last block: the next is tried beside it first */
	unsigned version;
	int membarrier_ok;
};

/* One loaded patch, not yet switched in. */
typedef struct hrc_pfn {
	char *name;
	uint64_t addr;
} hrc_pfn;

typedef struct hrc_patch {
	char *unit;
	uint8_t *block;
	size_t size;
	hrc_pfn *fns;
	size_t nfns;
	hrc_var *newvars; /* variables the patch adds, keyed like the program's */
	size_t nnew;
	void *image; /* the object as a debugger is to see it (gdbjit.h), registered when switched in */
	size_t image_size;
} hrc_patch;

/* The variable with that key, or NULL. */
const hrc_var *hrc_prog_var(const hrc_prog *p, const char *key);
/* An executable's global (or weak) defined symbol named name, or NULL. */
const hrc_xsym *hrc_prog_global(const hrc_prog *p, const char *name);
/* The executable's function named name in unit, or 0. */
uint64_t hrc_prog_func(const hrc_prog *p, const char *unit, const char *name);
/* The key for a DWARF variable (malloc'd), or NULL. */
char *hrc_var_key(const hrc_dw_var *v);

/*
 * Load the relocatable object on fd into memory near the executable:
 * sections placed, symbols bound (static storage to the program's through
 * DWARF), relocated, protected. -ENOENT (err says so) if its unit is not the
 * program's; other negative errno with err for a refusal.
 */
int hrc_patch_load(hrc_prog *p, int fd, hrc_patch *out, char *err, size_t errsz);
/* Unmap a patch that was not switched in, and free its tables. */
void hrc_patch_drop(hrc_patch *pt);
/* Free the tables of a patch that was switched in (its code stays). */
void hrc_patch_forget(hrc_patch *pt);

/* size bytes, read-write, within +-2 GB of the executable's image; NULL with errno. */
void *hrc_near_alloc(hrc_prog *p, size_t size);

/* One function entry to switch to a thunk. */
typedef struct hrc_redir {
	uint8_t *entry;
	uint8_t *thunk; /* slot */
	uint64_t target; /* the thunk's new target */
	int fresh; /* the slot is new: write all of it */
	int switch_entry; /* entry is to be redirected (not already) */
	const char *unit, *name;
} hrc_redir;

/* A new thunk slot; NULL with errno. */
uint8_t *hrc_thunk_new(hrc_prog *p);
/*
 * Point each thunk at its target and switch each entry to its thunk: checks
 * first (the NOP pattern, writable text), then the steps, each one store,
 * with cores serialised between. 0, or a negative errno with err; nothing is
 * written on refusal.
 */
int hrc_redirect(hrc_prog *p, hrc_redir *r, size_t n, char *err, size_t errsz);

#endif
