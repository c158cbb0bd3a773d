/* game.c: the SDL example's host: the window, the loop, input, rendering and every byte of state; the gameplay reloads from modules/. */
#include <SDL.h>
#include <errno.h>
#include <hotreload.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "draw.h"
#include "game.h"
#include "hud.h"

static volatile sig_atomic_t stop, shots_wanted; /* the signal that stops the game (-1: the player quit); SIGUSR1s */

static void on_signal(int sig)
{
	if (sig == SIGUSR1)
		shots_wanted++;
	else
		stop = sig;
}

/* Until a module's first build is live, the game runs on these. */
static uint32_t grey(void)
{
	return 0x202020;
}
static uint32_t white(void)
{
	return 0xffffff;
}
static uint32_t grey_kind(int kind)
{
	(void)kind;
	return 0x808080;
}

/* The gameplay: what the modules export, re-resolved whenever one switches. */
static struct {
	color_fn *background, *player;
	color_kind_fn *entity;
	player_update_fn *player_update;
	player_body_fn *player_body;
	swarm_step_fn *swarm_step;
} fn = {grey, white, grey_kind, NULL, NULL, NULL};

enum { COLORS, PLAYER, SWARM, NMODS };
static const char *const names[NMODS] = {"colors", "player", "swarm"};

static void resolve(int i, hr_module *m)
{
	void *p;
#define RESOLVE(slot, sym, fallback) (p = hr_sym(m, sym), memcpy(&fn.slot, &p, sizeof p), fn.slot = fn.slot ? fn.slot : (fallback))
	switch (i) {
	case COLORS:
		RESOLVE(background, "color_background", grey);
		RESOLVE(player, "color_player", white);
		RESOLVE(entity, "color_entity", grey_kind);
		break;
	case PLAYER:
		RESOLVE(player_update, "player_update", NULL);
		RESOLVE(player_body, "player_body", NULL);
		break;
	case SWARM:
		RESOLVE(swarm_step, "swarm_step", NULL);
		break;
	}
#undef RESOLVE
}

/* Frame times: a histogram of 10 µs buckets, for the figures printed at the end. */
#define BUCKETS 10000
static struct {
	unsigned long hist[BUCKETS], frames, reloads;
	double reload_max, max, switch_ms, switch_max; /* switch: the hr_update calls of a frame with a reload */
} times;

static void count_frame(double ms, int reloaded, double switch_ms)
{
	long b = (long)(ms * 100);
	times.hist[b < 0 ? 0 : b >= BUCKETS ? BUCKETS - 1 : b]++;
	times.frames++;
	times.max = ms > times.max ? ms : times.max;
	if (reloaded) {
		times.reloads++;
		times.reload_max = ms > times.reload_max ? ms : times.reload_max;
		times.switch_ms += switch_ms;
		times.switch_max = switch_ms > times.switch_max ? switch_ms : times.switch_max;
	}
}

static double percentile(double q)
{
	unsigned long want = (unsigned long)(q * (double)times.frames), seen = 0;
	for (long b = 0; b < BUCKETS; b++)
		if ((seen += times.hist[b]) > want)
			return (double)(b + 1) / 100;
	return times.max;
}

/* What the player sees (the window's pixels), as a 24-bit BMP, written whole or not at all. */
static void screenshot(SDL_Window *win, const char *dir, int n, const struct world *w, struct body player)
{
	char path[4096], tmp[4200];
	snprintf(path, sizeof path, "%s/shot-%d.bmp", dir, n);
	snprintf(tmp, sizeof tmp, "%s.tmp", path);
	SDL_Surface *s = SDL_ConvertSurfaceFormat(SDL_GetWindowSurface(win), SDL_PIXELFORMAT_BGR24, 0);
	const char *why = !s || SDL_SaveBMP(s, tmp) != 0 ? SDL_GetError() : rename(tmp, path) != 0 ? strerror(errno) : NULL;
	if (why) {
		remove(tmp);
		fprintf(stderr, "game: cannot save %s: %s\n", path, why);
		printf("shot %d failed\n", n);
	} else {
		printf("shot %d %s frame %llu player %.1f,%.1f\n", n, path, (unsigned long long)w->frame, player.x, player.y);
	}
	SDL_FreeSurface(s);
}

static void draw_world(struct canvas *cv, const struct world *w, struct body player, int have_player)
{
	draw_rect(cv, 0, 0, cv->w, cv->h, fn.background(), 255);
	for (int i = 0; i < w->n; i++)
		draw_disc(cv, w->e[i].x, w->e[i].y, w->e[i].r, fn.entity(w->e[i].kind) & 0xffffff);
	if (have_player)
		draw_disc(cv, player.x, player.y, player.r, fn.player() & 0xffffff);
}

static void read_input(struct input *in, int *shot)
{
	SDL_Event ev;
	while (SDL_PollEvent(&ev)) {
		if (ev.type == SDL_QUIT || (ev.type == SDL_KEYDOWN && ev.key.keysym.sym == SDLK_ESCAPE))
			stop = -1;
		if (ev.type == SDL_KEYDOWN && ev.key.keysym.sym == SDLK_F12 && !ev.key.repeat)
			*shot = 1;
	}
	const Uint8 *k = SDL_GetKeyboardState(NULL);
	*in = (struct input){k[SDL_SCANCODE_LEFT] || k[SDL_SCANCODE_A], k[SDL_SCANCODE_RIGHT] || k[SDL_SCANCODE_D],
	                     k[SDL_SCANCODE_UP] || k[SDL_SCANCODE_W], k[SDL_SCANCODE_DOWN] || k[SDL_SCANCODE_S],
	                     k[SDL_SCANCODE_SPACE]};
}

/* The notes are drawn; they also go to stdout, one line each, for the terminal and for scripts. */
static void print_note(const hr_note *n, void *arg)
{
	(void)arg;
	printf("note: %s\n", n->text);
}

static void usage(void)
{
	fprintf(stderr, "usage: sdl-game [--shots DIR] [--seconds N]\n"
	                "  SIGUSR1 or F12 saves DIR/shot-N.bmp (default: the current directory); arrows move, space dashes, Esc quits.\n");
	exit(2);
}

int main(int argc, char **argv)
{
	const char *dir = ".";
	double seconds = -1;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--shots") == 0 && i + 1 < argc)
			dir = argv[++i];
		else if (strcmp(argv[i], "--seconds") == 0 && i + 1 < argc)
			seconds = atof(argv[++i]);
		else
			usage();
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	struct sigaction sa = {.sa_handler = on_signal};
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGUSR1, &sa, NULL);

	if (SDL_Init(SDL_INIT_VIDEO) != 0) {
		fprintf(stderr, "game: no display (%s): set DISPLAY, or run it under xvfb-run\n", SDL_GetError());
		return 1;
	}
	SDL_Window *win = SDL_CreateWindow("hotreload: SDL example", SDL_WINDOWPOS_CENTERED, SDL_WINDOWPOS_CENTERED, ARENA_W,
	                                   ARENA_H, 0);
	SDL_Surface *canvas = SDL_CreateRGBSurfaceWithFormat(0, ARENA_W, ARENA_H, 32, SDL_PIXELFORMAT_RGB888);
	/* Lazy: without a daemon the game runs on its fallbacks, and takes the gameplay once one answers. */
	hr_client *c = win && canvas ? hr_connect_lazy(NULL) : NULL;
	if (!c) {
		if (!win || !canvas)
			fprintf(stderr, "game: cannot open the window: %s\n", SDL_GetError());
		else
			fprintf(stderr, "game: cannot start the reloader: %s\n", strerror(errno));
		SDL_Quit();
		return 1;
	}
	hr_set_note_sink(c, print_note, NULL);
	hr_set_note_ttl(c, HUD_NOTE_MS);

	/* The state: all of it here, so that it outlives every build of every module. */
	static struct world world;
	static struct module_state player_state;
	static struct hud hud;
	hr_module *mods[NMODS];
	uint64_t live[NMODS] = {0};
	for (int i = 0; i < NMODS; i++)
		if (!(mods[i] = hr_open(c, names[i]))) {
			fprintf(stderr, "game: cannot open module %s: %s\n", names[i], strerror(errno));
			hr_disconnect(c);
			SDL_Quit();
			return 1;
		}
	hr_set_userdata(mods[PLAYER], &player_state);
	/* The host's own code (this file, hud.c, draw.c, font.c), patched at the same safe point when the daemon runs
	 * with --patch (PATCHING.md). A game built without the patch flags runs on unpatched. */
	hr_module *prog = hr_open_program(c);
	if (!prog)
		fprintf(stderr, "game: the host's code will not be patched: %s\n", hr_last_error());
	printf("game: running, %dx%d; kill -USR1 %d saves a screenshot\n", ARENA_W, ARENA_H, (int)getpid());

	Uint64 hz = SDL_GetPerformanceFrequency(), last = SDL_GetPerformanceCounter(), start = last;
	int shots = 0;           /* screenshots saved */
	sig_atomic_t handled = 0; /* SIGUSR1s answered */
	while (!stop) {
		struct input in;
		int shot = 0;
		sig_atomic_t want = shots_wanted; /* a shot asked for now shows a frame begun after the asking */
		read_input(&in, &shot);
		Uint64 t0 = SDL_GetPerformanceCounter();
		float dt = (float)(t0 - last) / (float)hz;
		dt = dt > 0.05f ? 0.05f : dt;
		last = t0;

		/* The safe point: each module switches here, or nowhere. */
		int switched[NMODS] = {0}, reloaded = 0;
		for (int i = 0; i < NMODS; i++) {
			switched[i] = hr_update(mods[i]);
			if (hr_version(mods[i]) != live[i]) {
				live[i] = hr_version(mods[i]);
				resolve(i, mods[i]);
			}
			reloaded |= switched[i] != 0;
		}
		int patched = prog ? hr_update(prog) : 0;
		reloaded |= patched != 0;
		double switch_ms = (double)(SDL_GetPerformanceCounter() - t0) * 1000 / (double)hz;
		int have_player = fn.player_update && fn.player_body;
		struct body player = {ARENA_W / 2.0f, ARENA_H / 2.0f, 0};
		if (have_player) {
			fn.player_update(&player_state, &in, dt);
			player = fn.player_body(&player_state);
		}
		if (fn.swarm_step)
			fn.swarm_step(&world, player, dt);
		world.n = world.n < 0 ? 0 : world.n > MAX_ENTITIES ? MAX_ENTITIES : world.n; /* whatever a module wrote */

		struct canvas cv = {canvas->pixels, canvas->w, canvas->h, canvas->pitch / 4};
		draw_world(&cv, &world, player, have_player);
		char versions[128];
		int len = 0;
		for (int i = 0; i < NMODS; i++)
			len += snprintf(versions + len, sizeof versions - (size_t)len, live[i] ? "%s v%llu   " : "%s -   ", names[i],
			                (unsigned long long)live[i]);
		hud_draw(&hud, &cv, c, versions);
		double ms = (double)(SDL_GetPerformanceCounter() - t0) * 1000 / (double)hz;
		hud_frame(&hud, (float)ms, reloaded);
		count_frame(ms, reloaded, switch_ms);

		SDL_BlitSurface(canvas, NULL, SDL_GetWindowSurface(win), NULL);
		SDL_UpdateWindowSurface(win);
		for (int i = 0; i < NMODS; i++)
			if (switched[i] > 0)
				printf("frame %llu: %s v%llu live (work %.3f ms)\n", (unsigned long long)world.frame, names[i],
				       (unsigned long long)live[i], ms);
			else if (switched[i] < 0)
				printf("frame %llu: a new build of %s was refused; v%llu stays live\n", (unsigned long long)world.frame,
				       names[i], (unsigned long long)live[i]);
		if (patched > 0)
			printf("frame %llu: host patch %llu live\n", (unsigned long long)world.frame,
			       (unsigned long long)hr_version(prog));
		else if (patched < 0)
			printf("frame %llu: a patch of the host was refused; patch %llu stays live\n",
			       (unsigned long long)world.frame, (unsigned long long)hr_version(prog));
		if (shot || handled != want) {
			handled = want;
			screenshot(win, dir, ++shots, &world, player);
		}
		if (seconds >= 0 && (double)(SDL_GetPerformanceCounter() - start) / (double)hz >= seconds)
			break;
		/* About 60 frames a second. */
		double spent = (double)(SDL_GetPerformanceCounter() - t0) * 1000 / (double)hz;
		if (spent < 16)
			SDL_Delay((Uint32)(16 - spent));
	}
	printf("frames %lu: work p50 %.2f ms, p99 %.2f ms, max %.2f ms; %lu with a reload, max %.2f ms, "
	       "their hr_update calls avg %.1f us, max %.1f us\n",
	       times.frames, percentile(0.5), percentile(0.99), times.max, times.reloads, times.reload_max,
	       times.reloads ? times.switch_ms * 1000 / (double)times.reloads : 0, times.switch_max * 1000);
	for (int i = 0; i < NMODS; i++)
		hr_close(mods[i]);
	hr_close(prog);
	hr_disconnect(c);
	SDL_FreeSurface(canvas);
	SDL_DestroyWindow(win);
	SDL_Quit();
	return stop > 0 ? 128 + stop : 0;
}
