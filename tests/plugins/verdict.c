/* mailmill - ISC licence, see LICENSE */
/*
 * A plugin that gives a fixed verdict, for pipeline and fault tests:
 *
 *   { plugin = "verdict"; verdict = "keep";   # "pass", "done", "keep", "defer", "fail"
 *     subject_contains = "[hold]";           # optional: only these; others PASS
 *     sleep_ms = 2000;                       # optional: wait first (hang tests)
 *     crash = true; }                        # optional: abort() instead (crash tests)
 *
 * sleep_ms and crash apply only to the messages the verdict applies to, so
 * a test can make one chosen message hang or crash a worker.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <mailmill/plugin.h>

#define VERDICT_SLEEP_MAX 3600000 /* ms: an hour is longer than any test */

struct verdict {
	mm_verdict verdict;
	char *subject_contains; /* NULL: every message */
	int crash;
	long long sleep_ms;
};

static const char *const verdict_keys[] = {
	"verdict", "subject_contains", "crash", "sleep_ms", NULL
};

static const struct {
	const char *name;
	mm_verdict verdict;
} verdict_names[] = {
	{ "pass", MM_PASS }, { "done", MM_DONE }, { "keep", MM_KEEP }, { "defer", MM_DEFER },
	{ "fail", MM_FAIL },
};

static void
verdict_free(struct verdict *v)
{
	if (v != NULL)
		free(v->subject_contains);
	free(v);
}

static int
verdict_parse(mm_ctx *ctx, const config_setting_t *settings, struct verdict *v)
{
	const config_setting_t *s;
	const char *str;
	size_t i;

	if ((s = config_setting_get_member(settings, "verdict")) == NULL) {
		mm_ctx_error(ctx, settings, "`verdict` is required");
		return -1;
	}
	str = config_setting_type(s) == CONFIG_TYPE_STRING ? config_setting_get_string(s) : "";
	for (i = 0; i < sizeof(verdict_names) / sizeof(verdict_names[0]); i++)
		if (strcmp(str, verdict_names[i].name) == 0)
			break;
	if (i == sizeof(verdict_names) / sizeof(verdict_names[0])) {
		mm_ctx_error(ctx, s, "`verdict` must be \"pass\", \"done\", \"keep\", \"defer\" or \"fail\"");
		return -1;
	}
	v->verdict = verdict_names[i].verdict;
	if ((s = config_setting_get_member(settings, "subject_contains")) != NULL) {
		if (config_setting_type(s) != CONFIG_TYPE_STRING ||
		    *config_setting_get_string(s) == '\0') {
			mm_ctx_error(ctx, s, "`subject_contains` must be a non-empty string");
			return -1;
		}
		if ((v->subject_contains = strdup(config_setting_get_string(s))) == NULL) {
			mm_ctx_error(ctx, s, "out of memory");
			return -1;
		}
	}
	if ((s = config_setting_get_member(settings, "crash")) != NULL) {
		if (config_setting_type(s) != CONFIG_TYPE_BOOL) {
			mm_ctx_error(ctx, s, "`crash` must be true or false");
			return -1;
		}
		v->crash = config_setting_get_bool(s);
	}
	if ((s = config_setting_get_member(settings, "sleep_ms")) != NULL) {
		int t = config_setting_type(s);

		if ((t != CONFIG_TYPE_INT && t != CONFIG_TYPE_INT64) ||
		    config_setting_get_int64(s) < 0 ||
		    config_setting_get_int64(s) > VERDICT_SLEEP_MAX) {
			mm_ctx_error(ctx, s, "`sleep_ms` must be an integer from 0 to %d",
				     VERDICT_SLEEP_MAX);
			return -1;
		}
		v->sleep_ms = config_setting_get_int64(s);
	}
	return 0;
}

static int
verdict_init(mm_ctx *ctx, const config_setting_t *settings, void **state)
{
	/* Unknown keys and bad values are all reported, not only the first. */
	int unknown = mm_settings_check(ctx, settings, verdict_keys) < 0;
	struct verdict *v;

	if ((v = calloc(1, sizeof(*v))) == NULL) {
		mm_ctx_error(ctx, settings, "out of memory");
		return -1;
	}
	if (verdict_parse(ctx, settings, v) < 0 || unknown) {
		verdict_free(v);
		return -1;
	}
	*state = v;
	return 0;
}

static mm_verdict
verdict_process(void *state, mm_msg *msg, mm_ctx *ctx)
{
	struct verdict *v = state;

	if (v->subject_contains != NULL) {
		const char *subject = g_mime_message_get_subject(mm_msg_mime(msg));

		if (subject == NULL || strstr(subject, v->subject_contains) == NULL)
			return MM_PASS;
	}
	if (v->sleep_ms > 0) {
		struct timespec left = { v->sleep_ms / 1000, (v->sleep_ms % 1000) * 1000000L };

		/* Signals do not shorten it: a hang test wants the whole hang. */
		while (nanosleep(&left, &left) < 0 && errno == EINTR)
			;
	}
	if (v->crash) {
		mm_log(ctx, MM_LOG_INFO, "uid %s: crashing on purpose", mm_msg_uid(msg));
		abort();
	}
	mm_log(ctx, MM_LOG_DEBUG, "uid %s: verdict %d", mm_msg_uid(msg), (int)v->verdict);
	return v->verdict;
}

static void
verdict_fini(void *state)
{
	verdict_free(state);
}

const struct mailmill_plugin mailmill_plugin = {
	.abi = MAILMILL_PLUGIN_ABI,
	.name = "verdict",
	.version = "1",
	.init = verdict_init,
	.process = verdict_process,
	.sync = NULL,
	.fini = verdict_fini,
};
