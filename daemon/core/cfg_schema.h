/* mailmill - ISC licence, see LICENSE */
#ifndef MM_CFG_SCHEMA_H
#define MM_CFG_SCHEMA_H
/*
 * The configuration's schema: one table per group (top level, `log`,
 * `smtp`, an account), one row per key with its type, default, range and
 * the one line the manual says about it.  cfg_walk (cfg_value.c) reads a
 * group against its table: unknown keys are errors at file:line, values are
 * checked and stored at the row's offset in the group's struct, missing
 * required keys are reported; a key that is truly special (secrets, the
 * OAuth group, the pipeline) has a hook that parses it instead.
 *
 * Adding a key is one row in cfg_schema.c (and its field in cfg.h, its
 * entry in mailmill.conf(5): tests/unit/test_cfg_schema checks that).
 *
 * The tables are constant and live for the program.
 */
#include <stddef.h>
#include <libconfig.h>

typedef enum cfg_type {
	CFG_STR = 0,    /* a non-empty string: char * (freed by cfg_free) */
	CFG_PATH,       /* an absolute path: char * */
	CFG_BOOL,       /* true or false: int */
	CFG_INT,        /* a whole number in [min, max]: int */
	CFG_DURATION,   /* "90s", "5m", "2h", "7d" or seconds, in [min, max]: long long */
	CFG_SIZE,       /* "512K", "50M", "2G" or bytes, 0 or [min, max]: unsigned long long */
	CFG_ENUM,       /* one of names[]: int, its index (CFG_NAMED: char *, the name) */
	CFG_STRLIST,    /* a list or array of strings: char **, NULL-terminated */
	CFG_GROUP,      /* a group: its keys (sub) are stored in the same struct */
	CFG_LIST        /* a list of groups: always a hook */
} cfg_type;

enum {
	CFG_REQUIRED = 1 << 0,  /* "missing required setting" when absent */
	CFG_FIRST = 1 << 1,     /* parsed by the group's code before the walk (an account's name) */
	CFG_NAMED = 1 << 2,     /* CFG_ENUM stored as its name (char *) */
	CFG_BUILD_DEF = 1 << 3  /* the default depends on the build (install paths) */
};

typedef struct cfg_walk cfg_walk;
typedef struct cfg_key cfg_key;
/* Parse s (key k) into field (the group's struct + k->off); 0 or -1, the
 * problems reported through w. */
typedef int cfg_hook(cfg_walk *w, const cfg_key *k, const config_setting_t *s, void *field);

struct cfg_key {
	const char *name;
	cfg_type type;
	size_t off;                 /* offsetof the field in the group's struct */
	const char *def;            /* the default as written in the file, or NULL */
	long long min, max;         /* CFG_INT, CFG_DURATION, CFG_SIZE (a size may also be 0) */
	const char *const *names;   /* CFG_ENUM: NULL-terminated */
	const cfg_key *sub;         /* CFG_GROUP: its table */
	cfg_hook *hook;             /* a key that is truly special: parsed there */
	unsigned flags;             /* CFG_REQUIRED, ... */
	const char *doc;            /* what mailmill.conf(5) says, in one line */
};

/* Rows, one line each; the table ends with CFG_END.  st is the group's struct,
 * f its field. */
#define CFG_K_(n, t, st, f, ...) { .name = n, .type = t, .off = offsetof(st, f), __VA_ARGS__ }
#define CFG_KSTR(n, st, f, fl, d) CFG_K_(n, CFG_STR, st, f, .flags = fl, .doc = d)
#define CFG_KPATH(n, st, f, def_, fl, d) \
	CFG_K_(n, CFG_PATH, st, f, .def = def_, .flags = fl, .doc = d)
#define CFG_KBOOL(n, st, f, def_, d) CFG_K_(n, CFG_BOOL, st, f, .def = def_, .doc = d)
#define CFG_KINT(n, st, f, def_, lo, hi, d) \
	CFG_K_(n, CFG_INT, st, f, .def = def_, .min = lo, .max = hi, .doc = d)
#define CFG_KDUR(n, st, f, def_, lo, hi, d) \
	CFG_K_(n, CFG_DURATION, st, f, .def = def_, .min = lo, .max = hi, .doc = d)
#define CFG_KSIZE(n, st, f, def_, lo, hi, d) \
	CFG_K_(n, CFG_SIZE, st, f, .def = def_, .min = lo, .max = hi, .doc = d)
#define CFG_KENUM(n, st, f, def_, nm, fl, d) \
	CFG_K_(n, CFG_ENUM, st, f, .def = def_, .names = nm, .flags = fl, .doc = d)
#define CFG_KLIST(n, st, f, d) CFG_K_(n, CFG_STRLIST, st, f, .doc = d)
/* A special key: t says what the manual shows, the hook h parses it. */
#define CFG_KHOOK(n, st, t, f, h, fl, d) CFG_K_(n, t, st, f, .hook = h, .flags = fl, .doc = d)
#define CFG_END { .name = NULL }

/* The tables (cfg_schema.c). */
extern const cfg_key cfg_keys_top[];
extern const cfg_key cfg_keys_log[];
extern const cfg_key cfg_keys_store[];
extern const cfg_key cfg_keys_smtp[];
extern const cfg_key cfg_keys_account[];

/* Every table, for the manual's check: where its keys are documented. */
typedef struct cfg_schema_group {
	const char *name;       /* "top", "log", "smtp", "account" */
	const cfg_key *keys;
	const char *section;    /* mailmill.conf(5) section holding the entries */
	const char *parent;     /* NULL, or the entry (in section) they are nested in */
} cfg_schema_group;
extern const cfg_schema_group cfg_schema_groups[];

const cfg_key *cfg_key_find(const cfg_key *keys, const char *name);
#endif
