/* mailmill - ISC licence, see LICENSE */
#include <stdio.h>
#include <stdarg.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <sys/time.h>
#include <unistd.h>
#include "daemon/core/log.h"

static int log_lvl = LOG_LVL_INFO;
static int log_syslog;
static char log_last[512];
static char log_bar[256];   /* the status line on the terminal, "" none */

void
log_open(const char *target, int level)
{
	int want_syslog = target != NULL && strcmp(target, "syslog") == 0;

	if (log_syslog && !want_syslog)
		closelog();
	if (want_syslog && !log_syslog)
		openlog("mailmilld", LOG_PID | LOG_NDELAY, LOG_MAIL);
	log_syslog = want_syslog;
	log_lvl = level;
}

int
log_level(void)
{
	return log_lvl;
}

void
log_vmsg(int level, const char *fmt, va_list ap)
{
	static const char *const names[] = { "error", "warning", "info", "debug" };
	static const int prio[] = { LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG };
	char line[4096];
	struct timeval tv;
	struct tm tm;
	char stamp[32];

	if (level > log_lvl || level < 0 || level > LOG_LVL_DEBUG)
		return;
	vsnprintf(line, sizeof line, fmt, ap);
	if (level == LOG_LVL_ERROR) {
		size_t n = strnlen(line, sizeof log_last - 1);

		memcpy(log_last, line, n);
		log_last[n] = '\0';
	}
	if (log_syslog) {
		syslog(prio[level], "%s", line);
		return;
	}
	gettimeofday(&tv, NULL);
	localtime_r(&tv.tv_sec, &tm);
	strftime(stamp, sizeof stamp, "%Y-%m-%d %H:%M:%S", &tm);
	/* One fprintf per line so lines from concurrent processes stay whole;
	 * a status line is wiped first and drawn again under it. */
	fprintf(stderr, "%s%s.%03ld mailmilld[%ld] %s: %s\n%s", log_bar[0] ? "\r\033[K" : "",
		stamp, (long)(tv.tv_usec / 1000), (long)getpid(), names[level], line, log_bar);
}

void
log_status(const char *text)
{
	if (text == NULL || text[0] == '\0') {
		if (log_bar[0] != '\0')
			fputs("\r\033[K", stderr);
		log_bar[0] = '\0';
	} else {
		snprintf(log_bar, sizeof log_bar, "%s", text);
		fprintf(stderr, "\r\033[K%s", log_bar);
	}
	fflush(stderr);
}

const char *
log_last_error(void)
{
	return log_last;
}

void
log_msg(int level, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vmsg(level, fmt, ap);
	va_end(ap);
}
