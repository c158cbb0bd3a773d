/* statedir.h: where the state dir goes, and whether a folder is fit to keep the daemon's files. */
#ifndef HRD_STATEDIR_H
#define HRD_STATEDIR_H

/*
 * Errors: -1 with errno, or (choosing and checking the state dir) with a message for the user in
 * the buffer given.
 */

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

/*
 * The folder at path (resolved: a link there is refused) opened for the
 * daemon to keep its files in: a descriptor (O_DIRECTORY, O_NOFOLLOW), when
 * it belongs to us or root, no one else can write to it, and it is in a
 * folder of ours or root's that no one else can write to (or a sticky one, as
 * /tmp): else another user could plant files there, or swap the folder.
 * Else -1, and in why a message naming the folder, its owner and mode, and
 * what to do (option names the option that gives another folder).
 */
int hrd_statedir_open(const char *path, const char *option, char *why, size_t n);

/*
 * The folder name in dirfd (created with mode if missing), opened as
 * hrd_statedir_open does, and set to mode: ours or root's, no link. A
 * descriptor, or -1 and why.
 */
int hrd_statedir_sub(int dirfd, const char *name, mode_t mode, char *why, size_t n);

/*
 * The regular file at path opened for reading, when no other user can
 * choose what it holds: it is ours or root's and no one else may write to
 * it, and each folder from / down to it is ours or root's and no one else
 * can write to it, unless it is sticky (as /tmp: there no one can rename or
 * remove what is not theirs, and what they put in place of a missing name
 * is theirs, so refused). Links in path are followed first (realpath): the
 * folders checked are those where they lead, opened one by one without
 * following a link, and the file through the last one. A descriptor, or -1
 * with errno and in why a message: what (e.g. "the compile database"), the
 * file or folder to blame, its owner and mode, and what to do (option
 * names the option that gives another file).
 */
int hrd_trusted_file_open(const char *path, const char *what, const char *option, char *why, size_t n);

/*
 * Write .gitignore, holding "*", in the state dir dirfd, so that git leaves
 * the daemon's files out of the project's status (for a state dir the daemon
 * made itself). 0, or -1 with errno (EEXIST: one is there already).
 */
int hrd_statedir_gitignore(int dirfd);

#endif
