/* engine_command.c: a module's commands, from hotreload.conf over the environment, and compile_commands.json. */
#include "words.h"
#include "engine_impl.h"
#include "ccmd.h"
#include "incdir.h"
#include "log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <unistd.h>

/* Split an environment variable into words (no shell: spaces and tabs only). */
int hrd_engine_split_env(const char *var, const char *fallback, char ***words, size_t *n)
{
	const char *v = getenv(var);
	char *copy = strdup(v && *v ? v : fallback), *save = NULL;
	int rc = copy ? 0 : -1;
	for (char *w = copy ? strtok_r(copy, " \t\n", &save) : NULL; w && rc == 0; w = strtok_r(NULL, " \t\n", &save))
		rc = hrd_words_add(words, n, w);
	free(copy);
	return rc;
}

struct words {
	char ***w;
	size_t n;
	const char *prefix; /* "-I", "-D", or NULL */
};

static int add_config_word(void *arg, const char *word)
{
	struct words *ws = arg;
	char *w = NULL;
	if (ws->prefix && asprintf(&w, "%s%s", ws->prefix, word) < 0)
		return -1;
	int rc = hrd_words_add(ws->w, &ws->n, w ? w : word);
	free(w);
	return rc;
}

/* A machine as a triple's first part or uname's names it, with the aliases of one another folded together. */
static void arch_of(const char *s, size_t len, char *out, size_t n)
{
	if (len == 4 && s[0] == 'i' && s[1] >= '3' && s[1] <= '6' && strncmp(s + 2, "86", 2) == 0)
		s = "i386", len = 4;
	else if (len == 5 && strncmp(s, "amd64", 5) == 0)
		s = "x86_64", len = 6;
	else if (len == 5 && strncmp(s, "arm64", 5) == 0)
		s = "aarch64", len = 7;
	else if (len > 3 && strncmp(s, "arm", 3) == 0)
		len = 3; /* armv7l, armhf, arm: one machine to ELF */
	snprintf(out, n, "%.*s", (int)len, s);
}

/* Whether a triple (aarch64-linux-gnu) names another machine than this one. */
static int triple_elsewhere(const char *triple)
{
	struct utsname u;
	char here[32], there[32];
	if (uname(&u) < 0)
		return 0;
	arch_of(u.machine, strlen(u.machine), here, sizeof here);
	arch_of(triple, strcspn(triple, "-"), there, sizeof there);
	return strcmp(here, there) != 0;
}

/*
 * Whether the compiler cc (its file name) with flags builds for another
 * machine: named for another target (aarch64-linux-gnu-gcc on x86_64), told
 * one (clang --target=...), or -m32. The quick tier's tcc builds for this
 * machine only: its object would be refused by the game.
 */
static int for_elsewhere(const char *cc, char *const *flags)
{
	const char *dash = strchr(cc, '-');
	if (dash && strchr(dash + 1, '-') && triple_elsewhere(cc))
		return 1;
	for (size_t i = 0; flags[i]; i++) {
		if (strncmp(flags[i], "--target=", 9) == 0 && triple_elsewhere(flags[i] + 9))
			return 1;
		if (strcmp(flags[i], "-target") == 0 && flags[i + 1] && triple_elsewhere(flags[i + 1]))
			return 1;
		if (strcmp(flags[i], "-m32") == 0)
			return 1;
	}
	return 0;
}

/*
 * The module's commands, from hotreload.conf over the environment: the
 * compiler (cc, else $CC, else cc), -fPIC -g, $CFLAGS, cflags, include
 * (-I), define (-D), and -I the folder of the daemon's own hotreload.h (-idirafter
 * for a cross compiler); and
 * for the link $LDFLAGS, ldflags, libs. 0 or -1.
 */
int hrd_engine_command_for(hrd_engine *e, const char *name, build *b)
{
	/* Empty lists, not NULL: a module may have no link flags. */
	if (!(b->base = calloc(1, sizeof *b->base)) || !(b->ld = calloc(1, sizeof *b->ld)))
		return -1;
	struct words base = {&b->base, 0, NULL}, ld = {&b->ld, 0, NULL};
	int rc = hrd_config_words(&e->conf, name, HRD_CC, add_config_word, &base);
	int from_conf = base.n > 0;
	for (size_t i = 0; rc == 0 && !from_conf && e->env_cc[i]; i++)
		rc = add_config_word(&base, e->env_cc[i]);
	if (rc == 0 && !base.n)
		rc = add_config_word(&base, "cc");
	/* The compiler is the last word before the flags (ccache and distcc come before it). */
	const char *cc = base.n ? strrchr(b->base[base.n - 1], '/') : NULL;
	cc = cc ? cc + 1 : base.n ? b->base[base.n - 1] : "";
	b->mdeps = strncmp(cc, "tcc", 3) == 0 ? "-MD" : "-MMD";
	size_t nflags = base.n;
	rc = rc ? rc : add_config_word(&base, "-fPIC");
	rc = rc ? rc : add_config_word(&base, "-g");
	for (size_t i = 0; rc == 0 && e->env_cflags[i]; i++)
		rc = add_config_word(&base, e->env_cflags[i]);
	rc = rc ? rc : hrd_config_words(&e->conf, name, HRD_CFLAGS, add_config_word, &base);
	base.prefix = "-I";
	rc = rc ? rc : hrd_config_words(&e->conf, name, HRD_INCLUDE, add_config_word, &base);
	base.prefix = "-D";
	rc = rc ? rc : hrd_config_words(&e->conf, name, HRD_DEFINE, add_config_word, &base);
	/* Last, so that the project's own folders come first: <hotreload.h> (for HR_KEEP) whatever the environment. */
	base.prefix = "-I";
	if (rc == 0)
		b->elsewhere = for_elsewhere(cc, b->base + nflags);
	/* For another machine, after the target's own headers: an installed daemon's is PREFIX/include, where this
	 * machine's headers of other libraries are (/usr/local/include), which must not stand in for the target's. */
	if (rc == 0 && b->elsewhere) {
		base.prefix = NULL;
		rc = add_config_word(&base, "-idirafter");
	}
	rc = rc ? rc : add_config_word(&base, hrd_incdir());
	for (size_t i = 0; rc == 0 && e->env_ldflags[i]; i++)
		rc = add_config_word(&ld, e->env_ldflags[i]);
	rc = rc ? rc : hrd_config_words(&e->conf, name, HRD_LDFLAGS, add_config_word, &ld);
	rc = rc ? rc : hrd_config_words(&e->conf, name, HRD_LIBS, add_config_word, &ld);
	struct words key = {&b->keyargv, 0, NULL};
	for (size_t i = 0; rc == 0 && b->base[i]; i++)
		rc = add_config_word(&key, b->base[i]);
	rc = rc ? rc : add_config_word(&key, "--");
	for (size_t i = 0; rc == 0 && b->ld[i]; i++)
		rc = add_config_word(&key, b->ld[i]);
	return rc ? -1 : 0;
}

/* What compile_commands.json says of m, from b's command: marked for writing when it changed. */
void hrd_engine_ccmd_note(hrd_engine *e, hrd_mod *m, const build *b)
{
	char *entries = hrd_ccmd_entries(e->cfg.root, b->base, b->src.path, b->src.n);
	if (!entries || (m->ccmd && strcmp(entries, m->ccmd) == 0)) {
		free(entries);
		return;
	}
	free(m->ccmd);
	m->ccmd = entries;
	e->ccmd_dirty = 1;
}

/* compile_commands.json, when a module's commands or sources changed: where hotreload.conf says, by default in the root. */
static const char *ccmds_at(const hrd_config *c)
{
	return c->compile_commands ? c->compile_commands : "compile_commands.json";
}

void hrd_engine_move_ccmds(hrd_engine *e, const hrd_config *next)
{
	const char *was = ccmds_at(&e->conf);
	if (!e->ccmd_written || strcmp(was, ccmds_at(next)) == 0)
		return;
	/* Moved or turned off: the old file would mislead clangd; it is ours, so it goes. */
	if (unlinkat(e->project.rootfd, was, 0) < 0 && errno != ENOENT)
		hrd_warn("cannot remove %s/%s: %s", e->cfg.root, was, strerror(errno));
	e->ccmd_written = 0;
}

void hrd_engine_write_ccmds(hrd_engine *e)
{
	const char *rel = ccmds_at(&e->conf);
	if (!e->ccmd_dirty || !*rel)
		return;
	e->ccmd_dirty = 0;
	char *mine = e->patch ? hrd_cdb_normal(e->cfg.root, rel) : NULL;
	int theirs = e->patch && (!mine || strcmp(mine, e->patch) == 0); /* out of memory: not written */
	free(mine);
	if (theirs) {
		/* the program's own database (--patch) is the build's to write, never ours */
		hrd_warn("%s is the program's compile database (--patch): the modules' compile_commands.json is not written "
		         "over it; set compile_commands in hotreload.conf to another file", rel);
		return;
	}
	char **entries = calloc(e->nmods + 1, sizeof *entries), *path = NULL;
	for (size_t i = 0; entries && i < e->nmods; i++)
		entries[i] = e->mods[i]->kind == HRD_KIND_FILE || e->mods[i]->kind == HRD_KIND_DIR ? e->mods[i]->ccmd : NULL;
	if (!entries || asprintf(&path, "%s/%s", e->cfg.root, rel) < 0 || hrd_ccmd_write(path, entries, e->nmods) < 0)
		hrd_warn("cannot write %s/%s: %s", e->cfg.root, rel, strerror(errno));
	else
		e->ccmd_written = 1;
	free(path);
	free(entries);
}
