/* progmod.h: the module that stands for the running program (hr_open_program): patch builds queued and applied at hr_update. */
#ifndef HRC_PROGMOD_H
#define HRC_PROGMOD_H

#include <stdint.h>

#include "client.h"
#include "patch.h"

/* The module name a program subscribes with: no module can have it, it means every patch unit. */
#define HRC_PROGRAM_NAME "/"

typedef struct hrc_progmod hrc_progmod;

/* Wrap p (taken); NULL on ENOMEM (p then closed). */
hrc_progmod *hrc_progmod_new(hrc_prog *p);
void hrc_progmod_free(hrc_progmod *pm);
/*
 * The library's thread: a patch BUILD (unit path, version, fd, not taken),
 * queued for every open program module whose program has that unit and whose
 * executable is older than the object; others are passed over silently.
 * more (HRP_KIND_MORE): another unit of the same change follows; what is
 * queued reaches hr_update only with the last.
 * Under c->lock.
 */
void hrc_progmod_on_build(hr_client *c, const char *unit, uint64_t version, int fd, int more);
/*
 * The library's thread, not under c->lock, after hrc_progmod_on_build: load ahead each queued patch (placed,
 * bound, relocated, not switched in), so that the hr_update that applies it is left the switch.
 */
void hrc_progmod_preload(hr_client *c);
/* A new connection: a change whose last unit never came (the daemon went away meanwhile) holds nothing back. Under c->lock. */
void hrc_progmod_unhold(hr_client *c);
/* Whether an open program module's program has unit (so that the unit's FAILED is its note). Under c->lock. */
int hrc_progmod_has_unit(hr_client *c, const char *unit);
/* hr_update's slow path for a program module: apply what is queued, together. 1, 0 or -errno. */
int hrc_progmod_take(hr_module *m);

#endif
