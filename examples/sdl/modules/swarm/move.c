/* move.c: the swarm's motion: entities drift, bounce off the walls, the player and each other. */
#include "swarm.h"

#include <math.h>

#define CELL 16 /* at least twice the largest radius, so that touching entities are in neighbouring cells */
#define GW (ARENA_W / CELL + 1)
#define GH (ARENA_H / CELL + 1)

/* A bucket grid, rebuilt each step: collisions cost O(n), not O(n²). Scratch, so it need not survive a reload. */
static int head[GW * GH], next[MAX_ENTITIES];

static int cell_of(float v, int cells)
{
	int c = (int)(v / CELL);
	return c < 0 ? 0 : c >= cells ? cells - 1 : c;
}

/* Two entities that overlap: move them apart and exchange their velocities along the line between them. */
static void collide(struct entity *a, struct entity *b)
{
	float dx = b->x - a->x, dy = b->y - a->y, d2 = dx * dx + dy * dy, rr = a->r + b->r;
	if (d2 >= rr * rr || d2 == 0)
		return;
	float d = sqrtf(d2), nx = dx / d, ny = dy / d, push = (rr - d) / 2;
	a->x -= nx * push, a->y -= ny * push;
	b->x += nx * push, b->y += ny * push;
	float closing = (b->vx - a->vx) * nx + (b->vy - a->vy) * ny;
	if (closing < 0) {
		a->vx += closing * nx, a->vy += closing * ny;
		b->vx -= closing * nx, b->vy -= closing * ny;
	}
}

/* An entity that touches the player is pushed out and bounces off it. */
static void push_off(struct entity *e, struct body p)
{
	float dx = e->x - p.x, dy = e->y - p.y, d = hypotf(dx, dy), rr = e->r + p.r;
	if (d >= rr || d == 0)
		return;
	float nx = dx / d, ny = dy / d, along = e->vx * nx + e->vy * ny;
	e->x = p.x + nx * rr, e->y = p.y + ny * rr;
	if (along < 0)
		e->vx -= 2 * along * nx, e->vy -= 2 * along * ny;
}

static void walls(struct entity *e)
{
	if (e->x < e->r)
		e->x = e->r, e->vx = fabsf(e->vx);
	if (e->x > ARENA_W - e->r)
		e->x = ARENA_W - e->r, e->vx = -fabsf(e->vx);
	if (e->y < e->r)
		e->y = e->r, e->vy = fabsf(e->vy);
	if (e->y > ARENA_H - e->r)
		e->y = ARENA_H - e->r, e->vy = -fabsf(e->vy);
}

void swarm_step(struct world *w, struct body player, float dt)
{
	swarm_spawn(w, player);
	for (int i = 0; i < GW * GH; i++)
		head[i] = -1;
	for (int i = 0; i < w->n; i++) {
		struct entity *e = &w->e[i];
		e->x += e->vx * dt;
		e->y += e->vy * dt;
		walls(e);
		int c = cell_of(e->y, GH) * GW + cell_of(e->x, GW);
		next[i] = head[c];
		head[c] = i;
	}
	for (int i = 0; i < w->n; i++) {
		struct entity *e = &w->e[i];
		int cx = cell_of(e->x, GW), cy = cell_of(e->y, GH);
		for (int y = cy - 1; y <= cy + 1; y++)
			for (int x = cx - 1; x <= cx + 1; x++) {
				if (x < 0 || y < 0 || x >= GW || y >= GH)
					continue;
				for (int j = head[y * GW + x]; j >= 0; j = next[j])
					if (j > i)
						collide(e, &w->e[j]);
			}
		push_off(e, player);
		walls(e);
	}
	w->frame++;
}
