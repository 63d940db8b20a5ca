/* mailmill - ISC licence, see LICENSE */
#ifndef MM_ARCHIVE_H
#define MM_ARCHIVE_H
/*
 * The archive plugin's internals.  archive.c is the plugin glue (settings,
 * verdicts, logging through mm_*; no branch on the format: it calls the
 * format's table, struct archive_format below); archive_maildir.c and
 * archive_mbox.c (one format each, with its table; archive_maildir_write.c,
 * archive_maildir_flush.c and archive_mbox_write.c their threads and
 * batches), archive_util.c (what
 * both share) and plugins/common/perms.c are plain file-system code that
 * never calls mm_* so that tests/unit links them without the daemon.
 *
 * Error contract: functions return 0 on success and -1 on failure with
 * *err_r set to an allocated, human-readable reason (free() it).  A few
 * return 1 for "already there" as documented.  Strings returned are
 * allocated with malloc and owned by the caller unless said otherwise.
 *
 * Idempotency: a message's identity in an archive is archive_digest(account,
 * uid), written into every Maildir file name and every mbox index line, so
 * a rerun after a crash finds what it already delivered.
 */
#include <pthread.h>
#include <stddef.h>
#include <sys/types.h>
#include <sys/time.h>
#include <glib.h>
#include "common/perms.h"

/* ---- shared helpers (archive_util.c) ---- */

#define ARCHIVE_DIGEST_LEN 16 /* hex chars: the first 64 bits of SHA-256 */

/* SHA-256 over account NUL uid, first 16 lowercase hex digits into digest_r. */
void archive_digest(const char *account, const char *uid,
		    char digest_r[ARCHIVE_DIGEST_LEN + 1]);

/*
 * A `folder` pattern is acceptable: not empty, relative, no "..", no
 * backslash or control characters, at most 255 bytes.
 */
int archive_folder_check(const char *pattern, char **err_r);
/*
 * strftime(pattern) on `when` in local time into *dir_r, checked: every
 * '/'-separated component non-empty, not "." or "..", printable, not
 * starting with '.' (that would hide it, or make a Maildir++ folder).
 */
int archive_folder_expand(const char *pattern, long long when, char **dir_r, char **err_r);

/*
 * mkdir -p `dir` with p's dir_mode and group (NULL: 0700, no group).  Every
 * directory it creates is made durable (fsync of the new directory and of
 * its parent).  0 if it exists (its mode is left alone).
 */
int archive_mkdirs(const char *dir, const perms *p, char **err_r);

/* fsync the directory `dir`. */
int archive_fsync_dir(const char *dir, char **err_r);
/* *err_r = the formatted message (allocated; NULL if that failed), when err_r
 * is not NULL. */
void archive_seterr(char **err_r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* write(2) until all of data is written, retrying EINTR: 0, or -1 with errno. */
int archive_write_all(int fd, const char *data, size_t len);

/* ---- safe targets (archive_target.c) ---- */

/*
 * 0 if a Maildir may be opened at `dir`: it does not exist, or it is a
 * Maildir (tmp/, new/ and cur/), or it is empty or holds nothing but some
 * of those three (what an interrupted maildir_open leaves).  Else -1: an
 * existing directory with anything else in it is never made a Maildir.
 * Symbolic links are followed: their target is judged.
 */
int archive_maildir_usable(const char *dir, char **err_r);
/* 0 if `file` does not exist or is a regular file (through links); else -1. */
int archive_mbox_usable(const char *file, char **err_r);

enum archive_kind {
	ARCHIVE_KIND_MAILDIR, /* path is the Maildir */
	ARCHIVE_KIND_MBOX,    /* path is the mbox file */
	ARCHIVE_KIND_FOLDERS  /* path is the directory the folders go under */
};
/*
 * Can this process (its effective user) ever archive at `path`?  Creates
 * nothing.  -1 (*err_r) if never: a part of the path is not a directory,
 * or the path or the nearest existing directory above it cannot be reached
 * or written.  1 (*err_r) if it exists and archive_*_usable refuses it as
 * it is now.  0 otherwise.
 */
int archive_target_check(const char *path, enum archive_kind kind, char **err_r);

/* ---- Maildir (archive_maildir.c) ---- */

/*
 * Host name as Maildir wants it in a file name: '/' -> "\057", ':' ->
 * "\072", and also ',' -> "\054" and anything outside printable ASCII as
 * \ooo, so the ",S=" and ":2," fields stay parseable; "" becomes
 * "localhost".  NULL only when out of memory.
 */
char *maildir_hostname(const char *host);

/* "<sec>.M<usec>P<pid>Q<digest>.<host>,S=<size>"; host already sanitised.
 * NULL when out of memory. */
char *maildir_name(const struct timeval *tv, pid_t pid, const char *digest,
		   const char *host, size_t size);

/* The digest inside a file name made by maildir_name (also after a MUA
 * moved it to cur/ and appended ":2,S"): 0 and digest_r filled, else -1. */
int maildir_name_digest(const char *name, char digest_r[ARCHIVE_DIGEST_LEN + 1]);

/*
 * One destination Maildir.  Delivery is split for group commit:
 * maildir_stage() has a message written into tmp/ and moved into new/
 * (by a writer thread); maildir_commit() makes every staged file durable
 * with one flush.
 * A staged file is in new/ before it is durable: a marker (see
 * archive_recover.c) has the next run check such files after a crash.
 */
struct maildir;

/*
 * Refuse a directory that is not a Maildir (archive_maildir_usable).
 * Create dir/{tmp,new,cur} (0700) as needed, recover after a crashed
 * writer (archive_recover_scan), and scan new/ and cur/ once for digests
 * already delivered.  Our own tmp/ files older than 36 hours (left by a
 * crash) are removed.  `host` is the raw host name.
 */
int maildir_open(const char *dir, const char *host, struct maildir **md_r, char **err_r);
/* The same, creating directories and files with p's modes and group (NULL:
 * the defaults; p is copied). */
int maildir_open_perms(const char *dir, const char *host, const perms *p, struct maildir **md_r,
		       char **err_r);
/* How many files a crashed run left short, moved to tmp/ by maildir_open. */
size_t maildir_recovered(const struct maildir *md);
/*
 * Have `data` written into tmp/ and moved into new/, by the writer thread
 * (data copied) unless it is larger than MAILDIR_WRITE_COPY_MAX.  Returns 1
 * (nothing written) if a message with this digest is in new/, cur/ or
 * already staged; 0 when staged; -1 on error, with no file left behind,
 * also when an earlier file of the batch failed in the writer (the
 * commit then fails: maildir_commit).
 */
int maildir_stage(struct maildir *md, const char *digest, const char *data, size_t len,
		  char **err_r);
/* Number of messages staged and not committed yet. */
size_t maildir_pending(const struct maildir *md);
/*
 * Wait for the writer, then make every staged message durable in new/.  On
 * failure (the writer's too) every message of this commit is removed again,
 * forgotten, and -1 returned: the caller keeps all of them on the server
 * for the next run.
 */
int maildir_commit(struct maildir *md, char **err_r);
/* Remove staged, uncommitted files. */
void maildir_abort(struct maildir *md);
/* Aborts what is staged, frees, sets *md to NULL.  NULL is fine. */
void maildir_close(struct maildir **md);

/* ---- crash recovery for the Maildir writer (archive_recover.c) ---- */

/* A writer's marker: "mailmill-unsynced.<pid>.<n>" in the Maildir's root. */
struct archive_mark {
	int fd;          /* open and flock'ed while the writer lives; -1: none */
	pid_t pid;       /* the process that made it */
	char name[48];
};

/* Create, lock and make durable this process's marker (host: sanitised). */
int archive_recover_mark(int rootfd, const char *dir, const char *host, struct archive_mark *m,
			 char **err_r);
/* Close the marker; remove it unless `keep` or it is another process's. */
void archive_recover_unmark(int rootfd, struct archive_mark *m, int keep);
/*
 * For every marker whose writer is gone: move that writer's files in new/
 * and cur/ whose size is not their ",S=" to tmp/ (*moved_r counts them),
 * syncfs, remove the marker.
 */
int archive_recover_scan(int rootfd, int tmpfd, const char *dir, size_t *moved_r, char **err_r);

/* ---- the From_ line's sender (archive_sender.c) ---- */

/*
 * The first address of a From: value, without GMime, when the value is one
 * of the plain forms "a@b.c", "a@b.c (comment)", "<a@b.c>", "Name <a@b.c>",
 * "\"Quoted, Name\" <a@b.c>" (printable ASCII, a dot-atom on each side of
 * the one '@'): 1 and buf (size bytes).  0 for anything else (a list, a
 * group, a quoted local part, 8-bit text, a long address, anything
 * malformed), which the caller hands to GMime's parser; for the forms read
 * here the two agree.
 */
int archive_sender_plain(const char *value, char *buf, size_t size);

/* ---- mbox (archive_mbox.c) ---- */

/*
 * Append one message to `out` in mboxrd form: a "From <sender> <date>"
 * line (date as asctime(3) in local time, C locale), the body with every
 * line matching ^>*From  given one more '>', a newline if the message did
 * not end with one, and a blank line.  A sender with white space or
 * control characters, or an empty one, becomes MAILER-DAEMON.
 */
void mbox_format(GString *out, const char *sender, long long date,
		 const char *data, size_t len);

/*
 * One destination mbox file and its index `<file>.mailmill-idx`, a line
 * "<digest> <offset> <length> <head>" per message, <head> being a hash of
 * the message's first bytes as written (From_ line included).  The first
 * mbox_stage() of a batch locks the mbox (fcntl, waiting at most 10 s) until
 * mbox_commit() or mbox_abort(); messages are written as they are staged, in
 * chunks of 1 MiB, each chunk's index lines appended and fsynced before its
 * messages are written; mbox_commit() writes the last chunk and fsyncs the
 * mbox.  On any error both files are truncated back to their lengths before
 * the batch.  An index line whose message is not in the mbox (crash before
 * the commit) is ignored: mbox_open checks the offset, length and head hash
 * of the last 256.
 */
struct mbox;
/* Refuses a `file` or index that exists and is not a regular file. */
int mbox_open(const char *file, struct mbox **mb_r, char **err_r);
/* The same, creating the mbox, its index and missing directories with p's
 * modes and group (NULL: the defaults; p is copied). */
int mbox_open_perms(const char *file, const perms *p, struct mbox **mb_r, char **err_r);
/* 1 if already archived or staged (nothing done), 0 staged, -1 error. */
int mbox_stage(struct mbox *mb, const char *digest, const char *sender, long long date,
	       const char *data, size_t len, char **err_r);
size_t mbox_pending(const struct mbox *mb);
int mbox_commit(struct mbox *mb, char **err_r);
void mbox_abort(struct mbox *mb);
void mbox_close(struct mbox **mb);

/* ---- the formats (archive_maildir.c, archive_mbox.c) ----
 *
 * One table of operations per format, as fdm's delivery backends are, so
 * that the plugin glue (archive.c) never branches on the format.  `t` is the
 * format's open target (struct maildir *, struct mbox *).
 */
struct archive_format {
	const char *name;       /* the `format` setting's value */
	enum archive_kind kind; /* what `path` is without `folder` */
	int needs_sender;       /* stage() takes the envelope sender (else NULL) */
	int (*open)(const char *path, const char *host, const perms *p, void **t_r, char **err_r);
	/* 1 already there, 0 staged, -1 error (archive's contract above). */
	int (*stage)(void *t, const char *digest, const char *sender, long long date,
		     const char *data, size_t len, char **err_r);
	size_t (*pending)(const void *t);
	int (*commit)(void *t, char **err_r);
	size_t (*recovered)(const void *t); /* files a crashed run left short */
	void (*close)(void *t);
};
extern const struct archive_format archive_format_maildir, archive_format_mbox;


/* ---- inside the formats (archive_maildir*.c, archive_mbox*.c) ----
 *
 * The targets' layout, shared by each format's two files; the rest of the
 * plugin uses the functions above only.
 */
/*
 * The flusher starts writing back after this many files, so that the
 * commit's flush finds little left to write.  Every 256 files cost more
 * (each syncfs is a journal commit and a cache flush, and they took CPU
 * from the server); 512, 2048 and 4096 measured a little slower, flushing
 * only at the commit slower still (its wait outlasts the RETR window).
 */
#define MAILDIR_FLUSH_EVERY 1024
/* ... or after this many bytes, whichever comes first: 1024 mixed messages
 * (38 KB on average) left 25 MB for the commit's syncfs, 65 ms during
 * which nothing was fetched. */
#define MAILDIR_FLUSH_BYTES (8ULL * 1024 * 1024)
/* The writer's queue holds at most this many messages and bytes: the
 * copies it has still to write. */
#define MAILDIR_WRITE_AHEAD 256
#define MAILDIR_WRITE_AHEAD_BYTES (8U * 1024 * 1024)
/* ... and no message larger than this, which the stage writes itself. */
#define MAILDIR_WRITE_COPY_MAX (1024U * 1024)

struct maildir_staged {
	char digest[ARCHIVE_DIGEST_LEN + 1];
	char *name; /* in new/; NULL until the writer has put it there */
};

struct maildir {
	char *dir, *tmp, *new, *cur; /* g_malloc'd paths */
	char *host;                  /* sanitised */
	perms perms;                 /* of the directories and files it creates */
	pid_t pid;
	int rootfd, tmpfd, newfd;    /* opened once: no path walks per message */
	GHashTable *known;           /* digests in new/, cur/ or staged */
	GPtrArray *staged;           /* struct maildir_staged *, in new/, not durable yet */
	struct archive_mark mark;    /* fd -1 until the first message is staged */
	size_t recovered;            /* files a crashed run left short, moved to tmp/ */
	int unclean;                 /* a rollback left a file: keep the marker */
	/* The flusher (maildir_flusher): a thread that starts the write-back
	 * of staged files while later messages are fetched, so that a commit
	 * finds most of its batch on disk.  lock guards unflushed and stop. */
	pthread_t flusher;
	int has_flusher;             /* started, in flusher_pid */
	int flushfd;                 /* the flusher's own: rootfd may be renewed meanwhile */
	pid_t flusher_pid;           /* a forked child has no flusher thread */
	pthread_mutex_t lock;
	pthread_cond_t cond;
	guint unflushed;             /* files staged since the last flush began */
	unsigned long long unflushed_bytes; /* and their bytes */
	int stop;
	/* The writer (archive_maildir_write.c): a thread that creates the
	 * staged files while later messages are fetched.  wlock guards jobs,
	 * jbytes, wbusy, wwaiting, wstop and werr. */
	pthread_t writer;
	int has_writer;              /* started, in writer_pid */
	pid_t writer_pid;
	pthread_mutex_t wlock;
	pthread_cond_t wcond;        /* the writer waits for a job */
	pthread_cond_t wdone;        /* a stage waits for room, a commit for the end */
	GQueue jobs;                 /* struct maildir_job *, oldest first */
	size_t jbytes;               /* their bytes */
	int wbusy, wwaiting, wstop;
	char *werr;                  /* the batch's first failure (free) */
};

struct mbox_staged {
	char digest[ARCHIVE_DIGEST_LEN + 1];
};

struct mbox {
	char *file, *idx;
	perms perms;        /* of the files and directories it creates */
	GHashTable *known;  /* digests archived or staged */
	GArray *staged;     /* struct mbox_staged, this batch's */
	GString *buf;       /* formatted messages not written yet */
	GString *lines;     /* their index lines */
	int broken;         /* a failed commit could not be undone */
	/* The open batch (fd >= 0): both files locked/open since its first stage. */
	int fd, ifd, created;
	off_t base, ibase;  /* lengths before the batch: the rollback point */
	unsigned long long off; /* where the next message goes in the mbox */
	char *failed;       /* a chunk could not be written: the batch is lost */
	/* The writer (mbox_writer): a thread that writes a full chunk (its index
	 * lines made durable first) while the next one is formatted, so the
	 * fetch does not wait for each index fsync.  lock guards wbuf, wlines,
	 * wstart, busy, stop and werr. */
	pthread_t writer;
	int has_writer;     /* started, in writer_pid */
	pid_t writer_pid;   /* a forked child has no writer thread */
	pthread_mutex_t lock;
	pthread_cond_t cond;
	GString *wbuf, *wlines; /* the chunk handed over (busy) */
	unsigned long long wstart; /* its offset in the mbox */
	int busy, stop;
	char *werr;         /* the writer's error (free), reported at the next hand-over */
};

/* archive_maildir_flush.c: start the flusher unless it runs in this process
 * (without it the commit's flush does all the work); remove what the batch
 * put into new/ so that the next run delivers it afresh. */
void maildir_flusher_start(struct maildir *md);
void maildir_rollback(struct maildir *md);

/*
 * archive_maildir_write.c: have s's file written into tmp/ and moved into
 * new/ (s->name set then): by the writer thread, data copied, or at once
 * when it is large or no thread can be had (0, or -1 and why).  The writer's failures are kept
 * for the batch: maildir_writer_failed() says whether there was one (a
 * copy of the reason, or NULL), maildir_writer_wait() waits until every
 * file handed over is done and returns the failure (the caller frees it),
 * clearing it.  maildir_writer_stop() ends the thread.
 */
int maildir_writer_push(struct maildir *md, struct maildir_staged *s, const char *data, size_t len,
			char **err_r);
char *maildir_writer_failed(struct maildir *md);
char *maildir_writer_wait(struct maildir *md);
void maildir_writer_stop(struct maildir *md);

/* archive_mbox_write.c: a batch's files (archive_mbox.c formats and stages). */
/* First message of a batch: lock the mbox and note where the batch starts. */
int mbox_begin_batch(struct mbox *mb, char **err_r);
/* Close the batch's files (dropping the lock); -1 if a close failed. */
int mbox_end_batch(struct mbox *mb, char **err_r);
/* Forget this batch's digests (nothing on disk changes). */
void mbox_forget_staged(struct mbox *mb);
/* Both files back to their lengths before the batch; its messages forgotten. */
void mbox_rollback(struct mbox *mb);
/* A chunk's index lines, durable, then its messages (not durable yet). */
int mbox_write_chunk(struct mbox *mb, GString *buf, GString *lines, unsigned long long start,
		     char **err_r);
/* Until the writer is idle; then its error, if any (the caller frees). */
char *mbox_writer_wait(struct mbox *mb);
/* Hand the full chunk to the writer (after the previous one is done): 0, or
 * -1 and *err_r with the writer's error on the previous chunk. */
int mbox_hand_over(struct mbox *mb, char **err_r);

#endif
