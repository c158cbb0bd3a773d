/* player_layout1.c: the player's first build (layout 1: just where it stands), which the sdl suite saves before the shipped layout 2. */
#include "game.h"

#include <string.h>

#define LAYOUT 1
#define SPEED 220.0f
#define RADIUS 9.0f

struct player {
	float x, y;
};

int hr_on_load(void *userdata, uint64_t previous_version)
{
	struct module_state *s = userdata;
	(void)previous_version;
	if (s->layout == LAYOUT)
		return 0;
	if (s->layout != 0)
		return -1; /* a layout this build does not know */
	struct player p = {ARENA_W / 2.0f, ARENA_H / 2.0f};
	memcpy(s->bytes, &p, sizeof p);
	s->layout = LAYOUT;
	s->size = sizeof p;
	return 0;
}

void player_update(struct module_state *s, const struct input *in, float dt)
{
	struct player p;
	memcpy(&p, s->bytes, sizeof p);
	p.x += (float)(in->right - in->left) * SPEED * dt;
	p.y += (float)(in->down - in->up) * SPEED * dt;
	p.x = p.x < RADIUS ? RADIUS : p.x > ARENA_W - RADIUS ? ARENA_W - RADIUS : p.x;
	p.y = p.y < RADIUS ? RADIUS : p.y > ARENA_H - RADIUS ? ARENA_H - RADIUS : p.y;
	memcpy(s->bytes, &p, sizeof p);
}

struct body player_body(const struct module_state *s)
{
	struct player p;
	memcpy(&p, s->bytes, sizeof p);
	return (struct body){p.x, p.y, RADIUS};
}
