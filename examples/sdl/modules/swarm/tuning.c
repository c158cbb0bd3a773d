/* tuning.c: the swarm's numbers. Change one and save. */
#include "swarm.h"

struct swarm_tuning swarm_tuning(void)
{
	return (struct swarm_tuning){
	    .population = 300,
	    .speed = 90.0f,
	    .radius = 5.0f,
	};
}
