/* cli_builds.c: the CLI's commands about one module's builds: show and diff from the history; build, rollback and unpin through the daemon. */
#include <err.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli.h"
#include "json.h"

/* A row, copied out of the history's walk. */
struct found {
	const char *module;
	uint64_t version; /* 0: the module's newest row */
	int ok;
	hrd_build b;
	char *s[7]; /* the copies b's strings point to */
};

static int find_row(const hrd_build *b, void *arg)
{
	struct found *f = arg;
	int published = b->status == HRD_OK || b->status == HRD_REUSED || b->status == HRD_ROLLBACK;
	if (f->version ? !(published && b->version == f->version) : b->status == HRD_REFUSED)
		return 0; /* a refusal is a program's word on a build, not a build */
	f->b = *b;
	const char *from[7] = {b->source_hash, b->command, b->output, b->message, b->artifact, b->cause, b->module};
	for (int i = 0; i < 7; i++)
		if (!(f->s[i] = strdup(from[i])))
			err(EXIT_ERR, "out of memory");
	f->b.source_hash = f->s[0], f->b.command = f->s[1], f->b.output = f->s[2], f->b.message = f->s[3];
	f->b.artifact = f->s[4], f->b.cause = f->s[5], f->b.module = f->s[6];
	return f->ok = 1;
}

/* The compile whose files a row's object came from: a reused or rolled-back row points at the compile of its key. */
static int compile_of(const hrd_build *b, void *arg)
{
	struct found *f = arg;
	if (b->status != HRD_OK || strcmp(b->source_hash, f->b.source_hash) != 0)
		return 0;
	f->b.id = b->id;
	return 1;
}

/* MODULE or MODULE@VERSION: the row, or exit 1 saying there is none. */
static void lookup(hrd_store *s, const char *spec, struct found *f)
{
	char module[256];
	const char *at = strchr(spec, '@');
	memset(f, 0, sizeof *f);
	snprintf(module, sizeof module, "%.*s", (int)(at ? (size_t)(at - spec) : strlen(spec)), spec);
	if (at) {
		char *end;
		errno = 0;
		unsigned long long v = strtoull(at + 1, &end, 10);
		if (errno || *end || !v || end == at + 1)
			hrc_cli_usage_error("a version is a number from 1, not '%s'", at + 1);
		f->version = v;
	}
	if (hrd_store_history(s, module, 0, find_row, f) < 0)
		errx(EXIT_ERR, "%s", hrd_store_error(s));
	if (!f->ok && f->version)
		errx(EXIT_ERR, "%s has no v%llu (see: hotreload history %s)", module, (unsigned long long)f->version, module);
	if (!f->ok)
		errx(EXIT_ERR, "no builds of %s recorded", module);
	if ((f->b.status == HRD_REUSED || f->b.status == HRD_ROLLBACK) && f->b.source_hash[0] &&
	    hrd_store_history(s, module, 0, compile_of, f) < 0)
		errx(EXIT_ERR, "%s", hrd_store_error(s));
}

static void found_free(struct found *f)
{
	for (int i = 0; i < 7; i++)
		free(f->s[i]);
}

/*
 * Stored text as the terminal gets it: lines and tabs as they are, and every
 * byte that could drive the terminal instead (a control character, DEL, a C1
 * control, a byte that is not UTF-8) as \xHH, so that a file or a compiler's
 * message cannot set the title, clear the screen or hide a line.
 */
static void show_text(const void *data, size_t len)
{
	const unsigned char *s = data, *end = s + len;
	while (s < end) {
		unsigned char seq[5] = {0}; /* ended by NULs: a sequence cut short by the end is none */
		memcpy(seq, s, end - s < 4 ? (size_t)(end - s) : 4);
		int n = hrc_utf8_len(seq);
		int control = n == 0 || (n == 1 && ((*s < 0x20 && *s != '\n' && *s != '\t') || *s == 0x7f)) ||
		              (n == 2 && s[0] == 0xc2 && s[1] < 0xa0);
		if (!control) {
			fwrite(s, 1, (size_t)n, stdout);
			s += n;
			continue;
		}
		for (int i = 0; i < (n ? n : 1); i++)
			printf("\\x%02x", *s++);
	}
}

static int print_file(void *arg, const hrd_snapshot *file)
{
	int *n = arg;
	if (hrc_cli_opt.json) {
		printf("%s{", (*n)++ ? "," : "");
		hrc_cli_json_member("", "path", file->path);
		hrc_cli_json_member(",", "hash", file->hash);
		printf(",\"content\":"); /* by its stored length: a NUL does not end it */
		hrc_json_strn(stdout, file->data, file->len);
		printf("}");
		return 0;
	}
	char *path = hrc_cli_printable(file->path);
	printf("\n--- %s (%zu bytes)\n", path, file->len);
	show_text(file->data, file->len);
	if (file->len && ((const char *)file->data)[file->len - 1] != '\n')
		printf("\n\\ no newline at the end\n");
	free(path);
	(*n)++;
	return 0;
}

int hrc_cli_show(int argc, char **argv)
{
	const char *spec = NULL;
	hrc_cli_parse(argc, argv, "h", "show", NULL, &spec);
	if (!spec)
		hrc_cli_usage_error("%s", "show wants MODULE or MODULE@VERSION");
	hrd_store *s = hrc_cli_open_store();
	struct found f;
	lookup(s, spec, &f);
	char when[64];
	hrc_cli_iso_time(when, sizeof when, f.b.started_us);
	int n = 0;
	if (hrc_cli_opt.json) {
		printf("{");
		hrc_cli_json_member("", "module", f.b.module);
		if (f.b.status == HRD_FAILED)
			printf(",\"version\":null");
		else
			printf(",\"version\":%llu", (unsigned long long)f.b.version);
		hrc_cli_json_member(",", "status", hrc_cli_status_name(&f.b));
		hrc_cli_json_member(",", "tier", f.b.quick ? "quick" : "final");
		hrc_cli_json_member(",", "started_at", when);
		printf(",\"duration_ms\":%.3f", (double)f.b.duration_us / 1000.0);
		hrc_cli_json_member(",", "message", f.b.message);
		hrc_cli_json_member(",", "cause", f.b.cause);
		hrc_cli_json_member(",", "command", f.b.command);
		hrc_cli_json_member(",", "artifact", f.b.artifact);
		hrc_cli_json_member(",", "output", f.b.output);
		printf(",\"files\":[");
	} else {
		char *module = hrc_cli_printable(f.b.module), *cause = hrc_cli_printable(f.b.cause), *msg = hrc_cli_printable(f.b.message);
		printf("%s %s%llu  %s  %s  %s  %.1f ms  %s\n", module, f.b.status == HRD_FAILED ? "" : "v",
		       (unsigned long long)f.b.version, hrc_cli_status_name(&f.b), f.b.quick ? "quick" : "final", when, (double)f.b.duration_us / 1000.0, cause);
		if (*msg)
			printf("message  %s\n", msg);
		if (*f.b.artifact)
			printf("object   %s\n", f.b.artifact);
		/* The command is lines of words the daemon quoted; the output is the compiler's, as it wrote it
		 * but for what would drive the terminal. */
		for (const char *l = f.b.command; *l; l += strcspn(l, "\n") + (l[strcspn(l, "\n")] == '\n')) {
			char *line = hrc_cli_printable(l);
			printf("%s  %s\n", l == f.b.command ? "command" : "       ", line);
			free(line);
		}
		if (*f.b.output) {
			printf("\n--- compiler output\n");
			show_text(f.b.output, strlen(f.b.output));
			printf("%s", f.b.output[strlen(f.b.output) - 1] == '\n' ? "" : "\n");
		}
		free(module);
		free(cause);
		free(msg);
	}
	if (hrd_store_snapshots(s, f.b.id, print_file, &n) < 0)
		errx(EXIT_ERR, "%s", hrd_store_error(s));
	if (hrc_cli_opt.json)
		printf("]}\n");
	else if (!n)
		printf("\n(no files recorded for this row)\n");
	found_free(&f);
	hrd_store_close(s);
	return 0;
}

/* The paths of one side of a diff. */
struct side {
	char **path;
	size_t n;
};

static int keep_file(void *arg, const hrd_snapshot *file)
{
	struct side *sd = arg;
	char **p = realloc(sd->path, (sd->n + 1) * sizeof *p);
	if (!p || !(p[sd->n] = strdup(file->path)))
		err(EXIT_ERR, "out of memory");
	sd->path = p;
	sd->n++;
	return 0;
}

/* path's content on one side, written to a file for diff (done stays 0 when that side has no such path). */
struct extract {
	const char *path, *to;
	int done;
};

static int extract_file(void *arg, const hrd_snapshot *file)
{
	struct extract *x = arg;
	if (strcmp(file->path, x->path) != 0)
		return 0;
	FILE *o = fopen(x->to, "we");
	if (!o || fwrite(file->data, 1, file->len, o) != file->len || fclose(o) != 0)
		err(EXIT_ERR, "cannot write %s", x->to);
	return x->done = 1;
}

int hrc_cli_diff(int argc, char **argv)
{
	const char *module = NULL;
	/* MODULE A B: the options and MODULE are parse's, the two versions after them ours */
	hrc_cli_parse(argc > 3 ? argc - 2 : argc, argv, "h", "diff", NULL, &module);
	if (!module || argc < 4)
		hrc_cli_usage_error("%s", "diff wants MODULE A B: two versions of MODULE");
	const char *ver[2] = {argv[argc - 2], argv[argc - 1]};
	hrd_store *s = hrc_cli_open_store();
	struct found f[2];
	struct side sd[2] = {{0}, {0}};
	for (int i = 0; i < 2; i++) {
		char spec[512];
		snprintf(spec, sizeof spec, "%s@%s", module, ver[i]);
		lookup(s, spec, &f[i]);
		if (hrd_store_snapshots(s, f[i].b.id, keep_file, &sd[i]) < 0)
			errx(EXIT_ERR, "%s", hrd_store_error(s));
	}
	const char *tmp = getenv("TMPDIR") && *getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
	char dir[PATH_MAX];
	snprintf(dir, sizeof dir, "%s/hotreload-diff.XXXXXX", tmp);
	if (!mkdtemp(dir))
		err(EXIT_ERR, "cannot make a folder for the diff in %s", tmp);
	int rc = 0;
	/* every path of either side, once, in order */
	for (int i = 0; i < 2; i++)
		for (size_t k = 0; k < sd[i].n; k++) {
			const char *path = sd[i].path[k];
			int seen = 0;
			for (size_t j = 0; i == 1 && j < sd[0].n && !seen; j++)
				seen = strcmp(sd[0].path[j], path) == 0;
			if (seen)
				continue;
			char a[PATH_MAX + 8], b[PATH_MAX + 8], la[600], lb[600];
			snprintf(a, sizeof a, "%s/a", dir);
			snprintf(b, sizeof b, "%s/b", dir);
			struct extract xa = {path, a, 0}, xb = {path, b, 0};
			if (hrd_store_snapshots(s, f[0].b.id, extract_file, &xa) < 0 ||
			    hrd_store_snapshots(s, f[1].b.id, extract_file, &xb) < 0) {
				rmdir(dir);
				errx(EXIT_ERR, "%s", hrd_store_error(s));
			}
			char *shown = hrc_cli_printable(path); /* a label is one line */
			snprintf(la, sizeof la, "a/%s (v%s)", shown, ver[0]);
			snprintf(lb, sizeof lb, "b/%s (v%s)", shown, ver[1]);
			free(shown);
			char *cmd[] = {"diff", "-u", "--label", la, "--label", lb, xa.done ? a : "/dev/null",
			               xb.done ? b : "/dev/null", NULL};
			fflush(stdout);
			pid_t pid = fork();
			if (pid == 0) {
				execvp("diff", cmd);
				_exit(127);
			}
			int st = 0;
			if (pid < 0 || waitpid(pid, &st, 0) < 0 || !WIFEXITED(st) || WEXITSTATUS(st) > 1)
				rc = EXIT_ERR;
			unlink(a);
			unlink(b);
		}
	rmdir(dir);
	if (rc)
		warnx("diff could not compare the files (is diffutils installed, and was the output read to its end?)");
	for (int i = 0; i < 2; i++) {
		for (size_t k = 0; k < sd[i].n; k++)
			free(sd[i].path[k]);
		free(sd[i].path);
		found_free(&f[i]);
	}
	hrd_store_close(s);
	return rc;
}

/* With --json, what build, rollback and unpin did, as one object on one line. */
static void json_outcome(const char *module, uint64_t version, const char *status, const char *message, int pinned)
{
	if (!hrc_cli_opt.json)
		return;
	printf("{");
	hrc_cli_json_member("", "module", module);
	if (version)
		printf(",\"version\":%llu", (unsigned long long)version);
	else
		printf(",\"version\":null");
	hrc_cli_json_member(",", "status", status);
	hrc_cli_json_member(",", "message", message ? message : "");
	printf(",\"pinned\":%s}\n", pinned ? "true" : "false");
}

/* build MODULE: ask the daemon for a compile now, and wait for what it gives. */
int hrc_cli_build(int argc, char **argv)
{
	const char *module = NULL;
	hrc_cli_parse(argc, argv, "h", "build", NULL, &module);
	if (!module)
		hrc_cli_usage_error("%s", "build takes one module");
	if (!hrp_valid_name(module) && !hrp_valid_unit(module))
		hrc_cli_usage_error("'%s' is not a module name (" HRP_NAME_RULE ") nor a translation unit's absolute path",
		                    module);
	char sock[PATH_MAX + 32];
	hrp_reader r = { 0 };
	int fd = hrc_cli_connect_daemon(&r, sock, sizeof sock);
	/* Subscribed first, so that the build's announcement comes here; the status reply closes what was there before. */
	hrp_msg m;
	int rc = hrc_cli_subscribe(fd, module), asked = 0;
	uint64_t had = 0;
	while (rc == 0) {
		rc = hrp_recv(fd, &r, &m, asked ? 1000 : TIMEOUT_MS);
		if (rc == -ETIMEDOUT && asked) {
			/* A long compile, or one that ended with nothing to announce: the status tells. */
			rc = hrp_send(fd, &(hrp_msg){ .type = HRP_STATUS_REQ });
		} else if (rc == 0 && m.type == HRP_STATUS && !asked) {
			if (m.u.status.more)
				continue; /* a long status: its last frame is the answer */
			rc = hrp_send(fd, &(hrp_msg){ .type = HRP_BUILD_REQ, .u.sub = { module } });
			/* Its reply comes once the request is taken: queued or building. Not sent when the daemon said
			 * no and closed: what it said is read next. */
			if (rc == 0)
				(void)hrp_send(fd, &(hrp_msg){ .type = HRP_STATUS_REQ });
			asked = 1;
		} else if (rc == 0 && m.type == HRP_STATUS && asked) {
			hrp_modstat ms;
			for (size_t pos = 0; hrp_status_next(&m, &pos, &ms);) {
				if (strcmp(ms.module, module) != 0 || !strcmp(ms.status, "building") || !strcmp(ms.status, "queued"))
					continue;
				/* over, and nothing announced: pinned, or cut short (the module went) */
				char *why = hrc_cli_printable(ms.message);
				if (!strstr(ms.message, "pinned at")) {
					json_outcome(module, 0, "error", ms.message, 0);
					errx(EXIT_ERR, "the build of %s ended with nothing to serve (%s%s%s)", module, ms.status,
					     *why ? ": " : "", why);
				}
				if (hrc_cli_opt.json)
					json_outcome(module, 0, "recorded", ms.message, 1);
				else
					printf("%s built, not served: %s\n", module, why);
				free(why);
				hrp_reader_free(&r);
				close(fd);
				return 0;
			}
		} else if (rc == 0 && m.type == HRP_BUILD && strcmp(m.u.build.module, module) == 0) {
			if (asked && m.u.build.version > had) {
				if (hrc_cli_opt.json)
					json_outcome(module, m.u.build.version, (m.u.build.kind & ~HRP_KIND_MORE) == HRP_KIND_REUSED ? "reused" : "ok", "", 0);
				else
					printf("%s v%llu built\n", module, (unsigned long long)m.u.build.version);
				hrp_reader_free(&r);
				close(fd);
				return 0;
			}
			had = m.u.build.version > had ? m.u.build.version : had;
		} else if (rc == 0 && m.type == HRP_FAILED && asked && strcmp(m.u.failed.module, module) == 0) {
			char *msg = hrc_cli_printable(m.u.failed.message);
			json_outcome(module, 0, "failed", m.u.failed.message, 0);
			fprintf(stderr, "hotreload: %s: build failed: %s\n", module, msg);
			free(msg);
			hrp_reader_free(&r);
			close(fd);
			return EXIT_ERR;
		} else if (rc == 0 && m.type == HRP_ERROR) {
			json_outcome(module, 0, "error", m.u.error.message, 0);
			errx(EXIT_ERR, "the daemon at %s says: %s", sock, hrc_cli_printable(m.u.error.message));
		}
	}
	errx(EXIT_NODAEMON, "the daemon at %s went away before %s was built", sock, module);
}

/* rollback MODULE [VERSION] [--pin], unpin MODULE: put an earlier build back, or let newer ones through again. */
int hrc_cli_rollback(int argc, char **argv)
{
	static const struct option longopts[] = { { "pin", no_argument, NULL, 'p' },
		                                  { "help", no_argument, NULL, 'h' },
		                                  { "json", no_argument, NULL, 'j' },
		                                  { NULL, 0, NULL, 0 } };
	int unpin = strcmp(argv[0], "unpin") == 0, pin = 0, c;
	optind = 0;
	while ((c = getopt_long(argc, argv, "h", unpin ? longopts + 1 : longopts, NULL)) != -1) {
		if (c == 'p')
			pin = 1;
		else if (c == 'j')
			hrc_cli_opt.json = 1;
		else if (c == 'h')
			hrc_cli_help();
		else
			hrc_cli_usage_error("bad option for '%s'", argv[0]);
	}
	if (optind >= argc || argc - optind > (unpin ? 1 : 2))
		hrc_cli_usage_error(unpin ? "%s takes one module" : "%s takes a module and maybe a version", argv[0]);
	const char *module = argv[optind];
	unsigned long long version = 0;
	if (!hrp_valid_name(module) && !hrp_valid_unit(module))
		hrc_cli_usage_error("'%s' is not a module name (" HRP_NAME_RULE ") nor a translation unit's absolute path",
		                    module);
	if (optind + 1 < argc) {
		char *end;
		errno = 0;
		version = strtoull(argv[optind + 1], &end, 10);
		if (errno || *end || !version || argv[optind + 1][0] == '-')
			hrc_cli_usage_error("a version is a number from 1, not '%s'", argv[optind + 1]);
	}
	char sock[PATH_MAX + 32];
	hrp_reader r = { 0 };
	int fd = hrc_cli_connect_daemon(&r, sock, sizeof sock);
	hrp_msg m;
	int rc = hrc_cli_subscribe(fd, module), asked = 0;
	uint64_t had = 0;
	while (rc == 0) {
		rc = hrp_recv(fd, &r, &m, TIMEOUT_MS);
		if (rc != 0)
			break;
		if (m.type == HRP_ERROR) {
			json_outcome(module, 0, "error", m.u.error.message, 0);
			errx(EXIT_ERR, "the daemon at %s says: %s", sock, hrc_cli_printable(m.u.error.message));
		}
		if (m.type == HRP_STATUS && !asked) {
			if (m.u.status.more)
				continue; /* a long status: its last frame is the answer */
			hrp_msg q = { .type = HRP_ROLLBACK_REQ,
				      .u.rollback = { module, version, unpin ? HRP_UNPIN : pin ? HRP_ROLLBACK_PIN : HRP_ROLLBACK } };
			rc = hrp_send(fd, &q);
			if (rc == 0 && unpin) /* its reply says the unpin is done; a refusal closes first, and is read next */
				(void)hrp_send(fd, &(hrp_msg){ .type = HRP_STATUS_REQ });
			asked = 1;
		} else if (m.type == HRP_STATUS && unpin) {
			hrp_modstat ms;
			for (size_t pos = 0; hrp_status_next(&m, &pos, &ms);)
				if (strcmp(ms.module, module) == 0 && hrc_cli_opt.json)
					json_outcome(module, ms.version, "unpinned", "", 0);
				else if (strcmp(ms.module, module) == 0)
					printf("%s unpinned: v%llu is live\n", module, (unsigned long long)ms.version);
			if (!m.u.status.more)
				break;
		} else if (m.type == HRP_BUILD && strcmp(m.u.build.module, module) == 0) {
			if (asked && !unpin && (m.u.build.kind & ~HRP_KIND_MORE) == HRP_KIND_ROLLBACK && m.u.build.version > had) {
				if (hrc_cli_opt.json)
					json_outcome(module, m.u.build.version, "rollback", "", pin);
				else
					printf("%s v%llu is an earlier build again%s\n", module, (unsigned long long)m.u.build.version,
					       pin ? ", pinned" : "");
				break;
			}
			had = m.u.build.version > had ? m.u.build.version : had;
		}
	}
	hrp_reader_free(&r);
	close(fd);
	if (rc != 0)
		errx(EXIT_NODAEMON, "the daemon at %s went away before it answered", sock);
	return 0;
}

