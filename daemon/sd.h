/* sd.h: the two things the daemon takes from systemd when it runs under it: a listening socket, and readiness notices. */
#ifndef HRD_SD_H
#define HRD_SD_H

/*
 * The socket systemd passed (socket activation: LISTEN_PID is this process,
 * LISTEN_FDS is 1), made close-on-exec, with LISTEN_* removed from the
 * environment so that no child takes it too. -1 when there is none; -2 (with
 * a message in err) when what was passed is not one listening Unix stream socket.
 */
int hrd_sd_listen_fd(char *err, unsigned errsz);

/* Send state ("READY=1", "STOPPING=1", "STATUS=...") to $NOTIFY_SOCKET, if set. Best effort. */
void hrd_sd_notify(const char *state);

#endif
