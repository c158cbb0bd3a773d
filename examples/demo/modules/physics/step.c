/* step.c: one file of the folder module "physics" (every .c file in physics/ goes into it). */
#include <hotreload.h>
#include <stdint.h>
#include <stdio.h>

double speed(void);

/* A module global that survives reloads (a plain global would start at 0 in each build). */
HR_KEEP(unsigned, loads) = 0;

/* The game owns x: it survives every reload. This only says how it moves. */
double step(double x, double dt)
{
	return x + speed() * dt;
}

/* Optional hooks: they run on the game's thread, at the switch. */
int hr_on_load(void *userdata, uint64_t previous_version)
{
	(void)userdata;
	loads++;
	if (previous_version)
		printf("physics: load %u, replacing v%llu\n", loads, (unsigned long long)previous_version);
	return 0;
}
