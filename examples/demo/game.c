/* game.c: the demo's game. It owns the loop and the state; its modules (modules/) reload as you save them. */
#include <hotreload.h>

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static volatile sig_atomic_t stop; /* the signal that stops the game, 0 while it runs */

static void on_signal(int sig)
{
	stop = sig;
}

static double now(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec + t.tv_nsec / 1e9;
}

/* The safe point of one module: switch if there is something new, and say so. */
static int update(hr_module *m, const char *name)
{
	int rc = hr_update(m);
	if (rc > 0)
		printf("game: %s v%llu is live\n", name, (unsigned long long)hr_version(m));
	else if (rc < 0)
		printf("game: a new build of %s was refused; v%llu stays live\n", name, (unsigned long long)hr_version(m));
	return rc != 0;
}

/* The HUD: the library's current notes, shown when they change (a game would draw them on screen). */
static void hud(hr_client *c, uint64_t *shown)
{
	static const char *const level[] = {"ok", "warning", "ERROR"};
	hr_note notes[8];
	size_t n = hr_notes(c, notes, 8);
	uint64_t now = n;
	for (size_t i = 0; i < n && i < 8; i++)
		now = now * 31 + notes[i].at_us;
	if (now == *shown)
		return;
	*shown = now;
	if (!n)
		printf("  hud: clear\n");
	for (size_t i = 0; i < n && i < 8; i++)
		printf("  hud: [%s] %s\n", level[notes[i].severity], notes[i].text);
}

int main(int argc, char **argv)
{
	/* --seconds N: stop after N seconds (for scripts); by default run until Ctrl-C. */
	double seconds = argc > 2 && strcmp(argv[1], "--seconds") == 0 ? atof(argv[2]) : -1;
	setvbuf(stdout, NULL, _IOLBF, 0);
	struct sigaction sa = {.sa_handler = on_signal};
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);

	/* NULL: $HOTRELOAD_SOCKET, else .hotreload/ found going up from here. */
	hr_client *c = hr_connect(NULL);
	if (!c) {
		fprintf(stderr, "game: no hotreloadd answers (%s): start it first (make demo does)\n", strerror(errno));
		return 1;
	}
	/* The game shows the notes in its HUD; without this they would also go to stderr as they come. */
	hr_set_note_sink(c, NULL, NULL);
	hr_module *greet = hr_open(c, "greeting"), *phys = hr_open(c, "physics");
	if (!greet || !phys) {
		fprintf(stderr, "game: cannot open the modules: %s\n", strerror(errno));
		hr_disconnect(c);
		return 1;
	}
	const char *(*greeting)(void) = NULL;
	double (*step)(double, double) = NULL, (*speed)(void) = NULL;
	uint64_t greet_v = 0, phys_v = 0, shown = 0;
	double x = 0, start = now(), last = start, next_line = start;
	while (!stop) {
		int changed = update(greet, "greeting") | update(phys, "physics");
		/* Re-resolve only when the live build changed: hr_sym is a lookup, not a system call, but not free. */
		if (hr_version(greet) != greet_v) {
			greet_v = hr_version(greet);
			greeting = (const char *(*)(void))hr_sym(greet, "greeting");
		}
		if (hr_version(phys) != phys_v) {
			phys_v = hr_version(phys);
			step = (double (*)(double, double))hr_sym(phys, "step");
			speed = (double (*)(void))hr_sym(phys, "speed");
		}
		double t = now();
		if (step)
			x = step(x, t - last);
		last = t;
		if (changed || t >= next_line) {
			printf("[%4.0fs] greeting v%llu: \"%s\" | physics v%llu: x = %.1f (speed %.1f)\n", t - start,
			       (unsigned long long)greet_v, greeting ? greeting() : "(no build yet)", (unsigned long long)phys_v,
			       x, speed ? speed() : 0.0);
			next_line = t + 1;
		}
		hud(c, &shown);
		if (seconds >= 0 && t - start >= seconds)
			break;
		struct timespec frame = {0, 16 * 1000000}; /* about 60 frames a second */
		nanosleep(&frame, NULL);
	}
	hr_disconnect(c);
	/* Stopped by a signal, say so as a shell would (130 for Ctrl-C). */
	return stop ? 128 + stop : 0;
}
