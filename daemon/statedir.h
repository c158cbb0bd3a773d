/* statedir.h: where the state dir goes when the root's filesystem cannot hold it. */
#ifndef HRD_STATEDIR_H
#define HRD_STATEDIR_H

#include <stddef.h>
#include <sys/types.h>

#include "fsinfo.h"

/* mkdir -p, with mode for what it creates. 0, or -1 with errno. */
int hrd_make_dirs(const char *path, mode_t mode);

/*
 * The default state dir for root, whose filesystem f describes, in want:
 * ROOT/.hotreload, or a place under $XDG_STATE_HOME/hotreload/ linked from
 * there when ROOT's filesystem cannot hold it. note gets where and why when
 * it is not the usual place. Returns 0, or -1 with the error in note.
 */
int hrd_statedir_place(const char *root, const hrd_fsfacts *f, char *want, size_t n, char *note, size_t nn);

#endif
