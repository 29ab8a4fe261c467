// SPDX-License-Identifier: MIT
/*
 * eqctl: create, destroy, list, inspect, watch, feed and drain elasticq
 * queues from the shell.  See userspace/README.md.
 *
 * Errors are one line on stderr, "eqctl: QUEUE: what: reason", and the
 * exit status says what kind of failure it was (sysexits.h), so scripts
 * can tell "no such queue" (EX_NOINPUT) from "try again" (EX_TEMPFAIL).
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <grp.h>
#include <inttypes.h>
#include <pwd.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include "libelasticq.h"

#define PROC_PATH	"/proc/elasticq"
#define DEFAULT_LABEL	"(default)"	/* as /proc/elasticq names it */
#define POP_BUF_MIN	(256 * 1024)

static const char *const policy_names[] = {
	[ELASTICQ_FULL_BLOCK] = "block",
	[ELASTICQ_FULL_REJECT] = "reject",
	[ELASTICQ_FULL_DROP_OLDEST] = "drop-oldest",
};

static const char *const variant_names[] = {
	[ELASTICQ_VARIANT_LOCKED] = "locked",
	[ELASTICQ_VARIANT_LOCKFREE] = "lockfree",
};

#define NAME_OF(names, i) \
	((i) < sizeof(names) / sizeof((names)[0]) && (names)[i] ? (names)[i] : "?")

/* The queue as messages call it. */
static const char *label(const char *name)
{
	return name ? name : DEFAULT_LABEL;
}

static int exit_code(int err)
{
	switch (-err) {
	case ENOENT:
		return EX_NOINPUT;
	case ENODEV:
	case ENXIO:
		return EX_UNAVAILABLE;
	case EACCES:
	case EPERM:
		return EX_NOPERM;
	case EAGAIN:
	case ETIMEDOUT:
	case EBUSY:
	case ENOBUFS:
	case ENOMEM:
	case EINTR:
		return EX_TEMPFAIL;
	case EMSGSIZE:
		return EX_DATAERR;
	case EINVAL:
		return EX_USAGE;	/* a bad name or configuration */
	case EEXIST:
	case ENOSPC:
		return EX_CANTCREAT;
	default:
		return EX_SOFTWARE;
	}
}

/* "eqctl: QUEUE: what: reason"; returns the exit status for @err. */
static int fail(const char *name, const char *what, int err)
{
	fprintf(stderr, "eqctl: %s: %s: %s\n", label(name), what,
		elasticq_strerror(err));
	return exit_code(err);
}

/*
 * elasticq_open() says -ENOENT both for a missing queue and a missing
 * device: tell them apart, since only the first is the user's typo.
 */
static int fail_open(const char *name, int err)
{
	if (err == -ENOENT && access(ELASTICQ_DEVICE_PATH, F_OK)) {
		fprintf(stderr,
			"eqctl: %s: open: %s (is the elasticq module loaded?)\n",
			ELASTICQ_DEVICE_PATH, elasticq_strerror(err));
		return EX_UNAVAILABLE;
	}
	return fail(name, name ? "attach" : "open", err);
}

/* ---- usage ---- */

struct command {
	const char *name;
	int (*run)(int argc, char **argv);
	const char *args;
	const char *help;
};

static const struct command *cmd;	/* the one running, for usage() */

static int usage_error(const char *fmt, const char *arg)
{
	fprintf(stderr, "eqctl: %s: ", cmd->name);
	fprintf(stderr, fmt, arg);
	fprintf(stderr, "\nusage: eqctl %s %s\n", cmd->name, cmd->args);
	return EX_USAGE;
}

static int command_help(void)
{
	printf("usage: eqctl %s %s\n%s", cmd->name, cmd->args, cmd->help);
	return 0;
}

/* getopt_long's reply for an option it did not know or a missing value. */
static int bad_option(char **argv)
{
	return usage_error("bad option '%s'", argv[optind - 1]);
}

/* NAME: "-" or nothing is the default queue (NULL). */
static const char *queue_arg(int argc, char **argv)
{
	if (optind >= argc)
		return NULL;
	return strcmp(argv[optind], "-") ? argv[optind] : NULL;
}

/* The optional NAME and nothing after it. */
static int one_queue_arg(int argc, char **argv, const char **name)
{
	*name = queue_arg(argc, argv);
	if (optind + 1 < argc)
		return usage_error("unexpected argument '%s'", argv[optind + 1]);
	return 0;
}

/* ---- numbers ---- */

/* A decimal (or 0x) number with an optional K, M or G (1024-based). */
static bool parse_u64(const char *s, uint64_t *v, bool suffix)
{
	unsigned long long x;
	char *end;

	if (*s < '0' || *s > '9')
		return false;	/* strtoull would take "-1" */
	errno = 0;
	x = strtoull(s, &end, 0);
	if (errno)
		return false;
	if (suffix && *end && !end[1]) {
		const char *units = "KMG", *u = strchr(units, *end & ~0x20);
		unsigned int shift = u ? 10 * (u - units + 1) : 0;

		if (!u || x > UINT64_MAX >> shift)
			return false;
		x <<= shift;
		end++;
	}
	*v = x;
	return !*end;
}

static bool parse_u32(const char *s, uint32_t *v, bool suffix)
{
	uint64_t x;

	if (!parse_u64(s, &x, suffix) || x > UINT32_MAX)
		return false;
	*v = x;
	return true;
}

/* 1234 -> "1234B", 1536 -> "1.5K" */
static const char *human(uint64_t v, char *buf, size_t size)
{
	static const char units[] = "BKMGTPE";
	double d = v;
	int i = 0;

	while (d >= 1024 && i < 6) {
		d /= 1024;
		i++;
	}
	if (i)
		snprintf(buf, size, "%.1f%c", d, units[i]);
	else
		snprintf(buf, size, "%" PRIu64 "B", v);
	return buf;
}

static int lookup(const char *const *names, size_t n, const char *s)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (names[i] && !strcmp(names[i], s))
			return i;
	return -1;
}

/* ---- create, destroy ---- */

enum {
	OPT_MIN = 256, OPT_MAX, OPT_INITIAL, OPT_GROWTH, OPT_SHRINK,
	OPT_MAX_MSG, OPT_MAX_BYTES, OPT_POLICY, OPT_VARIANT, OPT_MODE,
	OPT_EXCL, OPT_PUSH_TIMEOUT, OPT_POP_TIMEOUT, OPT_NONBLOCK, OPT_TIMEOUT,
	OPT_RAW,
};

static const struct option create_opts[] = {
	{ "min", required_argument, NULL, OPT_MIN },
	{ "max", required_argument, NULL, OPT_MAX },
	{ "initial", required_argument, NULL, OPT_INITIAL },
	{ "growth", required_argument, NULL, OPT_GROWTH },
	{ "shrink", required_argument, NULL, OPT_SHRINK },
	{ "max-msg", required_argument, NULL, OPT_MAX_MSG },
	{ "max-bytes", required_argument, NULL, OPT_MAX_BYTES },
	{ "policy", required_argument, NULL, OPT_POLICY },
	{ "variant", required_argument, NULL, OPT_VARIANT },
	{ "mode", required_argument, NULL, OPT_MODE },
	{ "excl", no_argument, NULL, OPT_EXCL },
	{ "push-timeout", required_argument, NULL, OPT_PUSH_TIMEOUT },
	{ "pop-timeout", required_argument, NULL, OPT_POP_TIMEOUT },
	{ "help", no_argument, NULL, 'h' },
	{ NULL, 0, NULL, 0 }
};

/*
 * Bounds the user left out follow the ones given, so that "--max 100"
 * alone is a valid configuration rather than EINVAL for initial > max.
 */
static void fit_bounds(struct elasticq_config *c, bool min_set, bool max_set,
		       bool initial_set)
{
	if (!min_set && c->min_capacity > c->max_capacity)
		c->min_capacity = c->max_capacity;
	if (!max_set && c->max_capacity < c->min_capacity)
		c->max_capacity = c->min_capacity;
	if (!initial_set && c->initial_capacity < c->min_capacity)
		c->initial_capacity = c->min_capacity;
	if (!initial_set && c->initial_capacity > c->max_capacity)
		c->initial_capacity = c->max_capacity;
}

static int cmd_create(int argc, char **argv)
{
	bool min_set = false, max_set = false, initial_set = false;
	bool configured = false;
	unsigned int aflags = ELASTICQ_ATTACH_CREATE;
	struct elasticq_config cfg;
	uint32_t mode = 0660, *u32;
	uint64_t ms;
	const char *name;
	int opt, fd, i, ret;

	/* Options adjust what a queue made without them would get. */
	ret = elasticq_default_config(&cfg);
	while ((opt = getopt_long(argc, argv, "h", create_opts, NULL)) != -1) {
		u32 = NULL;
		switch (opt) {
		case OPT_MIN:
			u32 = &cfg.min_capacity;
			min_set = true;
			break;
		case OPT_MAX:
			u32 = &cfg.max_capacity;
			max_set = true;
			break;
		case OPT_INITIAL:
			u32 = &cfg.initial_capacity;
			initial_set = true;
			break;
		case OPT_GROWTH:
			u32 = &cfg.growth_pct;
			break;
		case OPT_SHRINK:
			u32 = &cfg.shrink_pct;
			break;
		case OPT_MAX_MSG:
			if (!parse_u32(optarg, &cfg.max_msg_size, true))
				return usage_error("bad size '%s'", optarg);
			break;
		case OPT_MAX_BYTES:
			if (!parse_u64(optarg, &ms, true))
				return usage_error("bad size '%s'", optarg);
			cfg.max_bytes = ms;
			break;
		case OPT_PUSH_TIMEOUT:
		case OPT_POP_TIMEOUT:
			if (!parse_u64(optarg, &ms, false) || ms > UINT64_MAX / 1000000)
				return usage_error("bad timeout '%s'", optarg);
			*(opt == OPT_PUSH_TIMEOUT ? &cfg.push_timeout_ns :
			  &cfg.pop_timeout_ns) = ms * 1000000;
			break;
		case OPT_POLICY:
			i = lookup(policy_names, 3, optarg);
			if (i < 0)
				return usage_error("bad policy '%s'", optarg);
			cfg.full_policy = i;
			break;
		case OPT_VARIANT:
			i = lookup(variant_names, 2, optarg);
			if (i < 0)
				return usage_error("bad variant '%s'", optarg);
			cfg.variant = i;
			break;
		case OPT_MODE:
			if (*optarg < '0' || *optarg > '7' ||
			    strspn(optarg, "01234567") != strlen(optarg) ||
			    (mode = strtoul(optarg, NULL, 8)) > 0777)
				return usage_error("bad mode '%s'", optarg);
			break;
		case OPT_EXCL:
			aflags |= ELASTICQ_ATTACH_EXCL;
			break;
		case 'h':
			return command_help();
		default:
			return bad_option(argv);
		}
		if (u32 && !parse_u32(optarg, u32, false))
			return usage_error("bad number '%s'", optarg);
		configured |= opt != OPT_MODE && opt != OPT_EXCL;
	}
	if (optind >= argc)
		return usage_error("%s", "missing NAME");
	if (one_queue_arg(argc, argv, &name))
		return EX_USAGE;
	if (!name)
		return usage_error("%s", "the default queue always exists");
	/* Without options the module's own defaults apply (config NULL). */
	if (configured && ret < 0)
		return fail_open(NULL, ret);
	fit_bounds(&cfg, min_set, max_set, initial_set);
	/* Read-only: creating must not make this process a producer. */
	fd = elasticq_open(name, O_RDONLY, aflags, mode,
			   configured ? &cfg : NULL);
	if (fd < 0)
		return fail_open(name, fd);
	close(fd);
	return 0;
}

static int cmd_destroy(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "help", no_argument, NULL, 'h' }, { NULL, 0, NULL, 0 }
	};
	const char *name;
	int opt, ret;

	while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1)
		return opt == 'h' ? command_help() : bad_option(argv);
	if (optind >= argc)
		return usage_error("%s", "missing NAME");
	if (one_queue_arg(argc, argv, &name))
		return EX_USAGE;
	if (!name)
		return usage_error("%s", "the default queue cannot be destroyed");
	ret = elasticq_destroy(name);
	if (ret == -ENOENT && access(ELASTICQ_DEVICE_PATH, F_OK))
		return fail_open(name, ret);
	return ret ? fail(name, "destroy", ret) : 0;
}

/* ---- list ---- */

#define LIST_COLS 12

static const char *const list_hdr[LIST_COLS] = {
	"NAME", "VARIANT", "POLICY", "LEN", "CAPACITY", "MIN", "MAX", "MEM",
	"ENQUEUED", "DEQUEUED", "PRODUCERS", "CONSUMERS",
};

struct list_row {
	char cell[LIST_COLS][ELASTICQ_NAME_SIZE];
};

/* The whole of /proc/elasticq, NUL-terminated; NULL with errno set. */
static char *read_proc(void)
{
	size_t len = 0, cap = 16384;
	char *buf = malloc(cap), *p;
	ssize_t n;
	int fd;

	fd = open(PROC_PATH, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || !buf)
		goto err;
	while ((n = read(fd, buf + len, cap - len - 1)) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			goto err;
		len += n;
		if (cap - len == 1) {
			p = realloc(buf, cap * 2);
			if (!p)
				goto err;
			buf = p;
			cap *= 2;
		}
	}
	close(fd);
	buf[len] = '\0';
	return buf;
err:
	n = errno;
	if (fd >= 0)
		close(fd);
	free(buf);
	errno = n;
	return NULL;
}

/* One line of /proc/elasticq (kmod/eq_registry.c) into a list row. */
static bool parse_proc_line(char *line, struct list_row *r)
{
	unsigned long long len, capacity, mem, enq, deq, prod, cons;
	char name[ELASTICQ_NAME_SIZE], variant[16], policy[16];
	struct elasticq_config cfg;
	int fd;

	if (sscanf(line, "%63s %*u %*u %*o %15s %15s %llu %llu %*u %llu %*u "
		   "%llu %llu %*u %*u %*u %*u %llu %llu", name, variant, policy,
		   &len, &capacity, &mem, &enq, &deq, &prod, &cons) != 10)
		return false;
	snprintf(r->cell[0], sizeof(r->cell[0]), "%s", name);
	snprintf(r->cell[1], sizeof(r->cell[1]), "%s", variant);
	snprintf(r->cell[2], sizeof(r->cell[2]), "%s", policy);
	snprintf(r->cell[3], sizeof(r->cell[3]), "%llu", len);
	snprintf(r->cell[4], sizeof(r->cell[4]), "%llu", capacity);
	/* The bounds are not in the table: ask the queue, if we may. */
	fd = elasticq_open(strcmp(name, DEFAULT_LABEL) ? name : NULL,
			   O_RDONLY, 0, 0, NULL);
	if (fd >= 0 && !elasticq_get_config(fd, &cfg)) {
		snprintf(r->cell[5], sizeof(r->cell[5]), "%u", cfg.min_capacity);
		snprintf(r->cell[6], sizeof(r->cell[6]), "%u", cfg.max_capacity);
	} else {
		strcpy(r->cell[5], "-");
		strcpy(r->cell[6], "-");
	}
	if (fd >= 0)
		close(fd);
	human(mem, r->cell[7], sizeof(r->cell[7]));
	snprintf(r->cell[8], sizeof(r->cell[8]), "%llu", enq);
	snprintf(r->cell[9], sizeof(r->cell[9]), "%llu", deq);
	snprintf(r->cell[10], sizeof(r->cell[10]), "%llu", prod);
	snprintf(r->cell[11], sizeof(r->cell[11]), "%llu", cons);
	return true;
}

static void print_row(const char *const *cells, const int *width)
{
	int i;

	for (i = 0; i < LIST_COLS; i++) {
		/* Text columns left, numbers right, as ls -l does. */
		if (i < 3)
			printf("%-*s", width[i], cells[i]);
		else
			printf("%*s", width[i], cells[i]);
		fputs(i + 1 < LIST_COLS ? "  " : "\n", stdout);
	}
}

static int cmd_list(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "help", no_argument, NULL, 'h' }, { NULL, 0, NULL, 0 }
	};
	struct list_row *rows = NULL, *p;
	int width[LIST_COLS], opt, n = 0, i, j;
	const char *cells[LIST_COLS];
	char *text, *line, *save;

	while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1)
		return opt == 'h' ? command_help() : bad_option(argv);
	if (optind < argc)
		return usage_error("unexpected argument '%s'", argv[optind]);
	text = read_proc();
	if (!text) {
		if (errno == ENOENT) {
			fprintf(stderr, "eqctl: %s: open: %s (is the elasticq module loaded?)\n",
				PROC_PATH, strerror(errno));
			return EX_UNAVAILABLE;
		}
		fprintf(stderr, "eqctl: %s: read: %s\n", PROC_PATH, strerror(errno));
		return exit_code(-errno);
	}
	/* The first line is the kernel's header; ours has other columns. */
	line = strtok_r(text, "\n", &save);
	while ((line = strtok_r(NULL, "\n", &save))) {
		p = realloc(rows, (n + 1) * sizeof(*rows));
		if (!p) {
			free(rows);
			free(text);
			return fail(NULL, "list", -ENOMEM);
		}
		rows = p;
		if (parse_proc_line(line, &rows[n]))
			n++;
	}
	for (j = 0; j < LIST_COLS; j++)
		width[j] = strlen(list_hdr[j]);
	for (i = 0; i < n; i++)
		for (j = 0; j < LIST_COLS; j++)
			if ((int)strlen(rows[i].cell[j]) > width[j])
				width[j] = strlen(rows[i].cell[j]);
	print_row(list_hdr, width);
	for (i = 0; i < n; i++) {
		for (j = 0; j < LIST_COLS; j++)
			cells[j] = rows[i].cell[j];
		print_row(cells, width);
	}
	free(rows);
	free(text);
	return 0;
}

/* ---- stats, watch ---- */

static int cmd_stats(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "help", no_argument, NULL, 'h' }, { NULL, 0, NULL, 0 }
	};
	struct elasticq_config c;
	struct elasticq_stats s;
	const char *name;
	char push_to[32], pop_to[32];
	int fd, opt, ret;

	while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1)
		return opt == 'h' ? command_help() : bad_option(argv);
	if (one_queue_arg(argc, argv, &name))
		return EX_USAGE;
	fd = elasticq_open(name, O_RDONLY, 0, 0, NULL);
	if (fd < 0)
		return fail_open(name, fd);
	ret = elasticq_get_stats(fd, &s);
	if (!ret)
		ret = elasticq_get_config(fd, &c);
	close(fd);
	if (ret)
		return fail(name, "stats", ret);

	snprintf(push_to, sizeof(push_to), "%" PRIu64, (uint64_t)c.push_timeout_ns);
	snprintf(pop_to, sizeof(pop_to), "%" PRIu64, (uint64_t)c.pop_timeout_ns);
#define F(label, fmt, v) printf("%-18s " fmt "\n", label ":", v)
	F("queue", "%s", label(name));
	F("variant", "%s", NAME_OF(variant_names, c.variant));
	F("full_policy", "%s", NAME_OF(policy_names, c.full_policy));
	F("len", "%llu", (unsigned long long)s.len);
	F("capacity", "%llu", (unsigned long long)s.capacity);
	F("bytes", "%llu", (unsigned long long)s.bytes);
	F("mem_bytes", "%llu", (unsigned long long)s.mem_bytes);
	F("high_water", "%llu", (unsigned long long)s.high_water);
	F("enqueued", "%llu", (unsigned long long)s.enqueued);
	F("dequeued", "%llu", (unsigned long long)s.dequeued);
	F("dropped", "%llu", (unsigned long long)s.dropped);
	F("rejected", "%llu", (unsigned long long)s.rejected);
	F("grows", "%llu", (unsigned long long)s.grows);
	F("shrinks", "%llu", (unsigned long long)s.shrinks);
	F("producers", "%u", s.producers);
	F("consumers", "%u", s.consumers);
	F("initial_capacity", "%u", c.initial_capacity);
	F("min_capacity", "%u", c.min_capacity);
	F("max_capacity", "%u", c.max_capacity);
	F("growth_pct", "%u", c.growth_pct);
	F("shrink_pct", "%u", c.shrink_pct);
	F("max_msg_size", "%u", c.max_msg_size);
	F("max_bytes", "%llu", (unsigned long long)c.max_bytes);
	F("push_timeout_ns", "%s", c.push_timeout_ns == ELASTICQ_TIMEOUT_NONE ?
	  "none" : push_to);
	F("pop_timeout_ns", "%s", c.pop_timeout_ns == ELASTICQ_TIMEOUT_NONE ?
	  "none" : pop_to);
#undef F
	return 0;
}

/* ---- owner ---- */

/* A user or group name, or a number; false if neither. */
static bool parse_id(const char *s, bool group, unsigned int *id)
{
	uint64_t v;

	if (parse_u64(s, &v, false) && v < UINT32_MAX) {
		*id = v;
		return true;
	}
	if (group) {
		struct group *g = getgrnam(s);

		if (g)
			*id = g->gr_gid;
		return g;
	} else {
		struct passwd *p = getpwnam(s);

		if (p)
			*id = p->pw_uid;
		return p;
	}
}

/* Bind to the queue with whatever access the caller has to it. */
static int open_any(const char *name)
{
	int fd = elasticq_open(name, O_RDONLY, 0, 0, NULL);

	if (fd == -EACCES)
		fd = elasticq_open(name, O_WRONLY, 0, 0, NULL);
	return fd;
}

static int cmd_owner(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "mode", required_argument, NULL, OPT_MODE },
		{ "help", no_argument, NULL, 'h' }, { NULL, 0, NULL, 0 }
	};
	unsigned int flags = 0, uid = 0, gid = 0, mode = 0;
	struct elasticq_owner o;
	const char *name = NULL;
	char *spec = NULL, *colon;
	int fd, opt, ret;

	while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (opt) {
		case OPT_MODE:
			if (*optarg < '0' || *optarg > '7' ||
			    strspn(optarg, "01234567") != strlen(optarg) ||
			    (mode = strtoul(optarg, NULL, 8)) > 0777)
				return usage_error("bad mode '%s'", optarg);
			flags |= ELASTICQ_OWNER_MODE;
			break;
		case 'h':
			return command_help();
		default:
			return bad_option(argv);
		}
	}
	name = queue_arg(argc, argv);
	if (optind + 1 < argc)
		spec = argv[optind + 1];
	if (optind + 2 < argc)
		return usage_error("unexpected argument '%s'", argv[optind + 2]);
	if (spec) {
		colon = strchr(spec, ':');
		if (colon)
			*colon++ = '\0';
		if (*spec) {
			if (!parse_id(spec, false, &uid))
				return usage_error("no such user '%s'", spec);
			flags |= ELASTICQ_OWNER_UID;
		}
		if (colon && *colon) {
			if (!parse_id(colon, true, &gid))
				return usage_error("no such group '%s'", colon);
			flags |= ELASTICQ_OWNER_GID;
		}
		if (!(flags & (ELASTICQ_OWNER_UID | ELASTICQ_OWNER_GID)))
			return usage_error("bad owner '%s'", argv[optind + 1]);
	}
	fd = open_any(name);
	if (fd < 0)
		return fail_open(name, fd);
	ret = flags ? elasticq_set_owner(fd, flags, uid, gid, mode) : 0;
	if (!ret)
		ret = elasticq_get_owner(fd, &o);
	close(fd);
	if (ret)
		return fail(name, flags ? "owner" : "get owner", ret);
	printf("%s %u %u %04o\n", label(name), o.uid, o.gid, o.mode);
	return 0;
}

static volatile sig_atomic_t interrupted;

static void on_sigint(int sig)
{
	(void)sig;
	interrupted = 1;
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int cmd_watch(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "interval", required_argument, NULL, 'i' },
		{ "count", required_argument, NULL, 'n' },
		{ "help", no_argument, NULL, 'h' }, { NULL, 0, NULL, 0 }
	};
	struct sigaction sa = { .sa_handler = on_sigint };
	struct elasticq_stats prev, cur;
	double interval = 1, t0, t1, next;
	uint64_t count = 0, done;
	bool tty = isatty(STDOUT_FILENO);
	const char *name;
	char mem[32], when[16], *end;
	int fd, opt, ret;
	struct timespec ts;
	time_t wall;

	while ((opt = getopt_long(argc, argv, "hi:n:", opts, NULL)) != -1) {
		switch (opt) {
		case 'i':
			interval = strtod(optarg, &end);
			if (*end || end == optarg || !(interval >= 0.01 && interval <= 86400))
				return usage_error("bad interval '%s'", optarg);
			break;
		case 'n':
			if (!parse_u64(optarg, &count, false) || !count)
				return usage_error("bad count '%s'", optarg);
			break;
		case 'h':
			return command_help();
		default:
			return bad_option(argv);
		}
	}
	if (one_queue_arg(argc, argv, &name))
		return EX_USAGE;
	fd = elasticq_open(name, O_RDONLY, 0, 0, NULL);
	if (fd < 0)
		return fail_open(name, fd);
	/* Ctrl-C ends the last line cleanly instead of killing mid-line. */
	sigaction(SIGINT, &sa, NULL);
	ret = elasticq_get_stats(fd, &prev);
	t0 = next = now_s();
	if (!ret)
		printf("%-8s %10s %10s %9s %12s %12s\n", "TIME", "LEN",
		       "CAPACITY", "MEM", "ENQ/S", "DEQ/S");
	for (done = 0; !ret && !interrupted && (!count || done < count); done++) {
		/* Absolute deadlines: the printing does not make it drift. */
		next += interval;
		ts.tv_sec = (time_t)next;
		ts.tv_nsec = (long)((next - ts.tv_sec) * 1e9);
		if (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL))
			break;	/* EINTR: SIGINT */
		ret = elasticq_get_stats(fd, &cur);
		if (ret)
			break;
		t1 = now_s();
		wall = time(NULL);
		strftime(when, sizeof(when), "%H:%M:%S", localtime(&wall));
		printf("%s%-8s %10llu %10llu %9s %12.0f %12.0f%s", tty ? "\r\033[K" : "",
		       when, (unsigned long long)cur.len,
		       (unsigned long long)cur.capacity,
		       human(cur.mem_bytes, mem, sizeof(mem)),
		       (cur.enqueued - prev.enqueued) / (t1 - t0),
		       (cur.dequeued - prev.dequeued) / (t1 - t0), tty ? "" : "\n");
		fflush(stdout);
		prev = cur;
		t0 = t1;
	}
	if (tty)
		putchar('\n');
	close(fd);
	return ret ? fail(name, "stats", ret) : 0;
}

/* ---- push, pop ---- */

/* Push @n messages in batches; 0 or an exit status (reported). */
static int push_all(int fd, const char *name, struct iovec *iov, size_t n,
		    unsigned int flags)
{
	int ret, err;

	while (n) {
		unsigned int batch = n < ELASTICQ_BATCH_MAX ? n : ELASTICQ_BATCH_MAX;

		ret = elasticq_push_batch(fd, iov, batch, flags, 0, &err);
		if (ret < 0)
			return fail(name, "push", ret);
		if (err)
			return fail(name, "push", err);
		iov += ret;
		n -= ret;
	}
	return 0;
}

/*
 * Push stdin's lines without their newlines.  Each read's complete lines
 * go out at once, so a slow writer's lines are not held back to fill a
 * batch, and a fast one's go out a batch per read.
 */
static int push_stdin(int fd, const char *name, unsigned int flags)
{
	static struct iovec iov[ELASTICQ_BATCH_MAX];
	size_t len = 0, cap = 65536, start, i;
	char *buf = malloc(cap), *p, *nl;
	unsigned int n;
	ssize_t r;
	int ret = 0;

	if (!buf)
		return fail(name, "push", -ENOMEM);
	for (;;) {
		if (len == cap) {
			/* A line longer than any message can be is an error. */
			if (cap > ELASTICQ_MSG_SIZE_LIMIT) {
				ret = fail(name, "push", -EMSGSIZE);
				break;
			}
			p = realloc(buf, cap * 2);
			if (!p) {
				ret = fail(name, "push", -ENOMEM);
				break;
			}
			buf = p;
			cap *= 2;
		}
		r = read(STDIN_FILENO, buf + len, cap - len);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			fprintf(stderr, "eqctl: stdin: read: %s\n", strerror(errno));
			ret = EX_IOERR;
			break;
		}
		if (r == 0) {
			/* A last line without a newline is still a message. */
			iov[0] = (struct iovec){ buf, len };
			if (len)
				ret = push_all(fd, name, iov, 1, flags);
			break;
		}
		len += r;
		start = 0;
		n = 0;
		while ((nl = memchr(buf + start, '\n', len - start))) {
			iov[n++] = (struct iovec){ buf + start, nl - (buf + start) };
			start = nl + 1 - buf;
			if (n == ELASTICQ_BATCH_MAX) {
				ret = push_all(fd, name, iov, n, flags);
				n = 0;
				if (ret)
					break;
			}
		}
		if (!ret && n)
			ret = push_all(fd, name, iov, n, flags);
		if (ret)
			break;
		for (i = start; i < len; i++)
			buf[i - start] = buf[i];
		len -= start;
	}
	free(buf);
	return ret;
}

static int cmd_push(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "nonblock", no_argument, NULL, OPT_NONBLOCK },
		{ "help", no_argument, NULL, 'h' }, { NULL, 0, NULL, 0 }
	};
	unsigned int flags = 0;
	struct iovec *iov;
	const char *name;
	int fd, opt, ret, i, n;

	while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		if (opt == OPT_NONBLOCK)
			flags |= ELASTICQ_BATCH_NONBLOCK;
		else
			return opt == 'h' ? command_help() : bad_option(argv);
	}
	name = queue_arg(argc, argv);
	fd = elasticq_open(name, O_WRONLY, 0, 0, NULL);
	if (fd < 0)
		return fail_open(name, fd);
	n = optind + 1 < argc ? argc - optind - 1 : 0;
	if (n) {
		iov = calloc(n, sizeof(*iov));
		if (!iov) {
			close(fd);
			return fail(name, "push", -ENOMEM);
		}
		for (i = 0; i < n; i++)
			iov[i] = (struct iovec){ argv[optind + 1 + i],
						 strlen(argv[optind + 1 + i]) };
		ret = push_all(fd, name, iov, n, flags);
		free(iov);
	} else {
		ret = push_stdin(fd, name, flags);
	}
	close(fd);
	return ret;
}

static int cmd_pop(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "count", required_argument, NULL, 'n' },
		{ "nonblock", no_argument, NULL, OPT_NONBLOCK },
		{ "timeout", required_argument, NULL, OPT_TIMEOUT },
		{ "raw", no_argument, NULL, OPT_RAW },
		{ "help", no_argument, NULL, 'h' }, { NULL, 0, NULL, 0 }
	};
	uint64_t count = 0, done = 0, timeout_ms = 0;
	unsigned int flags = 0, want;
	struct elasticq_frame_iter it;
	struct elasticq_config cfg;
	bool raw = false;
	const char *name;
	size_t size, bytes;
	const void *msg;
	uint32_t len;
	int fd, opt, n, status = 0;
	char *buf;

	while ((opt = getopt_long(argc, argv, "hn:", opts, NULL)) != -1) {
		switch (opt) {
		case 'n':
			if (!parse_u64(optarg, &count, false) || !count)
				return usage_error("bad count '%s'", optarg);
			break;
		case OPT_NONBLOCK:
			flags |= ELASTICQ_BATCH_NONBLOCK;
			break;
		case OPT_TIMEOUT:
			if (!parse_u64(optarg, &timeout_ms, false) ||
			    timeout_ms > UINT64_MAX / 1000000)
				return usage_error("bad timeout '%s'", optarg);
			flags |= ELASTICQ_BATCH_TIMEOUT;
			break;
		case OPT_RAW:
			raw = true;
			break;
		case 'h':
			return command_help();
		default:
			return bad_option(argv);
		}
	}
	if (flags == (ELASTICQ_BATCH_NONBLOCK | ELASTICQ_BATCH_TIMEOUT))
		return usage_error("%s", "--nonblock and --timeout exclude each other");
	if (one_queue_arg(argc, argv, &name))
		return EX_USAGE;
	fd = elasticq_open(name, O_RDONLY, 0, 0, NULL);
	if (fd < 0)
		return fail_open(name, fd);
	n = elasticq_get_config(fd, &cfg);
	size = n ? POP_BUF_MIN : ELASTICQ_FRAME_SIZE(cfg.max_msg_size);
	if (size < POP_BUF_MIN)
		size = POP_BUF_MIN;
	buf = malloc(size);
	if (!buf) {
		close(fd);
		return fail(name, "pop", -ENOMEM);
	}
	while (!count || done < count) {
		want = ELASTICQ_BATCH_MAX;
		if (count && count - done < want)
			want = count - done;
		n = elasticq_pop_batch(fd, buf, size, want, flags,
				       timeout_ms * 1000000, &bytes);
		if (n == -EMSGSIZE && size < ELASTICQ_FRAME_SIZE(ELASTICQ_MSG_SIZE_LIMIT)) {
			/* Queued before max_msg_size was lowered: make room. */
			char *p = realloc(buf, ELASTICQ_FRAME_SIZE(ELASTICQ_MSG_SIZE_LIMIT));

			if (p) {
				buf = p;
				size = ELASTICQ_FRAME_SIZE(ELASTICQ_MSG_SIZE_LIMIT);
				continue;
			}
		}
		if (n == -EAGAIN && (flags & ELASTICQ_BATCH_NONBLOCK)) {
			n = 0;	/* drained: that is where --nonblock stops */
			break;
		}
		if (n < 0)
			break;
		elasticq_frames_init(&it, buf, bytes);
		while ((msg = elasticq_frames_next(&it, &len))) {
			fwrite(msg, 1, len, stdout);
			if (!raw)
				putchar('\n');
		}
		/* The messages left the queue: hand them on without delay. */
		if (fflush(stdout)) {
			fprintf(stderr, "eqctl: stdout: write: %s\n", strerror(errno));
			status = EX_IOERR;
			break;
		}
		done += n;
	}
	free(buf);
	close(fd);
	return n < 0 ? fail(name, "pop", n) : status;
}

/* ---- main ---- */

static const struct command commands[] = {
	{ "create", cmd_create,
	  "NAME [--min N] [--max N] [--initial N] [--growth PCT] [--shrink PCT]\n"
	  "       [--max-msg BYTES] [--max-bytes BYTES] [--policy block|reject|drop-oldest]\n"
	  "       [--variant locked|lockfree] [--push-timeout MS] [--pop-timeout MS]\n"
	  "       [--mode OCTAL] [--excl]",
	  "Create a named queue (mode 0660 by default, less the umask); options\n"
	  "override the module's defaults; BYTES take a K, M or G suffix.  An\n"
	  "existing queue is left as it is unless --excl makes that an error.\n" },
	{ "destroy", cmd_destroy, "NAME",
	  "Remove a named queue; files still bound to it keep it until closed.\n" },
	{ "list", cmd_list, "",
	  "A table of every queue, from " PROC_PATH ".\n" },
	{ "owner", cmd_owner, "[NAME [USER][:GROUP]] [--mode OCTAL]",
	  "Show a queue's owner, group and mode as numbers, after changing those\n"
	  "given (as chown(1) and chmod(1) would: giving a queue away needs\n"
	  "CAP_CHOWN).  NAME - is the default queue.\n" },
	{ "stats", cmd_stats, "[NAME]",
	  "Statistics and configuration of one queue (default: the default queue).\n" },
	{ "watch", cmd_watch, "[NAME] [-i SECONDS] [-n COUNT]",
	  "A line every SECONDS (1) with the length, capacity, memory and the\n"
	  "enqueue and dequeue rates; COUNT lines, or until interrupted.\n" },
	{ "push", cmd_push, "[NAME] [--nonblock] [MSG...]",
	  "Enqueue each MSG, or else each line of stdin (without its newline).\n"
	  "NAME - is the default queue.  --nonblock fails instead of waiting when\n"
	  "the queue is full.\n" },
	{ "pop", cmd_pop, "[NAME] [-n COUNT] [--nonblock | --timeout MS] [--raw]",
	  "Dequeue messages to stdout, one per line (--raw: the bytes alone).\n"
	  "Stops after COUNT messages, or with --nonblock once the queue is empty;\n"
	  "--timeout fails (status 75) when no message came within MS.  Popping\n"
	  "takes the consumer role, which a lock-free queue gives one file only.\n" },
};

#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))

static void usage(FILE *f)
{
	size_t i;

	fprintf(f, "usage: eqctl COMMAND [ARGS]   (eqctl COMMAND --help for more)\n");
	for (i = 0; i < NCOMMANDS; i++)
		fprintf(f, "  eqctl %s%s%s\n", commands[i].name,
			*commands[i].args ? " " : "", commands[i].args);
	fprintf(f, "NAME - (or no NAME where it is optional) is the default queue.\n"
		"Exit status: 0, or as sysexits.h: 64 usage, 66 no such queue,\n"
		"69 no module, 73 cannot create, 75 try again (full, empty, timeout,\n"
		"busy), 77 permission, 65 message too large, 70 other.\n");
}

int main(int argc, char **argv)
{
	size_t i;

	if (argc < 2) {
		usage(stderr);
		return EX_USAGE;
	}
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") ||
	    !strcmp(argv[1], "help")) {
		usage(stdout);
		return 0;
	}
	for (i = 0; i < NCOMMANDS; i++) {
		if (strcmp(argv[1], commands[i].name))
			continue;
		cmd = &commands[i];
		opterr = 0;	/* bad_option() says it, with the usage */
		return cmd->run(argc - 1, argv + 1);
	}
	fprintf(stderr, "eqctl: unknown command '%s'\n", argv[1]);
	usage(stderr);
	return EX_USAGE;
}
