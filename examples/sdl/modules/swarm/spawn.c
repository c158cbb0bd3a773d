/* spawn.c: the swarm's spawn rules: who appears, where, how fast. */
#include "swarm.h"

#include <math.h>

/* xorshift32 on the world's seed: deterministic, and kept across reloads with the world. */
static float rnd(struct world *w)
{
	uint32_t x = w->seed ? w->seed : 0x9e3779b9u;
	x ^= x << 13;
	x ^= x >> 17;
	x ^= x << 5;
	w->seed = x;
	return (float)(x >> 8) / (float)(1u << 24);
}

void swarm_spawn(struct world *w, struct body player)
{
	struct swarm_tuning t = swarm_tuning();
	int want = t.population < 0 ? 0 : t.population < MAX_ENTITIES ? t.population : MAX_ENTITIES;
	if (w->n > want)
		w->n = want;
	while (w->n < want) {
		struct entity *e = &w->e[w->n];
		e->r = t.radius;
		e->x = e->r + rnd(w) * (ARENA_W - 2 * e->r);
		e->y = e->r + rnd(w) * (ARENA_H - 2 * e->r);
		if (hypotf(e->x - player.x, e->y - player.y) < player.r + 40)
			continue; /* not on top of the player */
		float a = rnd(w) * 6.2831853f;
		e->vx = cosf(a) * t.speed;
		e->vy = sinf(a) * t.speed;
		e->kind = w->n % KINDS;
		w->n++;
	}
}
