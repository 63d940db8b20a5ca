/* mailmill - ISC licence, see LICENSE */
/*
 * The daemon's signals, through GLib's main loop (so the handlers are plain
 * callbacks, not async-signal context):
 *   SIGTERM, SIGINT  stop: workers finish the message in hand and QUIT;
 *                    a second one kills them (committed work is safe)
 *   SIGHUP           reload the configuration (daemon/sched/reload.c)
 *   SIGUSR1          poll every account now
 */
#include <config.h>
#include <signal.h>
#include <glib.h>
#include <glib-unix.h>
#include "daemon/sched/sched_int.h"
#include "daemon/core/log.h"

static gboolean
signals_on_stop(gpointer arg)
{
	sched *s = arg;

	if (s->stopping) {
		log_warn("stopping now: killing %u worker(s); what they had committed is safe",
			 s->workers->len);
		supervise_signal_all(s, SIGKILL);
		idle_signal(s, SIGKILL);
		return G_SOURCE_CONTINUE;
	}
	log_info("stopping: %u worker(s) finish the message in hand and QUIT", s->workers->len);
	sched_stop(s);
	return G_SOURCE_CONTINUE;
}

static gboolean
signals_on_usr1(gpointer arg)
{
	sched *s = arg;

	if (s->stopping)
		return G_SOURCE_CONTINUE;
	log_info("SIGUSR1: polling every account now");
	sched_poll_all(s);
	return G_SOURCE_CONTINUE;
}

static gboolean
signals_on_hup(gpointer arg)
{
	sched *s = arg;

	if (!s->stopping)
		reload_config(s);
	return G_SOURCE_CONTINUE;
}

void
signals_install(sched *s)
{
	s->sig[0] = g_unix_signal_add(SIGTERM, signals_on_stop, s);
	s->sig[1] = g_unix_signal_add(SIGINT, signals_on_stop, s);
	s->sig[2] = g_unix_signal_add(SIGHUP, signals_on_hup, s);
	s->sig[3] = g_unix_signal_add(SIGUSR1, signals_on_usr1, s);
}

void
signals_remove(sched *s)
{
	size_t i;

	for (i = 0; i < G_N_ELEMENTS(s->sig); i++) {
		if (s->sig[i] != 0)
			g_source_remove(s->sig[i]);
		s->sig[i] = 0;
	}
}
