/* mailmill - ISC licence, see LICENSE */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "daemon/core/cfg_schedule.h"
#include "daemon/core/units.h"

/* Ten years: longer is "never", which is keep = true. */
#define CFG_DELETE_AFTER_MAX (3650LL * 86400)

static void cfg_schedule_errf(cfg_schedule_err_fn *err, void *arg, const config_setting_t *s,
			      const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static void
cfg_schedule_errf(cfg_schedule_err_fn *err, void *arg, const config_setting_t *s,
		  const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	err(arg, s, msg);
}

/* "HH:MM", 24-hour, two digits each: minutes after midnight, or -1. */
static int
cfg_schedule_hhmm(const char *v)
{
	int h, m;

	if (strlen(v) != 5 || v[2] != ':')
		return -1;
	for (int i = 0; i < 5; i++)
		if (i != 2 && (v[i] < '0' || v[i] > '9'))
			return -1;
	h = (v[0] - '0') * 10 + (v[1] - '0');
	m = (v[3] - '0') * 10 + (v[4] - '0');
	if (h > 23 || m > 59)
		return -1;
	return h * 60 + m;
}

static int
cfg_schedule_cmp(const void *x, const void *y)
{
	return *(const int *)x - *(const int *)y;
}

static void
cfg_schedule_at(const config_setting_t *s, cfg_account *a, cfg_schedule_err_fn *err, void *arg)
{
	int type = config_setting_type(s), n;

	if (type == CONFIG_TYPE_STRING) {
		n = 1;
	} else if (type == CONFIG_TYPE_ARRAY || type == CONFIG_TYPE_LIST) {
		n = config_setting_length(s);
	} else {
		err(arg, s, "'at' must be a list of local times: at = [ \"02:00\", \"14:00\" ]");
		return;
	}
	if (n < 1) {
		err(arg, s, "'at' is empty: give at least one time, or remove it");
		return;
	}
	if (n > CFG_AT_MAX) {
		cfg_schedule_errf(err, arg, s, "'at' has %d times; at most %d (use 'interval' "
				  "for frequent runs)", n, CFG_AT_MAX);
		return;
	}
	a->n_at = 0;
	for (int i = 0; i < n; i++) {
		const config_setting_t *e = type == CONFIG_TYPE_STRING ? s :
			config_setting_get_elem(s, (unsigned)i);
		const char *v = config_setting_get_string(e);
		int m = v != NULL ? cfg_schedule_hhmm(v) : -1;

		if (m < 0) {
			cfg_schedule_errf(err, arg, e, "'at': %s%s%s is not a time of day: use "
					  "24-hour \"HH:MM\", like \"02:00\" or \"14:30\"",
					  v != NULL ? "\"" : "", v != NULL ? v : "an element",
					  v != NULL ? "\"" : "");
			continue;
		}
		for (size_t j = 0; j < a->n_at; j++) {
			if (a->at[j] == m) {
				cfg_schedule_errf(err, arg, e, "'at': \"%s\" is given twice", v);
				m = -1;
				break;
			}
		}
		if (m >= 0)
			a->at[a->n_at++] = m;
	}
	qsort(a->at, a->n_at, sizeof a->at[0], cfg_schedule_cmp);
	/* With an explicit interval the account runs at both; without, only at these. */
	a->at_only = config_setting_get_member(config_setting_parent(s), "interval") == NULL;
}

static void
cfg_schedule_delete_after(const config_setting_t *s, cfg_account *a, cfg_schedule_err_fn *err,
			  void *arg)
{
	const config_setting_t *keep = config_setting_get_member(config_setting_parent(s), "keep");
	long long v;

	if (config_setting_type(s) == CONFIG_TYPE_INT || config_setting_type(s) == CONFIG_TYPE_INT64) {
		v = config_setting_get_int64(s);
	} else if (config_setting_type(s) == CONFIG_TYPE_STRING) {
		if (units_duration(config_setting_get_string(s), &v) < 0) {
			cfg_schedule_errf(err, arg, s, "'delete_after': \"%s\" is not a duration "
					  "(like \"30d\", \"12h\")", config_setting_get_string(s));
			return;
		}
	} else {
		err(arg, s, "'delete_after' must be a duration (a string like \"30d\" or seconds)");
		return;
	}
	if (v < 1 || v > CFG_DELETE_AFTER_MAX) {
		cfg_schedule_errf(err, arg, s, "'delete_after' must be between 1s and %lldd, not %llds",
				  CFG_DELETE_AFTER_MAX / 86400, v);
		return;
	}
	if (keep != NULL && config_setting_type(keep) == CONFIG_TYPE_BOOL &&
	    config_setting_get_bool(keep)) {
		err(arg, s, "'delete_after' with keep = true: keep never deletes; remove one of them");
		return;
	}
	a->delete_after_s = v;
}

int
cfg_schedule_setting(const config_setting_t *s, cfg_account *a, cfg_schedule_err_fn *err,
		     void *arg)
{
	const char *k = config_setting_name(s);

	if (k == NULL)
		return 0;
	if (strcmp(k, "at") == 0)
		cfg_schedule_at(s, a, err, arg);
	else if (strcmp(k, "delete_after") == 0)
		cfg_schedule_delete_after(s, a, err, arg);
	else
		return 0;
	return 1;
}
