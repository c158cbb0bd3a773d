/* cdb.c: compile_commands.json read into units (absolute source, folder, command words), and a unit's patch command. */
#include "cdb.h"
#include "json.h"
#include "../proto/hrp.h"
#include "readfile.h"
#include "words.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

char *hrd_cdb_normal(const char *dir, const char *path)
{
	char *joined = NULL;
	if (path[0] != '/' && asprintf(&joined, "%s/%s", dir ? dir : "", path) < 0)
		return NULL;
	const char *p = joined ? joined : path;
	size_t n = strlen(p), o = 0;
	char *out = malloc(n + 2);
	if (!out) {
		free(joined);
		return NULL;
	}
	/* Absolute from here: each ".." takes back the last component, never past the root. */
	while (*p) {
		while (*p == '/')
			p++;
		size_t len = strcspn(p, "/");
		if (len == 2 && p[0] == '.' && p[1] == '.') {
			while (o > 0 && out[o - 1] != '/')
				o--;
			if (o > 0)
				o--;
		} else if (len && !(len == 1 && p[0] == '.')) {
			out[o++] = '/';
			memcpy(out + o, p, len);
			o += len;
		}
		p += len;
	}
	if (!o)
		out[o++] = '/';
	out[o] = '\0';
	free(joined);
	return out;
}

int hrd_cdb_split(const char *cmd, char ***argv, char *err, size_t errsz)
{
	size_t n = 0, len = strlen(cmd);
	char *word = malloc(len + 1);
	*argv = calloc(1, sizeof **argv);
	if (!word || !*argv)
		goto nomem;
	for (const char *p = cmd;;) {
		while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
			p++;
		if (!*p)
			break;
		size_t o = 0;
		const char *start = p;
		while (*p && *p != ' ' && *p != '\t' && *p != '\n' && *p != '\r') {
			if (*p == '\\') { /* the next character as it is; a backslash-newline is no character */
				if (p[1] == '\n')
					p += 2;
				else if (p[1])
					word[o++] = *++p, p++;
				else
					p++;
			} else if (*p == '\'') {
				const char *end = strchr(p + 1, '\'');
				if (!end) {
					snprintf(err, errsz, "the ' opened at character %zu of the command does not close",
					         (size_t)(p - cmd) + 1);
					goto bad;
				}
				memcpy(word + o, p + 1, (size_t)(end - p - 1));
				o += (size_t)(end - p - 1);
				p = end + 1;
			} else if (*p == '"') {
				const char *q = p + 1;
				for (; *q && *q != '"'; q++) {
					/* in double quotes a backslash escapes only $ ` " \ and a newline */
					if (*q == '\\' && q[1] && strchr("$`\"\\\n", q[1])) {
						if (q[1] != '\n')
							word[o++] = q[1];
						q++;
					} else {
						word[o++] = *q;
					}
				}
				if (!*q) {
					snprintf(err, errsz, "the \" opened at character %zu of the command does not close",
					         (size_t)(p - cmd) + 1);
					goto bad;
				}
				p = q + 1;
			} else {
				word[o++] = *p++;
			}
		}
		(void)start;
		word[o] = '\0';
		if (n >= HRD_CDB_WORDS) {
			snprintf(err, errsz, "the command has more than %u words", HRD_CDB_WORDS);
			goto bad;
		}
		if (hrd_words_add(argv, &n, word) < 0)
			goto nomem;
	}
	free(word);
	return 0;
nomem:
	snprintf(err, errsz, "out of memory");
bad:
	free(word);
	hrd_words_free(*argv);
	*argv = NULL;
	return -1;
}

static void unit_free(hrd_cdb_unit *u);

void hrd_cdb_free(hrd_cdb *c)
{
	for (size_t i = 0; i < c->n; i++)
		unit_free(&c->u[i]);
	free(c->u);
	*c = (hrd_cdb){0};
}

static int by_file(const void *a, const void *b)
{
	const hrd_cdb_unit *x = a, *y = b;
	return strcmp(x->file, y->file);
}

/* By file, then by place in the file: qsort need not keep equal entries in order (glibc's since 2.37 does not). */
static int by_file_then_entry(const void *a, const void *b)
{
	const hrd_cdb_unit *x = a, *y = b;
	int c = strcmp(x->file, y->file);
	return c ? c : (x->entry > y->entry) - (x->entry < y->entry);
}

const hrd_cdb_unit *hrd_cdb_find(const hrd_cdb *c, const char *file)
{
	hrd_cdb_unit key = {.file = (char *)file};
	return c->n ? bsearch(&key, c->u, c->n, sizeof *c->u, by_file) : NULL;
}

/* One entry of the array into u. 0, or -1 with "LINE:COL: ..." in err. */
static int entry(const hrd_json *v, const char *dbdir, hrd_cdb_unit *u, char *err, size_t errsz)
{
	char why[300];
	if (v->type != HRD_JSON_OBJECT) {
		snprintf(err, errsz, "%u:%u: an entry is %s; each entry is an object {\"directory\", \"file\", "
		         "\"arguments\" or \"command\"}", v->line, v->col, hrd_json_what(v));
		return -1;
	}
	const hrd_json *dir = hrd_json_get(v, "directory"), *file = hrd_json_get(v, "file"),
	               *args = hrd_json_get(v, "arguments"), *cmd = hrd_json_get(v, "command");
	const hrd_json *bad = dir && dir->type != HRD_JSON_STRING ? dir : file && file->type != HRD_JSON_STRING ? file
	                      : cmd && cmd->type != HRD_JSON_STRING ? cmd : args && args->type != HRD_JSON_ARRAY ? args : NULL;
	if (bad) {
		snprintf(err, errsz, "%u:%u: \"%s\" is %s; it must be %s", bad->line, bad->col, bad->key, hrd_json_what(bad),
		         bad == args ? "an array of strings" : "a string");
		return -1;
	}
	if (!dir || !file || !*dir->str || !*file->str || (!args && !cmd)) {
		snprintf(err, errsz, "%u:%u: the entry lacks %s; each entry needs \"directory\", \"file\" and \"arguments\" "
		         "or \"command\"", v->line, v->col, !dir || !*dir->str ? "\"directory\"" : !file || !*file->str ? "\"file\""
		         : "\"arguments\" and \"command\"");
		return -1;
	}
	/* A relative directory is the database's own folder's (the specification leaves it open; CMake never writes one). */
	if (!(u->dir = hrd_cdb_normal(dbdir, dir->str)) || !(u->file = hrd_cdb_normal(u->dir, file->str)))
		goto nomem;
	if (!hrp_valid_unit(u->file)) {
		/* the unit's name on the wire: its printable beginning is said, never a control character into the log */
		int k = 0;
		while (k < 200 && (unsigned char)u->file[k] >= 0x20 && u->file[k] != 0x7f)
			k++;
		snprintf(err, errsz, "%u:%u: \"file\" names %.*s%s, which cannot be a unit: its absolute path must not be / "
		         "alone, hold a control character, nor pass %u bytes", v->line, v->col, k, u->file,
		         u->file[k] ? "..." : "", HRP_UNIT_MAX);
		return -1;
	}
	if (args) {
		size_t n = 0;
		if (!args->n) {
			snprintf(err, errsz, "%u:%u: \"arguments\" is empty; it is the compiler and its arguments", args->line,
			         args->col);
			return -1;
		}
		if (!(u->argv = calloc(1, sizeof *u->argv)))
			goto nomem;
		for (size_t i = 0; i < args->n; i++) {
			const hrd_json *a = args->kids[i];
			if (a->type != HRD_JSON_STRING) {
				snprintf(err, errsz, "%u:%u: an argument is %s; \"arguments\" is an array of strings", a->line, a->col,
				         hrd_json_what(a));
				return -1;
			}
			if (n >= HRD_CDB_WORDS) {
				snprintf(err, errsz, "%u:%u: more than %u arguments", a->line, a->col, HRD_CDB_WORDS);
				return -1;
			}
			if (hrd_words_add(&u->argv, &n, a->str) < 0)
				goto nomem;
		}
	} else if (hrd_cdb_split(cmd->str, &u->argv, why, sizeof why) < 0) {
		snprintf(err, errsz, "%u:%u: \"command\": %s; quote it as a shell would", cmd->line, cmd->col, why);
		return -1;
	} else if (!u->argv[0]) {
		snprintf(err, errsz, "%u:%u: \"command\" is empty; it is the compiler and its arguments", cmd->line, cmd->col);
		return -1;
	}
	return 0;
nomem:
	snprintf(err, errsz, "out of memory");
	return -1;
}

static void unit_free(hrd_cdb_unit *u)
{
	free(u->file);
	free(u->dir);
	hrd_words_free(u->argv);
	*u = (hrd_cdb_unit){0};
}

/*
 * Whether u's command takes flags from a response file (@FILE): left out, and said in out (the first of them), rather
 * than compiled without the flags the build read there. Reading it would be one more file to bound and trust, and
 * CMake and Ninja write one only when told to, or for a command past the system's limit.
 */
static int response_file(const hrd_cdb_unit *u, const hrd_json *v, const char *path, hrd_cdb *out)
{
	for (size_t i = 1; u->argv[i]; i++) {
		if (u->argv[i][0] != '@')
			continue;
		if (!out->refused++)
			snprintf(out->why, sizeof out->why, "%s:%u:%u: %s uses a response file, %.200s: not supported, so it is "
			         "not patched; have the build write its flags into the database (CMake: set "
			         "CMAKE_C_USE_RESPONSE_FILE_FOR_INCLUDES OFF)", path, v->line, v->col, u->file,
			         u->argv[i]);
		return 1;
	}
	return 0;
}

int hrd_cdb_parse(const char *text, size_t n, const char *path, hrd_cdb *out, char *err, size_t errsz)
{
	char why[600], *dbdir = NULL;
	const char *slash = strrchr(path, '/');
	*out = (hrd_cdb){0};
	hrd_json *top = hrd_json_parse(text, n, HRD_CDB_VALUES(n), why, sizeof why);
	if (!top) {
		snprintf(err, errsz, "%s:%s; fix it, or let the build write it again", path, why);
		return -1;
	}
	if (top->type != HRD_JSON_ARRAY) {
		snprintf(err, errsz, "%s:%u:%u: the database is %s; a compile database is an array of entries", path, top->line,
		         top->col, hrd_json_what(top));
		goto fail;
	}
	if (top->n > HRD_CDB_UNITS) {
		snprintf(err, errsz, "%s: more than %u entries; hotreloadd follows at most that many units", path, HRD_CDB_UNITS);
		goto fail;
	}
	if (!(dbdir = slash ? strndup(path, slash == path ? 1 : (size_t)(slash - path)) : strdup("/")) ||
	    (top->n && !(out->u = calloc(top->n, sizeof *out->u)))) {
		snprintf(err, errsz, "%s: out of memory", path);
		goto fail;
	}
	for (size_t i = 0; i < top->n; i++) {
		hrd_cdb_unit *u = &out->u[out->n++];
		u->entry = i;
		if (entry(top->kids[i], dbdir, u, why, sizeof why) < 0) {
			snprintf(err, errsz, "%s:%s", path, why);
			goto fail;
		}
		if (response_file(u, top->kids[i], path, out)) {
			out->n--;
			unit_free(u);
		}
	}
	if (out->n)
		qsort(out->u, out->n, sizeof *out->u, by_file_then_entry);
	/* One unit per file: the first entry of a file wins (a build that compiles a file twice, for two targets). */
	size_t kept = 0;
	for (size_t i = 0; i < out->n; i++) {
		if (kept && strcmp(out->u[kept - 1].file, out->u[i].file) == 0) {
			unit_free(&out->u[i]);
			continue;
		}
		out->u[kept++] = out->u[i];
	}
	out->n = kept;
	free(dbdir);
	hrd_json_free(top);
	return 0;
fail:
	free(dbdir);
	hrd_json_free(top);
	hrd_cdb_free(out);
	return -1;
}

int hrd_cdb_load(int fd, const char *path, hrd_cdb *out, char *err, size_t errsz)
{
	size_t len;
	char *text = hrd_readfd(fd, HRD_CDB_MAX, &len);
	if (!text) {
		snprintf(err, errsz, "%s: cannot read the compile database: %s%s", path, strerror(errno),
		         errno == EFBIG ? " (over 64 MiB)" : "");
		*out = (hrd_cdb){0};
		return -1;
	}
	int rc = hrd_cdb_parse(text, len, path, out, err, errsz);
	free(text);
	return rc;
}

/* Options of gcc and clang whose value is the next word. */
static int takes_value(const char *a)
{
	static const char *const opts[] = {"-o", "--output", "-MF", "-MT", "-MQ", "-MJ", "-I", "-D", "-U", "-include", "-imacros",
	                                   "-isystem", "-iquote", "-idirafter", "-iprefix", "-iwithprefix",
	                                   "-iwithprefixbefore", "-isysroot", "-imultilib", "-x", "-L", "-l",
	                                   "-Xlinker", "-Xpreprocessor", "-Xassembler", "-Xclang", "-aux-info",
	                                   "-target", "--param", "-arch", "-T", "-u", "-z", "--sysroot"};
	for (size_t i = 0; i < sizeof opts / sizeof *opts; i++)
		if (strcmp(a, opts[i]) == 0)
			return 1;
	return 0;
}

/*
 * Outputs and link options: what a patch compile leaves out (-o, -MF... with their value when it is the next word).
 * Every option that writes a file of the build's goes: clang's -MJ, --output, and -Wp,-MD,FILE (Kbuild's).
 */
static int dropped(const char *a)
{
	static const char *const alone[] = {"-c", "-S", "-E", "-MD", "-MMD", "-M", "-MM", "-MP", "-MG", "--output", "-shared",
	                                    "-static", "-rdynamic", "-pie", "-no-pie"};
	static const char *const prefix[] = {"-o", "--output=", "-MF", "-MT", "-MQ", "-MJ", "-Wp,-M", "-L", "-l", "-Wl,",
	                                     "-Xlinker"};
	for (size_t i = 0; i < sizeof alone / sizeof *alone; i++)
		if (strcmp(a, alone[i]) == 0)
			return 1;
	for (size_t i = 0; i < sizeof prefix / sizeof *prefix; i++)
		if (strncmp(a, prefix[i], strlen(prefix[i])) == 0)
			return 1;
	return 0;
}

char **hrd_cdb_patch_argv(const hrd_cdb_unit *u, const char *obj, const char *dep)
{
	char **argv = NULL;
	size_t n = 0;
	int rc = hrd_words_add(&argv, &n, u->argv[0]);
	for (size_t i = 1; rc == 0 && u->argv[i]; i++) {
		const char *a = u->argv[i], *val = takes_value(a) ? u->argv[i + 1] : NULL;
		if (a[0] != '-') {
			/* an input: the unit's own source stays; others (objects, other sources of a compile-and-link) go */
			char *abs = hrd_cdb_normal(u->dir, a);
			if (!abs)
				rc = -1;
			else if (strcmp(abs, u->file) == 0)
				rc = hrd_words_add(&argv, &n, a);
			free(abs);
			continue;
		}
		if (!dropped(a)) {
			rc = hrd_words_add(&argv, &n, a);
			if (rc == 0 && val)
				rc = hrd_words_add(&argv, &n, val);
		}
		if (val)
			i++;
	}
	const char *tail[] = {"-c", "-MMD", "-MF", dep, "-o", obj, NULL};
	for (size_t i = 0; rc == 0 && tail[i]; i++)
		rc = hrd_words_add(&argv, &n, tail[i]);
	if (rc < 0) {
		hrd_words_free(argv);
		return NULL;
	}
	return argv;
}
