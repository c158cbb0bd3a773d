/* cdb.h: a build's compile database (compile_commands.json): each translation unit, its folder and its command. */
#ifndef HRD_CDB_H
#define HRD_CDB_H

/*
 * Errors: -1 with "FILE:LINE:COL: what is wrong; what to do" in err (or
 * "FILE: ..." when no place in it is to blame).
 */

#include <stddef.h>

#define HRD_CDB_MAX (64u << 20)  /* the largest database read: a build of many thousand units */
#define HRD_CDB_UNITS 100000u    /* and the most units it may name */
#define HRD_CDB_WORDS 4096u      /* and the most words of one command */
/*
 * And the most JSON values of a database of n bytes: one per 6 bytes (a real one spends 9 or more on each: paths,
 * flags in quotes, keys), and 40 an entry at most, so that what is held stays within some 15 times the text.
 */
#define HRD_CDB_VALUES(n) ((n) / 6 + 64 < HRD_CDB_UNITS * 40u ? (n) / 6 + 64 : HRD_CDB_UNITS * 40u)

typedef struct hrd_cdb_unit {
	char *file;  /* absolute, lexically normal ("./" and "x/.." taken out): the unit's name too */
	char *dir;   /* absolute: the compile runs there */
	char **argv; /* the command as the build runs it, NULL-terminated */
	size_t entry; /* its place among the database's entries: of two entries of one file, the first wins */
} hrd_cdb_unit;

typedef struct hrd_cdb {
	hrd_cdb_unit *u; /* sorted by file, one per file (the first entry of a file wins) */
	size_t n;
	/* Entries left out, and why the first was: a command with a response file (@FILE), whose flags are not read. */
	size_t refused;
	char why[512];
} hrd_cdb;

/* Parse text[0..n) of the database at path (for messages and relative folders). 0, or -1 with err and out empty. */
int hrd_cdb_parse(const char *text, size_t n, const char *path, hrd_cdb *out, char *err, size_t errsz);
/* Read the database at the absolute path from fd, opened there (and checked: see hrd_trusted_file_open). 0, or -1 with err. */
int hrd_cdb_load(int fd, const char *path, hrd_cdb *out, char *err, size_t errsz);
void hrd_cdb_free(hrd_cdb *c);
/* The unit of the absolute, normal path, or NULL. */
const hrd_cdb_unit *hrd_cdb_find(const hrd_cdb *c, const char *file);

/* Split a command line as a POSIX shell splits words: quotes and backslashes, no expansion. 0, or -1 with err (no "FILE:" part). */
int hrd_cdb_split(const char *cmd, char ***argv, char *err, size_t errsz);

/*
 * The unit's command for a patch object: its outputs (-o, --output, -MF, -MT, -MQ, -MJ, -Wp,-M...,
 * -MD, -MMD, -M, -MM, -MP) and any link step (-l, -L, -Wl, other inputs than
 * the unit's source) taken out, then "-c -MMD -MF dep -o obj" added. A new
 * vector, or NULL out of memory.
 */
char **hrd_cdb_patch_argv(const hrd_cdb_unit *u, const char *obj, const char *dep);

/* path with "./" and "x/.." taken out, joined to dir first when relative. A new string, or NULL. */
char *hrd_cdb_normal(const char *dir, const char *path);

#endif
