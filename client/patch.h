/* patch.h: patch the running program itself: load relocatable objects of its units and redirect their functions. */
#ifndef HRC_PATCH_H
#define HRC_PATCH_H

#include <stddef.h>

typedef struct hrc_prog hrc_prog;

/*
 * Read the running executable (/proc/self/exe): its symbol table, its DWARF,
 * where it is mapped; register for core serialisation. 0, or a negative
 * errno with what the program lacks in err (no DWARF, not built with
 * -fpatchable-function-entry=7,5, not x86-64, stripped). There is one per
 * process, opened once and kept: which entries were switched to which thunks
 * must outlive any module that stands for the program.
 */
int hrc_prog_open(hrc_prog **out, char *err, size_t errsz);
/*
 * Apply (any thread; one at a time) the patch objects on fds (one per unit, newest only) together: load
 * each, check everything, then switch every function in one batch. Objects
 * of units the program does not have are skipped. 1 if something was
 * patched, 0 if nothing, or a negative errno with the reason in err, the
 * program untouched. The fds are not closed.
 */
int hrc_prog_apply(hrc_prog *p, const int *fds, size_t n, char *err, size_t errsz);
/*
 * A patch loaded ahead of the hr_update that applies it (placed near the program, bound, relocated; not switched
 * in), so that hr_update is left the switch. Valid while no other patch is applied in between, as binding reads
 * the variables earlier patches added; hrc_prog_apply_loaded loads again from the descriptor when it is not.
 */
typedef struct hrc_preload hrc_preload;
/* The library's thread: load the patch on fd ahead; NULL when it cannot (the apply then loads it, and says why). */
hrc_preload *hrc_prog_preload(hrc_prog *p, int fd);
/* A preload never applied (superseded by a newer one, or its module closed): its memory given back. */
void hrc_preload_drop(hrc_preload *pl);
/* hrc_prog_apply, taking each pre[i] still valid in place of loading fds[i]; every pre[i] is consumed (NULL after). */
int hrc_prog_apply_loaded(hrc_prog *p, const int *fds, hrc_preload **pre, size_t n, char *err, size_t errsz);
/* Whether the program has the unit (its path, as DWARF names it). Any thread: the table does not change. */
int hrc_prog_has_unit(const hrc_prog *p, const char *unit);
/* Patches (units) applied so far. */
unsigned hrc_prog_version(const hrc_prog *p);
/* Nothing: the process's one is kept (see hrc_prog_open), as are loaded code and thunks. */
void hrc_prog_close(hrc_prog *p);

#endif
