/* bench_frame.c: frame times of a game loop whose entities cache a module's function and version (GetScript pattern).
 * Usage: bench_frame HOTRELOADD [EDITS]   (make bench) */
#include <errno.h>
#include <ftw.h>
#include <hotreload.h>
#include <limits.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

/* One definition, compiled here and pasted into the module's source, so both sides agree on the layout. */
#define ENTITY_DEF struct entity { float x, y, vx, vy; void (*think)(struct entity *, float); uint64_t version; }
#define STR_(...) #__VA_ARGS__
#define STR(...) STR_(__VA_ARGS__)
ENTITY_DEF;

#define ENTITIES 1000
#define STEADY_FRAMES 20000
#define DT (1.0f / 60)

/* A spring without damping: bounded, and never decays into denormals that would slow late frames. */
static const char module_fmt[] =
	"#include <stdint.h>\n" STR(ENTITY_DEF) ";\n"
	"void think(struct entity *e, float dt);\nint tag(void);\n\n"
	"void think(struct entity *e, float dt)\n{\n"
	"\te->vx -= e->x * %d.0f * dt;\n\te->vy -= e->y * 2.0f * dt;\n"
	"\te->x += e->vx * dt;\n\te->y += e->vy * dt;\n}\n\n"
	"int tag(void) { return %d; }\n";

static struct entity ents[ENTITIES];
static char tmp[] = "/tmp/hrframe.XXXXXX";
static int have_tmp;
static pid_t daemon_pid;
static hr_client *client;

static double now_ns(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec * 1e9 + (double)t.tv_nsec;
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

/* A growing array: how many frames run while the daemon builds is not known in advance. */
typedef struct {
	double *v;
	size_t n, cap;
} samples;

/* Sorts s; its p-th percentile in us (p = 1: the max), 0 when empty. */
static double pct(samples *s, double p)
{
	qsort(s->v, s->n, sizeof *s->v, cmp);
	return s->n ? s->v[(size_t)(p * (double)(s->n - 1) + 0.5)] / 1e3 : 0;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st, (void)flag, (void)ftw;
	return remove(path);
}

/* atexit: every exit, failed or not, stops the daemon and removes the temp tree. */
static void cleanup(void)
{
	hr_disconnect(client);
	client = NULL;
	if (daemon_pid > 0 && kill(daemon_pid, SIGTERM) == 0) {
		double deadline = now_ns() + 5e9; /* it is not our child: poll until it is gone */
		while (kill(daemon_pid, 0) == 0 && now_ns() < deadline)
			nanosleep(&(struct timespec){0, 10000000}, NULL);
	}
	if (have_tmp)
		nftw(tmp, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

__attribute__((format(printf, 1, 2))) static void die(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("bench_frame: ", stderr);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

/* Write to a temp file and rename it over the module, as editors save: the daemon never sees half a file. */
static void write_module(const char *root, int edit)
{
	char path[PATH_MAX], next[PATH_MAX];
	snprintf(path, sizeof path, "%s/behaviour.c", root);
	snprintf(next, sizeof next, "%s/behaviour.c.new", tmp); /* outside the watched root, same file system */
	FILE *f = fopen(next, "w");
	if (!f || fprintf(f, module_fmt, 1 + edit % 3, edit) < 0 || fclose(f) || rename(next, path))
		die("cannot write %s: %s", path, strerror(errno));
}

/* Start the daemon, which detaches once ready, and read its pid from its lock file. */
static void start_daemon(const char *exe, char *root)
{
	char *argv[] = {(char *)exe, "--root", root, "--quiet", NULL}, lock[128], text[32] = "";
	pid_t pid;
	int st;
	if (posix_spawn(&pid, exe, NULL, NULL, argv, environ))
		die("cannot run %s", exe);
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	if (!WIFEXITED(st) || WEXITSTATUS(st))
		die("the daemon did not start");
	snprintf(lock, sizeof lock, "%s/.hotreload/hotreloadd.lock", root);
	FILE *f = fopen(lock, "r");
	if (!f || !fgets(text, sizeof text, f) || (daemon_pid = atoi(text)) <= 0)
		die("no pid in the daemon's lock file");
	fclose(f);
}

/*
 * One frame, back to back with the next (a game's vsync wait is left out): the safe point, then every entity
 * compares its cached version and re-resolves only when it changed. Sets how long hr_update and the frame took.
 */
static int frame(hr_module *m, double *update_ns, double *frame_ns)
{
	double t0 = now_ns();
	int up = hr_update(m);
	double t1 = now_ns();
	for (int i = 0; i < ENTITIES; i++) {
		struct entity *e = &ents[i];
		if (e->version != hr_version(m)) {
			e->think = (void (*)(struct entity *, float))hr_sym(m, "think");
			e->version = hr_version(m);
			if (!e->think)
				die("the build has no think()");
		}
		e->think(e, DT);
	}
	*update_ns = t1 - t0;
	*frame_ns = now_ns() - t0;
	return up;
}

static void push(samples *s, double x)
{
	if (s->n == s->cap) {
		s->cap = s->cap ? s->cap * 2 : 4096;
		if (!(s->v = realloc(s->v, s->cap * sizeof *s->v)))
			die("out of memory");
	}
	s->v[s->n++] = x;
}

static void print_row(const char *name, samples *s, const char *note)
{
	printf("  %-18s p50 %8.2f us  p99 %8.2f us  max %8.2f us  %s\n", name, pct(s, .5), pct(s, .99), pct(s, 1), note);
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: bench_frame HOTRELOADD [EDITS]\n");
		return 2;
	}
	int edits = argc > 2 && atoi(argv[2]) > 0 ? atoi(argv[2]) : 20;
	char exe[PATH_MAX], root[64], sock[128];
	if (!realpath(argv[1], exe))
		die("%s: %s", argv[1], strerror(errno));
	if (!(have_tmp = mkdtemp(tmp) != NULL))
		die("cannot make a temp dir: %s", strerror(errno));
	atexit(cleanup);
	snprintf(root, sizeof root, "%s/modules", tmp);
	snprintf(sock, sizeof sock, "%s/.hotreload/hotreloadd.sock", root);
	if (mkdir(root, 0700))
		die("%s: %s", root, strerror(errno));
	write_module(root, 0);
	unsetenv("HOTRELOAD_SOCKET");
	start_daemon(exe, root);

	hr_module *m = NULL;
	if (!(client = hr_connect(sock)) || !(m = hr_open(client, "behaviour")))
		die("%s: %s", client ? "hr_open" : "hr_connect", strerror(errno));
	/* The first build goes live at an hr_update; poll for it under a deadline rather than sleep a guess. */
	for (double deadline = now_ns() + 30e9; hr_update(m) != 1;) {
		if (now_ns() > deadline)
			die("the first build never went live");
		nanosleep(&(struct timespec){0, 1000000}, NULL);
	}
	for (int i = 0; i < ENTITIES; i++)
		ents[i] = (struct entity){.x = (float)(i % 37) - 18, .y = (float)(i % 23) - 11, .vx = 1, .vy = -1};

	/* Steady state: nothing new, after a warm-up that faults in the code and data. */
	samples steady = {0}, building = {0}, switching = {0}, update = {0};
	double upd, fr;
	for (int i = -2000; i < STEADY_FRAMES; i++) {
		if (frame(m, &upd, &fr))
			die("a switch with no edit");
		if (i >= 0)
			push(&steady, fr);
	}

	/* Edits: frames run on while the daemon builds; a frame whose hr_update switched is a switch frame. */
	for (int k = 1; k <= edits; k++) {
		write_module(root, k);
		double deadline = now_ns() + 30e9;
		for (int live = 0; !live;) {
			int up = frame(m, &upd, &fr);
			if (up < 0)
				die("edit %d was refused: %s", k, strerror(-up));
			push(up ? &switching : &building, fr);
			if (up) {
				push(&update, upd);
				int (*tag)(void) = (int (*)(void))hr_sym(m, "tag"); /* which edit went live */
				live = tag && tag() == k;
			}
			if (!live && now_ns() > deadline)
				die("edit %d never went live within 30 s", k);
		}
	}

	/* hr_update alone with nothing new: the cost every frame pays. */
	long calls = 10000000;
	int sum = 0;
	double t0 = now_ns();
	for (long i = 0; i < calls; i++)
		sum += hr_update(m);
	double idle_ns = (now_ns() - t0) / (double)calls;

	char cpu[256] = "unknown CPU", line[512];
	FILE *f = fopen("/proc/cpuinfo", "r");
	while (f && fgets(line, sizeof line, f))
		if (sscanf(line, "model name : %255[^\n]", cpu) == 1)
			break;
	if (f)
		fclose(f);
	printf("%d entities calling think() through a cached pointer, re-resolved when hr_version changes; %s, %ld CPUs:\n",
	       ENTITIES, cpu, sysconf(_SC_NPROCESSORS_ONLN));
	print_row("steady frames", &steady, "(no edits)");
	char note[96];
	snprintf(note, sizeof note, "(%zu frames while %d edits built)", building.n, edits);
	print_row("frames in builds", &building, note);
	snprintf(note, sizeof note, "(%zu switches, each re-resolving %d entities)", switching.n, ENTITIES);
	print_row("switch frames", &switching, note);
	printf("  %-18s p50 %8.2f us                    max %8.2f us  (target: 5 us at p50, no user hooks)\n",
	       "hr_update, switch", pct(&update, .5), pct(&update, 1));
	printf("  %-18s %.2f ns a call over %ld calls (target: 5 ns)%s\n", "hr_update, idle", idle_ns, calls,
	       sum ? " (something switched!)" : "");
	hr_stats st;
	hr_get_stats(client, &st);
	printf("  %-18s avg %8.2f us  last %6.2f us  over %llu switches (the library's own count, hooks excluded)\n",
	       "hr_get_stats", st.avg_switch_ns / 1e3, st.last_switch_ns / 1e3, (unsigned long long)st.switches);
	free(steady.v);
	free(building.v);
	free(switching.v);
	free(update.v);
	return 0;
}
