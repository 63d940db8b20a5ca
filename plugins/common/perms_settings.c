/* mailmill - ISC licence, see LICENSE */
#include <grp.h>
#include <stdlib.h>
#include <unistd.h>
#include <glib.h>
#include "perms.h"

/* 1 if this process may give files the group gid (chown(2): root, or a
 * member).  init runs as the worker user, so this is the writer's answer. */
static int
perms_may_use(gid_t gid)
{
	gid_t list[256];
	int n;

	if (geteuid() == 0 || getegid() == gid)
		return 1;
	n = getgroups((int)G_N_ELEMENTS(list), list);
	for (int i = 0; i < n; i++)
		if (list[i] == gid)
			return 1;
	return 0;
}

int
perms_settings(mm_ctx *ctx, const config_setting_t *g, int with_dirs, perms *p)
{
	const config_setting_t *s;
	char *group = NULL;
	int bad = 0;

	perms_default(p);
	if (mm_setting_mode(ctx, g, "mode", 0777, &p->mode) < 0 ||
	    (with_dirs && mm_setting_mode(ctx, g, "dir_mode", 07777, &p->dir_mode) < 0))
		bad = 1;
	if (p->dir_mode != PERMS_DIR_MODE_DEFAULT && (p->dir_mode & 0700) != 0700) {
		mm_ctx_error(ctx, config_setting_get_member(g, "dir_mode"),
			     "`dir_mode` must leave the owner rwx (0700), not %04o", p->dir_mode);
		bad = 1;
	}
	if (mm_setting_string(ctx, g, "group", &group) < 0) {
		bad = 1;
	} else if (group != NULL) {
		struct group *gr;
		char *end = NULL;
		unsigned long id = strtoul(group, &end, 10);

		/* A name, or a number as chgrp(1) takes it. */
		gr = g_ascii_isdigit(group[0]) && *end == '\0' ? getgrgid((gid_t)id) : getgrnam(group);
		s = config_setting_get_member(g, "group");
		if (gr == NULL) {
			mm_ctx_error(ctx, s, "`group` \"%s\" does not exist", group);
			bad = 1;
		} else if (!perms_may_use(gr->gr_gid)) {
			mm_ctx_error(ctx, s, "`group` \"%s\": this user is not a member of it, so it"
				     " cannot give it to files", group);
			bad = 1;
		} else
			p->gid = gr->gr_gid;
	}
	g_free(group);
	return bad ? -1 : 0;
}
