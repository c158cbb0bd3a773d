/* main.c: hotreloadd: options, state dir and lock, detaching, signals, and the loop's life. */
#include "config.h"
#include "engine.h"
#include "fsinfo.h"
#include "log.h"
#include "loop.h"
#include "sd.h"
#include "server.h"
#include "incdir.h"
#include "statedir.h"
#include "store.h"
#include "watch.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <pwd.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/file.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

static const char usage[] =
	"usage: hotreloadd [options]\n"
	"Watch a folder of C modules; build each saved module into a new shared object,\n"
	"record it, and announce it to the games that use it.\n"
	"\n"
	"  --root DIR         the modules' folder (default: the current directory)\n"
	"  --state-dir DIR    history and built objects (default: ROOT/.hotreload, or a link\n"
	"                     from there to $XDG_STATE_HOME/hotreload/ when ROOT's filesystem\n"
	"                     is a network one, 9p, FUSE or noexec)\n"
	"  --socket PATH      where clients connect (default: $HOTRELOAD_SOCKET,\n"
	"                     else STATE_DIR/hotreloadd.sock)\n"
	"  --watcher NAME     auto, inotify, fanotify or poll (default: auto: polling where\n"
	"                     kernel events miss writers, fanotify for a huge tree)\n"
	"  --poll-interval MS how often polling looks at recently saved files (default:\n"
	"                     500; every file is looked at within four intervals)\n"
	"  --verify-every S   look at every module every S seconds too, whatever the\n"
	"                     watcher says (default: never)\n"
	"  --follow-links     watch and build modules linked into the root from outside it\n"
	"  --patch PATH       patch the program itself: build each saved translation unit\n"
	"                     of the compile database PATH (compile_commands.json) into an\n"
	"                     object for hr_open_program (default: hotreload.conf's patch)\n"
	"  --jobs N           compilers at once (default: the number of cores)\n"
	"  --allow-uid UID    accept clients of this user too (a number or a name, never nobody; repeatable)\n"
	"  --foreground       stay attached and log to stderr (default: detach once ready,\n"
	"                     logging to STATE_DIR/hotreloadd.log)\n"
	"  --log-level LEVEL  error, warn, info (the default) or debug\n"
	"  -v, --verbose      --log-level debug;  -q, --quiet  --log-level warn\n"
	"  --help, --version\n"
	"\n"
	"The compiler is $CC (default cc) with -shared -fPIC -g, then $CFLAGS; $LDFLAGS\n"
	"follow the sources. SIGTERM or SIGINT stops it; SIGHUP looks at every module\n"
	"again and builds the ones whose last build failed. Under systemd it takes the\n"
	"socket of its socket unit, says when it is ready ($NOTIFY_SOCKET), and logs in\n"
	"the journal's format (priority, no time) when stderr is the journal.\n";

struct opts {
	const char *root, *state_dir, *socket, *watcher, *patch;
	int jobs, foreground, level, poll_ms, follow, verify_s;
	uid_t allow[64];
	size_t nallow;
};

static void die_usage(const char *fmt, const char *arg)
{
	fprintf(stderr, "hotreloadd: ");
	fprintf(stderr, fmt, arg);
	fprintf(stderr, "\nTry 'hotreloadd --help'.\n");
	exit(2);
}

static void parse(int argc, char **argv, struct opts *o)
{
	enum { ROOT = 256, STATE, SOCKET, WATCHER, POLL, FOLLOW, VERIFY, JOBS, ALLOW, FG, LEVEL, HELP, VERSION, PATCH };
	static const struct option longs[] = {
		{"root", required_argument, NULL, ROOT}, {"state-dir", required_argument, NULL, STATE},
		{"socket", required_argument, NULL, SOCKET}, {"watcher", required_argument, NULL, WATCHER},
		{"poll-interval", required_argument, NULL, POLL}, {"follow-links", no_argument, NULL, FOLLOW},
		{"verify-every", required_argument, NULL, VERIFY}, {"jobs", required_argument, NULL, JOBS}, {"allow-uid", required_argument, NULL, ALLOW},
		{"foreground", no_argument, NULL, FG}, {"verbose", no_argument, NULL, 'v'},
		{"quiet", no_argument, NULL, 'q'}, {"log-level", required_argument, NULL, LEVEL},
		{"help", no_argument, NULL, HELP},
		{"version", no_argument, NULL, VERSION}, {"patch", required_argument, NULL, PATCH}, {0, 0, 0, 0},
	};
	int c;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "vq", longs, NULL)) != -1) {
		char *end;
		long n;
		switch (c) {
		case ROOT: o->root = optarg; break;
		case STATE: o->state_dir = optarg; break;
		case SOCKET: o->socket = optarg; break;
		case WATCHER: o->watcher = optarg; break;
		case PATCH: o->patch = optarg; break;
		case FG: o->foreground = 1; break;
		case FOLLOW: o->follow = 1; break;
		case 'v': o->level = HRD_DEBUG; break;
		case 'q': o->level = HRD_WARN; break;
		case LEVEL:
			if ((o->level = hrd_log_level_named(optarg)) < 0)
				die_usage("--log-level takes error, warn, info or debug, not '%s'", optarg);
			break;
		case POLL:
			n = strtol(optarg, &end, 10);
			if (*end || n < 10 || n > 60000)
				die_usage("--poll-interval takes milliseconds from 10 to 60000, not '%s'", optarg);
			o->poll_ms = (int)n;
			break;
		case VERIFY:
			n = strtol(optarg, &end, 10);
			if (*end || n < 1 || n > 86400)
				die_usage("--verify-every takes seconds from 1 to 86400, not '%s'", optarg);
			o->verify_s = (int)n;
			break;
		case JOBS:
			n = strtol(optarg, &end, 10);
			/* Bounded, like the clients, so that the daemon's descriptors stay
			 * below FD_SETSIZE (see watch_inotify.c). */
			if (*end || n < 1 || n > 128)
				die_usage("--jobs takes a number from 1 to 128, not '%s'", optarg);
			o->jobs = (int)n;
			break;
		case ALLOW: {
			/* A name, else digits only, within uid_t: a number cast to it wrapped (2^32 + 1000 was uid 1000). */
			struct passwd *pw = getpwnam(optarg);
			unsigned long long u = 0;
			errno = 0;
			if (!pw && (optarg[0] < '0' || optarg[0] > '9' || (u = strtoull(optarg, &end, 10), errno) || *end ||
			            u >= (uid_t)-1))
				die_usage("--allow-uid takes a user name or a uid from 0 to 4294967294, not '%s'", optarg);
			uid_t uid = pw ? pw->pw_uid : (uid_t)u;
			/* nobody is whoever runs without a user of its own: allowing it allows them all */
			if (uid == 65534)
				die_usage("--allow-uid '%s' is nobody (65534), the user of every service without one of its own: "
				          "it is never allowed; run the game as a user of its own and allow that one",
				          optarg);
			if (o->nallow == sizeof o->allow / sizeof *o->allow)
				die_usage("%s", "--allow-uid is given too often");
			o->allow[o->nallow++] = uid;
			break;
		}
		case HELP: fputs(usage, stdout); exit(0);
		case VERSION: puts("hotreloadd " HR_VERSION_STRING); exit(0);
		default: die_usage("unknown or incomplete option '%s'", argv[optind - 1]);
		}
	}
	if (optind < argc)
		die_usage("unexpected argument '%s'", argv[optind]);
	/* Checked before anything is created on disk. */
	if (strcmp(o->watcher, "auto") != 0 && strcmp(o->watcher, "inotify") != 0 &&
	    strcmp(o->watcher, "fanotify") != 0 && strcmp(o->watcher, "poll") != 0)
		die_usage("--watcher takes auto, inotify, fanotify or poll, not '%s'", o->watcher);
}

/* $HOTRELOAD_LOG_MAX: the log file's size past which it is rotated, in bytes, or with K, M or G. */
static uint64_t log_max(void)
{
	const char *v = getenv("HOTRELOAD_LOG_MAX");
	if (!v || !*v)
		return 8 << 20;
	char *end;
	errno = 0;
	unsigned long long n = strtoull(v, &end, 10);
	int shift = *end == 'K' ? 10 : *end == 'M' ? 20 : *end == 'G' ? 30 : 0;
	if (shift)
		end++;
	if (errno || *end || *v == '-' || n > (1ULL << 40) >> shift || (n << shift) < 4096) {
		fprintf(stderr, "hotreloadd: HOTRELOAD_LOG_MAX takes a size from 4096 bytes to 1T, as 8M or 65536, not '%s'\n", v);
		exit(2);
	}
	return n << shift;
}

/*
 * Detach: the parent waits for one byte from the child, "ready", and exits 0;
 * if the pipe closes without it, the child has said why on stderr: exit 1.
 */
static int detach(void)
{
	int p[2];
	if (pipe2(p, O_CLOEXEC) < 0)
		return -1;
	pid_t pid = fork();
	if (pid < 0)
		return -1;
	if (pid > 0) {
		close(p[1]);
		char c;
		ssize_t n;
		while ((n = read(p[0], &c, 1)) < 0 && errno == EINTR)
			;
		if (n == 1)
			_exit(0);
		waitpid(pid, NULL, 0);
		_exit(1);
	}
	close(p[0]);
	setsid();
	return p[1];
}

/*
 * One of the daemon's files in the state dir: opened through the folder's
 * descriptor and never through a link, which another user may have planted
 * before the folder was ours. A descriptor, or -1 (said).
 */
static int open_own(int statefd, const char *state_dir, const char *name, int flags)
{
	struct stat st;
	int fd = openat(statefd, name, flags | O_CREAT | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, 0600);
	if (fd < 0 && errno == ELOOP) {
		fprintf(stderr, "hotreloadd: %s/%s is a symbolic link, which is never followed: remove it\n", state_dir, name);
		return -1;
	}
	if (fd >= 0 && (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))) {
		fprintf(stderr, "hotreloadd: %s/%s is not a regular file: remove it\n", state_dir, name);
		close(fd);
		return -1;
	}
	if (fd < 0)
		fprintf(stderr, "hotreloadd: cannot open %s/%s: %s\n", state_dir, name, strerror(errno));
	return fd;
}

static int lock_state(int statefd, const char *state_dir)
{
	int fd = open_own(statefd, state_dir, "hotreloadd.lock", O_RDWR);
	if (fd < 0)
		return -1;
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		char pid[32] = "";
		ssize_t n = pread(fd, pid, sizeof pid - 1, 0);
		pid[n > 0 ? n : 0] = '\0';
		pid[strcspn(pid, "\n")] = '\0';
		fprintf(stderr, "hotreloadd: another hotreloadd (pid %s) already serves %s: stop it first, "
		                "or give this one another --state-dir\n",
		        *pid ? pid : "?", state_dir);
		close(fd);
		return -1;
	}
	char pid[32];
	int n = snprintf(pid, sizeof pid, "%d\n", (int)getpid());
	if (ftruncate(fd, 0) < 0 || pwrite(fd, pid, (size_t)n, 0) != n)
		hrd_warn("cannot write the pid to %s/hotreloadd.lock: %s", state_dir, strerror(errno));
	return fd;
}

/*
 * The socket's folder, when the socket is not in the state dir: held to the
 * same rule, since whoever can write there can put a socket of their own in
 * place of ours. 0, or -1 (said).
 */
static int check_socket_dir(const char *sock)
{
	char dir[PATH_MAX], real[PATH_MAX], why[2 * PATH_MAX + 512];
	const char *slash = strrchr(sock, '/');
	if (!slash)
		snprintf(dir, sizeof dir, ".");
	else
		snprintf(dir, sizeof dir, "%.*s", slash == sock ? 1 : (int)(slash - sock), sock);
	int fd = -1;
	if (!realpath(dir, real))
		snprintf(why, sizeof why, "%s cannot be reached: %s", dir, strerror(errno));
	else
		fd = hrd_statedir_open(real, "--socket", why, sizeof why);
	if (fd < 0) {
		fprintf(stderr, "hotreloadd: the socket's folder is not safe to use: %s\n", why);
		return -1;
	}
	close(fd);
	return 0;
}

struct sigio {
	hrd_io io;
	hrd_loop *loop;
	hrd_engine *engine;
};

static void on_signal(hrd_io *io, uint32_t events)
{
	struct sigio *s = (struct sigio *)io;
	struct signalfd_siginfo si;
	(void)events;
	if (read(io->fd, &si, sizeof si) != sizeof si)
		return;
	if (si.ssi_signo == SIGHUP) {
		hrd_info("SIGHUP: reading " HRD_CONFIG_FILE " again, looking at every module, and building what failed");
		hrd_engine_retry_failed(s->engine);
		if (!hrd_engine_reload_config(s->engine, "SIGHUP")) /* a scan, whether the file is good or not */
			hrd_engine_scan(s->engine, "SIGHUP");
		return;
	}
	hrd_info("stopping on %s", strsignal((int)si.ssi_signo));
	s->loop->stop = 1;
}

/* Descriptors 0-2 open: else a database or a socket could become "stderr". */
static void prepare_fds(void)
{
	int fd;
	while ((fd = open("/dev/null", O_RDWR)) >= 0 && fd <= 2)
		;
	if (fd > 2)
		close(fd);
}

/* Where the daemon is: its root, its state dir (placed, made, checked, and open), its socket. */
struct placed {
	char root[PATH_MAX], state[PATH_MAX], sock[PATH_MAX + 32];
	char note[4 * PATH_MAX]; /* where the state dir went and why, when it is not the usual place */
	int statefd;
	int given;               /* the socket systemd passed, or -1 */
	int probed;              /* facts holds what the root's filesystem says */
	hrd_fsfacts facts;
};

static int find_root(const struct opts *o, struct placed *p)
{
	struct stat st;
	if (!realpath(o->root ? o->root : ".", p->root)) {
		fprintf(stderr, "hotreloadd: cannot use the root %s: %s\n", o->root ? o->root : ".", strerror(errno));
		return -1;
	}
	if (stat(p->root, &st) < 0 || !S_ISDIR(st.st_mode)) {
		fprintf(stderr, "hotreloadd: the root %s is not a folder\n", p->root);
		return -1;
	}
	/* What the root's filesystem and this machine say: where the state dir can live, and the watcher for auto. */
	p->probed = hrd_fs_probe(p->root, strcmp(o->watcher, "auto") == 0, &p->facts) == 0;
	return 0;
}

/* The state dir: placed, made, checked to be ours alone, and opened. 0, or -1 (said). */
static int open_state(const struct opts *o, struct placed *p)
{
	char want[PATH_MAX + 16];
	const char *root = p->root;
	char *state = p->state, *note = p->note;
	const size_t note_size = sizeof p->note;
	struct stat st;
	snprintf(want, sizeof want, "%s/.hotreload", root);
	if (o->state_dir)
		snprintf(want, sizeof want, "%s", o->state_dir);
	else if (p->probed && hrd_statedir_place(root, &p->facts, want, sizeof want, note, note_size) < 0) {
		fprintf(stderr, "hotreloadd: %s\n", note);
		return -1;
	}
	/* A link to it counts only if it is ours or root's: else its maker chose where our files go. */
	if (lstat(want, &st) == 0 && S_ISLNK(st.st_mode) && st.st_uid != geteuid() && st.st_uid != 0) {
		fprintf(stderr, "hotreloadd: the state dir %s is a symbolic link of uid %u, not yours: remove it, or "
		        "give --state-dir a folder of your own\n", want, (unsigned)st.st_uid);
		return -1;
	}
	/* A state dir made here gets a .gitignore: one given, or there before, is the user's to keep as it is. */
	int made = lstat(want, &st) < 0 && errno == ENOENT;
	if (hrd_make_dirs(want, 0700) < 0 || !realpath(want, state)) {
		fprintf(stderr, "hotreloadd: cannot create the state dir %s: %s\n", want, strerror(errno));
		return -1;
	}
	char unfit[2 * PATH_MAX + 512];
	int statefd = p->statefd = hrd_statedir_open(state, "--state-dir", unfit, sizeof unfit);
	if (statefd < 0) {
		fprintf(stderr, "hotreloadd: the state dir is not safe to use: %s\n", unfit);
		return -1;
	}
	if (made && hrd_statedir_gitignore(statefd) < 0)
		hrd_warn("cannot write %s/.gitignore: %s", state, strerror(errno));
	/* Allowed users must reach the socket and load the objects inside. */
	if (o->nallow && fchmod(statefd, 0711) < 0) {
		fprintf(stderr, "hotreloadd: cannot open the state dir %s to --allow-uid users: %s\n", state, strerror(errno));
		return -1;
	}
	if (strcmp(state, root) == 0) {
		fprintf(stderr, "hotreloadd: the state dir cannot be the root itself; give --state-dir another folder\n");
		return -1;
	}
	return 0;
}

/* Where the socket goes (its folder made and checked), or the one systemd passed. 0, or -1 (said). */
static int place_socket(const struct opts *o, struct placed *p)
{
	char err[2048];
	char *sock = p->sock;
	const size_t sock_size = sizeof p->sock;
	const char *state = p->state;
	const char *env = getenv("HOTRELOAD_SOCKET");
	snprintf(sock, sock_size, "%s/" HRP_SOCKET_NAME, state);
	if (o->socket || (env && *env))
		snprintf(sock, sock_size, "%s", o->socket ? o->socket : env);
	char *slash = strrchr(sock, '/');
	if (slash && slash != sock) {
		*slash = '\0';
		int rc = hrd_make_dirs(sock, 0700);
		*slash = '/';
		if (rc < 0) {
			fprintf(stderr, "hotreloadd: cannot create the folder of the socket %s: %s\n", sock, strerror(errno));
			return -1;
		}
	}

	/* Started by systemd's socket unit: its socket, whatever --socket says. */
	int given = p->given = hrd_sd_start(err, sizeof err);
	if (given == -2) {
		fprintf(stderr, "hotreloadd: %s\n", err);
		return -1;
	}
	if (given < 0 && (o->socket || (env && *env)) && check_socket_dir(sock) < 0)
		return -1;
	if (given >= 0) {
		struct sockaddr_un sa;
		socklen_t len = sizeof sa;
		if (getsockname(given, (struct sockaddr *)&sa, &len) == 0 && len > offsetof(struct sockaddr_un, sun_path) &&
		    sa.sun_path[0])
			snprintf(sock, sock_size, "%.*s", (int)(len - offsetof(struct sockaddr_un, sun_path)), sa.sun_path);
	}

	return 0;
}

/* The watcher, on the root less the state dir and what hotreload.conf excludes. 0, or -1 with the message in err. */
static int open_watcher(const struct opts *o, const struct placed *p, hrd_watch **watch, char *err, size_t errsz)
{
	char link[PATH_MAX + 16];
	const char *root = p->root, *state = p->state;
	/* The state dir, and ROOT/.hotreload when that is only a link to it elsewhere. */
	snprintf(link, sizeof link, "%s/.hotreload", root);
	const char *exclude[] = {state, link, NULL};
	/* And what hotreload.conf excludes: never watched. A bad file is the engine's to report. */
	hrd_config conf = {0};
	int rootfd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (rootfd < 0 || hrd_config_load(rootfd, &conf, err, errsz) < 0)
		memset(&conf, 0, sizeof conf);
	if (rootfd >= 0)
		close(rootfd);
	struct hrd_watch_options wo = {o->watcher, o->poll_ms, o->follow, conf.exclude, p->probed ? &p->facts : NULL};
	/* First, while descriptors are few: libinotifytools waits with select(). */
	int watching = hrd_watch_open(&wo, root, exclude, watch, err, errsz);
	hrd_config_free(&conf); /* the watcher keeps copies */
	return watching;
}

/* --patch's path made absolute, its folder resolved (the build may replace the file itself). A new string, or NULL with errno. */
static char *absolute_patch(const char *path)
{
	char *copy = strdup(path), *dir = NULL, *out = NULL;
	char *slash = copy ? strrchr(copy, '/') : NULL;
	if (!copy)
		return NULL;
	if (slash)
		*slash = '\0';
	const char *base = slash ? slash + 1 : copy;
	if ((dir = realpath(slash ? (*copy ? copy : "/") : ".", NULL)) && *base &&
	    asprintf(&out, "%s/%s", strcmp(dir, "/") == 0 ? "" : dir, base) < 0)
		out = NULL;
	if (dir && !*base)
		errno = EISDIR;
	free(dir);
	free(copy);
	return out;
}

/* Detach, lock the state dir, then serve until a signal ends it. The daemon's exit status. */
static int serve(const struct opts *o, struct placed *p, int jobs_given, uint64_t rotate_at)
{
	char err[2048];
	const char *root = p->root, *state = p->state, *sock = p->sock;
	const char *note = p->note;
	int statefd = p->statefd, given = p->given;
	struct stat st;
	int ready_fd = -1;
	if (!o->foreground && (ready_fd = detach()) < 0) {
		fprintf(stderr, "hotreloadd: cannot detach: %s\n", strerror(errno));
		return 1;
	}
	int devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (devnull >= 0)
		dup2(devnull, STDIN_FILENO);

	int status = 1, lock = lock_state(statefd, state), logfd = -1;
	if (lock < 0)
		return 1;
	if (ready_fd >= 0) {
		if ((logfd = open_own(statefd, state, "hotreloadd.log", O_WRONLY | O_APPEND)) < 0)
			return 1;
		hrd_log_also(logfd);
	}
	signal(SIGPIPE, SIG_IGN);
	/* Past a file size limit, a write fails with EFBIG and is reported, rather than killing the daemon. */
	signal(SIGXFSZ, SIG_IGN);
	/* The break of the instant read lease that tells whether a file is still
	 * being written (project.c) is signalled with SIGIO: nothing to do. */
	signal(SIGIO, SIG_IGN);
	sigset_t sigs;
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGHUP);
	sigprocmask(SIG_BLOCK, &sigs, NULL);

	hrd_watch *watch = NULL;
	hrd_store *store = NULL;
	hrd_engine *engine = NULL;
	hrd_server *server = NULL;
	hrd_loop loop = {.epfd = -1};
	struct sigio sig = {.io = {.fd = -1, .fn = on_signal}, .loop = &loop};
	char db[PATH_MAX + 16], *patch = NULL;
	if (open_watcher(o, p, &watch, err, sizeof err) < 0) {
		fprintf(stderr, "hotreloadd: %s\n", err);
		goto out;
	}
	snprintf(db, sizeof db, "%s/history.db", state);
	if (hrd_store_open(db, HRD_STORE_CREATE, &store, err, sizeof err) < 0) {
		fprintf(stderr, "hotreloadd: %s\n", err);
		goto out;
	}
	hrd_store_autocheckpoint(store, 0);
	if (hrd_loop_open(&loop) < 0 || (sig.io.fd = signalfd(-1, &sigs, SFD_CLOEXEC | SFD_NONBLOCK)) < 0 ||
	    hrd_loop_add(&loop, &sig.io, EPOLLIN) < 0) {
		fprintf(stderr, "hotreloadd: cannot set up the event loop: %s\n", strerror(errno));
		goto out;
	}
	if (o->patch && !(patch = absolute_patch(o->patch))) {
		fprintf(stderr, "hotreloadd: --patch %s: %s\n", o->patch, strerror(errno));
		goto out;
	}
	hrd_engine_config ec = {root, state, statefd, o->jobs, jobs_given, o->nallow > 0, &loop, store, watch, o->verify_s,
	                        patch};
	if (hrd_engine_open(&engine, &ec, err, sizeof err) < 0) {
		fprintf(stderr, "hotreloadd: %s\n", err);
		goto out;
	}
	sig.engine = engine;
	/* The watches are in place, so this scan misses nothing written after it starts. */
	hrd_engine_scan(engine, "scan");
	hrd_server_config sc = {sock, given, hrd_store_id(store), o->allow, o->nallow, &hrd_engine_server_ops, engine};
	if (hrd_server_open(&server, &loop, &sc, err, sizeof err) < 0) {
		fprintf(stderr, "hotreloadd: %s\n", err);
		goto out;
	}
	hrd_engine_set_server(engine, server);
	if (note[0])
		hrd_warn("%s", note);
	hrd_info("ready: watching %s (%s), %d job%s, socket %s%s", root, hrd_watch_backend(watch), o->jobs, o->jobs == 1 ? "" : "s", sock,
	         given >= 0 ? " (from systemd)" : "");
	hrd_info("modules find <hotreload.h> in %s", hrd_incdir());
	if (given >= 0 && o->nallow && (stat(sock, &st) < 0 || !(st.st_mode & S_IWOTH)))
		hrd_warn("--allow-uid: the socket systemd passed (%s) is not open to other users: set SocketMode=0666 "
		         "in its socket unit (the daemon still checks who connects)", sock);
	char notice[PATH_MAX + 64];
	snprintf(notice, sizeof notice, "READY=1\nSTATUS=watching %s", root);
	hrd_sd_notify(notice);
	if (ready_fd >= 0) {
		/* From here on the log file is stderr. */
		hrd_log_also(-1);
		if (devnull >= 0)
			dup2(devnull, STDOUT_FILENO);
		/* logfd stays open until the watcher thread is gone: it may be in
		 * the middle of a line to it. */
		if (logfd >= 0 && dup2(logfd, STDERR_FILENO) >= 0)
			hrd_log_rotate(statefd, "hotreloadd.log", rotate_at);
		hrd_log_level(o->level); /* stderr is the log file now, not a journal it may have been */
		(void)!write(ready_fd, "R", 1);
		close(ready_fd);
		ready_fd = -1;
	}
	if (hrd_loop_run(&loop) < 0)
		hrd_error("the event loop failed: %s", strerror(errno));
	else
		status = 0;
	hrd_sd_notify("STOPPING=1");
out:
	hrd_server_close(server);
	hrd_engine_close(engine);
	free(patch);
	hrd_watch_close(watch);
	if (store && hrd_store_checkpoint(store) < 0)
		hrd_warn("%s", hrd_store_error(store));
	hrd_store_close(store);
	if (sig.io.fd >= 0)
		close(sig.io.fd);
	hrd_loop_close(&loop);
	if (status == 0)
		hrd_info("stopped");
	hrd_log_rotate(-1, NULL, 0);
	if (logfd >= 0)
		close(logfd);
	close(lock);
	close(statefd);
	return status;
}

int main(int argc, char **argv)
{
	struct opts o = {.watcher = "auto", .level = HRD_INFO};
	prepare_fds();
	parse(argc, argv, &o);
	hrd_log_level(o.level);
	uint64_t rotate_at = log_max();
	int jobs_given = o.jobs > 0;
	if (!o.jobs) {
		long n = sysconf(_SC_NPROCESSORS_ONLN);
		o.jobs = n < 1 ? 1 : n > 128 ? 128 : (int)n;
	}
	static struct placed p; /* large: not on the stack */
	p.note[0] = '\0';
	if (find_root(&o, &p) < 0 || open_state(&o, &p) < 0 || place_socket(&o, &p) < 0)
		return 1;
	return serve(&o, &p, jobs_given, rotate_at);
}
