/* bench.h: what the benchmarks share: a monotonic clock, sorting and percentiles of timings, running a command,
 * writing a file, and a real hotreloadd started, stopped and cleaned up after. */
#ifndef BENCH_H
#define BENCH_H

/* A module of a realistic size (a few structs, loops and math, 60-odd lines), a printf format: its two %d set
 * speeds, and fn(), the last function, returns the third. */
#define BENCH_ENEMY(fn) \
	"#include <math.h>\n#include <stdint.h>\n#include <string.h>\n\n" \
	"typedef struct { float x, y, vx, vy, hp; int kind; } enemy;\n" \
	"typedef struct { enemy e[256]; int n; uint32_t seed; } world;\n\n" \
	"static uint32_t next(uint32_t *s) { *s ^= *s << 13; *s ^= *s >> 17; *s ^= *s << 5; return *s; }\n\n" \
	"static float steer(const enemy *a, const enemy *b)\n{\n" \
	"\tfloat dx = b->x - a->x, dy = b->y - a->y;\n\treturn atan2f(dy, dx);\n}\n\n" \
	"void enemy_spawn(world *w, int kind)\n{\n" \
	"\tif (w->n == 256) return;\n\tenemy *e = &w->e[w->n++];\n\tmemset(e, 0, sizeof *e);\n" \
	"\te->x = (float)(next(&w->seed) %% 640); e->y = (float)(next(&w->seed) %% 480);\n" \
	"\te->kind = kind; e->hp = 10.0f * (float)(kind + 1);\n}\n\n" \
	"void enemy_update(world *w, float dt)\n{\n" \
	"\tfor (int i = 0; i < w->n; i++) {\n\t\tenemy *e = &w->e[i];\n" \
	"\t\tfloat a = steer(e, &w->e[(i + 1) %% w->n]);\n" \
	"\t\te->vx += cosf(a) * dt * %d.0f; e->vy += sinf(a) * dt * %d.0f;\n" \
	"\t\te->x += e->vx * dt; e->y += e->vy * dt;\n" \
	"\t\tif (e->x < 0 || e->x > 640) e->vx = -e->vx;\n" \
	"\t\tif (e->y < 0 || e->y > 480) e->vy = -e->vy;\n\t}\n}\n\n" \
	"int enemy_alive(const world *w)\n{\n\tint n = 0;\n" \
	"\tfor (int i = 0; i < w->n; i++) n += w->e[i].hp > 0;\n\treturn n;\n}\n\n" \
	"int " fn "(void) { return %d; }\n"

double bench_now_ms(void);
double bench_now_us(void);

/* Sort n timings in place, smallest first; then bench_pct(v, n, .95) is their 95th percentile. */
void bench_sort(double *v, int n);
double bench_pct(const double *v, int n, double p);

/* Run argv (from PATH) in cwd (NULL: here) and wait: 0 when it exited 0, else -1. */
int bench_run(char *const argv[], const char *cwd);

/* Write text to dir/name, or exit(1) with what failed. */
void bench_put(const char *dir, const char *name, const char *text);

/* Start hotreloadd (argv[0] its path) on root; it detaches once ready. Its pid, from its lock file, or -1 (said). */
int bench_daemon(char *const argv[], const char *root);

/* SIGTERM to pid, and wait until it is gone. */
void bench_stop(int pid);

/* rm -rf dir: 0, or -1. */
int bench_rm(const char *dir);

#endif
