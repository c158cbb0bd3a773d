/* game.h: what the SDL example's host and its hot-reloaded modules agree on: the world's layout and the modules' entry points. */
#ifndef GAME_H
#define GAME_H

#include <stdint.h>

#define ARENA_W 800
#define ARENA_H 600
#define MAX_ENTITIES 1024
#define KINDS 4

/* The host owns every byte of state; the modules get pointers to it. */
struct entity {
	float x, y, vx, vy, r;
	int kind; /* 0 .. KINDS-1: its colour */
};

struct world {
	uint64_t frame;
	uint32_t seed; /* the swarm's random numbers: state, so it survives reloads too */
	int n;
	struct entity e[MAX_ENTITIES];
};

/* The player as the rest of the world sees it. */
struct body {
	float x, y, r;
};

/* The keys held this frame. */
struct input {
	int left, right, up, down, dash;
};

/*
 * A module's own state, kept by the host across reloads. The module decides
 * what the bytes mean and says so with a layout number: its hr_on_load finds
 * the layout the previous build left (0 at the first load) and migrates it.
 */
struct module_state {
	uint32_t layout;
	uint32_t size;
	_Alignas(16) unsigned char bytes[512];
};

/*
 * The modules' entry points, resolved with hr_sym after each switch:
 *
 *   colors (colors.c):   uint32_t color_background(void);
 *                        uint32_t color_player(void);
 *                        uint32_t color_entity(int kind);        0xRRGGBB
 *   player (player.c):   hr_on_load(struct module_state *, ...)  migrates the state
 *                        void player_update(struct module_state *, const struct input *, float dt);
 *                        struct body player_body(const struct module_state *);
 *   swarm  (swarm/):     void swarm_step(struct world *, struct body player, float dt);
 */
typedef uint32_t color_fn(void);
typedef uint32_t color_kind_fn(int kind);
typedef void player_update_fn(struct module_state *, const struct input *, float dt);
typedef struct body player_body_fn(const struct module_state *);
typedef void swarm_step_fn(struct world *, struct body player, float dt);

/* Declared here so that each module's definitions are checked against the host's view of them. */
color_fn color_background, color_player;
color_kind_fn color_entity;
player_update_fn player_update;
player_body_fn player_body;
swarm_step_fn swarm_step;
/* The reloader's hook (see hotreload.h); player.c's gets its struct module_state. */
int hr_on_load(void *userdata, uint64_t previous_version);

#endif
