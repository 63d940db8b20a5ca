/* mailmill - ISC licence, see LICENSE */
#ifndef MM_TEST_IMAP_MODEL_H
#define MM_TEST_IMAP_MODEL_H
/*
 * A model IMAP server for the account run's unit tests (test_run.c): a
 * forked child on 127.0.0.1 that keeps folders of messages in a state file
 * and answers the commands mailmill's IMAP source sends, whatever their tag
 * and however proto/imap spells them.  A test writes the state, runs
 * run_account against it, and reads back what the server holds and the
 * commands it was sent (without tags), one per line, in `transcript`.
 *
 * The state file, one item a line:
 *   caps IMAP4rev1 UIDPLUS MOVE AUTH=PLAIN   the capabilities offered
 *   drop STORE                               close the connection at the first
 *                                            command starting with this word
 *   drop UID EXPUNGE #2                      ... at the second such command
 *   no UID STORE                             answer NO to the first command starting
 *                                            with this (#N: the Nth), doing nothing
 *   lazy-store                               a UID STORE with more commands behind
 *                                            it ends (is done and answered) only after
 *                                            the next, as Dovecot runs pipelined
 *                                            commands side by side
 *   folder NAME UIDVALIDITY                  a folder; the messages below are in it
 *   msg UID FLAGS ID                         FLAGS "-" or e.g. "\Seen,\Deleted";
 *                                            the body is made from ID (imap_model_body)
 * The server rewrites it when the client logs out or goes (UIDs of copies
 * and moved messages continue from the folder's highest).
 */
#include <sys/types.h>

typedef struct imap_model {
	pid_t pid;
	char port[8];
} imap_model;

/* Serve `conns` connections one after the other with the state in
 * state_path, appending each command to transcript_path. */
imap_model imap_model_start(const char *state_path, const char *transcript_path, int conns);
/* Wait for the child; the test fails unless it exited 0. */
void imap_model_finish(imap_model *m);
/* The body of message ID (allocated, g_free). */
char *imap_model_body(const char *id);
#endif
