/* mailmill - ISC licence, see LICENSE */
/*
 * The `filter` plugin: ordered rules, each a set of conditions and an action.
 *
 *   { plugin = "filter";
 *     rules = (
 *       { name = "spam"; header = "X-Spam-Flag"; match = "^yes$"; nocase = true;
 *         goto = "junk"; },
 *       { from = [ "example.net", "@lists.example.org", ".spam.example" ];
 *         verdict = "keep"; },
 *       { to = [ "sales@example.org" ]; add_header = "X-Routed: sales"; },
 *       { size_over = 10000000; verdict = "defer"; },
 *       { attachment = true; body = "invoice"; nocase = true; goto = "invoices"; }
 *     ); }
 *
 * Every condition a rule sets must hold (header/match, from, to, size_over,
 * size_under, attachment, body); a rule has at least one.  Exactly one action:
 * `verdict` (pass/done/keep/defer) ends the rules with that verdict; `goto`
 * ends them and passes the message on to that later stage; `add_header`
 * adds the header to the parsed message and goes on with the next rule.  No
 * rule ending: MM_PASS.
 *
 * An added header is seen by later stages through mm_msg_mime(); the raw
 * bytes, which the archive stores, stay as fetched.
 */
#include <limits.h>
#include <string.h>
#include <mailmill/plugin.h>
#include "filter.h"

#define FILTER_MAX_RULES 1000
#define FILTER_MAX_LIST 10000

typedef struct filter {
	filter_rule *rules;
	size_t n;
} filter;

static const char *const filter_keys[] = { "rules", NULL };
static const char *const filter_rule_keys[] = {
	"name", "header", "match", "nocase", "from", "to", "size_over", "size_under",
	"attachment", "body", "verdict", "add_header", "goto", NULL
};

static void
filter_free(void *p)
{
	filter *f = p;

	if (f == NULL)
		return;
	for (size_t i = 0; i < f->n; i++)
		filter_rule_clear(&f->rules[i]);
	g_free(f->rules);
	g_free(f);
}

/* A string member: 1 and *out (borrowed) if set, 0 if absent, -1 if not a
 * string.  Not mm_setting_string: "" is a valid `match` or `body`. */
static int
filter_str(mm_ctx *ctx, const config_setting_t *g, const char *key, const char **out)
{
	const config_setting_t *s = config_setting_get_member(g, key);

	if (s == NULL)
		return 0;
	if (config_setting_type(s) != CONFIG_TYPE_STRING) {
		mm_ctx_error(ctx, s, "`%s` must be a string", key);
		return -1;
	}
	*out = config_setting_get_string(s);
	return 1;
}

/* A size in bytes, "50M" or a number; *out -1 when absent. */
static int
filter_size(mm_ctx *ctx, const config_setting_t *g, const char *key, long long *out)
{
	unsigned long long v;
	int rc = mm_setting_size(ctx, g, key, (unsigned long long)LLONG_MAX, &v);

	*out = rc > 0 ? (long long)v : -1;
	return rc;
}

/* An address list: "user@domain", "domain", "@domain" or ".domain". */
static int
filter_list(mm_ctx *ctx, const config_setting_t *g, const char *key, char ***out)
{
	const config_setting_t *s = config_setting_get_member(g, key);
	int rc = mm_setting_strings(ctx, g, key, FILTER_MAX_LIST, out), bad = 0;

	for (int i = 0; rc > 0 && (*out)[i] != NULL; i++) {
		char *v = (*out)[i];
		const char *at = strchr(v, '@');

		if (strpbrk(v, " \t<>,;\"") != NULL ||
		    (at != NULL && (at[1] == '\0' || strchr(at + 1, '@') != NULL)) ||
		    (v[0] == '.' && v[1] == '\0')) {
			mm_ctx_error(ctx, s, "`%s` element %d must be an address, a domain, \"@domain\""
				     " or \".domain\"", key, i + 1);
			bad = 1;
		}
		(*out)[i] = g_ascii_strdown(v, -1);
		g_free(v);
	}
	return bad ? -1 : rc;
}

static int
filter_regex(mm_ctx *ctx, const config_setting_t *g, const char *key, int nocase, regex_t *re)
{
	const config_setting_t *s = config_setting_get_member(g, key);
	char *err = NULL;

	if (filter_regex_compile(re, config_setting_get_string(s), nocase, &err) < 0) {
		mm_ctx_error(ctx, s, "`%s`: bad regular expression \"%s\": %s", key,
			     config_setting_get_string(s), err);
		g_free(err);
		return -1;
	}
	return 0;
}

/* "Name: value": a header name of printable ASCII without ':', a value without line breaks. */
static int
filter_header_parse(const char *text, char **name, char **value)
{
	const char *colon = strchr(text, ':');

	if (colon == NULL || colon == text || strpbrk(text, "\r\n") != NULL)
		return -1;
	for (const char *p = text; p < colon; p++)
		if (*p < 33 || *p > 126)
			return -1;
	*name = g_strndup(text, (size_t)(colon - text));
	*value = g_strstrip(g_strdup(colon + 1));
	return 0;
}

static int
filter_action_parse(mm_ctx *ctx, const config_setting_t *g, filter_rule *r)
{
	const char *add = NULL, *to = NULL;
	int nv = mm_setting_verdict(ctx, g, "verdict", MM_VERDICT_BIT(MM_PASS) | MM_VERDICT_BIT(MM_DONE) |
				    MM_VERDICT_BIT(MM_KEEP) | MM_VERDICT_BIT(MM_DEFER), &r->verdict);
	int na = filter_str(ctx, g, "add_header", &add), ng = filter_str(ctx, g, "goto", &to);

	if (nv < 0 || na < 0 || ng < 0)
		return -1;
	if (nv + na + ng != 1) {
		mm_ctx_error(ctx, g, "%s: give exactly one action: `verdict`, `add_header` or `goto`",
			     r->name);
		return -1;
	}
	if (nv > 0) {
		r->act = FILTER_ACT_VERDICT;
	} else if (add != NULL) {
		r->act = FILTER_ACT_HEADER;
		if (filter_header_parse(add, &r->add_name, &r->add_value) < 0) {
			mm_ctx_error(ctx, config_setting_get_member(g, "add_header"), "%s: `add_header`"
				     " must be \"Name: value\" on one line", r->name);
			return -1;
		}
	} else {
		int where = mm_ctx_has_stage(ctx, to);

		r->act = FILTER_ACT_GOTO;
		r->goto_stage = g_strdup(to);
		if (where != 1) {
			mm_ctx_error(ctx, config_setting_get_member(g, "goto"), "%s: `goto` \"%s\": %s",
				     r->name, to, where < 0 ? "that stage does not come after this one"
				     " (jumps only go forward)" : "no stage of this pipeline has that name");
			return -1;
		}
	}
	return 0;
}

static int
filter_rule_parse(mm_ctx *ctx, const config_setting_t *g, size_t idx, filter_rule *r)
{
	const char *name = NULL, *header = NULL, *match = NULL, *body = NULL;
	int bad = mm_settings_check(ctx, g, filter_rule_keys) < 0, nocase = 0, conds = 0, rc;

	r->size_over = r->size_under = -1;
	r->attachment = -1;
	if (filter_str(ctx, g, "name", &name) < 0)
		bad = 1;
	r->name = name != NULL ? g_strdup_printf("rule \"%s\"", name) :
		  g_strdup_printf("rule %zu", idx + 1);
	if (mm_setting_bool(ctx, g, "nocase", &nocase) < 0)
		bad = 1;
	rc = filter_str(ctx, g, "header", &header);
	if (rc < 0 || filter_str(ctx, g, "match", &match) < 0) {
		bad = 1;
	} else if ((header != NULL) != (match != NULL)) {
		mm_ctx_error(ctx, g, "%s: `header` and `match` go together", r->name);
		bad = 1;
	} else if (header != NULL) {
		if (*header == '\0' || strpbrk(header, ": \t\r\n") != NULL) {
			mm_ctx_error(ctx, config_setting_get_member(g, "header"),
				     "%s: `header` must be a header name", r->name);
			bad = 1;
		} else if (filter_regex(ctx, g, "match", nocase, &r->header_re) == 0) {
			r->header = g_strdup(header);
			conds++;
		} else {
			bad = 1;
		}
	}
	if ((rc = filter_str(ctx, g, "body", &body)) < 0)
		bad = 1;
	else if (rc > 0 && filter_regex(ctx, g, "body", nocase, &r->body_re) == 0)
		r->has_body = 1, conds++;
	else if (rc > 0)
		bad = 1;
	if ((rc = filter_list(ctx, g, "from", &r->from)) < 0)
		bad = 1;
	conds += rc > 0;
	if ((rc = filter_list(ctx, g, "to", &r->to)) < 0)
		bad = 1;
	conds += rc > 0;
	/* Sizes as the core writes them ("50M"); a plain number is bytes. */
	if ((rc = filter_size(ctx, g, "size_over", &r->size_over)) < 0)
		bad = 1;
	conds += rc > 0;
	if ((rc = filter_size(ctx, g, "size_under", &r->size_under)) < 0)
		bad = 1;
	conds += rc > 0;
	if ((rc = mm_setting_bool(ctx, g, "attachment", &r->attachment)) < 0)
		bad = 1;
	conds += rc > 0;
	if (conds == 0 && !bad) {
		mm_ctx_error(ctx, g, "%s: no condition: set at least one of header/match, from, to,"
			     " size_over, size_under, attachment, body", r->name);
		bad = 1;
	}
	if (filter_action_parse(ctx, g, r) < 0)
		bad = 1;
	return bad ? -1 : 0;
}

static int
filter_init(mm_ctx *ctx, const config_setting_t *g, void **state)
{
	filter *f = g_new0(filter, 1);
	const config_setting_t *rs = config_setting_get_member(g, "rules");
	int bad = mm_settings_check(ctx, g, filter_keys) < 0, n;

	if (rs == NULL || config_setting_type(rs) != CONFIG_TYPE_LIST ||
	    (n = config_setting_length(rs)) < 1 || n > FILTER_MAX_RULES) {
		mm_ctx_error(ctx, rs != NULL ? rs : g, "`rules` is required: a list of 1 to %d rules,"
			     " e.g. ( { header = \"Subject\"; match = \"^\\\\[spam\\\\]\"; verdict ="
			     " \"done\"; } )", FILTER_MAX_RULES);
		filter_free(f);
		return -1;
	}
	f->rules = g_new0(filter_rule, (size_t)n);
	for (int i = 0; i < n; i++) {
		const config_setting_t *rg = config_setting_get_elem(rs, (unsigned)i);

		f->n++;
		if (config_setting_type(rg) != CONFIG_TYPE_GROUP) {
			mm_ctx_error(ctx, rg, "rule %d must be a group { ... }", i + 1);
			bad = 1;
			continue;
		}
		if (filter_rule_parse(ctx, rg, (size_t)i, &f->rules[i]) < 0)
			bad = 1;
	}
	if (bad) {
		filter_free(f);
		return -1;
	}
	*state = f;
	return 0;
}

static mm_verdict
filter_process(void *state, mm_msg *msg, mm_ctx *ctx)
{
	filter *f = state;
	filter_msg fm;
	mm_verdict v = MM_PASS;

	filter_msg_init(&fm, mm_msg_mime(msg), mm_msg_size(msg));
	for (size_t i = 0; i < f->n; i++) {
		const filter_rule *r = &f->rules[i];

		if (!filter_rule_matches(r, &fm))
			continue;
		if (r->act == FILTER_ACT_HEADER) {
			mm_log(ctx, MM_LOG_INFO, "uid %s: %s: adding %s: %s", mm_msg_uid(msg), r->name,
			       r->add_name, r->add_value);
			g_mime_object_append_header(GMIME_OBJECT(fm.m), r->add_name, r->add_value,
						    "UTF-8");
			continue;
		}
		if (r->act == FILTER_ACT_GOTO) {
			mm_log(ctx, MM_LOG_INFO, "uid %s: %s: on to stage %s", mm_msg_uid(msg), r->name,
			       r->goto_stage);
			mm_msg_goto(msg, r->goto_stage);
		} else {
			mm_log(ctx, MM_LOG_INFO, "uid %s: %s: %s", mm_msg_uid(msg), r->name,
			       r->verdict == MM_PASS ? "pass" : r->verdict == MM_DONE ? "done" :
			       r->verdict == MM_KEEP ? "keep" : "defer");
			v = r->verdict;
		}
		break;
	}
	filter_msg_clear(&fm);
	return v;
}

const struct mailmill_plugin mailmill_plugin = {
	.abi = MAILMILL_PLUGIN_ABI,
	.name = "filter",
	.version = "1",
	.init = filter_init,
	.process = filter_process,
	.sync = NULL,
	.fini = filter_free,
};
