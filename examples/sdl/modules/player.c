/* player.c: the player, moved by the arrow keys, space to dash. Its state is the host's; this build's layout is 2. */
#include "game.h"

#include <math.h>
#include <string.h>

#define LAYOUT 2

#define ACCEL 1800.0f   /* px/s² while a key is held */
#define DRAG 6.0f       /* per second: how fast it coasts to a stop */
#define MAX_SPEED 280.0f
#define DASH_SPEED 700.0f
#define DASH_EVERY 1.0f /* seconds */
#define RADIUS 9.0f

/* Layout 1, the first build: where the player stood, and nothing else. */
struct player_v1 {
	float x, y;
};

/* Layout 2: momentum, and a dash that recharges. The position moved: a build that copied the bytes as they were would put the player in the corner. */
struct player {
	float vx, vy;
	float x, y;
	float dash; /* seconds until the next dash */
};

_Static_assert(sizeof(struct player) <= sizeof(((struct module_state *)0)->bytes), "the host keeps 512 bytes");

/* Migrate whatever layout the previous build left to this one. */
int hr_on_load(void *userdata, uint64_t previous_version)
{
	struct module_state *s = userdata;
	struct player p = {0};
	(void)previous_version;
	switch (s->layout) {
	case 0: /* a new game */
		p.x = ARENA_W / 2.0f;
		p.y = ARENA_H / 2.0f;
		break;
	case 1: {
		struct player_v1 old;
		memcpy(&old, s->bytes, sizeof old);
		p.x = old.x;
		p.y = old.y;
		break;
	}
	case LAYOUT:
		return 0;
	default:
		/* A newer layout than this build knows (an older build put back): refuse it; the newer build stays live. */
		return -1;
	}
	memcpy(s->bytes, &p, sizeof p);
	s->layout = LAYOUT;
	s->size = sizeof p;
	return 0;
}

static float clampf(float v, float lo, float hi)
{
	return v < lo ? lo : v > hi ? hi : v;
}

void player_update(struct module_state *s, const struct input *in, float dt)
{
	struct player pl, *p = &pl;
	memcpy(p, s->bytes, sizeof *p); /* the bytes are the host's: copied, not cast */
	float ax = (float)(in->right - in->left), ay = (float)(in->down - in->up);
	p->vx += ax * ACCEL * dt;
	p->vy += ay * ACCEL * dt;
	float drag = expf(-DRAG * dt), speed = hypotf(p->vx, p->vy);
	if (!ax && !ay)
		p->vx *= drag, p->vy *= drag;
	if (speed > MAX_SPEED && p->dash < DASH_EVERY - 0.15f) /* a dash outruns the limit for 0.15 s */
		p->vx *= MAX_SPEED / speed, p->vy *= MAX_SPEED / speed;
	p->dash = fmaxf(p->dash - dt, 0);
	if (in->dash && p->dash == 0 && (ax || ay)) {
		float len = hypotf(ax, ay);
		p->vx = ax / len * DASH_SPEED;
		p->vy = ay / len * DASH_SPEED;
		p->dash = DASH_EVERY;
	}
	if (fabsf(p->vx) < 1 && fabsf(p->vy) < 1 && !ax && !ay)
		p->vx = p->vy = 0; /* at rest, exactly */
	p->x = clampf(p->x + p->vx * dt, RADIUS, ARENA_W - RADIUS);
	p->y = clampf(p->y + p->vy * dt, RADIUS, ARENA_H - RADIUS);
	memcpy(s->bytes, p, sizeof *p);
}

struct body player_body(const struct module_state *s)
{
	struct player p;
	memcpy(&p, s->bytes, sizeof p);
	return (struct body){p.x, p.y, RADIUS};
}
