/* cli.c: hotreload, the command line: status from the daemon; history, stats, show and diff from the database. */
#include <dirent.h>
#include <err.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "../daemon/fsinfo.h"
#include "hotreload.h"
#include "json.h"

#define STR_(x) #x
#define STR(x) STR_(x)
#define STATUS_FRAMES_MAX 1024 /* a status over 1 GiB is not a status */
#define VERSION STR(HOTRELOAD_VERSION_MAJOR) "." STR(HOTRELOAD_VERSION_MINOR) "." STR(HOTRELOAD_VERSION_PATCH)

static const char usage_text[] =
	"usage: hotreload [--socket PATH] [--state-dir DIR] COMMAND [OPTIONS] [ARGS]\n"
	"\n"
	"commands:\n"
	"  status [--json]                     the daemon, its watcher, modules and clients\n"
	"  history [MODULE] [-n N] [--json]    builds, newest first (-n 0: all; default 20, or all with --json)\n"
	"  stats [MODULE] [--json]             build counts, success rate, compile and save-to-live times\n"
	"  show MODULE[@VERSION] [--json]      a build: its record, the compiler's output, the files that went in\n"
	"  diff MODULE A B                     what changed in the files between versions A and B (unified diff)\n"
	"  build MODULE [--json]               compile MODULE now, whatever its key, and wait for the result\n"
	"  rollback MODULE [VERSION] [--pin] [--json]\n"
	"                                      put VERSION (default: the one before) back as a new version;\n"
	"                                      --pin keeps it live until unpin\n"
	"  unpin MODULE [--json]               let MODULE's newer builds through again\n"
	"  log [-f] [-q] [--json]              the daemon's recent log lines (builds started, done, failed;\n"
	"                                      clients, loads, refusals); -f: and each new one, as it comes\n"
	"  gc [--json]                         remove the objects no longer kept, and compact the history\n"
	"  stop [--json]                       stop the daemon (as SIGTERM does), and wait until it has\n"
	"  wait MODULE [--version N] [--timeout S]\n"
	"                                      until MODULE has a good build (of version N or newer);\n"
	"                                      exit 1 if S seconds pass first\n"
	"\n"
	"The state dir is --state-dir, else $HOTRELOAD_STATE_DIR, else the first .hotreload/\n"
	"found going up from the current directory. The socket is --socket, else\n"
	"$HOTRELOAD_SOCKET, else STATE_DIR/hotreloadd.sock.\n"
	"Exit status: 0 success, 1 error, 2 usage error, 3 no daemon answers.\n";

struct hrc_cli_opt hrc_cli_opt;

void hrc_cli_help(void)
{
	fputs(usage_text, stdout);
	exit(0);
}

void hrc_cli_usage_error(const char *fmt, const char *arg)
{
	fprintf(stderr, "hotreload: ");
	fprintf(stderr, fmt, arg);
	fprintf(stderr, "\n%s", usage_text);
	exit(EXIT_USAGE);
}

/* DIR/.hotreload when it is a folder: a new string, or NULL. */
static char *state_in(const char *dir)
{
	char cand[PATH_MAX + 16];
	struct stat st;
	snprintf(cand, sizeof cand, "%s/.hotreload", strcmp(dir, "/") ? dir : "");
	return stat(cand, &st) == 0 && S_ISDIR(st.st_mode) ? strdup(cand) : NULL;
}

/*
 * The one SUB/.hotreload directly under dir (SUB not hidden, not a link), as
 * the library looks for its daemon from a project's root; NULL for none, and
 * for several it exits, naming them.
 */
static char *state_below(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	char *found = NULL, sub[PATH_MAX], all[1024] = "";
	int n = 0;
	for (int i = 0; d && i < 4096 && (e = readdir(d)); i++) {
		struct stat st;
		char *s;
		if (e->d_name[0] == '.' || snprintf(sub, sizeof sub, "%s/%s", dir, e->d_name) >= (int)sizeof sub ||
		    lstat(sub, &st) < 0 || !S_ISDIR(st.st_mode) || !(s = state_in(sub)))
			continue;
		if (strlen(all) + strlen(s) + 3 < sizeof all)
			snprintf(all + strlen(all), sizeof all - strlen(all), "%s%s", n ? ", " : "", s);
		n++;
		free(found);
		found = s;
	}
	if (d)
		closedir(d);
	if (n > 1)
		errx(EXIT_ERR, "several state dirs under %s: %s: pass --state-dir DIR (or set HOTRELOAD_STATE_DIR)", dir, all);
	return found;
}

/* --state-dir, $HOTRELOAD_STATE_DIR, else .hotreload/ here, directly under here, or in the nearest parent. */
static char *state_dir(void)
{
	const char *s = hrc_cli_opt.state_dir ? hrc_cli_opt.state_dir : getenv("HOTRELOAD_STATE_DIR");
	if (s && *s)
		return strdup(s);
	char dir[PATH_MAX];
	if (!getcwd(dir, sizeof dir - sizeof "/.hotreload"))
		return NULL;
	char *here = state_in(dir);
	if (here || (here = state_below(dir)))
		return here;
	for (;;) {
		char cand[PATH_MAX + 16];
		struct stat st;
		snprintf(cand, sizeof cand, "%s/.hotreload", strcmp(dir, "/") ? dir : "");
		if (stat(cand, &st) == 0 && S_ISDIR(st.st_mode))
			return strdup(cand);
		char *slash = strrchr(dir, '/');
		if (!slash || slash == dir) {
			if (strcmp(dir, "/") == 0)
				return NULL;
			strcpy(dir, "/");
		} else {
			*slash = '\0';
		}
	}
}

static char *need_state_dir(void)
{
	char *d = state_dir();
	if (!d)
		errx(EXIT_ERR, "no .hotreload/ in the current directory, a folder directly under it, or any parent: "
		               "run this inside a watched project, or pass --state-dir DIR (or set HOTRELOAD_STATE_DIR)");
	return d;
}

hrd_store *hrc_cli_open_store(void)
{
	char *dir = need_state_dir(), path[PATH_MAX + 16], e[1024];
	snprintf(path, sizeof path, "%s/history.db", dir);
	free(dir);
	hrd_store *s;
	if (hrd_store_open(path, HRD_STORE_READONLY, &s, e, sizeof e) < 0)
		errx(EXIT_ERR, "%s", e);
	return s;
}

/* ---- output helpers ---- */

/*
 * The first line of s with control characters as '?': text from a database
 * or a daemon must not drive the terminal (escape sequences). Caller frees.
 */
char *hrc_cli_printable(const char *s)
{
	char *c = strndup(s, strcspn(s, "\n"));
	if (!c)
		err(EXIT_ERR, "out of memory");
	for (char *p = c; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = '?';
	return c;
}


/* Colours: on a terminal unless NO_COLOR is set or TERM is dumb; CLICOLOR_FORCE=1 asks for them anywhere. */
static int colour(void)
{
	static int on = -1;
	if (on < 0) {
		const char *force = getenv("CLICOLOR_FORCE"), *no = getenv("NO_COLOR"), *term = getenv("TERM");
		if (force && *force && strcmp(force, "0") != 0)
			on = 1;
		else
			on = !(no && *no) && isatty(STDOUT_FILENO) && !(term && strcmp(term, "dumb") == 0);
	}
	return on;
}

/* The SGR colour of a status word: good green, reused cyan, bad red, refused yellow, under way blue. */
static const char *colour_of(const char *word)
{
	static const struct {
		const char *word, *sgr;
	} map[] = {{"ok", "32"}, {"reused", "36"}, {"rollback", "36"}, {"failed", "31"}, {"conflict", "31"},
	           {"refused", "33"}, {"skipped", "33"}, {"removed", "33"}, {"building", "34"}, {"queued", "34"}};
	for (size_t i = 0; i < sizeof map / sizeof *map; i++)
		if (strcmp(word, map[i].word) == 0)
			return map[i].sgr;
	return NULL;
}

void hrc_cli_cell(struct table *t, const char *s)
{
	if (t->n == t->cap) {
		t->cap = t->cap ? 2 * t->cap : 64;
		if (!(t->cell = realloc(t->cell, t->cap * sizeof *t->cell)))
			err(EXIT_ERR, "out of memory");
	}
	t->cell[t->n++] = hrc_cli_printable(s);
}

void hrc_cli_table_print(struct table *t)
{
	size_t w[16] = { 0 };
	for (size_t i = 0; i < t->n; i++) {
		size_t c = i % t->cols, l = strlen(t->cell[i]);
		if (c < 16 && l > w[c])
			w[c] = l;
	}
	for (size_t i = 0; i < t->n; i++) {
		size_t c = i % t->cols;
		const char *sgr = t->status && c == t->status && i >= t->cols && colour() ? colour_of(t->cell[i]) : NULL;
		if (sgr) /* the escape takes no room: pad after it */
			printf("\033[%sm%s\033[0m", sgr, t->cell[i]);
		else
			printf("%s", t->cell[i]);
		if (c + 1 == t->cols)
			printf("\n");
		else
			printf("%*s  ", (int)(w[c] - strlen(t->cell[i])), "");
		free(t->cell[i]);
	}
	free(t->cell);
}

/* ,"key":"value" with the value escaped; the first member of an object passes sep "". */
void hrc_cli_json_member(const char *sep, const char *key, const char *value)
{
	printf("%s\"%s\":", sep, key);
	hrc_json_str(stdout, value);
}

void hrc_cli_iso_time(char *buf, size_t n, int64_t us)
{
	int64_t ms = us / 1000 - (us % 1000 < 0), sec = ms / 1000 - (ms % 1000 < 0); /* floor, for times before 1970 */
	time_t t = (time_t)sec;
	struct tm tm;
	gmtime_r(&t, &tm);
	size_t l = strftime(buf, n, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(buf + l, n - l, ".%03dZ", (int)(ms - sec * 1000));
}

/* ---- commands ---- */

void hrc_cli_parse(int argc, char **argv, const char *shortopts, const char *what, long long *n, const char **arg)
{
	static const struct option longopts[] = { { "json", no_argument, NULL, 'j' },
		                                  { "help", no_argument, NULL, 'h' },
		                                  { NULL, 0, NULL, 0 } };
	int c;
	optind = 0; /* 0, not 1: glibc then forgets the state of the global options' parse */
	while ((c = getopt_long(argc, argv, shortopts, longopts, NULL)) != -1) {
		char *end;
		switch (c) {
		case 'j': hrc_cli_opt.json = 1; break;
		case 'h': fputs(usage_text, stdout); exit(0);
		case 'n':
			errno = 0;
			*n = strtoll(optarg, &end, 10);
			if (errno || *end || *n < 0 || end == optarg)
				hrc_cli_usage_error("-n wants a count of 0 or more, not '%s'", optarg);
			break;
		default: hrc_cli_usage_error("bad option for '%s'", what);
		}
	}
	if (optind < argc && arg)
		*arg = argv[optind++];
	if (optind < argc)
		hrc_cli_usage_error("unexpected argument '%s'", argv[optind]);
}

/* The schema allows only known statuses; this guards against a hand-edited row. */
const char *hrc_cli_status_name(const hrd_build *b)
{
	const char *s = hrd_status_name(b->status);
	return s ? s : "unknown";
}

struct rows {
	struct table t; /* human output */
	int n;
};

static int print_row(const hrd_build *b, void *arg)
{
	struct rows *r = arg;
	char when[64], ver[32], dur[32];
	hrc_cli_iso_time(when, sizeof when, b->started_us);
	double ms = (double)b->duration_us / 1000.0;
	if (hrc_cli_opt.json) {
		printf("%s{", r->n++ ? ",\n " : "");
		hrc_cli_json_member("", "module", b->module);
		if (b->status == HRD_FAILED)
			printf(",\"version\":null");
		else
			printf(",\"version\":%llu", (unsigned long long)b->version);
		hrc_cli_json_member(",", "status", hrc_cli_status_name(b));
		hrc_cli_json_member(",", "tier", b->quick ? "quick" : "final");
		hrc_cli_json_member(",", "started_at", when);
		printf(",\"duration_ms\":%.3f", ms);
		hrc_cli_json_member(",", "message", b->message);
		hrc_cli_json_member(",", "source_hash", b->source_hash);
		hrc_cli_json_member(",", "cause", b->cause);
		hrc_cli_json_member(",", "artifact", b->artifact);
		printf("}");
		return 0;
	}
	r->n++;
	snprintf(ver, sizeof ver, "%llu", (unsigned long long)b->version);
	snprintf(dur, sizeof dur, "%.1f ms", ms);
	hrc_cli_cell(&r->t, b->module);
	hrc_cli_cell(&r->t, b->status == HRD_FAILED ? "-" : ver);
	hrc_cli_cell(&r->t, hrc_cli_status_name(b));
	hrc_cli_cell(&r->t, b->quick ? "quick" : "final");
	hrc_cli_cell(&r->t, when);
	hrc_cli_cell(&r->t, dur);
	hrc_cli_cell(&r->t, b->message);
	return 0;
}

static int cmd_history(int argc, char **argv)
{
	long long n = -1;
	const char *module = NULL;
	hrc_cli_parse(argc, argv, "n:h", "history", &n, &module);
	if (n < 0)
		n = hrc_cli_opt.json ? 0 : 20;
	hrd_store *s = hrc_cli_open_store();
	struct rows r = { .t = { .cols = 7, .status = 2 } };
	const char *head[] = { "MODULE", "VERSION", "STATUS", "TIER", "STARTED (UTC)", "DURATION", "MESSAGE" };
	for (size_t i = 0; !hrc_cli_opt.json && i < 7; i++)
		hrc_cli_cell(&r.t, head[i]);
	if (hrc_cli_opt.json)
		printf("[");
	if (hrd_store_history(s, module, n, print_row, &r) < 0)
		errx(EXIT_ERR, "%s", hrd_store_error(s));
	hrd_store_close(s);
	if (hrc_cli_opt.json) {
		printf("]\n");
		return 0;
	}
	hrc_cli_table_print(&r.t);
	if (!r.n)
		fprintf(stderr, "hotreload: no builds%s%s recorded\n", module ? " of " : "", module ? module : "");
	return 0;
}

/* One stats object's members (after its opening brace). */
static void stats_json(const hrd_stats *st)
{
	printf("\"total_builds\":%lld,\"successful\":%lld,\"failed\":%lld,\"success_rate\":%.2f,"
	       "\"avg_compile_ms\":%.3f,\"compile_p50_ms\":%.3f,\"compile_p95_ms\":%.3f,"
	       "\"reused\":%lld,\"rollbacks\":%lld,\"refused\":%lld,\"lives\":%lld",
	       (long long)st->total_builds, (long long)st->successful, (long long)st->failed, st->success_rate,
	       st->avg_compile_ms, st->compile_p50_ms, st->compile_p95_ms, (long long)st->reused,
	       (long long)st->rollbacks, (long long)st->refused, (long long)st->lives);
	if (st->lives)
		printf(",\"save_to_live_p50_ms\":%.3f,\"save_to_live_p95_ms\":%.3f", st->live_p50_ms, st->live_p95_ms);
	else
		printf(",\"save_to_live_p50_ms\":null,\"save_to_live_p95_ms\":null");
	/* the quick tier's apart: the figures above are of final builds only */
	printf(",\"quick_builds\":%lld,\"quick_successful\":%lld,\"quick_lives\":%lld", (long long)st->quick_builds,
	       (long long)st->quick_successful, (long long)st->quick_lives);
	if (st->quick_lives)
		printf(",\"save_to_live_quick_p50_ms\":%.3f,\"save_to_live_quick_p95_ms\":%.3f", st->quick_live_p50_ms,
		       st->quick_live_p95_ms);
	else
		printf(",\"save_to_live_quick_p50_ms\":null,\"save_to_live_quick_p95_ms\":null");
}

struct per_module {
	hrd_store *s;
	struct table t;
	int n;
};

static int module_stats(void *arg, const char *module)
{
	struct per_module *p = arg;
	hrd_stats st;
	if (hrd_store_stats(p->s, module, &st) < 0)
		errx(EXIT_ERR, "%s", hrd_store_error(p->s));
	if (hrc_cli_opt.json) {
		printf("%s{", p->n++ ? "," : "");
		hrc_cli_json_member("", "module", module);
		printf(",");
		stats_json(&st);
		printf("}");
		return 0;
	}
	char builds[64], rate[32], compile[64], live[64], refused[32];
	snprintf(builds, sizeof builds, "%lld", (long long)st.total_builds);
	snprintf(rate, sizeof rate, "%.0f%%", st.success_rate);
	snprintf(compile, sizeof compile, "%.1f / %.1f", st.compile_p50_ms, st.compile_p95_ms);
	if (st.lives)
		snprintf(live, sizeof live, "%.1f / %.1f", st.live_p50_ms, st.live_p95_ms);
	else
		snprintf(live, sizeof live, "-");
	snprintf(refused, sizeof refused, "%lld", (long long)st.refused);
	const char *row[] = {module, builds, rate, compile, live, refused};
	for (size_t i = 0; i < 6; i++)
		hrc_cli_cell(&p->t, row[i]);
	p->n++;
	return 0;
}

static int cmd_stats(int argc, char **argv)
{
	const char *module = NULL;
	hrc_cli_parse(argc, argv, "h", "stats", NULL, &module);
	hrd_store *s = hrc_cli_open_store();
	hrd_stats st;
	if (hrd_store_stats(s, module, &st) < 0)
		errx(EXIT_ERR, "%s", hrd_store_error(s));
	struct per_module p = {s, {.cols = 6}, 0};
	if (hrc_cli_opt.json) {
		printf("{");
		stats_json(&st);
		if (!module) { /* and each module's */
			printf(",\"modules\":[");
			if (hrd_store_modules(s, module_stats, &p) < 0)
				errx(EXIT_ERR, "%s", hrd_store_error(s));
			printf("]");
		}
		printf("}\n");
		hrd_store_close(s);
		return 0;
	}
	printf("builds        %lld (%lld ok, %lld failed)\n", (long long)st.total_builds,
	       (long long)st.successful, (long long)st.failed);
	printf("success rate  %.1f%%\n", st.success_rate);
	printf("compile       avg %.1f ms, p50 %.1f ms, p95 %.1f ms\n", st.avg_compile_ms, st.compile_p50_ms,
	       st.compile_p95_ms);
	if (st.lives)
		printf("save to live  p50 %.1f ms, p95 %.1f ms (%lld builds a client reported live)\n", st.live_p50_ms,
		       st.live_p95_ms, (long long)st.lives);
	printf("reused        %lld\nrollbacks     %lld\nrefused       %lld\n", (long long)st.reused,
	       (long long)st.rollbacks, (long long)st.refused);
	if (st.quick_builds) /* the quick tier's apart: the lines above are of final builds only */
		printf("quick builds  %lld (%lld ok)\n", (long long)st.quick_builds, (long long)st.quick_successful);
	if (st.quick_lives)
		printf("quick to live p50 %.1f ms, p95 %.1f ms (%lld quick builds a client reported live)\n",
		       st.quick_live_p50_ms, st.quick_live_p95_ms, (long long)st.quick_lives);
	if (!module) {
		const char *head[] = {"MODULE", "BUILDS", "OK", "COMPILE p50/p95 ms", "LIVE p50/p95 ms", "REFUSED"};
		for (size_t i = 0; i < 6; i++)
			hrc_cli_cell(&p.t, head[i]);
		if (hrd_store_modules(s, module_stats, &p) < 0)
			errx(EXIT_ERR, "%s", hrd_store_error(s));
		if (p.n) {
			printf("\n");
			hrc_cli_table_print(&p.t);
		} else {
			for (size_t i = 0; i < p.t.n; i++)
				free(p.t.cell[i]);
			free(p.t.cell);
		}
	}
	hrd_store_close(s);
	return 0;
}

/* Send m (NULL: nothing, the reply goes on) and wait for a reply of type want; exits with a message on failure. */
static void exchange(int fd, hrp_reader *r, const char *sock, const hrp_msg *m, int want, hrp_msg *reply)
{
	int rc = m ? hrp_send(fd, m) : 0;
	/* Announcements may come before the reply: they are not for us. */
	do
		rc = rc == 0 ? hrp_recv(fd, r, reply, TIMEOUT_MS) : rc;
	while (rc == 0 && (reply->type == HRP_BUILD || reply->type == HRP_FAILED));
	if (rc == -ETIMEDOUT || rc == -ECONNRESET || rc == -EPIPE)
		errx(EXIT_NODAEMON, "no daemon answers at %s (%s)", sock,
		     rc == -ETIMEDOUT ? "no reply within 5 s" : "it closed the connection");
	if (rc == -EPROTONOSUPPORT)
		errx(EXIT_ERR, "the daemon at %s speaks protocol version %u, this hotreload %u: use the "
		               "hotreload that matches the running hotreloadd",
		     sock, reply->u.hello.version, HRP_VERSION);
	if (rc < 0)
		errx(EXIT_ERR, "bad reply from the daemon at %s: %s", sock, r->why ? r->why : strerror(-rc));
	if (reply->type == HRP_ERROR)
		errx(EXIT_ERR, "the daemon at %s says: %s", sock, hrc_cli_printable(reply->u.error.message));
	if (reply->type != want)
		errx(EXIT_ERR, "bad reply from the daemon at %s: %s where %s was due", sock,
		     hrp_type_name(reply->type), hrp_type_name((unsigned)want));
}

/* Why the state dir is not ROOT/.hotreload: the daemon's own reasoning (fsinfo.c), told again. */
static void state_reason(const char *root, const char *dir, char *why, size_t n)
{
	char usual[PATH_MAX + 16];
	hrd_fsfacts f;
	why[0] = '\0';
	snprintf(usual, sizeof usual, "%s/.hotreload", root);
	if (strcmp(dir, usual) == 0)
		return;
	if (hrd_fs_probe(root, 0, &f) == 0 && !hrd_fs_state_ok(&f, why, n))
		return;
	snprintf(why, n, "given to the daemon");
}

/* A status reply: every frame of it, each decoded from a copy of its own. */
struct reply {
	hrp_msg *msg;
	uint8_t **frame;
	size_t n;
};

/* The next module of the reply: *f and *pos start at 0. */
static int next_module(const struct reply *r, size_t *f, size_t *pos, hrp_modstat *ms)
{
	for (; *f < r->n; (*f)++, *pos = 0)
		if (hrp_status_next(&r->msg[*f], pos, ms))
			return 1;
	return 0;
}

static void print_status(const struct reply *rp)
{
	const __typeof__(rp->msg->u.status) *s = &rp->msg[0].u.status;
	hrp_modstat ms;
	size_t pos = 0, f = 0;
	/* The queue: modules being built, and waiting for a compiler. */
	unsigned building = 0, queued = 0;
	for (size_t p = 0, g = 0; next_module(rp, &g, &p, &ms);) {
		building += strcmp(ms.status, "building") == 0;
		queued += strcmp(ms.status, "queued") == 0;
	}
	char where[512];
	state_reason(s->root, s->state_dir, where, sizeof where);
	if (hrc_cli_opt.json) {
		printf("{\"daemon\":{\"pid\":%u", s->pid);
		hrc_cli_json_member(",", "root", s->root);
		hrc_cli_json_member(",", "state_dir", s->state_dir);
		hrc_cli_json_member(",", "state_dir_reason", where);
		printf("},\"watcher\":{");
		hrc_cli_json_member("", "backend", s->backend);
		hrc_cli_json_member(",", "reason", s->reason);
		printf(",\"cpu_ms\":%llu,\"events\":%llu,\"overflows\":%llu,\"rescans\":%llu,\"verify_scans\":%llu,"
		       "\"missed\":%llu", (unsigned long long)s->cpu_ms, (unsigned long long)s->events,
		       (unsigned long long)s->overflows, (unsigned long long)s->rescans, (unsigned long long)s->verify_scans,
		       (unsigned long long)s->missed);
		printf(",\"outside\":[");
		for (const char *o = s->outside ? s->outside : "", *sep = ""; *o; sep = ",") {
			size_t len = strcspn(o, "\n");
			printf("%s", sep);
			hrc_json_strn(stdout, o, len);
			o += len + (o[len] == '\n');
		}
		printf("]},\"clients\":%u,\"queue\":{\"building\":%u,\"queued\":%u},\"modules\":[", s->clients, building,
		       queued);
		for (int i = 0; next_module(rp, &f, &pos, &ms); i++) {
			printf("%s{", i ? "," : "");
			hrc_cli_json_member("", "module", ms.module);
			if (ms.version)
				printf(",\"version\":%llu", (unsigned long long)ms.version);
			else
				printf(",\"version\":null");
			hrc_cli_json_member(",", "status", ms.status);
			hrc_cli_json_member(",", "message", ms.message);
			printf("}");
		}
		printf("]}\n");
		return;
	}
	char *root = hrc_cli_printable(s->root), *dir = hrc_cli_printable(s->state_dir), *backend = hrc_cli_printable(s->backend),
	     *reason = hrc_cli_printable(s->reason);
	printf("daemon   pid %u, root %s\n", s->pid, root);
	printf("state    %s%s%s%s\n", dir, where[0] ? " (" : "", where, where[0] ? ")" : "");
	printf("watcher  %s (%s)\n", backend, reason);
	/* What it says of itself, counted since the daemon started. */
	printf("         %llu ms of CPU, %llu events, %llu overflows, %llu rescans, %llu verification scans, "
	       "%llu changes missed\n", (unsigned long long)s->cpu_ms, (unsigned long long)s->events,
	       (unsigned long long)s->overflows, (unsigned long long)s->rescans, (unsigned long long)s->verify_scans,
	       (unsigned long long)s->missed);
	/* The folders outside the root watched for the headers that modules read there. */
	for (const char *o = s->outside ? s->outside : ""; *o;) {
		size_t len = strcspn(o, "\n");
		char *one = strndup(o, len), *shown = hrc_cli_printable(one);
		printf("outside  %s (headers that modules read)\n", shown);
		free(shown);
		free(one);
		o += len + (o[len] == '\n');
	}
	printf("clients  %u\n", s->clients);
	free(root);
	free(dir);
	free(backend);
	free(reason);
	if (!next_module(rp, &(size_t){ 0 }, &(size_t){ 0 }, &ms)) {
		printf("modules  none\n");
		return;
	}
	if (building || queued)
		printf("queue    %u building, %u queued\n", building, queued);
	struct table t = { .cols = 4, .status = 2 };
	const char *head[] = { "MODULE", "VERSION", "STATUS", "MESSAGE" };
	for (size_t i = 0; i < 4; i++)
		hrc_cli_cell(&t, head[i]);
	while (next_module(rp, &f, &pos, &ms)) {
		char ver[32];
		snprintf(ver, sizeof ver, "%llu", (unsigned long long)ms.version);
		hrc_cli_cell(&t, ms.module);
		hrc_cli_cell(&t, ms.version ? ver : "-");
		hrc_cli_cell(&t, ms.status);
		hrc_cli_cell(&t, ms.message);
	}
	printf("\n");
	hrc_cli_table_print(&t);
}

/* Connect to the daemon and exchange HELLO; exits 3 when none answers. The socket's path in path. */
int hrc_cli_connect_daemon(hrp_reader *r, char *path, size_t pathsz)
{
	const char *sock = hrc_cli_opt.socket ? hrc_cli_opt.socket : getenv("HOTRELOAD_SOCKET");
	if (!sock || !*sock) {
		char *dir = state_dir();
		if (!dir)
			errx(EXIT_NODAEMON, "no daemon: no socket given, and no .hotreload/ in the current "
			                    "directory, a folder directly under it, or any parent (pass --socket PATH or --state-dir DIR)");
		snprintf(path, pathsz, "%s/" HRP_SOCKET_NAME, dir);
		free(dir);
	} else {
		snprintf(path, pathsz, "%s", sock);
	}
	int fd = hrp_connect(path, TIMEOUT_MS);
	if (fd < 0)
		errx(EXIT_NODAEMON, "no daemon answers at %s (%s); start one with: hotreloadd --root DIR", path,
		     fd == -ETIMEDOUT ? "it accepts no connection within 5 s" : strerror(-fd));
	hrp_msg reply;
	hrp_msg hello = { .type = HRP_HELLO,
		          .u.hello = { HRP_VERSION, HRP_ROLE_CLI, (uint32_t)getpid(), "", "hotreload " VERSION } };
	exchange(fd, r, path, &hello, HRP_HELLO, &reply);
	return fd;
}

int hrc_cli_subscribe(int fd, const char *module)
{
	int rc = hrp_send(fd, &(hrp_msg){ .type = HRP_SUBSCRIBE, .u.sub = { module } });
	return rc ? rc : hrp_send(fd, &(hrp_msg){ .type = HRP_STATUS_REQ });
}

static int cmd_status(int argc, char **argv)
{
	hrc_cli_parse(argc, argv, "h", "status", NULL, NULL);
	char sock[PATH_MAX + 32];
	hrp_reader r = { 0 };
	hrp_msg m;
	struct reply rp = { 0 };
	int fd = hrc_cli_connect_daemon(&r, sock, sizeof sock);
	/* A long status comes in several frames: the modules are printed once all are in. */
	do {
		exchange(fd, &r, sock, rp.n ? NULL : &(hrp_msg){ .type = HRP_STATUS_REQ }, HRP_STATUS, &m);
		if (rp.n == STATUS_FRAMES_MAX)
			errx(EXIT_ERR, "the status from the daemon at %s is over %d frames: not read", sock, STATUS_FRAMES_MAX);
		/* m points into r's buffer, which the next frame reuses: each is kept as a copy */
		if (!(rp.msg = realloc(rp.msg, (rp.n + 1) * sizeof *rp.msg)) ||
		    !(rp.frame = realloc(rp.frame, (rp.n + 1) * sizeof *rp.frame)) || !(rp.frame[rp.n] = malloc(r.frame)))
			err(EXIT_ERR, "status");
		memcpy(rp.frame[rp.n], r.in.data + r.in.off, r.frame);
		if (hrp_decode(rp.frame[rp.n], r.frame, &rp.msg[rp.n], NULL) < 0)
			errx(EXIT_ERR, "bad reply from the daemon at %s", sock); /* decoded once already: cannot happen */
	} while (rp.msg[rp.n++].u.status.more);
	print_status(&rp);
	for (size_t i = 0; i < rp.n; i++)
		free(rp.frame[i]);
	free(rp.frame);
	free(rp.msg);
	hrp_reader_free(&r);
	close(fd);
	return 0;
}

static double mono_s(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* wait MODULE [--version N] [--timeout S]: the daemon answers a subscription with the newest good build, then each new one. */
static int cmd_wait(int argc, char **argv)
{
	static const struct option longopts[] = { { "version", required_argument, NULL, 'v' },
		                                  { "timeout", required_argument, NULL, 't' },
		                                  { "help", no_argument, NULL, 'h' },
		                                  { NULL, 0, NULL, 0 } };
	unsigned long long want = 1;
	double timeout = -1;
	int c;
	optind = 0;
	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		char *end;
		errno = 0;
		switch (c) {
		case 'v':
			want = strtoull(optarg, &end, 10);
			if (errno || *end || want < 1 || optarg[0] == '-')
				hrc_cli_usage_error("--version wants a version of 1 or more, not '%s'", optarg);
			break;
		case 't':
			timeout = strtod(optarg, &end);
			if (errno || *end || end == optarg || !(timeout >= 0) || !isfinite(timeout))
				hrc_cli_usage_error("--timeout wants seconds (0 or more), not '%s'", optarg);
			break;
		case 'h': fputs(usage_text, stdout); exit(0);
		default: hrc_cli_usage_error("%s", "bad option for 'wait'");
		}
	}
	if (optind != argc - 1)
		hrc_cli_usage_error("%s", "wait takes one module");
	const char *module = argv[optind];
	if (!hrp_valid_name(module) && !hrp_valid_unit(module))
		hrc_cli_usage_error("'%s' is not a module name (" HRP_NAME_RULE ") nor a translation unit's absolute path",
		                    module);
	char sock[PATH_MAX + 32];
	hrp_reader r = { 0 };
	int fd = hrc_cli_connect_daemon(&r, sock, sizeof sock);
	hrp_msg m;
	int rc = hrc_cli_subscribe(fd, module), answered = 0;
	double until = mono_s() + timeout;
	while (rc == 0) {
		double left = !answered ? TIMEOUT_MS / 1000.0 : timeout < 0 ? 3600 : until - mono_s();
		if (left <= 0)
			errx(EXIT_ERR, "%s has no good build of v%llu or newer after %g s", module, want, timeout);
		rc = hrp_recv(fd, &r, &m, (int)((left > 3600 ? 3600 : left) * 1000) + 1);
		if (rc == -ETIMEDOUT && answered)
			rc = 0; /* the deadline comes round at the top */
		else if (rc == 0 && m.type == HRP_BUILD && strcmp(m.u.build.module, module) == 0 && m.u.build.version >= want) {
			printf("%s v%llu\n", module, (unsigned long long)m.u.build.version);
			hrp_reader_free(&r);
			close(fd);
			return 0;
		} else if (rc == 0 && m.type == HRP_STATUS && !m.u.status.more) {
			answered = 1;
		} else if (rc == 0 && m.type == HRP_ERROR) {
			errx(EXIT_ERR, "the daemon at %s says: %s", sock, hrc_cli_printable(m.u.error.message));
		}
	}
	errx(EXIT_NODAEMON, "the daemon at %s went away before %s had a good build of v%llu or newer", sock, module, want);
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "socket", required_argument, NULL, 's' }, { "state-dir", required_argument, NULL, 'd' },
		{ "help", no_argument, NULL, 'h' },         { "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	static const struct {
		const char *name;
		int (*fn)(int, char **);
	} cmds[] = { { "status", cmd_status }, { "history", cmd_history }, { "stats", cmd_stats }, { "wait", cmd_wait },
	             { "show", hrc_cli_show }, { "diff", hrc_cli_diff }, { "build", hrc_cli_build },
	             { "rollback", hrc_cli_rollback }, { "unpin", hrc_cli_rollback }, { "log", hrc_cli_log },
	             { "gc", hrc_cli_gc }, { "stop", hrc_cli_stop } };
	int c;
	/* "+": stop at the command, whose options are its own. */
	while ((c = getopt_long(argc, argv, "+hV", longopts, NULL)) != -1) {
		switch (c) {
		case 's': hrc_cli_opt.socket = optarg; break;
		case 'd': hrc_cli_opt.state_dir = optarg; break;
		case 'h': fputs(usage_text, stdout); return 0;
		case 'V': puts("hotreload " VERSION); return 0;
		default: fputs(usage_text, stderr); return EXIT_USAGE;
		}
	}
	if (optind >= argc)
		hrc_cli_usage_error("%s", "no command given");
	if (strcmp(argv[optind], "help") == 0) {
		fputs(usage_text, stdout);
		return 0;
	}
	for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++)
		if (strcmp(argv[optind], cmds[i].name) == 0)
			return cmds[i].fn(argc - optind, argv + optind);
	hrc_cli_usage_error("unknown command '%s'", argv[optind]);
	return EXIT_USAGE;
}
