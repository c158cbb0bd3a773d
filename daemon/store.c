/* store.c: the build history in SQLite: open or create, migrate, record builds, query them. */
#include "store.h"
#include "../proto/sha256.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#define APP_ID 0x48524c44 /* "HRLD" in the header's application_id: marks our files */

struct hrd_store {
	sqlite3 *db;
	char *path;
	char id[33];
	sqlite3_stmt *next_version, *insert, *deps_clear, *deps_add, *blob_add, *file_add, *object_add, *object_trim;
	char err[1024];
	int wal_frames; /* the log's bound in pages, when the daemon checkpoints */
};

/*
 * Migrations: entry i takes user_version i to i+1. Never edit one that has
 * shipped; append a new one and raise HRD_SCHEMA_VERSION.
 */
static const char *const migrations[HRD_SCHEMA_VERSION] = {
	/* 1: the first schema */
	"CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;"
	"CREATE TABLE builds("
	" id INTEGER PRIMARY KEY,"
	" module TEXT NOT NULL,"
	" version INTEGER,"
	" status TEXT NOT NULL CHECK(status IN ('ok', 'failed', 'reused', 'rollback', 'refused')),"
	" started_at INTEGER NOT NULL," /* microseconds since the epoch, UTC */
	" duration_us INTEGER NOT NULL,"
	" source_hash TEXT NOT NULL DEFAULT '',"
	" command TEXT NOT NULL DEFAULT '',"
	" output TEXT NOT NULL DEFAULT '',"
	" message TEXT NOT NULL DEFAULT '');",
	/* 2: where the object went and what set the build off; a published
	 * version can never be handed out twice */
	"ALTER TABLE builds ADD COLUMN artifact TEXT NOT NULL DEFAULT '';"
	"ALTER TABLE builds ADD COLUMN cause TEXT NOT NULL DEFAULT '';"
	"CREATE UNIQUE INDEX builds_published ON builds(module, version)"
	" WHERE status IN ('ok', 'reused', 'rollback');"
	"CREATE INDEX builds_module ON builds(module, id);",
	/* 3: the files each module's last compile read besides its sources (its
	 * headers), from the compiler's dependency files: a header's save
	 * rebuilds what includes it, after a restart or a failed build too */
	"CREATE TABLE deps(module TEXT NOT NULL, path TEXT NOT NULL, PRIMARY KEY(module, path)) WITHOUT ROWID;",
	/* 4: the files that went into each compile, each content once (by its SHA-256) */
	"CREATE TABLE blobs(hash TEXT PRIMARY KEY, data BLOB NOT NULL) WITHOUT ROWID;"
	"CREATE TABLE build_files(build INTEGER NOT NULL REFERENCES builds(id), path TEXT NOT NULL,"
	" hash TEXT NOT NULL REFERENCES blobs(hash), PRIMARY KEY(build, path)) WITHOUT ROWID;"
	/* and when each published build went live in each client, as the client reported it */
	"CREATE TABLE loads(build INTEGER NOT NULL REFERENCES builds(id), pid INTEGER NOT NULL,"
	" at_us INTEGER NOT NULL, PRIMARY KEY(build, pid)) WITHOUT ROWID;"
	/* and the objects of the last good compiles of each module: what is served survives losing objects/ */
	"CREATE TABLE objects(build INTEGER PRIMARY KEY REFERENCES builds(id), data BLOB NOT NULL);",
	/* 5: the version each pinned module stays at (hotreload rollback --pin), until hotreload unpin */
	"CREATE TABLE pins(module TEXT PRIMARY KEY, version INTEGER NOT NULL) WITHOUT ROWID;",
	/* 6: a build of given inputs is found by them, not by reading every row of its module */
	"CREATE INDEX builds_key ON builds(module, source_hash, id);",
	/* 7: the tier of each build: a quick one (quick = tcc) goes live first, the final one replaces it */
	"ALTER TABLE builds ADD COLUMN tier TEXT NOT NULL DEFAULT 'final' CHECK(tier IN ('quick', 'final'));",
	/* 8: the SHA-256 of each published object, that BUILD carries (filled in by object_sums for older rows) */
	"ALTER TABLE builds ADD COLUMN object_sha256 TEXT NOT NULL DEFAULT '';",
};

#define BUSY_MS 5000 /* how long a write waits for a reader's lock */

static const char *const status_names[] = {
	[HRD_OK] = "ok", [HRD_FAILED] = "failed", [HRD_REUSED] = "reused",
	[HRD_ROLLBACK] = "rollback", [HRD_REFUSED] = "refused",
};

const char *hrd_status_name(int status)
{
	return status >= HRD_OK && status <= HRD_REFUSED ? status_names[status] : NULL;
}

int hrd_status_parse(const char *name)
{
	for (int i = HRD_OK; i <= HRD_REFUSED; i++)
		if (strcmp(name, status_names[i]) == 0)
			return i;
	return 0;
}

static int publishes(int status)
{
	return status == HRD_OK || status == HRD_REUSED || status == HRD_ROLLBACK;
}

__attribute__((format(printf, 2, 3))) static int store_fail(hrd_store *s, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = snprintf(s->err, sizeof s->err, "%s: ", s->path);
	if (n >= 0 && (size_t)n < sizeof s->err)
		vsnprintf(s->err + n, sizeof s->err - (size_t)n, fmt, ap);
	va_end(ap);
	return -1;
}

static int fail_db(hrd_store *s, const char *what)
{
	return store_fail(s, "%s: %s", what, sqlite3_errmsg(s->db));
}

const char *hrd_store_error(const hrd_store *s)
{
	return s->err;
}

const char *hrd_store_id(const hrd_store *s)
{
	return s->id;
}

/* Run a query of one row of n integers: one statement, so one snapshot. Returns 0 or -1. */
static int query_ints(hrd_store *s, const char *sql, int64_t *out, int n)
{
	sqlite3_stmt *st;
	int rc = sqlite3_prepare_v2(s->db, sql, -1, &st, NULL);
	if (rc == SQLITE_OK) {
		rc = sqlite3_step(st);
		for (int i = 0; i < n; i++)
			out[i] = rc == SQLITE_ROW ? sqlite3_column_int64(st, i) : 0;
		rc = rc == SQLITE_ROW || rc == SQLITE_DONE ? SQLITE_OK : rc;
	}
	sqlite3_finalize(st);
	return rc == SQLITE_OK ? 0 : -1;
}

static int exec(hrd_store *s, const char *sql)
{
	return sqlite3_exec(s->db, sql, NULL, NULL, NULL) == SQLITE_OK ? 0 : fail_db(s, "cannot update the schema");
}

static int new_id(hrd_store *s)
{
	unsigned char r[16];
	if (getrandom(r, sizeof r, 0) != (ssize_t)sizeof r)
		return store_fail(s, "cannot make a database id: %s", strerror(errno));
	for (size_t i = 0; i < sizeof r; i++)
		snprintf(s->id + 2 * i, 3, "%02x", r[i]);
	char sql[128];
	snprintf(sql, sizeof sql, "INSERT INTO meta(key, value) VALUES('id', '%s');", s->id);
	return exec(s, sql);
}

/*
 * The SHA-256 of the objects of rows older than schema 8, hashed from the
 * file of that name in objects/ beside the history (opened through that
 * folder, never following a link), if it is still there; else left empty.
 */
static int object_sums(hrd_store *s)
{
	char dir[PATH_MAX];
	const char *slash = strrchr(s->path, '/');
	if ((size_t)snprintf(dir, sizeof dir, "%.*s/objects", slash ? (int)(slash - s->path) : 1,
	                     slash ? s->path : ".") >= sizeof dir)
		return 0;
	int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (dfd < 0)
		return 0; /* no objects: nothing to hash */
	sqlite3_stmt *q = NULL, *u = NULL;
	int rc = sqlite3_prepare_v2(s->db, "SELECT id, artifact FROM builds WHERE artifact != '' AND"
	                                   " status IN ('ok', 'reused', 'rollback')", -1, &q, NULL) == SQLITE_OK &&
	                 sqlite3_prepare_v2(s->db, "UPDATE builds SET object_sha256 = ?2 WHERE id = ?1", -1, &u, NULL) ==
	                     SQLITE_OK
	             ? 0
	             : fail_db(s, "cannot hash the objects");
	while (rc == 0 && sqlite3_step(q) == SQLITE_ROW) {
		const char *artifact = (const char *)sqlite3_column_text(q, 1), *base = strrchr(artifact, '/');
		int fd = openat(dfd, base ? base + 1 : artifact, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
		struct stat st;
		if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
			if (fd >= 0)
				close(fd);
			continue;
		}
		hrp_sha256 c;
		char hex[65], buf[65536];
		ssize_t n;
		hrp_sha256_init(&c);
		while ((n = read(fd, buf, sizeof buf)) > 0 || (n < 0 && errno == EINTR))
			if (n > 0)
				hrp_sha256_update(&c, buf, (size_t)n);
		close(fd);
		if (n < 0)
			continue;
		hrp_sha256_hex(&c, hex);
		sqlite3_bind_int64(u, 1, sqlite3_column_int64(q, 0));
		sqlite3_bind_text(u, 2, hex, -1, SQLITE_TRANSIENT);
		rc = sqlite3_step(u) == SQLITE_DONE ? 0 : fail_db(s, "cannot record an object's hash");
		sqlite3_reset(u);
	}
	sqlite3_finalize(q);
	sqlite3_finalize(u);
	close(dfd);
	return rc;
}

/* Bring the schema to the current version, in one transaction. */
static int migrate(hrd_store *s)
{
	char sql[96];
	int64_t from;
	if (exec(s, "BEGIN IMMEDIATE;") < 0)
		return -1;
	/* Another process may have migrated it since we looked: look under the lock. */
	int rc = query_ints(s, "PRAGMA user_version", &from, 1) < 0 ? fail_db(s, "cannot read the schema version")
	         : from < 0                   ? store_fail(s, "has an invalid schema version")
	         : from > HRD_SCHEMA_VERSION ? store_fail(s, "was just upgraded by a newer hotreload: upgrade hotreload")
	                                      : 0;
	if (rc == 0 && from == 0) {
		snprintf(sql, sizeof sql, "PRAGMA application_id = %d;", APP_ID);
		rc = exec(s, sql);
	}
	for (int64_t v = from; rc == 0 && v < HRD_SCHEMA_VERSION; v++)
		rc = exec(s, migrations[v]);
	if (rc == 0 && from == 0)
		rc = new_id(s);
	if (rc == 0 && from > 0 && from < 8)
		rc = object_sums(s);
	if (rc == 0 && from < HRD_SCHEMA_VERSION) {
		snprintf(sql, sizeof sql, "PRAGMA user_version = %d;", HRD_SCHEMA_VERSION);
		rc = exec(s, sql);
	}
	if (rc == 0 && exec(s, "COMMIT;") == 0)
		return 0;
	sqlite3_exec(s->db, "ROLLBACK;", NULL, NULL, NULL);
	return -1;
}

static int read_id(hrd_store *s)
{
	sqlite3_stmt *st;
	int rc = sqlite3_prepare_v2(s->db, "SELECT value FROM meta WHERE key = 'id'", -1, &st, NULL);
	if (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *v = (const char *)sqlite3_column_text(st, 0);
		snprintf(s->id, sizeof s->id, "%s", v ? v : "");
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_ROW || strlen(s->id) != 32)
		return store_fail(s, "the history has no valid id; it is damaged. Move it aside (hotreloadd then "
		               "starts a new one) or restore it from a backup");
	return 0;
}

/* Why the first read failed: a damaged file, or one we may not read. */
static int damaged(hrd_store *s)
{
	int e = sqlite3_errcode(s->db);
	if (e == SQLITE_NOTADB || e == SQLITE_CORRUPT)
		return store_fail(s, "cannot read it as a database (%s). It is left as it is: move it aside to "
		               "start a new history, or restore it from a backup",
		            sqlite3_errmsg(s->db));
	return store_fail(s, "cannot read it (%s): check the permissions of the file and its directory",
	            sqlite3_errmsg(s->db));
}

/* WAL: the CLI reads while the daemon writes. */
static int set_wal(hrd_store *s)
{
	sqlite3_stmt *st;
	int rc = sqlite3_prepare_v2(s->db, "PRAGMA journal_mode = WAL", -1, &st, NULL);
	const char *mode = rc == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW ? (const char *)sqlite3_column_text(st, 0) : NULL;
	int wal = mode && strcmp(mode, "wal") == 0;
	sqlite3_finalize(st);
	if (!wal)
		return store_fail(s, "cannot use write-ahead logging (%s); the state dir must be on a local "
		               "filesystem",
		            sqlite3_errmsg(s->db));
	return 0;
}

/* Check what kind of file this is and bring it to the current schema. */
static int prepare_schema(hrd_store *s, int flags)
{
	/* One snapshot: another process may be creating this database right now. */
	int64_t v[3];
	if (query_ints(s, "SELECT (SELECT application_id FROM pragma_application_id),"
	                  " (SELECT user_version FROM pragma_user_version), (SELECT count(*) FROM sqlite_schema)",
	               v, 3) < 0)
		return damaged(s);
	int64_t app = v[0], ver = v[1], tables = v[2];
	int fresh = app == 0 && ver == 0 && tables == 0;
	if (!fresh && app != APP_ID)
		return store_fail(s, "is a SQLite database, but not a hotreload history. It is left as it is: "
		               "point --state-dir elsewhere or move the file aside");
	if (ver < 0)
		return store_fail(s, "has an invalid schema version (%lld); it is damaged. It is left as it is: "
		               "move it aside to start a new history, or restore it from a backup",
		            (long long)ver);
	if (ver > HRD_SCHEMA_VERSION)
		return store_fail(s, "was written by a newer hotreload (schema %lld; this one knows up to %d): "
		               "upgrade hotreload",
		            (long long)ver, HRD_SCHEMA_VERSION);
	if (flags & HRD_STORE_READONLY) {
		if (fresh)
			return store_fail(s, "is empty: hotreloadd has not recorded anything yet");
		if (ver < HRD_SCHEMA_VERSION)
			return store_fail(s, "has schema %lld, older than this hotreload's %d: run hotreloadd once "
			               "to upgrade it",
			            (long long)ver, HRD_SCHEMA_VERSION);
		return read_id(s);
	}
	if (set_wal(s) < 0)
		return -1;
	/* NORMAL: a commit is durable against a crash of the daemon, not of the
	 * machine, which is what an edit loop needs without an fsync per build. */
	if (exec(s, "PRAGMA synchronous = NORMAL;") < 0)
		return -1;
	/* A log that once grew (a VACUUM, a reader in the way of every checkpoint) is cut back when it starts over. */
	char limit[64];
	snprintf(limit, sizeof limit, "PRAGMA journal_size_limit = %u;", HRD_STORE_WAL_MAX);
	if (exec(s, limit) < 0)
		return -1;
	if (!fresh) {
		sqlite3_stmt *st;
		int rc = sqlite3_prepare_v2(s->db, "PRAGMA quick_check", -1, &st, NULL);
		const char *r = rc == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW ? (const char *)sqlite3_column_text(st, 0) : NULL;
		int ok = r && strcmp(r, "ok") == 0;
		if (!ok)
			store_fail(s, "is corrupt (%s). It is left as it is: move it aside to start a new history, "
			        "or restore it from a backup",
			     r ? r : sqlite3_errmsg(s->db));
		sqlite3_finalize(st);
		if (!ok)
			return -1;
	}
	if (ver < HRD_SCHEMA_VERSION && migrate(s) < 0)
		return -1;
	return read_id(s);
}

static int wal_exists(const char *path)
{
	char wal[PATH_MAX + 8];
	struct stat st;
	snprintf(wal, sizeof wal, "%s-wal", path);
	return stat(wal, &st) == 0;
}

static void unlink_db(const char *path)
{
	char aux[PATH_MAX + 8];
	unlink(path);
	snprintf(aux, sizeof aux, "%s-wal", path);
	unlink(aux);
	snprintf(aux, sizeof aux, "%s-shm", path);
	unlink(aux);
}

/*
 * Make a new history beside the path and link it into place: nobody ever
 * opens a half-made one, and of two processes creating it at once, one wins
 * whole and the other opens the winner's.
 */
static int create(hrd_store *s)
{
	char tmp[PATH_MAX];
	if ((size_t)snprintf(tmp, sizeof tmp, "%s.new.XXXXXX", s->path) >= sizeof tmp)
		return store_fail(s, "path too long");
	int fd = mkstemp(tmp); /* a name nobody else holds, even across PID namespaces */
	if (fd < 0)
		return store_fail(s, "cannot create: %s", strerror(errno));
	close(fd);
	int rc = sqlite3_open_v2(tmp, &s->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
	                         NULL) == SQLITE_OK
	                 ? 0
	                 : fail_db(s, "cannot create");
	if (rc == 0)
		rc = set_wal(s);
	if (rc == 0)
		rc = migrate(s);
	/* closing the only connection folds the log into the file */
	if (sqlite3_close(s->db) != SQLITE_OK && rc == 0)
		rc = fail_db(s, "cannot create");
	s->db = NULL;
	if (rc == 0 && link(tmp, s->path) < 0 && errno != EEXIST)
		rc = store_fail(s, "cannot create: %s", strerror(errno));
	unlink_db(tmp);
	return rc;
}

/*
 * -1 (with the error) when the history or a file SQLite keeps beside it is a
 * link or not a regular file: one planted before the folder was ours would
 * have the daemon write wherever it leads.
 */
static int planted(hrd_store *s, const char *path)
{
	static const char *const aux[] = {"", "-wal", "-shm", "-journal"};
	for (size_t i = 0; i < sizeof aux / sizeof *aux; i++) {
		char p[PATH_MAX + 16];
		struct stat st;
		snprintf(p, sizeof p, "%s%s", path, aux[i]);
		if (lstat(p, &st) < 0 || S_ISREG(st.st_mode))
			continue;
		return store_fail(s, "%s%s is %s, which the daemon never writes through: remove it", aux[i][0] ? p : "it",
		            aux[i][0] ? " beside it" : "", S_ISLNK(st.st_mode) ? "a symbolic link" : "not a regular file");
	}
	return 0;
}

static int open_db(hrd_store *s, int flags, int immutable)
{
	int of = (flags & HRD_STORE_READONLY) ? SQLITE_OPEN_READONLY
	                                      : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOFOLLOW;
	char *name = s->path;
	if (immutable) {
		/* a URI: percent-encode everything but unreserved characters and '/' */
		name = malloc(3 * strlen(s->path) + sizeof "file://?immutable=1");
		if (!name)
			return store_fail(s, "out of memory");
		/* "file://" + "/abs": an empty authority, so a path starting "//" stays a path */
		char *p = name + sprintf(name, s->path[0] == '/' ? "file://" : "file:");
		for (const unsigned char *c = (const unsigned char *)s->path; *c; c++)
			p += isalnum(*c) || strchr("/-._~", *c) ? sprintf(p, "%c", *c) : sprintf(p, "%%%02X", *c);
		strcpy(p, "?immutable=1");
		of |= SQLITE_OPEN_URI;
	}
	int rc = sqlite3_open_v2(name, &s->db, of | SQLITE_OPEN_NOMUTEX, NULL) == SQLITE_OK ? 0 : fail_db(s, "cannot open");
	if (name != s->path)
		free(name);
	/* SQLite falls back to read-only on a file it may not write: the daemon must not. */
	if (rc == 0 && !(flags & HRD_STORE_READONLY) && sqlite3_db_readonly(s->db, "main") == 1)
		rc = store_fail(s, "cannot write it: check the permissions of the file and its directory");
	if (rc == 0) {
		sqlite3_busy_timeout(s->db, BUSY_MS);
		rc = prepare_schema(s, flags);
	}
	return rc;
}

int hrd_store_open(const char *path, int flags, hrd_store **out, char *err, size_t errsz)
{
	*out = NULL;
	hrd_store *s = calloc(1, sizeof *s);
	if (!s || !(s->path = strdup(path))) {
		free(s);
		snprintf(err, errsz, "%s: out of memory", path);
		return -1;
	}
	struct stat st;
	int rc = 0, writer = !(flags & HRD_STORE_READONLY);
	/* The daemon follows no link to its history, nor to the files SQLite keeps beside it. */
	if (writer && (rc = planted(s, path)) < 0)
		;
	else if (stat(path, &st) < 0) {
		if (errno == ENOENT && !(flags & HRD_STORE_READONLY))
			rc = create(s);
		else
			rc = errno == ENOENT
			         ? store_fail(s, "no history here: hotreloadd creates it when it first runs on this project")
			         : store_fail(s, "cannot open: %s", strerror(errno));
	} else if (!S_ISREG(st.st_mode)) {
		rc = store_fail(s, "is not a regular file");
	}
	if (rc == 0)
		rc = open_db(s, flags, 0);
	/* A reader that may not create the -shm beside a history that no writer
	 * has open (no -wal) can still read it, as an immutable file. A daemon
	 * that starts writing during that read can make it fail or read an older
	 * state; the file itself is never touched. */
	if (rc < 0 && (flags & HRD_STORE_READONLY) && s->db && sqlite3_errcode(s->db) == SQLITE_READONLY &&
	    !wal_exists(path)) {
		sqlite3_close(s->db);
		s->db = NULL;
		rc = open_db(s, flags, 1);
	}
	if (rc < 0) {
		snprintf(err, errsz, "%s", s->err);
		hrd_store_close(s);
		return -1;
	}
	*out = s;
	return 0;
}

void hrd_store_close(hrd_store *s)
{
	if (!s)
		return;
	sqlite3_finalize(s->next_version);
	sqlite3_finalize(s->insert);
	sqlite3_finalize(s->deps_clear);
	sqlite3_finalize(s->deps_add);
	sqlite3_finalize(s->blob_add);
	sqlite3_finalize(s->file_add);
	sqlite3_finalize(s->object_add);
	sqlite3_finalize(s->object_trim);
	sqlite3_close(s->db);
	free(s->path);
	free(s);
}

static int prepare(hrd_store *s, sqlite3_stmt **st, const char *sql)
{
	if (*st)
		return sqlite3_reset(*st) == SQLITE_OK && sqlite3_clear_bindings(*st) == SQLITE_OK ? 0 : fail_db(s, "cannot reuse a query");
	return sqlite3_prepare_v3(s->db, sql, -1, SQLITE_PREPARE_PERSISTENT, st, NULL) == SQLITE_OK
	           ? 0
	           : fail_db(s, "cannot prepare a query");
}

static void bind_text(sqlite3_stmt *st, int i, const char *v)
{
	sqlite3_bind_text(st, i, v ? v : "", -1, SQLITE_STATIC);
}

static const char *col_text(sqlite3_stmt *st, int i)
{
	const char *v = (const char *)sqlite3_column_text(st, i);
	return v ? v : "";
}

/* Bind a blob of n bytes, refused past HRD_STORE_BLOB_MAX (what names it says which): never cut to what an int holds. */
static int bind_blob(hrd_store *s, sqlite3_stmt *st, int i, const void *data, size_t n, const char *what)
{
	if (n > HRD_STORE_BLOB_MAX)
		return store_fail(s, "cannot keep %s: %zu bytes, over the %u MiB the history keeps of one file", what, n,
		            HRD_STORE_BLOB_MAX >> 20);
	if (sqlite3_bind_blob64(st, i, n ? data : "", (sqlite3_uint64)n, SQLITE_STATIC) != SQLITE_OK)
		return store_fail(s, "cannot keep %s: %s", what, sqlite3_errmsg(s->db));
	return 0;
}

/* b's object, and the objects of its module's older compiles past the newest b->keep dropped: in the caller's transaction. */
static int add_object(hrd_store *s, const hrd_build *b)
{
	int rc = prepare(s, &s->object_add, "INSERT OR REPLACE INTO objects(build, data) VALUES(?1, ?2)");
	if (rc == 0) {
		sqlite3_bind_int64(s->object_add, 1, b->id);
		rc = bind_blob(s, s->object_add, 2, b->object, b->object_len, "the object");
	}
	if (rc == 0) {
		if (sqlite3_step(s->object_add) != SQLITE_DONE)
			rc = fail_db(s, "cannot keep the object");
		sqlite3_reset(s->object_add);
	}
	if (rc == 0)
		rc = prepare(s, &s->object_trim,
		             "DELETE FROM objects WHERE build IN (SELECT id FROM builds WHERE module = ?1 AND status = 'ok'"
		             " ORDER BY id DESC LIMIT -1 OFFSET ?2)");
	if (rc == 0) {
		bind_text(s->object_trim, 1, b->module);
		sqlite3_bind_int64(s->object_trim, 2, b->keep > 0 ? b->keep : 1);
		if (sqlite3_step(s->object_trim) != SQLITE_DONE)
			rc = fail_db(s, "cannot drop old objects");
		sqlite3_reset(s->object_trim);
	}
	return rc;
}

int hrd_store_object(hrd_store *s, const char *module, uint64_t version, void **data, size_t *len)
{
	sqlite3_stmt *st;
	*data = NULL;
	*len = 0;
	/* the row's own object, or, for a reused or rolled-back version, that of a compile of the same inputs */
	if (sqlite3_prepare_v2(s->db,
	                       "SELECT o.data FROM builds b JOIN builds c ON c.module = b.module AND (c.id = b.id OR"
	                       " (c.status = 'ok' AND b.source_hash != '' AND c.source_hash = b.source_hash))"
	                       " JOIN objects o ON o.build = c.id"
	                       " WHERE b.module = ?1 AND b.version = ?2 AND b.status IN ('ok', 'reused', 'rollback')"
	                       " ORDER BY c.id = b.id DESC, c.id DESC LIMIT 1",
	                       -1, &st, NULL) != SQLITE_OK)
		return fail_db(s, "cannot read an object");
	bind_text(st, 1, module);
	sqlite3_bind_int64(st, 2, (int64_t)version);
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		*len = (size_t)sqlite3_column_bytes(st, 0);
		if ((*data = malloc(*len ? *len : 1)))
			memcpy(*data, sqlite3_column_blob(st, 0), *len);
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return fail_db(s, "cannot read an object");
	if (rc == SQLITE_ROW && !*data)
		return store_fail(s, "cannot read an object: out of memory");
	return rc == SQLITE_ROW ? 1 : 0;
}

/* One file of build id, its content stored once: inside the caller's transaction. */
static int add_file(hrd_store *s, int64_t id, const hrd_snapshot *f)
{
	int rc = prepare(s, &s->blob_add, "INSERT OR IGNORE INTO blobs(hash, data) VALUES(?1, ?2)");
	if (rc == 0) {
		bind_text(s->blob_add, 1, f->hash);
		rc = bind_blob(s, s->blob_add, 2, f->data, f->len, f->path);
	}
	if (rc == 0) {
		if (sqlite3_step(s->blob_add) != SQLITE_DONE)
			rc = fail_db(s, "cannot record a source");
		sqlite3_reset(s->blob_add);
	}
	if (rc == 0)
		rc = prepare(s, &s->file_add, "INSERT OR REPLACE INTO build_files(build, path, hash) VALUES(?1, ?2, ?3)");
	if (rc == 0) {
		sqlite3_bind_int64(s->file_add, 1, id);
		bind_text(s->file_add, 2, f->path);
		bind_text(s->file_add, 3, f->hash);
		if (sqlite3_step(s->file_add) != SQLITE_DONE)
			rc = fail_db(s, "cannot record a source");
		sqlite3_reset(s->file_add);
	}
	return rc;
}

int hrd_store_snapshots(hrd_store *s, int64_t id, int (*fn)(void *arg, const hrd_snapshot *f), void *arg)
{
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(s->db,
	                       "SELECT f.path, f.hash, b.data FROM build_files f JOIN blobs b ON b.hash = f.hash"
	                       " WHERE f.build = ?1 ORDER BY f.path",
	                       -1, &st, NULL) != SQLITE_OK)
		return fail_db(s, "cannot read the sources");
	sqlite3_bind_int64(st, 1, id);
	int rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		hrd_snapshot f = {col_text(st, 0), col_text(st, 1), sqlite3_column_blob(st, 2),
		                  (size_t)sqlite3_column_bytes(st, 2)};
		if (fn(arg, &f)) {
			rc = SQLITE_DONE;
			break;
		}
	}
	if (rc != SQLITE_DONE)
		fail_db(s, "cannot read the sources");
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : -1;
}

/* Replace the module's dependencies with b's, inside the caller's transaction. */
static int set_deps(hrd_store *s, const hrd_build *b)
{
	int rc = prepare(s, &s->deps_clear, "DELETE FROM deps WHERE module = ?1");
	if (rc == 0) {
		bind_text(s->deps_clear, 1, b->module);
		if (sqlite3_step(s->deps_clear) != SQLITE_DONE)
			rc = fail_db(s, "cannot record the dependencies");
		sqlite3_reset(s->deps_clear);
	}
	for (size_t i = 0; rc == 0 && b->deps[i]; i++) {
		rc = prepare(s, &s->deps_add, "INSERT OR IGNORE INTO deps(module, path) VALUES(?1, ?2)");
		if (rc < 0)
			break;
		bind_text(s->deps_add, 1, b->module);
		bind_text(s->deps_add, 2, b->deps[i]);
		if (sqlite3_step(s->deps_add) != SQLITE_DONE)
			rc = fail_db(s, "cannot record the dependencies");
		sqlite3_reset(s->deps_add);
	}
	return rc;
}

int hrd_store_deps(hrd_store *s, const char *module, int (*fn)(void *arg, const char *path), void *arg)
{
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(s->db, "SELECT path FROM deps WHERE module = ?1 ORDER BY path", -1, &st, NULL) != SQLITE_OK)
		return fail_db(s, "cannot read the dependencies");
	bind_text(st, 1, module);
	int rc, stopped = 0;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW)
		if ((stopped = fn(arg, col_text(st, 0))) != 0) {
			rc = SQLITE_DONE;
			break;
		}
	if (rc != SQLITE_DONE)
		fail_db(s, "cannot read the dependencies");
	else if (stopped < 0)
		store_fail(s, "cannot keep the dependencies of %s: out of memory", module);
	sqlite3_finalize(st);
	return rc == SQLITE_DONE && stopped >= 0 ? 0 : -1;
}

int hrd_store_record(hrd_store *s, hrd_build *b)
{
	if (!b->module || !hrd_status_name(b->status))
		return store_fail(s, "cannot record a build without a module and a valid status");
	if (sqlite3_exec(s->db, "BEGIN IMMEDIATE;", NULL, NULL, NULL) != SQLITE_OK)
		return fail_db(s, "cannot start a transaction");
	uint64_t given = b->version;
	int rc = 0;
	if (publishes(b->status)) {
		rc = prepare(s, &s->next_version,
		             "SELECT COALESCE(MAX(version), 0) + 1 FROM builds"
		             " WHERE module = ?1 AND status IN ('ok', 'reused', 'rollback')");
		if (rc == 0) {
			bind_text(s->next_version, 1, b->module);
			if (sqlite3_step(s->next_version) == SQLITE_ROW)
				b->version = (uint64_t)sqlite3_column_int64(s->next_version, 0);
			else
				rc = fail_db(s, "cannot allocate a version");
			if (rc == 0 && given && given != b->version)
				rc = store_fail(s, "expected to record %s v%llu, but the history's next is v%llu", b->module,
				          (unsigned long long)given, (unsigned long long)b->version);
			sqlite3_reset(s->next_version);
		}
	} else if (b->status == HRD_FAILED) {
		b->version = 0;
	}
	if (rc == 0)
		rc = prepare(s, &s->insert,
		             "INSERT INTO builds(module, version, status, started_at, duration_us, source_hash,"
		             " command, output, message, artifact, cause, tier)"
		             " VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11,"
		             /* a refusal is of the tier of the build refused: a quick one must not count as a final failure */
		             " CASE WHEN ?3 = 'refused' THEN coalesce((SELECT tier FROM builds WHERE module = ?1"
		             " AND version = ?2 AND status != 'refused' ORDER BY id DESC LIMIT 1), ?12) ELSE ?12 END)");
	if (rc == 0) {
		sqlite3_stmt *st = s->insert;
		bind_text(st, 1, b->module);
		if (b->status == HRD_FAILED)
			sqlite3_bind_null(st, 2);
		else
			sqlite3_bind_int64(st, 2, (int64_t)b->version);
		bind_text(st, 3, hrd_status_name(b->status));
		sqlite3_bind_int64(st, 4, b->started_us);
		sqlite3_bind_int64(st, 5, b->duration_us);
		bind_text(st, 6, b->source_hash);
		bind_text(st, 7, b->command);
		bind_text(st, 8, b->output);
		bind_text(st, 9, b->message);
		bind_text(st, 10, b->artifact);
		bind_text(st, 11, b->cause);
		bind_text(st, 12, b->quick ? "quick" : "final");
		if (sqlite3_step(st) != SQLITE_DONE)
			rc = fail_db(s, "cannot record the build");
		else
			b->id = sqlite3_last_insert_rowid(s->db);
		sqlite3_reset(st);
	}
	if (rc == 0 && b->deps)
		rc = set_deps(s, b);
	for (size_t i = 0; rc == 0 && i < b->nsnap; i++)
		rc = add_file(s, b->id, &b->snap[i]);
	if (rc == 0 && b->object)
		rc = add_object(s, b);
	if (rc == 0 && sqlite3_exec(s->db, "COMMIT;", NULL, NULL, NULL) != SQLITE_OK)
		rc = fail_db(s, "cannot commit the build");
	if (rc < 0) {
		sqlite3_exec(s->db, "ROLLBACK;", NULL, NULL, NULL);
		b->version = given; /* a number that was never committed must not escape */
	}
	return rc;
}

/* After each commit: a log past the bound is written back now (PASSIVE: never waiting for a reader). */
static int on_wal(void *arg, sqlite3 *db, const char *name, int frames)
{
	hrd_store *s = arg;
	if (frames >= s->wal_frames)
		sqlite3_wal_checkpoint_v2(db, name, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
	return SQLITE_OK;
}

int hrd_store_autocheckpoint(hrd_store *s, int on)
{
	int64_t page = 0;
	if (on) {
		if (sqlite3_wal_autocheckpoint(s->db, 1000) != SQLITE_OK)
			return fail_db(s, "cannot set the checkpoint policy");
		return 0;
	}
	if (query_ints(s, "PRAGMA page_size", &page, 1) < 0 || page <= 0)
		return fail_db(s, "cannot set the checkpoint policy");
	s->wal_frames = (int)(HRD_STORE_WAL_MAX / page);
	sqlite3_wal_hook(s->db, on_wal, s);
	return 0;
}

int hrd_store_checkpoint(hrd_store *s)
{
	/* PASSIVE: never waits for a reader (the CLI); what it cannot copy waits for the next one. */
	if (sqlite3_wal_checkpoint_v2(s->db, NULL, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL) != SQLITE_OK)
		return fail_db(s, "cannot checkpoint the write-ahead log");
	return 0;
}

static uint64_t db_size(const char *path)
{
	struct stat st;
	char wal[PATH_MAX + 8];
	uint64_t n = stat(path, &st) == 0 ? (uint64_t)st.st_size : 0;
	snprintf(wal, sizeof wal, "%s-wal", path);
	return n + (stat(wal, &st) == 0 ? (uint64_t)st.st_size : 0);
}

int hrd_store_compact(hrd_store *s, uint64_t *before, uint64_t *after)
{
	*before = db_size(s->path);
	/* VACUUM rewrites the database through the log; TRUNCATE then gives the log's space back too. */
	if (sqlite3_exec(s->db, "VACUUM", NULL, NULL, NULL) != SQLITE_OK)
		return fail_db(s, "cannot compact the history");
	/* Never waiting for a reader (a CLI paging its history): the log is truncated
	 * when none is in the way, else written back by the idle checkpoints. */
	sqlite3_busy_timeout(s->db, 0);
	int rc = sqlite3_wal_checkpoint_v2(s->db, NULL, SQLITE_CHECKPOINT_TRUNCATE, NULL, NULL);
	sqlite3_busy_timeout(s->db, BUSY_MS);
	if (rc != SQLITE_OK && rc != SQLITE_BUSY)
		return fail_db(s, "cannot checkpoint the write-ahead log");
	*after = db_size(s->path);
	return 0;
}

/* The columns of a row, in hrd_build's order, and what selects rows: each query picks an index (a module's, its inputs'). */
#define ROW_COLUMNS \
	"SELECT id, module, version, status, started_at, duration_us, source_hash, command, output, message, artifact, cause," \
	" tier" \
	" FROM builds "
#define PUBLISHED "status IN ('ok', 'reused', 'rollback')"
/* reuse, rollback and pin take final builds only: a quick one is not the configured compiler's */
#define FINAL_PUBLISHED PUBLISHED " AND tier = 'final'"

static int walk(hrd_store *s, sqlite3_stmt *st, int (*fn)(const hrd_build *b, void *arg), void *arg)
{
	int rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		hrd_build b = {
			.id = sqlite3_column_int64(st, 0),
			.module = col_text(st, 1),
			.version = (uint64_t)sqlite3_column_int64(st, 2),
			.status = hrd_status_parse(col_text(st, 3)),
			.started_us = sqlite3_column_int64(st, 4),
			.duration_us = sqlite3_column_int64(st, 5),
			.source_hash = col_text(st, 6),
			.command = col_text(st, 7),
			.output = col_text(st, 8),
			.message = col_text(st, 9),
			.artifact = col_text(st, 10),
			.cause = col_text(st, 11),
			.quick = strcmp(col_text(st, 12), "quick") == 0,
		};
		if (fn(&b, arg)) {
			rc = SQLITE_DONE;
			break;
		}
	}
	if (rc != SQLITE_DONE)
		fail_db(s, "cannot read the history");
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : -1;
}

int hrd_store_history(hrd_store *s, const char *module, int64_t limit,
                      int (*fn)(const hrd_build *b, void *arg), void *arg)
{
	sqlite3_stmt *st;
	/* Two queries: "?1 IS NULL OR module = ?1" would keep the module's index out of use. */
	const char *sql = module ? ROW_COLUMNS "WHERE module = ?1 ORDER BY id DESC LIMIT ?2"
	                         : ROW_COLUMNS "ORDER BY id DESC LIMIT ?2";
	if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK)
		return fail_db(s, "cannot read the history");
	if (module)
		bind_text(st, 1, module);
	sqlite3_bind_int64(st, 2, limit > 0 ? limit : -1);
	return walk(s, st, fn, arg);
}

int hrd_store_published(hrd_store *s, const char *module, const char *key,
                        int (*fn)(const hrd_build *b, void *arg), void *arg)
{
	sqlite3_stmt *st;
	const char *sql = key ? ROW_COLUMNS "WHERE module = ?1 AND source_hash = ?2 AND " FINAL_PUBLISHED " ORDER BY id DESC"
	                      : ROW_COLUMNS "WHERE module = ?1 AND " FINAL_PUBLISHED " ORDER BY id DESC";
	if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK)
		return fail_db(s, "cannot read the history");
	bind_text(st, 1, module);
	if (key)
		bind_text(st, 2, key);
	return walk(s, st, fn, arg);
}

int hrd_store_loaded(hrd_store *s, const char *module, uint64_t version, int64_t pid, int64_t at_us, int64_t since_us)
{
	sqlite3_stmt *st;
	/* never before the build began: the client's clock is its own */
	if (sqlite3_prepare_v2(s->db,
	                       "INSERT OR IGNORE INTO loads(build, pid, at_us) SELECT id, ?3, max(?4, started_at) FROM builds"
	                       " WHERE module = ?1 AND version = ?2 AND status IN ('ok', 'reused', 'rollback')"
	                       " AND started_at >= ?5",
	                       -1, &st, NULL) != SQLITE_OK)
		return fail_db(s, "cannot record a load");
	bind_text(st, 1, module);
	sqlite3_bind_int64(st, 2, (int64_t)version);
	sqlite3_bind_int64(st, 3, pid);
	sqlite3_bind_int64(st, 4, at_us);
	sqlite3_bind_int64(st, 5, since_us);
	int rc = sqlite3_step(st) == SQLITE_DONE ? 0 : fail_db(s, "cannot record a load");
	sqlite3_finalize(st);
	return rc;
}

int hrd_store_set_object_sum(hrd_store *s, const char *module, uint64_t version, const char *sha256)
{
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(s->db, "UPDATE builds SET object_sha256 = ?3 WHERE module = ?1 AND version = ?2 AND"
	                              " status IN ('ok', 'reused', 'rollback') AND object_sha256 != ?3",
	                       -1, &st, NULL) != SQLITE_OK)
		return fail_db(s, "cannot record an object's hash");
	bind_text(st, 1, module);
	sqlite3_bind_int64(st, 2, (int64_t)version);
	bind_text(st, 3, sha256);
	int rc = sqlite3_step(st) == SQLITE_DONE ? 0 : fail_db(s, "cannot record an object's hash");
	sqlite3_finalize(st);
	return rc;
}

int hrd_store_set_pin(hrd_store *s, const char *module, uint64_t version)
{
	sqlite3_stmt *st;
	const char *sql = version ? "INSERT OR REPLACE INTO pins(module, version) VALUES (?1, ?2)"
	                          : "DELETE FROM pins WHERE module = ?1";
	if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK)
		return fail_db(s, "cannot record a pin");
	bind_text(st, 1, module);
	if (version)
		sqlite3_bind_int64(st, 2, (int64_t)version);
	int rc = sqlite3_step(st) == SQLITE_DONE ? 0 : fail_db(s, "cannot record a pin");
	sqlite3_finalize(st);
	return rc;
}

int hrd_store_pin(hrd_store *s, const char *module, uint64_t *version)
{
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(s->db, "SELECT version FROM pins WHERE module = ?1", -1, &st, NULL) != SQLITE_OK)
		return fail_db(s, "cannot read a pin");
	bind_text(st, 1, module);
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*version = (uint64_t)sqlite3_column_int64(st, 0);
	rc = rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0 : fail_db(s, "cannot read a pin");
	sqlite3_finalize(st);
	return rc;
}

int hrd_store_modules(hrd_store *s, int (*fn)(void *arg, const char *module), void *arg)
{
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(s->db, "SELECT DISTINCT module FROM builds ORDER BY module", -1, &st, NULL) != SQLITE_OK)
		return fail_db(s, "cannot read the modules");
	int rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW)
		if (fn(arg, col_text(st, 0))) {
			rc = SQLITE_DONE;
			break;
		}
	if (rc != SQLITE_DONE)
		fail_db(s, "cannot read the modules");
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : -1;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

/* The p50 and p95, in ms, of the microseconds a query gives (one column); n gets how many. */
static int percentiles(hrd_store *s, const char *sql, const char *module, double *p50, double *p95, int64_t *n)
{
	sqlite3_stmt *st;
	double *v = NULL;
	size_t len = 0, cap = 0;
	*p50 = *p95 = 0;
	if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK)
		return fail_db(s, "cannot read the statistics");
	if (module)
		bind_text(st, 1, module);
	int rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (len == cap) {
			double *grown = realloc(v, (cap = cap ? 2 * cap : 64) * sizeof *v);
			if (!grown) {
				rc = SQLITE_NOMEM;
				break;
			}
			v = grown;
		}
		v[len++] = sqlite3_column_double(st, 0) / 1000.0;
	}
	sqlite3_finalize(st);
	if (len) {
		qsort(v, len, sizeof *v, cmp_double);
		*p50 = v[(len - 1) / 2];
		*p95 = v[(size_t)((double)(len - 1) * 0.95 + 0.5)];
	}
	free(v);
	if (n)
		*n = (int64_t)len;
	return rc == SQLITE_DONE ? 0 : store_fail(s, "cannot read the statistics: %s", sqlite3_errstr(rc));
}

int hrd_store_stats(hrd_store *s, const char *module, hrd_stats *out)
{
	memset(out, 0, sizeof *out);
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(s->db,
	                       "SELECT count(*) FILTER (WHERE status = 'ok' AND tier = 'final'),"
	                       " count(*) FILTER (WHERE status = 'failed' AND tier = 'final'),"
	                       " count(*) FILTER (WHERE status = 'reused' AND tier = 'final'),"
	                       " count(*) FILTER (WHERE status = 'rollback' AND tier = 'final'),"
	                       " count(*) FILTER (WHERE status = 'refused' AND tier = 'final'),"
	                       " avg(duration_us) FILTER (WHERE status IN ('ok', 'failed') AND tier = 'final'),"
	                       " count(*) FILTER (WHERE status IN ('ok', 'failed') AND tier = 'quick'),"
	                       " count(*) FILTER (WHERE status = 'ok' AND tier = 'quick')"
	                       " FROM builds WHERE (?1 IS NULL OR module = ?1)",
	                       -1, &st, NULL) != SQLITE_OK)
		return fail_db(s, "cannot read the statistics");
	if (module)
		bind_text(st, 1, module);
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		out->successful = sqlite3_column_int64(st, 0);
		out->failed = sqlite3_column_int64(st, 1);
		out->reused = sqlite3_column_int64(st, 2);
		out->rollbacks = sqlite3_column_int64(st, 3);
		out->refused = sqlite3_column_int64(st, 4);
		out->avg_compile_ms = sqlite3_column_double(st, 5) / 1000.0;
		out->quick_builds = sqlite3_column_int64(st, 6);
		out->quick_successful = sqlite3_column_int64(st, 7);
		out->total_builds = out->successful + out->failed;
		out->success_rate = out->total_builds ? 100.0 * (double)out->successful / (double)out->total_builds : 0;
	} else {
		fail_db(s, "cannot read the statistics");
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_ROW ||
	    percentiles(s, "SELECT duration_us FROM builds WHERE (?1 IS NULL OR module = ?1) AND status IN ('ok', 'failed')"
	                " AND duration_us > 0 AND tier = 'final'",
	                module, &out->compile_p50_ms, &out->compile_p95_ms, NULL) < 0 ||
	    percentiles(s,
	                "SELECT min(l.at_us) - b.started_at FROM builds b JOIN loads l ON l.build = b.id"
	                " WHERE (?1 IS NULL OR b.module = ?1) AND b.tier = 'final' GROUP BY b.id",
	                module, &out->live_p50_ms, &out->live_p95_ms, &out->lives) < 0 ||
	    percentiles(s,
	                "SELECT min(l.at_us) - b.started_at FROM builds b JOIN loads l ON l.build = b.id"
	                " WHERE (?1 IS NULL OR b.module = ?1) AND b.tier = 'quick' GROUP BY b.id",
	                module, &out->quick_live_p50_ms, &out->quick_live_p95_ms, &out->quick_lives) < 0)
		return -1;
	return 0;
}
