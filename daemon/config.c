/* config.c: ROOT/hotreload.conf: the project's build settings, globally and per module, and its parser. */
#include "config.h"
#include "readfile.h"
#include "../proto/hrp.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const key_names[HRD_NKEYS] = {"cc", "cflags", "ldflags", "libs", "include", "define", "sources",
                                                        "quick"};
/* Settings of the whole project only. */
static const char *const project_keys[] = {"exclude", "jobs", "compile_commands", "keep", "patch"};
#define NPROJECT (sizeof project_keys / sizeof *project_keys)

struct parse {
	const char *file;
	int line;
	char *err;
	size_t errsz;
	size_t *slots, nslots; /* the modules by name: index + 1 into mods, 0 for a free slot */
};

__attribute__((format(printf, 2, 3))) static int mistake(struct parse *p, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = snprintf(p->err, p->errsz, "%s:%d: ", p->file, p->line);
	if (n >= 0 && (size_t)n < p->errsz)
		vsnprintf(p->err + n, p->errsz - (size_t)n, fmt, ap);
	va_end(ap);
	return -1;
}

static void free_words(char **w)
{
	for (size_t i = 0; w && w[i]; i++)
		free(w[i]);
	free(w);
}

/*
 * Append a word to the list *w of *n words. Its room doubles whenever its
 * n + 1 slots (the NULL too) reach a power of two: every list is made by
 * push alone, so no word is counted or moved more than a constant number
 * of times in all.
 */
static int push(char ***w, size_t *n, const char *word, size_t len)
{
	char **list = *w;
	size_t slots = *n + 1;
	if (!list || (slots & (slots - 1)) == 0) {
		list = realloc(list, 2 * slots * sizeof *list);
		if (!list)
			return -1;
		*w = list;
	}
	if (!(list[*n] = strndup(word, len)))
		return -1;
	list[++*n] = NULL;
	return 0;
}

/*
 * The words of a value: split at blanks, a '#' after a blank starts a
 * comment, "double quotes" keep blanks and '#' (with \" and \\ inside).
 * *out is always a list (maybe of none). 0, or -1 with the error.
 */
static int split(struct parse *p, const char *s, const char *end, char ***out)
{
	char *word = malloc((size_t)(end - s) + 1);
	size_t n = 0;
	int rc = word && (*out = calloc(1, sizeof **out)) ? 0 : mistake(p, "out of memory");
	while (rc == 0) {
		while (s < end && (*s == ' ' || *s == '\t'))
			s++;
		if (s == end || *s == '#')
			break;
		size_t len = 0;
		while (rc == 0 && s < end && *s != ' ' && *s != '\t') {
			if (*s != '"') {
				word[len++] = *s++;
				continue;
			}
			for (s++; s < end && *s != '"'; s++) {
				if (*s == '\\' && s + 1 < end && (s[1] == '"' || s[1] == '\\'))
					s++;
				word[len++] = *s;
			}
			if (s == end)
				rc = mistake(p, "a quote is not closed: end the word with \"");
			s++;
		}
		if (rc == 0 && push(out, &n, word, len) < 0)
			rc = mistake(p, "out of memory");
	}
	free(word);
	return rc;
}

static int key_of(const char *name, size_t len)
{
	for (int k = 0; k < HRD_NKEYS; k++)
		if (strlen(key_names[k]) == len && memcmp(key_names[k], name, len) == 0)
			return k;
	for (int k = 0; k < (int)NPROJECT; k++)
		if (strlen(project_keys[k]) == len && memcmp(project_keys[k], name, len) == 0)
			return HRD_NKEYS + k;
	return -1;
}

/* The known setting nearest to a misspelt one (a letter added, dropped or changed), for the message. */
static const char *nearest(const char *name, size_t len)
{
	const char *all[HRD_NKEYS + NPROJECT];
	for (int k = 0; k < HRD_NKEYS; k++)
		all[k] = key_names[k];
	for (size_t k = 0; k < NPROJECT; k++)
		all[HRD_NKEYS + k] = project_keys[k];
	for (size_t i = 0; i < sizeof all / sizeof *all; i++) {
		const char *a = all[i];
		size_t al = strlen(a), pre = 0, suf = 0;
		while (pre < al && pre < len && a[pre] == name[pre])
			pre++;
		while (suf < al - pre && suf < len - pre && a[al - 1 - suf] == name[len - 1 - suf])
			suf++;
		if (pre + suf + 1 >= (al > len ? al : len) && (al > len ? al - len : len - al) <= 1)
			return a;
	}
	return NULL;
}

static size_t hash(const char *s)
{
	size_t h = 14695981039346656037u;
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211u;
	return h;
}

/* Where name is in the table of modules, or the free slot it would take. */
static size_t *slot(const hrd_config *c, struct parse *p, const char *name)
{
	size_t i = hash(name) & (p->nslots - 1);
	while (p->slots[i] && strcmp(c->mods[p->slots[i] - 1].name, name) != 0)
		i = (i + 1) & (p->nslots - 1);
	return &p->slots[i];
}

/* Room in the table for one more module: kept at most half full. 0 or -1. */
static int room(const hrd_config *c, struct parse *p)
{
	if (2 * (c->nmods + 1) <= p->nslots)
		return 0;
	size_t n = p->nslots ? 2 * p->nslots : 64;
	size_t *grown = calloc(n, sizeof *grown);
	if (!grown)
		return -1;
	free(p->slots);
	p->slots = grown;
	p->nslots = n;
	for (size_t i = 0; i < c->nmods; i++)
		*slot(c, p, c->mods[i].name) = i + 1;
	return 0;
}

static hrd_scope *section(hrd_config *c, struct parse *p, const char *name, size_t len)
{
	char buf[HRP_NAME_MAX + 1];
	if (len > HRP_NAME_MAX) {
		mistake(p, "the module name is too long (at most %d characters)", HRP_NAME_MAX);
		return NULL;
	}
	memcpy(buf, name, len);
	buf[len] = '\0';
	if (!hrp_valid_name(buf)) {
		mistake(p, "[%s] is not a module name: a module name is " HRP_NAME_RULE, buf);
		return NULL;
	}
	if (room(c, p) < 0) {
		mistake(p, "out of memory");
		return NULL;
	}
	size_t *at = slot(c, p, buf);
	if (*at)
		return &c->mods[*at - 1]; /* a second section of one module goes on where the first left off */
	/* doubling, as push does: the room for n modules is the power of two from n */
	size_t n = c->nmods;
	if (!c->mods || (n >= 1 && (n & (n - 1)) == 0)) {
		hrd_scope *grown = realloc(c->mods, (n ? 2 * n : 1) * sizeof *grown);
		if (!grown) {
			mistake(p, "out of memory");
			return NULL;
		}
		c->mods = grown;
	}
	hrd_scope *s = &c->mods[c->nmods];
	memset(s, 0, sizeof *s);
	if (!(s->name = strdup(buf))) {
		mistake(p, "out of memory");
		return NULL;
	}
	*at = ++c->nmods;
	return s;
}

static int project_setting(hrd_config *c, struct parse *p, int k, int append, char **words)
{
	size_t n = 0;
	while (words[n])
		n++;
	if (k == HRD_NKEYS) { /* exclude */
		for (size_t i = 0; i < n; i++) {
			if (words[i][0] == '/' || strstr(words[i], ".."))
				return mistake(p, "exclude '%s': give paths inside the root, relative to it", words[i]);
		}
		if (!append) {
			free_words(c->exclude);
			c->exclude = NULL;
			c->nexclude = 0;
		}
		for (size_t i = 0; i < n; i++) {
			size_t len = strlen(words[i]);
			while (len > 1 && words[i][len - 1] == '/')
				len--; /* "tools/" is the folder tools */
			if (push(&c->exclude, &c->nexclude, words[i], len) < 0)
				return mistake(p, "out of memory");
		}
		return 0;
	}
	if (append)
		return mistake(p, "'%s' takes one value: use '=', not '+='", project_keys[k - HRD_NKEYS]);
	if (k == HRD_NKEYS + 1 || k == HRD_NKEYS + 3) { /* jobs, keep */
		char *end;
		long v = n == 1 ? strtol(words[0], &end, 10) : 0;
		int ok = n == 1 && !*end && v >= 1 && v <= (k == HRD_NKEYS + 1 ? 256 : 100000);
		if (!ok && k == HRD_NKEYS + 1)
			return mistake(p, "jobs is a number of compilers at once, from 1 to 256");
		if (!ok)
			return mistake(p, "keep is how many of each module's newest good objects the history keeps, from 1");
		*(k == HRD_NKEYS + 1 ? &c->jobs : &c->keep) = (int)v;
		return 0;
	}
	if (k == HRD_NKEYS + 4) { /* patch */
		if (n != 1)
			return mistake(p, "patch is one path: the program's compile_commands.json, relative to the root");
		free(c->patch);
		if (!(c->patch = strdup(words[0])))
			return mistake(p, "out of memory");
		return 0;
	}
	if (n > 1) /* compile_commands */
		return mistake(p, "compile_commands is one path (relative to the root), or nothing to write none");
	if (n == 1 && (words[0][0] == '/' || strstr(words[0], "..")))
		return mistake(p, "compile_commands '%s': give a path inside the root, relative to it", words[0]);
	size_t len = n ? strlen(words[0]) : 0;
	if (n == 1 && (len < 6 || strcmp(words[0] + len - 5, ".json") != 0))
		return mistake(p, "compile_commands '%s': give a file name ending in .json (it is overwritten)", words[0]);
	free(c->compile_commands);
	if (!(c->compile_commands = strdup(n ? words[0] : "")))
		return mistake(p, "out of memory");
	return 0;
}

/* Source patterns stay inside the root. */
static int inside_root(struct parse *p, char **words)
{
	for (size_t i = 0; words[i]; i++) {
		if (words[i][0] == '/' || strstr(words[i], ".."))
			return mistake(p, "sources '%s': give patterns inside the root, relative to it, as src/*.c", words[i]);
		/* as the watcher names paths: a leading "./" goes (all of them, in one move) */
		size_t dots = 0;
		while (words[i][dots] == '.' && words[i][dots + 1] == '/')
			dots += 2;
		if (dots)
			memmove(words[i], words[i] + dots, strlen(words[i] + dots) + 1);
	}
	return 0;
}

/* One line, without its newline. */
static int line(hrd_config *c, struct parse *p, hrd_scope **scope, const char *s, const char *end)
{
	while (s < end && (*s == ' ' || *s == '\t' || *s == '\r'))
		s++;
	while (end > s && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\r'))
		end--;
	if (s == end || *s == '#')
		return 0;
	if (*s == '[') {
		const char *close = memchr(s, ']', (size_t)(end - s));
		const char *after = close ? close + 1 : end;
		while (after < end && (*after == ' ' || *after == '\t'))
			after++;
		if (!close || (after < end && *after != '#'))
			return mistake(p, "a section is one module's name in brackets, as [physics]");
		const char *name = s + 1, *name_end = close;
		while (name < name_end && (*name == ' ' || *name == '\t'))
			name++;
		while (name_end > name && (name_end[-1] == ' ' || name_end[-1] == '\t'))
			name_end--;
		*scope = section(c, p, name, (size_t)(name_end - name));
		return *scope ? 0 : -1;
	}
	const char *key = s;
	while (s < end && (*s == '_' || (*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9')))
		s++;
	size_t klen = (size_t)(s - key);
	while (s < end && (*s == ' ' || *s == '\t'))
		s++;
	int append = s + 1 < end && s[0] == '+' && s[1] == '=';
	if (!klen || (!append && (s == end || *s != '=')))
		return mistake(p, "expected 'setting = value', 'setting += value', [module] or a # comment");
	s += append ? 2 : 1;
	int k = key_of(key, klen);
	if (k < 0) {
		const char *near = nearest(key, klen);
		return near ? mistake(p, "unknown setting '%.*s': did you mean '%s'?", (int)klen, key, near)
		            : mistake(p, "unknown setting '%.*s': the settings are cc, cflags, ldflags, libs, include, define,"
		                      " sources (of a module), quick, and before any [module], exclude, jobs, compile_commands, keep and patch",
		                   (int)klen, key);
	}
	if (k >= HRD_NKEYS && *scope != &c->all)
		return mistake(p, "'%s' is a setting of the whole project: put it before the first [module]",
		            project_keys[k - HRD_NKEYS]);
	if (k == HRD_SOURCES && *scope == &c->all)
		return mistake(p, "'sources' is a setting of one module: put it under [module]");
	char **words = NULL;
	if (split(p, s, end, &words) < 0) {
		free_words(words);
		return -1;
	}
	int rc = 0;
	if (k >= HRD_NKEYS) {
		rc = project_setting(c, p, k, append, words);
		free_words(words);
	} else if (k == HRD_CC && !append && !words[0]) {
		free_words(words);
		rc = mistake(p, "cc names a compiler, as cc = gcc or cc = ccache gcc");
	} else if (k == HRD_QUICK && (append || !words[0] || words[1] ||
	                               (strcmp(words[0], "tcc") != 0 && strcmp(words[0], "off") != 0))) {
		free_words(words);
		rc = mistake(p, "quick is tcc (a quick build with tcc goes live first) or off, with '=', not '+='");
	} else if (k == HRD_SOURCES && (rc = inside_root(p, words)) < 0) {
		free_words(words);
	} else if (append) {
		for (size_t i = 0; rc == 0 && words[i]; i++)
			if (push(&(*scope)->add[k], &(*scope)->nadd[k], words[i], strlen(words[i])) < 0)
				rc = mistake(p, "out of memory");
		free_words(words);
	} else {
		free_words((*scope)->set[k]);
		(*scope)->set[k] = words;
	}
	return rc;
}

void hrd_config_free(hrd_config *c)
{
	for (size_t i = 0; i <= c->nmods; i++) {
		hrd_scope *s = i < c->nmods ? &c->mods[i] : &c->all;
		for (int k = 0; k < HRD_NKEYS; k++) {
			free_words(s->set[k]);
			free_words(s->add[k]);
		}
		free(s->name);
	}
	free(c->mods);
	free_words(c->exclude);
	free(c->compile_commands);
	free(c->patch);
	memset(c, 0, sizeof *c);
}

int hrd_config_parse(const char *text, size_t n, const char *file, hrd_config *out, char *err, size_t errsz)
{
	struct parse p = {file, 0, err, errsz, NULL, 0};
	hrd_scope *scope = &out->all;
	memset(out, 0, sizeof *out);
	int rc = 0;
	if (memchr(text, '\0', n)) {
		p.line = 1;
		for (const char *s = text; *s; s++)
			p.line += *s == '\n';
		rc = mistake(&p, "a NUL byte: this is not a text file");
	}
	for (const char *s = text, *end = text + n; rc == 0 && s < end;) {
		const char *nl = memchr(s, '\n', (size_t)(end - s));
		p.line++;
		rc = line(out, &p, &scope, s, nl ? nl : end);
		s = nl ? nl + 1 : end;
	}
	free(p.slots);
	if (rc < 0)
		hrd_config_free(out);
	return rc;
}

int hrd_config_load(int rootfd, hrd_config *out, char *err, size_t errsz)
{
	memset(out, 0, sizeof *out);
	size_t len;
	char *text = hrd_readfile(rootfd, HRD_CONFIG_FILE, HRD_CONFIG_MAX, &len);
	if (!text && errno == ENOENT)
		return 0;
	if (!text && errno == EFBIG) {
		snprintf(err, errsz, "%s: over %u MiB, more than a configuration may hold: it is lines of settings; "
		                     "cut it down, or move it aside", HRD_CONFIG_FILE, HRD_CONFIG_MAX >> 20);
		return -1;
	}
	if (!text) {
		snprintf(err, errsz, "%s: cannot read it: %s", HRD_CONFIG_FILE, strerror(errno));
		return -1;
	}
	int rc = hrd_config_parse(text, len, HRD_CONFIG_FILE, out, err, errsz);
	free(text);
	return rc;
}

int hrd_config_words(const hrd_config *c, const char *module, enum hrd_key key, int (*fn)(void *arg, const char *word),
                     void *arg)
{
	const hrd_scope *m = NULL;
	for (size_t i = 0; module && i < c->nmods; i++)
		if (strcmp(c->mods[i].name, module) == 0)
			m = &c->mods[i];
	char **const *lists[3];
	size_t n = 0;
	if (m && m->set[key]) {
		lists[n++] = &m->set[key];
	} else {
		lists[n++] = &c->all.set[key];
		lists[n++] = &c->all.add[key];
	}
	if (m)
		lists[n++] = &m->add[key];
	for (size_t l = 0; l < n; l++)
		for (size_t i = 0; *lists[l] && (*lists[l])[i]; i++) {
			int rc = fn(arg, (*lists[l])[i]);
			if (rc)
				return rc;
		}
	return 0;
}

int hrd_config_has_sources(const hrd_config *c, const char *module)
{
	for (size_t i = 0; i < c->nmods; i++)
		if (strcmp(c->mods[i].name, module) == 0)
			return c->mods[i].set[HRD_SOURCES] || c->mods[i].add[HRD_SOURCES];
	return 0;
}

int hrd_config_excluded(const hrd_config *c, const char *path)
{
	for (size_t i = 0; c->exclude && c->exclude[i]; i++) {
		size_t len = strlen(c->exclude[i]);
		if (strncmp(path, c->exclude[i], len) == 0 && (path[len] == '\0' || path[len] == '/'))
			return 1;
	}
	return 0;
}

static int is_tcc(void *arg, const char *word)
{
	*(int *)arg = strcmp(word, "tcc") == 0;
	return 0;
}

int hrd_config_quick(const hrd_config *c, const char *module)
{
	int quick = 0; /* the module's "quick =" replaces the project's: the last word says */
	hrd_config_words(c, module, HRD_QUICK, is_tcc, &quick);
	return quick;
}
