/* step.c: one file of the folder module "physics" (every .c file in physics/ goes into it). */
#include <stdint.h>
#include <stdio.h>

double speed(void);

/* The game owns x: it survives every reload. This only says how it moves. */
double step(double x, double dt)
{
	return x + speed() * dt;
}

/* Optional hooks: they run on the game's thread, at the switch. */
int hr_on_load(void *userdata, uint64_t previous_version)
{
	(void)userdata;
	if (previous_version)
		printf("physics: loaded, replacing v%llu\n", (unsigned long long)previous_version);
	return 0;
}
