/* swarm.h: what the swarm module's files share (not seen by the host). */
#ifndef SWARM_H
#define SWARM_H

#include "game.h"

struct swarm_tuning {
	int population; /* entities kept alive */
	float speed;    /* px/s at spawn */
	float radius;   /* px; at most 8, the collision grid's half cell */
};

struct swarm_tuning swarm_tuning(void);
/* Bring the population to the tuning's: new entities away from the player, extra ones dropped. */
void swarm_spawn(struct world *w, struct body player);

#endif
