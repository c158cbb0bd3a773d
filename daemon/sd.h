/* sd.h: the two things the daemon takes from systemd when it runs under it: a listening socket, and readiness notices. */
#ifndef HRD_SD_H
#define HRD_SD_H

/*
 * Take what systemd passed out of the environment, so that no compiler
 * inherits it: $NOTIFY_SOCKET, kept for hrd_sd_notify, and the socket of
 * socket activation (LISTEN_PID is this process, LISTEN_FDS is 1), made
 * close-on-exec and returned. -1 when there is no socket; -2 (with a message
 * in err) when what was passed is not one listening Unix stream socket.
 */
int hrd_sd_start(char *err, unsigned errsz);

/* Send state ("READY=1", "STOPPING=1", "STATUS=...") to the $NOTIFY_SOCKET taken at the start, if any. Best effort. */
void hrd_sd_notify(const char *state);

#endif
