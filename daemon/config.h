/* config.h: ROOT/hotreload.conf: the project's build settings, globally and per module, and its parser. */
#ifndef HRD_CONFIG_H
#define HRD_CONFIG_H

/*
 * Errors: -1 with "file:line: what is wrong; what to do" in err; what was parsed before stays.
 */

#include <stddef.h>

#define HRD_CONFIG_FILE "hotreload.conf"

/* The settings a module's commands are made of; each a list of words. */
/* HRD_QUICK: "tcc" or "off" (the default), one word, the project's or the module's: the quick tier's compiler. */
enum hrd_key { HRD_CC, HRD_CFLAGS, HRD_LDFLAGS, HRD_LIBS, HRD_INCLUDE, HRD_DEFINE, HRD_SOURCES, HRD_QUICK, HRD_NKEYS };

/* One scope's settings: "key = ..." sets (replacing what is inherited), "key += ..." adds. */
typedef struct hrd_scope {
	char *name;                 /* the module, NULL for the project */
	char **set[HRD_NKEYS];      /* NULL-terminated; NULL when not set here */
	char **add[HRD_NKEYS];      /* NULL-terminated; NULL for none */
	size_t nadd[HRD_NKEYS];     /* how many words each add holds: a "+=" appends without counting them */
} hrd_scope;

typedef struct hrd_config {
	hrd_scope all;
	hrd_scope *mods;
	size_t nmods;
	char **exclude;          /* root-relative files and folders that are not modules */
	size_t nexclude;
	int jobs;                /* 0: the daemon's --jobs */
	char *compile_commands;  /* root-relative; "" for none; NULL: the default, compile_commands.json */
	char *patch;             /* the program's compile database (patch = PATH), relative to the root; NULL for none */
	int keep;                /* objects of each module's newest good compiles kept in the history; 0: the default */
} hrd_config;

/* The most hotreload.conf may hold: lines of settings, not a megabyte. */
#define HRD_CONFIG_MAX (1u << 20)

/*
 * Parse text[0..n) of the file named file (for messages) into out, in time
 * linear in n. On an error returns -1 with "file:line: what is wrong; what
 * to do" in err, and out left empty. 0 otherwise (out freed with
 * hrd_config_free).
 */
int hrd_config_parse(const char *text, size_t n, const char *file, hrd_config *out, char *err, size_t errsz);
/* Read ROOT/hotreload.conf through rootfd: no file is the empty configuration. 0, or -1 with err. */
int hrd_config_load(int rootfd, hrd_config *out, char *err, size_t errsz);
void hrd_config_free(hrd_config *c);
/*
 * The words of key for module: the project's, replaced by the module's
 * "key =" if it has one, then both scopes' "key +=" words. Calls fn with
 * each; returns the first non-zero fn returns, else 0.
 */
int hrd_config_words(const hrd_config *c, const char *module, enum hrd_key key, int (*fn)(void *arg, const char *word),
                     void *arg);
/* 1 when module's builds have a quick tier (quick = tcc). */
int hrd_config_quick(const hrd_config *c, const char *module);
/* 1 when module has sources of its own ("sources = glob..."). */
int hrd_config_has_sources(const hrd_config *c, const char *module);
/* 1 when the root-relative path is excluded, or lies in an excluded folder. */
int hrd_config_excluded(const hrd_config *c, const char *path);

#endif
