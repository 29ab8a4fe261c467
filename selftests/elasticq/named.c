// SPDX-License-Identifier: MIT
/*
 * Named queues (issue 4): ATTACH and DESTROY with every bad input, queues
 * that outlive their files and their consumers (SIGKILL included), the
 * producer and consumer roles, permissions as an unprivileged user, the
 * module limits max_queues, max_queue_bytes and max_total_bytes, the
 * /proc/elasticq table, and two named queues under load not interfering.
 *
 * Every failed call is followed by a check that nothing changed: the queue
 * it would have created does not exist (ATTACH without CREATE gives ENOENT,
 * /proc/elasticq does not list it) and the default queue's stats are as
 * they were.  Queue names start with "named.<pid>." and the fixture
 * destroys them in teardown (and any stale "named." queue in setup).
 */
#include <stddef.h>
#include <sys/fsuid.h>

#define EQ_CUSTOM_FIXTURE
#include "eq_test.h"

#define PROC_PATH	"/proc/elasticq"
#define NAME_PREFIX	"named."
#define NOBODY		65534
#define MAX_NAMES	64

FIXTURE(named) {
	EQ_FIXTURE_FIELDS;
	struct elasticq_stats def0;	/* default queue after setup */
	int nnames;
	char names[MAX_NAMES][ELASTICQ_NAME_SIZE];
	struct eq_saved_params params;
};

typedef FIXTURE_DATA(named) fixture_t;

/* ---- /proc/elasticq ---- */

static const char *const proc_cols[] = {
	"NAME", "OWNER", "GROUP", "MODE", "VARIANT", "POLICY", "LEN",
	"CAPACITY", "BYTES", "MEM", "HIGHWATER", "ENQUEUED", "DEQUEUED",
	"DROPPED", "REJECTED", "GROWS", "SHRINKS", "PRODUCERS", "CONSUMERS",
};

#define PROC_NCOLS	19
#define PROC_FIRST_NUM	6	/* LEN */
#define PROC_NNUM	(PROC_NCOLS - PROC_FIRST_NUM)

/* Indices into proc_row.num[] */
enum { COL_LEN, COL_MEM = 3, COL_PRODUCERS = 11, COL_CONSUMERS = 12 };

struct proc_row {
	char name[ELASTICQ_NAME_SIZE];
	unsigned long owner, group;
	char mode[16], variant[16], policy[16];
	unsigned long long num[PROC_NNUM];	/* LEN .. CONSUMERS */
};

static char proc_buf[1 << 20];

/* Read the whole table into proc_buf; its length or -errno. */
static long proc_read(void)
{
	return eq_read_text(PROC_PATH, proc_buf, sizeof(proc_buf));
}

/* Split @line at runs of spaces, in place; the number of tokens. */
static int split(char *line, char **tok, int max)
{
	char *save, *t;
	int n = 0;

	for (t = strtok_r(line, " ", &save); t; t = strtok_r(NULL, " ", &save))
		if (n++ < max)
			tok[n - 1] = t;
	return n;
}

static bool parse_num(const char *s, unsigned long long *v)
{
	char *end;

	errno = 0;
	*v = strtoull(s, &end, 10);
	return !errno && *s >= '0' && *s <= '9' && !*end;
}

static int proc_parse(char *line, struct proc_row *r)
{
	unsigned long long owner, group;
	char *tok[PROC_NCOLS + 1];
	int i;

	if (split(line, tok, PROC_NCOLS + 1) != PROC_NCOLS)
		return -EIO;
	memset(r, 0, sizeof(*r));
	snprintf(r->name, sizeof(r->name), "%s", tok[0]);
	snprintf(r->mode, sizeof(r->mode), "%s", tok[3]);
	snprintf(r->variant, sizeof(r->variant), "%s", tok[4]);
	snprintf(r->policy, sizeof(r->policy), "%s", tok[5]);
	if (!parse_num(tok[1], &owner) || !parse_num(tok[2], &group))
		return -EIO;
	r->owner = owner;
	r->group = group;
	for (i = 0; i < PROC_NNUM; i++)
		if (!parse_num(tok[PROC_FIRST_NUM + i], &r->num[i]))
			return -EIO;
	return 0;
}

/*
 * Call @fn for every queue row; stop when it returns non-zero.  0, -errno
 * if the table cannot be read, -EIO if a row does not parse.
 */
static int proc_for_each(int (*fn)(const struct proc_row *r, void *arg),
			 void *arg)
{
	char *line, *next, *save;
	struct proc_row r;
	long len = proc_read();

	if (len < 0)
		return len;
	line = strtok_r(proc_buf, "\n", &save);	/* the header */
	if (!line)
		return -EIO;
	while ((next = strtok_r(NULL, "\n", &save))) {
		if (proc_parse(next, &r))
			return -EIO;
		if (fn(&r, arg))
			break;
	}
	return 0;
}

struct proc_match {
	const char *name;	/* NULL: every row */
	int count;
	unsigned long long mem;
	struct proc_row first;
};

static int proc_match_fn(const struct proc_row *r, void *arg)
{
	struct proc_match *m = arg;

	if (m->name && strcmp(m->name, r->name))
		return 0;
	if (!m->count++)
		m->first = *r;
	m->mem += r->num[COL_MEM];
	return 0;
}

/* Rows named @name (every row if NULL), the first in @r; or -errno. */
static int proc_find(const char *name, struct proc_row *r)
{
	struct proc_match m = { .name = name };
	int ret = proc_for_each(proc_match_fn, &m);

	if (ret)
		return ret;
	if (r && m.count)
		*r = m.first;
	return m.count;
}

/* Sum of the MEM column: what max_total_bytes is charged with now. */
static long long proc_total_mem(void)
{
	struct proc_match m = { .name = NULL };
	int ret = proc_for_each(proc_match_fn, &m);

	return ret ? ret : (long long)m.mem;
}

static void stats_to_cols(const struct elasticq_stats *st,
			  unsigned long long *v)
{
	const unsigned long long cols[PROC_NNUM] = {
		st->len, st->capacity, st->bytes, st->mem_bytes,
		st->high_water, st->enqueued, st->dequeued, st->dropped,
		st->rejected, st->grows, st->shrinks, st->producers,
		st->consumers,
	};

	memcpy(v, cols, sizeof(cols));
}

/* The numeric columns of @name's row equal @st. */
static void expect_row_stats(struct __test_metadata *_metadata,
			     const char *name, const struct elasticq_stats *st)
{
	unsigned long long want[PROC_NNUM];
	struct proc_row r;
	int i;

	ASSERT_EQ(1, proc_find(name, &r)) {
		TH_LOG("%s: not listed once in " PROC_PATH, name);
	}
	stats_to_cols(st, want);
	for (i = 0; i < PROC_NNUM; i++) {
		EXPECT_EQ(want[i], r.num[i]) {
			TH_LOG("%s: column %s is %llu, GET_STATS says %llu",
			       name, proc_cols[PROC_FIRST_NUM + i], r.num[i],
			       want[i]);
		}
	}
}

/* ---- names, module parameters, the fixture ---- */

/* A new unique queue name "named.<pid>.<tag>", destroyed in teardown. */
static const char *qname(fixture_t *self, const char *tag)
{
	char *n;

	if (self->nnames >= MAX_NAMES)
		abort();
	n = self->names[self->nnames++];
	snprintf(n, ELASTICQ_NAME_SIZE, NAME_PREFIX "%d.%s", getpid(), tag);
	return n;
}

/* Set a module parameter; teardown puts the old value back. */
static int set_param(fixture_t *self, const char *name, unsigned long long val)
{
	return eq_set_param(&self->params, name, val);
}

static int destroy_stale_fn(const struct proc_row *r, void *arg)
{
	(void)arg;
	if (!strncmp(r->name, NAME_PREFIX, strlen(NAME_PREFIX)))
		eq_destroy(r->name);
	return 0;
}

FIXTURE_SETUP(named)
{
	EQ_FIXTURE_SETUP_BODY;
	/* Left behind by a test of this file that timed out. */
	ASSERT_EQ(0, proc_for_each(destroy_stale_fn, NULL));
	ASSERT_EQ(0, eq_get_stats(self->fd, &self->def0));
}

FIXTURE_TEARDOWN(named)
{
	int i, ret;

	for (i = 0; i < EQ_MAX_CHILDREN; i++)
		eq_kill_child(&self->child[i]);
	for (i = 0; i < self->nnames; i++) {
		ret = eq_destroy(self->names[i]);
		EXPECT_TRUE(!ret || ret == -ENOENT) {
			TH_LOG("teardown: destroy %s: %d", self->names[i], ret);
		}
	}
	EXPECT_EQ(0, eq_restore_params(&self->params));
	EQ_FIXTURE_TEARDOWN_BODY;
}

/* ---- state checks ---- */

/* The default queue's stats are what they were at setup. */
static void expect_default_unchanged(struct __test_metadata *_metadata,
				     fixture_t *self)
{
	struct elasticq_stats st;

	ASSERT_EQ(0, eq_get_stats(self->fd, &st));
	EXPECT_EQ(0, memcmp(&st, &self->def0, sizeof(st))) {
		TH_LOG("default queue changed: len %llu enqueued %llu producers %u consumers %u",
		       (unsigned long long)st.len,
		       (unsigned long long)st.enqueued, st.producers,
		       st.consumers);
	}
}

/* @name does not exist: ATTACH without CREATE fails, it is not listed. */
static void expect_absent(struct __test_metadata *_metadata, const char *name)
{
	int fd = open(EQ_DEV, O_RDWR | O_CLOEXEC);

	ASSERT_LE(0, fd);
	EXPECT_EQ(-ENOENT, eq_attach(fd, name, 0, 0, NULL)) {
		TH_LOG("%s exists", name);
	}
	close(fd);
	EXPECT_EQ(0, proc_find(name, NULL)) {
		TH_LOG("%s is listed in " PROC_PATH, name);
	}
}

/* @name exists: a new file attaches to it, it is listed once. */
static void expect_present(struct __test_metadata *_metadata, const char *name)
{
	int fd = eq_open_named(name, O_RDWR, 0, 0, NULL);

	EXPECT_LE(0, fd) {
		TH_LOG("%s: attach: %d", name, fd);
	}
	if (fd >= 0)
		close(fd);
	EXPECT_EQ(1, proc_find(name, NULL)) {
		TH_LOG("%s is not listed once in " PROC_PATH, name);
	}
}

/* Nothing was created: same rows, same default queue. */
static void expect_nothing_changed(struct __test_metadata *_metadata,
				   fixture_t *self, int rows0)
{
	EXPECT_EQ(rows0, proc_find(NULL, NULL));
	expect_default_unchanged(_metadata, self);
}

static void expect_stats(struct __test_metadata *_metadata, int fd,
			 uint64_t len, uint64_t enqueued, uint64_t dequeued)
{
	struct elasticq_stats st;

	ASSERT_EQ(0, eq_get_stats(fd, &st));
	EXPECT_EQ(len, st.len);
	EXPECT_EQ(enqueued, st.enqueued);
	EXPECT_EQ(dequeued, st.dequeued);
}

static void expect_roles(struct __test_metadata *_metadata, int fd,
			 uint32_t producers, uint32_t consumers)
{
	struct elasticq_stats st;

	ASSERT_EQ(0, eq_get_stats(fd, &st));
	EXPECT_EQ(producers, st.producers);
	EXPECT_EQ(consumers, st.consumers);
}

/* ---- messages: {u32 tag, u32 seq, eq_fill(tag, seq) body} ---- */

#define MSG_HDR		8
#define SMALL_BODY	8
#define SMALL_MSG	(MSG_HDR + SMALL_BODY)

static uint8_t msgbuf[ELASTICQ_MSG_SIZE_LIMIT];

static size_t msg_make(uint8_t *buf, uint32_t tag, uint32_t seq, size_t body)
{
	memcpy(buf, &tag, 4);
	memcpy(buf + 4, &seq, 4);
	eq_fill(buf + MSG_HDR, body, tag, seq);
	return MSG_HDR + body;
}

/* A well-formed message: its tag and seq; false otherwise. */
static bool msg_parse(const uint8_t *buf, size_t len, uint32_t *tag,
		      uint32_t *seq)
{
	if (len < MSG_HDR)
		return false;
	memcpy(tag, buf, 4);
	memcpy(seq, buf + 4, 4);
	return eq_check_fill(buf + MSG_HDR, len - MSG_HDR, *tag, *seq);
}

/* Push messages (@tag, @first .. @first + @n - 1); 0 or -errno. */
static long push_msgs(int fd, uint32_t tag, uint32_t first, uint32_t n,
		      size_t body)
{
	uint32_t seq;
	ssize_t r;

	for (seq = first; seq < first + n; seq++) {
		size_t len = msg_make(msgbuf, tag, seq, body);

		r = eq_push(fd, msgbuf, len);
		if (r != (ssize_t)len)
			return r < 0 ? r : -EIO;
	}
	return 0;
}

/* Pop @n messages and check they are (@tag, @first ...) in order. */
static void expect_msgs(struct __test_metadata *_metadata, int fd,
			uint32_t tag, uint32_t first, uint32_t n)
{
	uint32_t seq, t, s;
	ssize_t r;

	for (seq = first; seq < first + n; seq++) {
		r = eq_pop(fd, msgbuf, sizeof(msgbuf));
		ASSERT_LT(0, r) {
			TH_LOG("pop of tag %u seq %u: %zd", tag, seq, r);
		}
		ASSERT_TRUE(msg_parse(msgbuf, r, &t, &s));
		ASSERT_EQ(tag, t);
		ASSERT_EQ(seq, s);
	}
}

/* A non-blocking file bound to @name; the caller checks >= 0. */
static int open_nb(const char *name)
{
	return eq_open_named(name, O_RDWR | O_NONBLOCK, 0, 0, NULL);
}

/* Create @name (CREATE|EXCL) and bind a new file opened with @oflags. */
static int create_q(const char *name, int oflags, unsigned int mode,
		    const struct elasticq_config *cfg)
{
	return eq_open_named(name, oflags,
			     ELASTICQ_ATTACH_CREATE | ELASTICQ_ATTACH_EXCL,
			     mode, cfg);
}

static int attach_raw(int fd, unsigned long cmd, const void *arg)
{
	return ioctl(fd, cmd, arg) ? -errno : 0;
}

static void attach_init(struct elasticq_attach *a, const char *name,
			unsigned int flags, unsigned int mode)
{
	memset(a, 0, sizeof(*a));
	a->size = sizeof(*a);
	a->flags = flags;
	a->mode = mode;
	snprintf(a->name, sizeof(a->name), "%s", name);
}

/* A read-write page followed by a PROT_NONE one. */
static uint8_t *guarded_page(size_t *page)
{
	uint8_t *p;

	*page = sysconf(_SC_PAGESIZE);
	p = mmap(NULL, 2 * *page, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return NULL;
	if (mprotect(p + *page, *page, PROT_NONE))
		return NULL;
	return p;
}

/* ---- 1. ATTACH ---- */

TEST_F(named, attach_create_and_existing)
{
	const char *name = qname(self, "a"), *missing = qname(self, "miss");
	struct elasticq_config cfg0, cfg, other;
	struct proc_row r;
	int fd1, fd2, fd3, fd4;

	expect_absent(_metadata, name);
	fd1 = create_q(name, O_RDWR | O_NONBLOCK, 0600, NULL);
	ASSERT_LE(0, fd1);
	expect_present(_metadata, name);
	ASSERT_EQ(0, eq_get_config(fd1, &cfg0));

	/* Without CREATE: the same queue. */
	fd2 = open_nb(name);
	ASSERT_LE(0, fd2);
	ASSERT_EQ(0, push_msgs(fd1, 1, 0, 3, SMALL_BODY));
	expect_msgs(_metadata, fd2, 1, 0, 1);

	/* CREATE without EXCL: attaches, mode and config ignored. */
	eq_default_config(&other);
	other.initial_capacity = other.min_capacity = 16;
	other.full_policy = ELASTICQ_FULL_REJECT;
	fd3 = eq_open_named(name, O_RDWR | O_NONBLOCK, ELASTICQ_ATTACH_CREATE,
			    0644, &other);
	ASSERT_LE(0, fd3);
	expect_msgs(_metadata, fd3, 1, 1, 1);
	ASSERT_EQ(0, eq_get_config(fd3, &cfg));
	EXPECT_EQ(0, memcmp(&cfg, &cfg0, sizeof(cfg)));
	ASSERT_EQ(1, proc_find(name, &r));
	EXPECT_STREQ("0600", r.mode);
	EXPECT_STREQ("block", r.policy);

	/* CREATE|EXCL: EEXIST, and the file stays unbound. */
	fd4 = open(EQ_DEV, O_RDWR | O_NONBLOCK | O_CLOEXEC);
	ASSERT_LE(0, fd4);
	EXPECT_EQ(-EEXIST, eq_attach(fd4, name, ELASTICQ_ATTACH_CREATE |
				     ELASTICQ_ATTACH_EXCL, 0600, NULL));
	EXPECT_EQ(0, eq_attach(fd4, name, 0, 0, NULL));
	expect_msgs(_metadata, fd4, 1, 2, 1);
	EXPECT_EQ(-EAGAIN, eq_pop(fd1, msgbuf, sizeof(msgbuf)));
	expect_stats(_metadata, fd1, 0, 3, 3);

	/* Missing without CREATE: ENOENT, nothing created. */
	EXPECT_EQ(-ENOENT, eq_open_named(missing, O_RDWR, 0, 0, NULL));
	expect_absent(_metadata, missing);
	expect_default_unchanged(_metadata, self);
	close(fd1);
	close(fd2);
	close(fd3);
	close(fd4);
}

TEST_F(named, attach_create_with_config)
{
	const char *dflt = qname(self, "dflt"), *custom = qname(self, "cust");
	const char *big = qname(self, "big");
	struct elasticq_config load, cfg, got;
	struct elasticq_stats st;
	struct {
		struct elasticq_config c;
		uint64_t tail[4];
	} big_cfg;
	struct proc_row r;
	int fd;

	/* config 0: the module's defaults. */
	eq_load_config(&load);
	fd = create_q(dflt, O_RDWR, 0600, NULL);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, eq_get_config(fd, &got));
	EXPECT_EQ(0, memcmp(&got, &load, sizeof(got)));
	close(fd);

	eq_default_config(&cfg);
	cfg.initial_capacity = 16;
	cfg.min_capacity = 8;
	cfg.max_capacity = 128;
	cfg.max_msg_size = 100;
	cfg.max_bytes = 4096;
	cfg.pop_timeout_ns = 7 * EQ_MS;
	cfg.full_policy = ELASTICQ_FULL_DROP_OLDEST;
	fd = create_q(custom, O_RDWR, 0640, &cfg);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, eq_get_config(fd, &got));
	EXPECT_EQ(0, memcmp(&got, &cfg, sizeof(got)));
	ASSERT_EQ(0, eq_get_stats(fd, &st));
	EXPECT_EQ(16, st.capacity);
	EXPECT_EQ(-EMSGSIZE, eq_push(fd, msgbuf, 101));
	ASSERT_EQ(1, proc_find(custom, &r));
	EXPECT_STREQ("drop-oldest", r.policy);
	EXPECT_STREQ("0640", r.mode);
	close(fd);

	/* A larger config struct whose tail is zero is fine. */
	memset(&big_cfg, 0, sizeof(big_cfg));
	big_cfg.c = cfg;
	big_cfg.c.size = sizeof(big_cfg);
	fd = create_q(big, O_RDWR, 0600, &big_cfg.c);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, eq_get_config(fd, &got));
	EXPECT_EQ(0, memcmp(&got, &cfg, sizeof(got)));
	close(fd);
	expect_default_unchanged(_metadata, self);
}

/* A change to up to two fields of a valid struct elasticq_attach. */
struct attach_mut {
	const char *what;
	size_t off[2], size[2];
	uint64_t val[2];
};

#define CFG_PTR		(~0ULL)	/* replaced by a valid config pointer */
#define AOFF(f)		offsetof(struct elasticq_attach, f)
#define ASZ(f)		sizeof(((struct elasticq_attach *)0)->f)
#define AMUT1(w, f, v)	{ w, { AOFF(f) }, { ASZ(f) }, { v } }
#define AMUT2(w, f, v, g, x) \
	{ w, { AOFF(f), AOFF(g) }, { ASZ(f), ASZ(g) }, { v, x } }

static const struct attach_mut attach_invalid[] = {
	AMUT1("size 0", size, 0),
	AMUT1("size VER0 - 1", size, ELASTICQ_ATTACH_SIZE_VER0 - 1),
	AMUT1("size VER0 + 8", size, ELASTICQ_ATTACH_SIZE_VER0 + 8),
	AMUT1("size ~0", size, 0xffffffff),
	AMUT1("flags 0x4", flags, 0x4),
	AMUT1("flags CREATE|EXCL|0x8", flags, 0xb),
	AMUT1("flags top bit", flags, 0x80000001),
	AMUT1("EXCL without CREATE", flags, ELASTICQ_ATTACH_EXCL),
	AMUT1("mode 01000", mode, 01000),
	AMUT1("mode 04755", mode, 04755),
	AMUT1("mode ~0", mode, 0xffffffff),
	AMUT2("mode without CREATE", flags, 0, mode, 0600),
	AMUT2("mode 1 without CREATE", flags, 0, mode, 1),
	AMUT2("config without CREATE", flags, 0, config, CFG_PTR),
	AMUT2("mode and config with EXCL only", flags, ELASTICQ_ATTACH_EXCL,
	      config, CFG_PTR),
	AMUT1("reserved0", reserved0, 1),
	AMUT1("reserved0 top bit", reserved0, 0x80000000),
	AMUT1("reserved[0]", reserved[0], 1),
	AMUT1("reserved[1]", reserved[1], 1ULL << 63),
	AMUT1("reserved[2]", reserved[2], 0x100),
};

static void attach_mutate(struct elasticq_attach *a,
			  const struct attach_mut *m,
			  const struct elasticq_config *cfg)
{
	int i;

	for (i = 0; i < 2; i++) {
		uint8_t *p = (uint8_t *)a + m->off[i];
		uint64_t v = m->val[i] == CFG_PTR ? (uintptr_t)cfg : m->val[i];
		uint32_t v32 = v;

		if (m->size[i] == 4)
			memcpy(p, &v32, 4);
		else if (m->size[i] == 8)
			memcpy(p, &v, 8);
	}
}

/*
 * Every bad struct elasticq_attach, tried on a missing name (CREATE|EXCL
 * would create it) and on an existing one (CREATE|EXCL would say EEXIST,
 * no CREATE would attach): always EINVAL, nothing created, the file still
 * unbound.
 */
TEST_F(named, attach_bad_struct)
{
	const char *missing = qname(self, "miss"), *exist = qname(self, "ex");
	struct elasticq_config cfg;
	struct elasticq_attach a;
	unsigned int i, j;
	int fd, qfd, rows;

	eq_default_config(&cfg);
	qfd = create_q(exist, O_RDWR, 0600, NULL);
	ASSERT_LE(0, qfd);
	rows = proc_find(NULL, NULL);
	ASSERT_LT(1, rows);
	for (i = 0; i < ARRAY_SIZE(attach_invalid); i++) {
		for (j = 0; j < 2; j++) {
			const char *name = j ? exist : missing;

			fd = open(EQ_DEV, O_RDWR | O_CLOEXEC);
			ASSERT_LE(0, fd);
			attach_init(&a, name, ELASTICQ_ATTACH_CREATE |
				    ELASTICQ_ATTACH_EXCL, 0600);
			attach_mutate(&a, &attach_invalid[i], &cfg);
			EXPECT_EQ(-EINVAL,
				  attach_raw(fd, ELASTICQ_IOC_ATTACH, &a)) {
				TH_LOG("%s, %s queue: not EINVAL",
				       attach_invalid[i].what,
				       j ? "existing" : "missing");
			}
			/* Not bound: it can still be attached. */
			EXPECT_EQ(0, eq_attach(fd, exist, 0, 0, NULL));
			close(fd);
			expect_absent(_metadata, missing);
			expect_nothing_changed(_metadata, self, rows);
		}
	}
	expect_roles(_metadata, qfd, 0, 0);
	expect_stats(_metadata, qfd, 0, 0, 0);

	/* The struct itself unreadable. */
	fd = open(EQ_DEV, O_RDWR | O_CLOEXEC);
	ASSERT_LE(0, fd);
	EXPECT_EQ(-EFAULT, attach_raw(fd, ELASTICQ_IOC_ATTACH, (void *)8));
	EXPECT_EQ(-EFAULT, attach_raw(fd, ELASTICQ_IOC_ATTACH, NULL));
	EXPECT_EQ(0, eq_attach(fd, exist, 0, 0, NULL));
	close(fd);
	expect_nothing_changed(_metadata, self, rows);
	close(qfd);
}

/* The size in the ioctl number below VER0, with a matching size field. */
TEST_F(named, attach_cmd_size_below_ver0)
{
	static const unsigned int sizes[] = {
		8, 16, 80, ELASTICQ_ATTACH_SIZE_VER0 - 8,
		ELASTICQ_ATTACH_SIZE_VER0 - 1,
	};
	const char *name = qname(self, "small");
	struct elasticq_attach a;
	unsigned int i;
	int fd, rows;

	rows = proc_find(NULL, NULL);
	ASSERT_LT(0, rows);
	for (i = 0; i < ARRAY_SIZE(sizes); i++) {
		fd = open(EQ_DEV, O_RDWR | O_CLOEXEC);
		ASSERT_LE(0, fd);
		attach_init(&a, name, ELASTICQ_ATTACH_CREATE, 0600);
		a.size = sizes[i];
		EXPECT_EQ(-EINVAL, attach_raw(fd, _IOC(_IOC_WRITE,
				ELASTICQ_IOC_MAGIC, 0x04, sizes[i]), &a)) {
			TH_LOG("ATTACH with size %u", sizes[i]);
		}
		close(fd);
		expect_absent(_metadata, name);
		expect_nothing_changed(_metadata, self, rows);
	}
}

/* A struct larger than VER0: zero tail accepted, non-zero tail E2BIG. */
TEST_F(named, attach_larger_struct)
{
	const char *name = qname(self, "large");
	struct {
		struct elasticq_attach a;
		uint64_t tail[2];
	} big;
	unsigned long cmd = _IOC(_IOC_WRITE, ELASTICQ_IOC_MAGIC, 0x04,
				 sizeof(big));
	int fd, rows;

	rows = proc_find(NULL, NULL);
	fd = open(EQ_DEV, O_RDWR | O_NONBLOCK | O_CLOEXEC);
	ASSERT_LE(0, fd);
	memset(&big, 0, sizeof(big));
	attach_init(&big.a, name, ELASTICQ_ATTACH_CREATE, 0600);
	big.a.size = sizeof(big);
	big.tail[1] = 1;
	EXPECT_EQ(-E2BIG, attach_raw(fd, cmd, &big));
	expect_absent(_metadata, name);
	expect_nothing_changed(_metadata, self, rows);

	big.tail[1] = 0;
	EXPECT_EQ(0, attach_raw(fd, cmd, &big));
	expect_present(_metadata, name);
	ASSERT_EQ(0, push_msgs(fd, 2, 0, 1, SMALL_BODY));
	expect_msgs(_metadata, fd, 2, 0, 1);
	expect_default_unchanged(_metadata, self);
	close(fd);
}

/*
 * Invalid names, as name[64]: @len bytes from @bytes (64 'a' if NULL), the
 * rest zero except byte @at (if not 0) set to @c.
 */
struct bad_name {
	const char *what;
	const char *bytes;
	size_t len;
	int at;
	char c;
};

#define BAD_NAME(w, s)	{ w, s, sizeof(s) - 1, 0, 0 }

static const struct bad_name bad_names[] = {
	BAD_NAME("empty", ""),
	{ "64 bytes, no NUL", NULL, ELASTICQ_NAME_SIZE, 0, 0 },
	BAD_NAME("slash", NAME_PREFIX "a/b"),
	BAD_NAME("only a slash", "/"),
	BAD_NAME("space", NAME_PREFIX "a b"),
	BAD_NAME("leading space", " " NAME_PREFIX "x"),
	BAD_NAME("tab", NAME_PREFIX "a\tb"),
	BAD_NAME("newline", NAME_PREFIX "a\nb"),
	BAD_NAME("colon", NAME_PREFIX "a:b"),
	BAD_NAME("star", NAME_PREFIX "a*"),
	BAD_NAME("backslash", NAME_PREFIX "a\\b"),
	BAD_NAME("paren", "(default)"),
	BAD_NAME("non-ASCII UTF-8", NAME_PREFIX "caf\xc3\xa9"),
	BAD_NAME("byte 0x80", "\x80"),
	BAD_NAME("byte 0xff", NAME_PREFIX "\xff"),
	BAD_NAME("Latin-1 e acute", NAME_PREFIX "caf\xe9"),
	BAD_NAME("Latin-1 A grave", "\xc0"),
	BAD_NAME("DEL", NAME_PREFIX "\x7f"),
	BAD_NAME("garbage after NUL", NAME_PREFIX "g\0x"),
	{ "garbage in the last byte", NAME_PREFIX "h", 7,
	  ELASTICQ_NAME_SIZE - 1, 'z' },
};

static void bad_name_fill(char *name, const struct bad_name *b)
{
	memset(name, 0, ELASTICQ_NAME_SIZE);
	if (b->bytes)
		memcpy(name, b->bytes, b->len);
	else
		memset(name, 'a', ELASTICQ_NAME_SIZE);
	if (b->at)
		name[b->at] = b->c;
}

/* DESTROY the queue whose name[] is exactly @name. */
static void destroy_name_bytes(const char *name)
{
	struct elasticq_destroy d;
	int fd = open(EQ_DEV, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return;
	memset(&d, 0, sizeof(d));
	d.size = sizeof(d);
	memcpy(d.name, name, sizeof(d.name));
	ioctl(fd, ELASTICQ_IOC_DESTROY, &d);
	close(fd);
}

TEST_F(named, attach_bad_names)
{
	static const unsigned int flag_sets[] = {
		ELASTICQ_ATTACH_CREATE | ELASTICQ_ATTACH_EXCL,
		ELASTICQ_ATTACH_CREATE, 0,
	};
	struct elasticq_attach a;
	int fd, rows, ret;
	unsigned int i, j;

	rows = proc_find(NULL, NULL);
	ASSERT_LT(0, rows);
	for (i = 0; i < ARRAY_SIZE(bad_names); i++) {
		for (j = 0; j < 3; j++) {
			fd = open(EQ_DEV, O_RDWR | O_CLOEXEC);
			ASSERT_LE(0, fd);
			attach_init(&a, "", flag_sets[j],
				    flag_sets[j] ? 0600 : 0);
			bad_name_fill(a.name, &bad_names[i]);
			ret = attach_raw(fd, ELASTICQ_IOC_ATTACH, &a);
			EXPECT_EQ(-EINVAL, ret) {
				TH_LOG("name %s, flags %u", bad_names[i].what,
				       flag_sets[j]);
			}
			close(fd);
			if (!ret)	/* do not let it spoil the next checks */
				destroy_name_bytes(a.name);
			expect_nothing_changed(_metadata, self, rows);
		}
	}
	/* What a kernel that stopped at the NUL would have created. */
	expect_absent(_metadata, NAME_PREFIX "g");
	expect_absent(_metadata, NAME_PREFIX "h");
}

/* The boundaries that are valid: 63 bytes, every allowed character. */
TEST_F(named, attach_valid_names)
{
	char *longest = (char *)qname(self, "");
	const char *all = qname(self, "AZaz09._-");
	size_t n = strlen(longest);
	int fd;

	memset(longest + n, 'x', ELASTICQ_NAME_MAX - n);
	longest[ELASTICQ_NAME_MAX] = '\0';
	fd = create_q(longest, O_RDWR, 0600, NULL);
	ASSERT_LE(0, fd);
	close(fd);
	expect_present(_metadata, longest);
	fd = create_q(all, O_RDWR, 0600, NULL);
	ASSERT_LE(0, fd);
	close(fd);
	expect_present(_metadata, all);
}

/* A change to a valid config passed to ATTACH|CREATE. */
struct cfg_mut {
	const char *what;
	size_t off[2], size[2];
	uint64_t val[2];
};

#define COFF(f)		offsetof(struct elasticq_config, f)
#define CSZ(f)		sizeof(((struct elasticq_config *)0)->f)
#define CMUT1(w, f, v)	{ w, { COFF(f) }, { CSZ(f) }, { v } }
#define CMUT2(w, f, v, g, x) \
	{ w, { COFF(f), COFF(g) }, { CSZ(f), CSZ(g) }, { v, x } }

static const struct cfg_mut cfg_invalid[] = {
	CMUT1("size 0", size, 0),
	CMUT1("size 8", size, 8),
	CMUT1("size 64", size, 64),
	CMUT1("size VER0 - 1", size, ELASTICQ_CONFIG_SIZE_VER0 - 1),
	CMUT1("flags", flags, 1),
	CMUT1("min 0", min_capacity, 0),
	CMUT2("max below min", max_capacity, 1000, initial_capacity, 1000),
	CMUT1("max above limit", max_capacity, ELASTICQ_CAPACITY_LIMIT + 1),
	CMUT1("initial above max", initial_capacity, EQ_DEF_MAX + 1),
	CMUT1("growth 100", growth_pct, 100),
	CMUT1("shrink 0", shrink_pct, 0),
	CMUT1("shrink 100", shrink_pct, 100),
	CMUT2("shrink 50 growth 200", shrink_pct, 50, growth_pct, 200),
	CMUT1("max_msg_size 0", max_msg_size, 0),
	CMUT1("max_msg_size above limit", max_msg_size,
	      ELASTICQ_MSG_SIZE_LIMIT + 1),
	CMUT1("max_bytes 0", max_bytes, 0),
	CMUT1("variant 2", variant, ELASTICQ_VARIANT_LOCKFREE + 1),
	CMUT1("full_policy 3", full_policy, 3),
	CMUT1("reserved[0]", reserved[0], 1),
	CMUT1("reserved[3]", reserved[3], 1ULL << 63),
};

static void cfg_mutate(struct elasticq_config *cfg, const struct cfg_mut *m)
{
	int i;

	for (i = 0; i < 2; i++) {
		uint8_t *p = (uint8_t *)cfg + m->off[i];
		uint32_t v32 = m->val[i];

		if (m->size[i] == 4)
			memcpy(p, &v32, 4);
		else if (m->size[i] == 8)
			memcpy(p, &m->val[i], 8);
	}
}

/* ATTACH|CREATE @name with @cfg; the error, and nothing created. */
static void expect_create_fails(struct __test_metadata *_metadata,
				fixture_t *self, const char *name,
				const void *cfg, int err, const char *what)
{
	int rows = proc_find(NULL, NULL);
	int fd = open(EQ_DEV, O_RDWR | O_CLOEXEC);
	struct elasticq_attach a;

	ASSERT_LE(0, fd);
	attach_init(&a, name, ELASTICQ_ATTACH_CREATE, 0600);
	a.config = (uintptr_t)cfg;
	EXPECT_EQ(err, attach_raw(fd, ELASTICQ_IOC_ATTACH, &a)) {
		TH_LOG("config %s: expected %d", what, err);
	}
	close(fd);
	expect_absent(_metadata, name);
	expect_nothing_changed(_metadata, self, rows);
}

TEST_F(named, attach_config_invalid)
{
	const char *name = qname(self, "cfg");
	struct elasticq_config cfg;
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(cfg_invalid); i++) {
		eq_default_config(&cfg);
		cfg_mutate(&cfg, &cfg_invalid[i]);
		expect_create_fails(_metadata, self, name, &cfg, -EINVAL,
				    cfg_invalid[i].what);
	}
}

TEST_F(named, attach_config_fault_and_e2big)
{
	const char *name = qname(self, "cfgf");
	struct {
		struct elasticq_config c;
		uint64_t tail[2];
	} big;
	struct elasticq_config *cfg;
	size_t page;
	uint8_t *p;

	p = guarded_page(&page);
	ASSERT_NE(NULL, p);
	expect_create_fails(_metadata, self, name, (void *)8, -EFAULT,
			    "pointer 8");
	expect_create_fails(_metadata, self, name, p + page, -EFAULT,
			    "pointer to a PROT_NONE page");
	/* Its size field readable, the rest of it not. */
	cfg = (void *)(p + page - 16);
	cfg->size = sizeof(*cfg);
	expect_create_fails(_metadata, self, name, cfg, -EFAULT,
			    "crossing into a PROT_NONE page");
	/* Whole, but says it is larger than the mapping. */
	cfg = (void *)(p + page - sizeof(*cfg));
	eq_default_config(cfg);
	cfg->size = sizeof(*cfg) + 8;
	expect_create_fails(_metadata, self, name, cfg, -EFAULT,
			    "size past the mapping");

	/* A larger struct with a non-zero tail. */
	memset(&big, 0, sizeof(big));
	eq_default_config(&big.c);
	big.c.size = sizeof(big);
	big.tail[1] = 1;
	expect_create_fails(_metadata, self, name, &big, -E2BIG,
			    "non-zero tail");
	munmap(p, 2 * page);
}

TEST_F(named, attach_twice_ebusy)
{
	const char *qa = qname(self, "a"), *qb = qname(self, "b");
	int fd, rows;

	fd = create_q(qa, O_RDWR | O_NONBLOCK, 0600, NULL);
	ASSERT_LE(0, fd);
	rows = proc_find(NULL, NULL);
	EXPECT_EQ(-EBUSY, eq_attach(fd, qb, ELASTICQ_ATTACH_CREATE, 0600,
				    NULL));
	expect_absent(_metadata, qb);
	EXPECT_EQ(-EBUSY, eq_attach(fd, qa, 0, 0, NULL));
	EXPECT_EQ(-EBUSY, eq_attach(fd, qa, ELASTICQ_ATTACH_CREATE, 0600,
				    NULL));
	expect_nothing_changed(_metadata, self, rows);
	/* Still bound to the first. */
	ASSERT_EQ(0, push_msgs(fd, 3, 0, 1, SMALL_BODY));
	expect_stats(_metadata, fd, 1, 1, 0);
	expect_msgs(_metadata, fd, 3, 0, 1);
	close(fd);
}

/*
 * A file that pushed, popped or claimed the consumer role on the default
 * queue cannot be attached any more; one that only read stats can.
 */
TEST_F(named, attach_after_use_ebusy)
{
	const char *name = qname(self, "use");
	int wfd, rfd, cfd, sfd, rows;
	struct elasticq_stats st;

	ASSERT_LE(0, (wfd = eq_open(O_NONBLOCK)));
	ASSERT_LE(0, (rfd = eq_open(O_NONBLOCK)));
	ASSERT_LE(0, (cfd = eq_open(O_NONBLOCK)));
	ASSERT_LE(0, (sfd = eq_open(O_NONBLOCK)));
	ASSERT_EQ(0, push_msgs(wfd, 4, 0, 2, SMALL_BODY));
	expect_msgs(_metadata, rfd, 4, 0, 1);
	ASSERT_EQ(0, ioctl(cfd, ELASTICQ_IOC_CONSUME, 0));
	ASSERT_EQ(0, eq_get_stats(sfd, &st));
	rows = proc_find(NULL, NULL);

	EXPECT_EQ(-EBUSY, eq_attach(wfd, name, ELASTICQ_ATTACH_CREATE, 0600,
				    NULL));
	EXPECT_EQ(-EBUSY, eq_attach(rfd, name, ELASTICQ_ATTACH_CREATE, 0600,
				    NULL));
	EXPECT_EQ(-EBUSY, eq_attach(cfd, name, ELASTICQ_ATTACH_CREATE, 0600,
				    NULL));
	expect_absent(_metadata, name);
	EXPECT_EQ(rows, proc_find(NULL, NULL));
	/* Still on the default queue, with their roles. */
	expect_roles(_metadata, sfd, 1, 2);
	expect_stats(_metadata, sfd, 1, self->def0.enqueued + 2,
		     self->def0.dequeued + 1);
	expect_msgs(_metadata, rfd, 4, 1, 1);

	/* GET_STATS is no use: that file can still be attached. */
	EXPECT_EQ(0, eq_attach(sfd, name, ELASTICQ_ATTACH_CREATE, 0600, NULL));
	expect_present(_metadata, name);
	expect_roles(_metadata, sfd, 0, 0);
	close(wfd);
	close(rfd);
	close(cfd);
	close(sfd);
}

TEST_F(named, attach_mode_umask)
{
	static const struct {
		mode_t umask;
		unsigned int mode;
		const char *want;
	} cases[] = {
		{ 022, 0666, "0644" }, { 0, 0666, "0666" }, { 077, 0777, "0700" },
		{ 027, 0750, "0750" }, { 0, 0, "0000" }, { 0777, 0666, "0000" },
		{ 002, 0777, "0775" },
	};
	char tag[16];
	struct proc_row r;
	unsigned int i;
	mode_t old;
	int fd;

	old = umask(0);
	for (i = 0; i < ARRAY_SIZE(cases); i++) {
		const char *name;

		snprintf(tag, sizeof(tag), "m%u", i);
		name = qname(self, tag);
		umask(cases[i].umask);
		/* Root may attach even to a mode 0000 queue. */
		fd = create_q(name, O_RDWR, cases[i].mode, NULL);
		umask(0);
		ASSERT_LE(0, fd);
		close(fd);
		ASSERT_EQ(1, proc_find(name, &r));
		EXPECT_STREQ(cases[i].want, r.mode) {
			TH_LOG("mode %04o umask %03o", cases[i].mode,
			       cases[i].umask);
		}
		EXPECT_EQ(0, r.owner);
		EXPECT_EQ(0, r.group);
	}
	umask(old);
}

/* A named file reads, writes, stats and configures only its queue. */
TEST_F(named, bound_file_uses_only_its_queue)
{
	const char *name = qname(self, "only");
	struct elasticq_config dcfg0, dcfg, ncfg;
	struct elasticq_stats st;
	int nfd, dfd;

	ASSERT_EQ(0, eq_get_config(self->fd, &dcfg0));
	nfd = create_q(name, O_RDWR | O_NONBLOCK, 0600, NULL);
	ASSERT_LE(0, nfd);
	ASSERT_EQ(0, push_msgs(nfd, 5, 0, 3, SMALL_BODY));
	expect_stats(_metadata, nfd, 3, 3, 0);
	expect_roles(_metadata, nfd, 1, 0);
	expect_default_unchanged(_metadata, self);

	ASSERT_EQ(0, eq_get_config(nfd, &ncfg));
	ncfg.pop_timeout_ns = 1234 * EQ_MS;
	ncfg.full_policy = ELASTICQ_FULL_REJECT;
	ASSERT_EQ(0, eq_set_config(nfd, &ncfg));
	ASSERT_EQ(0, eq_get_config(self->fd, &dcfg));
	EXPECT_EQ(0, memcmp(&dcfg, &dcfg0, sizeof(dcfg)));
	ASSERT_EQ(0, eq_get_config(nfd, &dcfg));
	EXPECT_EQ(0, memcmp(&dcfg, &ncfg, sizeof(dcfg)));

	/* A message on the default queue is not seen by the named file. */
	dfd = eq_open(O_NONBLOCK);
	ASSERT_LE(0, dfd);
	ASSERT_EQ(0, push_msgs(dfd, 6, 0, 1, SMALL_BODY));
	expect_msgs(_metadata, nfd, 5, 0, 3);
	EXPECT_EQ(-EAGAIN, eq_pop(nfd, msgbuf, sizeof(msgbuf)));
	expect_msgs(_metadata, dfd, 6, 0, 1);
	ASSERT_EQ(0, eq_get_stats(nfd, &st));
	EXPECT_EQ(3, st.enqueued);
	EXPECT_EQ(3, st.dequeued);
	expect_row_stats(_metadata, name, &st);
	close(dfd);
	close(nfd);
}

/* ---- 2. DESTROY ---- */

static int destroy_raw(unsigned long cmd, const void *arg)
{
	int fd = open(EQ_DEV, O_RDONLY | O_CLOEXEC), ret;

	if (fd < 0)
		return -errno;
	ret = ioctl(fd, cmd, arg) ? -errno : 0;
	close(fd);
	return ret;
}

static void destroy_init(struct elasticq_destroy *d, const char *name)
{
	memset(d, 0, sizeof(*d));
	d->size = sizeof(*d);
	snprintf(d->name, sizeof(d->name), "%s", name);
}

struct destroy_mut {
	const char *what;
	size_t off, size;
	uint64_t val;
};

#define DMUT(w, f, v)	{ w, offsetof(struct elasticq_destroy, f), \
			  sizeof(((struct elasticq_destroy *)0)->f), v }

static const struct destroy_mut destroy_invalid[] = {
	DMUT("size 0", size, 0),
	DMUT("size VER0 - 1", size, ELASTICQ_DESTROY_SIZE_VER0 - 1),
	DMUT("size VER0 + 8", size, ELASTICQ_DESTROY_SIZE_VER0 + 8),
	DMUT("size ~0", size, 0xffffffff),
	DMUT("flags 1", flags, 1),
	DMUT("flags top bit", flags, 0x80000000),
	DMUT("reserved[0]", reserved[0], 1),
	DMUT("reserved[1]", reserved[1], 1ULL << 63),
};

/* Each bad DESTROY of an existing queue: @err, and the queue is there. */
TEST_F(named, destroy_bad_input)
{
	static const unsigned int small[] = { 8, 72, ELASTICQ_DESTROY_SIZE_VER0 - 1 };
	const char *name = qname(self, "d"), *missing = qname(self, "nx");
	struct {
		struct elasticq_destroy d;
		uint64_t tail;
	} big;
	struct elasticq_destroy d;
	unsigned int i;
	int fd, rows;

	fd = create_q(name, O_RDWR | O_NONBLOCK, 0600, NULL);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, push_msgs(fd, 7, 0, 1, SMALL_BODY));
	rows = proc_find(NULL, NULL);

	for (i = 0; i < ARRAY_SIZE(destroy_invalid); i++) {
		uint8_t *p;

		destroy_init(&d, name);
		p = (uint8_t *)&d + destroy_invalid[i].off;
		if (destroy_invalid[i].size == 4) {
			uint32_t v32 = destroy_invalid[i].val;

			memcpy(p, &v32, 4);
		} else {
			memcpy(p, &destroy_invalid[i].val, 8);
		}
		EXPECT_EQ(-EINVAL, destroy_raw(ELASTICQ_IOC_DESTROY, &d)) {
			TH_LOG("DESTROY with %s", destroy_invalid[i].what);
		}
		expect_present(_metadata, name);
	}
	for (i = 0; i < ARRAY_SIZE(small); i++) {
		destroy_init(&d, name);
		d.size = small[i];
		EXPECT_EQ(-EINVAL, destroy_raw(_IOC(_IOC_WRITE,
				ELASTICQ_IOC_MAGIC, 0x05, small[i]), &d)) {
			TH_LOG("DESTROY with ioctl size %u", small[i]);
		}
		expect_present(_metadata, name);
	}
	for (i = 0; i < ARRAY_SIZE(bad_names); i++) {
		destroy_init(&d, "");
		bad_name_fill(d.name, &bad_names[i]);
		EXPECT_EQ(-EINVAL, destroy_raw(ELASTICQ_IOC_DESTROY, &d)) {
			TH_LOG("DESTROY of name %s", bad_names[i].what);
		}
	}
	/* Our name with garbage after its NUL. */
	destroy_init(&d, name);
	d.name[ELASTICQ_NAME_SIZE - 1] = 'x';
	EXPECT_EQ(-EINVAL, destroy_raw(ELASTICQ_IOC_DESTROY, &d));
	EXPECT_EQ(-EFAULT, destroy_raw(ELASTICQ_IOC_DESTROY, (void *)8));

	/* Larger struct, non-zero tail. */
	memset(&big, 0, sizeof(big));
	destroy_init(&big.d, name);
	big.d.size = sizeof(big);
	big.tail = 1;
	EXPECT_EQ(-E2BIG, destroy_raw(_IOC(_IOC_WRITE, ELASTICQ_IOC_MAGIC,
					   0x05, sizeof(big)), &big));
	expect_present(_metadata, name);

	EXPECT_EQ(-ENOENT, eq_destroy(missing));
	expect_absent(_metadata, missing);
	expect_nothing_changed(_metadata, self, rows);
	expect_stats(_metadata, fd, 1, 1, 0);

	/* A larger struct with a zero tail is a valid DESTROY. */
	big.tail = 0;
	EXPECT_EQ(0, destroy_raw(_IOC(_IOC_WRITE, ELASTICQ_IOC_MAGIC, 0x05,
				      sizeof(big)), &big));
	expect_absent(_metadata, name);
	close(fd);
}

TEST_F(named, destroy_while_bound)
{
	const char *name = qname(self, "bound");
	int pfd, cfd, nfd, rows;
	struct elasticq_stats st;

	pfd = create_q(name, O_WRONLY | O_NONBLOCK, 0600, NULL);
	ASSERT_LE(0, pfd);
	cfd = eq_open_named(name, O_RDONLY | O_NONBLOCK, 0, 0, NULL);
	ASSERT_LE(0, cfd);
	ASSERT_EQ(0, push_msgs(pfd, 8, 0, 5, SMALL_BODY));
	expect_msgs(_metadata, cfd, 8, 0, 1);
	rows = proc_find(NULL, NULL);

	ASSERT_EQ(0, eq_destroy(name));
	/* The name is gone at once. */
	expect_absent(_metadata, name);
	EXPECT_EQ(rows - 1, proc_find(NULL, NULL));
	EXPECT_EQ(-ENOENT, eq_destroy(name));

	/* The bound files keep working on the old queue. */
	ASSERT_EQ(0, push_msgs(pfd, 8, 5, 2, SMALL_BODY));
	expect_msgs(_metadata, cfd, 8, 1, 4);
	ASSERT_EQ(0, eq_get_stats(cfd, &st));
	EXPECT_EQ(2, st.len);
	EXPECT_EQ(7, st.enqueued);
	EXPECT_EQ(5, st.dequeued);
	EXPECT_EQ(1, st.producers);
	EXPECT_EQ(1, st.consumers);

	/* CREATE makes a new, empty queue; the old messages stay old. */
	nfd = create_q(name, O_RDWR | O_NONBLOCK, 0600, NULL);
	ASSERT_LE(0, nfd);
	EXPECT_EQ(rows, proc_find(NULL, NULL));
	ASSERT_EQ(0, eq_get_stats(nfd, &st));
	EXPECT_EQ(0, st.len);
	EXPECT_EQ(0, st.enqueued);
	EXPECT_EQ(0, st.producers);
	EXPECT_EQ(0, st.consumers);
	EXPECT_EQ(-EAGAIN, eq_pop(nfd, msgbuf, sizeof(msgbuf)));
	ASSERT_EQ(0, push_msgs(nfd, 9, 0, 2, SMALL_BODY));
	ASSERT_EQ(0, push_msgs(pfd, 8, 7, 1, SMALL_BODY));
	expect_msgs(_metadata, nfd, 9, 0, 2);
	EXPECT_EQ(-EAGAIN, eq_pop(nfd, msgbuf, sizeof(msgbuf)));
	expect_msgs(_metadata, cfd, 8, 5, 3);
	EXPECT_EQ(-EAGAIN, eq_pop(cfd, msgbuf, sizeof(msgbuf)));
	ASSERT_EQ(0, eq_get_stats(nfd, &st));
	expect_row_stats(_metadata, name, &st);
	expect_stats(_metadata, cfd, 0, 8, 8);
	expect_default_unchanged(_metadata, self);
	close(pfd);
	close(cfd);
	close(nfd);
}

/* ---- 3. queues outlive their files ---- */

TEST_F(named, messages_outlive_files)
{
	const char *name = qname(self, "outlive");
	struct proc_row r;
	int fd;

	fd = create_q(name, O_WRONLY, 0600, NULL);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, push_msgs(fd, 10, 0, 100, 40));
	close(fd);
	ASSERT_EQ(1, proc_find(name, &r));
	EXPECT_EQ(100, r.num[COL_LEN]);
	EXPECT_EQ(0, r.num[COL_PRODUCERS]);

	fd = open_nb(name);
	ASSERT_LE(0, fd);
	expect_msgs(_metadata, fd, 10, 0, 100);
	EXPECT_EQ(-EAGAIN, eq_pop(fd, msgbuf, sizeof(msgbuf)));
	expect_stats(_metadata, fd, 0, 100, 100);
	close(fd);
}

/*
 * Child: bind a new file to @name and read SMALL_MSG messages straight into
 * consecutive @slots (shared memory), @pace_us apart, until killed.  A
 * message the kernel delivered is in its slot even if the child dies before
 * the next instruction, so the slots are an exact record.
 */
static __attribute__((noinline, noreturn)) void
slot_consumer(const char *name, uint8_t *slots, unsigned int n,
	      unsigned int pace_us)
{
	unsigned int i;
	int fd = eq_open_named(name, O_RDONLY, 0, 0, NULL);

	if (fd < 0)
		_exit(2);
	for (i = 0; i < n; i++) {
		if (eq_pop(fd, slots + i * SMALL_MSG, SMALL_MSG) != SMALL_MSG)
			_exit(3);
		if (pace_us)
			usleep(pace_us);
	}
	_exit(0);
}

/* Slots filled before the first empty one; each must be seq i of @tag. */
static unsigned int slots_filled(struct __test_metadata *_metadata,
				 const uint8_t *slots, unsigned int n,
				 uint32_t tag)
{
	uint32_t t, s;
	unsigned int i;

	for (i = 0; i < n; i++) {
		memcpy(&t, slots + i * SMALL_MSG, 4);
		if (!t)
			break;
		EXPECT_TRUE(msg_parse(slots + i * SMALL_MSG, SMALL_MSG, &t, &s));
		EXPECT_EQ(tag, t);
		EXPECT_EQ(i, s);
	}
	return i;
}

static bool wait_slot(const uint8_t *slots, unsigned int i)
{
	uint64_t end = eq_now_ns() + EQ_WAIT_MS * EQ_MS;

	while (!__atomic_load_n(&slots[i * SMALL_MSG], __ATOMIC_ACQUIRE)) {
		if (eq_now_ns() > end)
			return false;
		usleep(100);
	}
	return true;
}

/*
 * A consumer killed while blocked in read(2) after consuming some: the
 * messages pushed later go to the next consumer, each exactly once.
 */
TEST_F(named, killed_blocked_consumer)
{
	const unsigned int first = 50, total = 120;
	const char *name = qname(self, "kblk");
	uint8_t *slots;
	char last[160] = "";
	int pfd, cfd;
	pid_t pid;

	slots = eq_shared_alloc(total * SMALL_MSG);
	ASSERT_NE(NULL, slots);
	pfd = create_q(name, O_WRONLY, 0600, NULL);
	ASSERT_LE(0, pfd);
	ASSERT_EQ(0, push_msgs(pfd, 11, 0, first, SMALL_BODY));

	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid)
		slot_consumer(name, slots, total, 0);
	self->child[0] = pid;
	ASSERT_TRUE(wait_slot(slots, first - 1));
	ASSERT_EQ(0, eq_wait_blocked_in(pid, "eq_", last, sizeof(last))) {
		TH_LOG("consumer not blocked in the queue: %s", last);
	}
	expect_roles(_metadata, pfd, 1, 1);
	eq_kill_child(&self->child[0]);
	expect_roles(_metadata, pfd, 1, 0);

	ASSERT_EQ(0, push_msgs(pfd, 11, first, total - first, SMALL_BODY));
	EXPECT_EQ(first, slots_filled(_metadata, slots, total, 11));
	cfd = open_nb(name);
	ASSERT_LE(0, cfd);
	expect_msgs(_metadata, cfd, 11, first, total - first);
	EXPECT_EQ(-EAGAIN, eq_pop(cfd, msgbuf, sizeof(msgbuf)));
	expect_stats(_metadata, cfd, 0, total, total);
	close(pfd);
	close(cfd);
	munmap(slots, total * SMALL_MSG);
}

/*
 * A consumer killed at a random point while busy: what it did not take
 * stays queued, in order, for the next one.
 */
TEST_F(named, killed_busy_consumer)
{
	const unsigned int total = 10000;
	const char *name = qname(self, "kbusy");
	unsigned int got;
	uint8_t *slots;
	int pfd, cfd;
	pid_t pid;

	slots = eq_shared_alloc(total * SMALL_MSG);
	ASSERT_NE(NULL, slots);
	pfd = create_q(name, O_WRONLY, 0600, NULL);
	ASSERT_LE(0, pfd);
	ASSERT_EQ(0, push_msgs(pfd, 12, 0, total, SMALL_BODY));

	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid)
		slot_consumer(name, slots, total, 200);
	self->child[0] = pid;
	ASSERT_TRUE(wait_slot(slots, 100));
	eq_kill_child(&self->child[0]);
	expect_roles(_metadata, pfd, 1, 0);

	got = slots_filled(_metadata, slots, total, 12);
	EXPECT_LE(101, got);
	EXPECT_GT(total, got) {
		TH_LOG("the consumer took everything before it was killed");
	}
	cfd = open_nb(name);
	ASSERT_LE(0, cfd);
	expect_stats(_metadata, cfd, total - got, total, got);
	expect_msgs(_metadata, cfd, 12, got, total - got);
	EXPECT_EQ(-EAGAIN, eq_pop(cfd, msgbuf, sizeof(msgbuf)));
	close(pfd);
	close(cfd);
	munmap(slots, total * SMALL_MSG);
}

/* ---- 4. roles ---- */

TEST_F(named, consume_ioctl)
{
	const char *name = qname(self, "cons");
	int fd, wfd;

	fd = create_q(name, O_RDWR | O_NONBLOCK, 0600, NULL);
	ASSERT_LE(0, fd);
	wfd = eq_open_named(name, O_WRONLY, 0, 0, NULL);
	ASSERT_LE(0, wfd);

	EXPECT_EQ(-1, ioctl(fd, ELASTICQ_IOC_CONSUME, 1));
	EXPECT_EQ(EINVAL, errno);
	EXPECT_EQ(-1, ioctl(fd, ELASTICQ_IOC_CONSUME, ~0UL));
	EXPECT_EQ(EINVAL, errno);
	expect_roles(_metadata, fd, 0, 0);
	EXPECT_EQ(-1, ioctl(wfd, ELASTICQ_IOC_CONSUME, 0));
	EXPECT_EQ(EBADF, errno);
	expect_roles(_metadata, fd, 0, 0);

	EXPECT_EQ(0, ioctl(fd, ELASTICQ_IOC_CONSUME, 0));
	expect_roles(_metadata, fd, 0, 1);
	/* Claiming again changes nothing. */
	EXPECT_EQ(0, ioctl(fd, ELASTICQ_IOC_CONSUME, 0));
	ASSERT_EQ(0, push_msgs(fd, 13, 0, 1, SMALL_BODY));
	expect_msgs(_metadata, fd, 13, 0, 1);
	expect_roles(_metadata, fd, 1, 1);
	close(fd);
	expect_roles(_metadata, wfd, 0, 0);
	close(wfd);
	expect_default_unchanged(_metadata, self);
}

/* read(2), POP_BATCH and CONSUME each claim the role; several may hold it. */
TEST_F(named, consumers_counted)
{
	const char *name = qname(self, "cc");
	int pfd, fd[4], i;
	uint8_t batch[256];
	struct proc_row r;

	pfd = create_q(name, O_WRONLY, 0600, NULL);
	ASSERT_LE(0, pfd);
	for (i = 0; i < 4; i++) {
		fd[i] = open_nb(name);
		ASSERT_LE(0, fd[i]);
	}
	ASSERT_EQ(0, push_msgs(pfd, 14, 0, 3, SMALL_BODY));
	expect_roles(_metadata, pfd, 1, 0);

	ASSERT_EQ(0, ioctl(fd[0], ELASTICQ_IOC_CONSUME, 0));
	expect_roles(_metadata, pfd, 1, 1);
	expect_msgs(_metadata, fd[1], 14, 0, 1);
	expect_roles(_metadata, pfd, 1, 2);
	EXPECT_EQ(1, eq_pop_batch(fd[2], batch, sizeof(batch), 1, 0, 0, NULL));
	expect_roles(_metadata, pfd, 1, 3);
	/* The first consumer too may pop: lock-based queues allow several. */
	expect_msgs(_metadata, fd[0], 14, 2, 1);
	ASSERT_EQ(1, proc_find(name, &r));
	EXPECT_EQ(3, r.num[COL_CONSUMERS]);

	/* fd[3] never consumed; closing it changes nothing. */
	close(fd[3]);
	expect_roles(_metadata, pfd, 1, 3);
	for (i = 0; i < 3; i++) {
		close(fd[i]);
		expect_roles(_metadata, pfd, 1, 2 - i);
	}
	close(pfd);
	fd[0] = open_nb(name);
	ASSERT_LE(0, fd[0]);
	expect_roles(_metadata, fd[0], 0, 0);
	expect_stats(_metadata, fd[0], 0, 3, 3);
	close(fd[0]);
}

/* write(2) and PUSH_BATCH attempts take the producer role. */
TEST_F(named, producers_counted)
{
	const char *name = qname(self, "pc");
	struct elasticq_msg_vec v = { (uintptr_t)"batch", 5 };
	int fd[4], rfd, i, err;

	for (i = 0; i < 4; i++) {
		fd[i] = eq_open_named(name, O_WRONLY | O_NONBLOCK,
				      ELASTICQ_ATTACH_CREATE, 0600, NULL);
		ASSERT_LE(0, fd[i]);
	}
	rfd = eq_open_named(name, O_RDONLY | O_NONBLOCK, 0, 0, NULL);
	ASSERT_LE(0, rfd);
	expect_roles(_metadata, rfd, 0, 0);

	ASSERT_EQ(0, push_msgs(fd[0], 15, 0, 2, SMALL_BODY));
	expect_roles(_metadata, rfd, 1, 0);
	EXPECT_EQ(1, eq_push_batch(fd[1], &v, 1, 0, 0, &err));
	expect_roles(_metadata, rfd, 2, 0);
	/* A failed write is an attempt too. */
	EXPECT_EQ(-EMSGSIZE, eq_push(fd[2], msgbuf, EQ_DEF_MSG_SIZE + 1));
	expect_roles(_metadata, rfd, 3, 0);

	/* Not open for writing / reading: EBADF and no role. */
	EXPECT_EQ(-EBADF, eq_push_batch(rfd, &v, 1, 0, 0, &err));
	EXPECT_EQ(-EBADF, eq_pop_batch(fd[3], msgbuf, 256, 1, 0, 0, NULL));
	EXPECT_EQ(-EBADF, eq_push(rfd, "x", 1));
	expect_roles(_metadata, rfd, 3, 0);
	expect_stats(_metadata, rfd, 3, 3, 0);

	for (i = 0; i < 4; i++) {
		close(fd[i]);
		expect_roles(_metadata, rfd, i < 3 ? 2 - i : 0, 0);
	}
	close(rfd);
}

/* ---- 5. permissions, as uid/gid 65534 ---- */

enum job_op { JOB_ATTACH, JOB_DESTROY, JOB_CREATE_MANY };
enum job_then {
	THEN_NONE, THEN_PUSH, THEN_CONSUME, THEN_SET_CONFIG, THEN_PUSH_FILL,
};

/* What an unprivileged child does. */
struct job {
	enum job_op op;
	const char *name;	/* JOB_ATTACH: NULL stays on the default queue */
	int oflags;
	unsigned int aflags, mode;
	enum job_then then;
	const char (*names)[ELASTICQ_NAME_SIZE];	/* JOB_CREATE_MANY */
	unsigned int nnames;
	size_t body;		/* THEN_PUSH_FILL message body */
};

/* In rep->data: ret is the ATTACH/DESTROY/create result. */
struct job_result {
	long ret;
	long then;	/* the follow-up's result */
	long count;	/* messages pushed, queues created */
};

#define JOB_TAG		16
#define JOB_MAX_PUSH	1000000

static long job_then(int fd, const struct job *j, long *count)
{
	struct elasticq_config cfg;
	long r;

	switch (j->then) {
	case THEN_PUSH:
		return push_msgs(fd, JOB_TAG, 0, 1, SMALL_BODY);
	case THEN_CONSUME:
		return ioctl(fd, ELASTICQ_IOC_CONSUME, 0) ? -errno : 0;
	case THEN_SET_CONFIG:
		r = eq_get_config(fd, &cfg);
		if (r)
			return r;
		cfg.pop_timeout_ns = 4242 * EQ_MS;
		return eq_set_config(fd, &cfg);
	case THEN_PUSH_FILL:
		for (*count = 0; *count < JOB_MAX_PUSH; (*count)++) {
			r = push_msgs(fd, JOB_TAG, *count, 1, j->body);
			if (r)
				return r;
		}
		return 0;
	default:
		return 0;
	}
}

static int job_child(const struct job *j, struct job_result *res)
{
	unsigned int i;
	long r = 0;
	int fd;

	if (eq_drop_privileges())
		return 2;
	switch (j->op) {
	case JOB_DESTROY:
		res->ret = eq_destroy(j->name);
		break;
	case JOB_CREATE_MANY:
		for (i = 0; i < j->nnames; i++) {
			r = create_q(j->names[i], O_RDWR, 0600, NULL);
			if (r < 0)
				break;
			close(r);
			res->count++;
		}
		res->ret = r < 0 ? r : 0;
		break;
	case JOB_ATTACH:
		fd = open(EQ_DEV, j->oflags | O_CLOEXEC);
		if (fd < 0)
			return 3;
		res->ret = j->name ? eq_attach(fd, j->name, j->aflags, j->mode,
					       NULL) : 0;
		if (!res->ret)
			res->then = job_then(fd, j, &res->count);
		close(fd);
		break;
	}
	return 0;
}

/* Run @j as uid/gid 65534; its result, or NULL (logged) if it failed. */
static const struct job_result *run_nobody(struct __test_metadata *_metadata,
					   fixture_t *self,
					   const struct job *j)
{
	struct job_result *res = (struct job_result *)self->rep[0].data;
	int status;
	pid_t pid;

	memset(res, 0, sizeof(*res));
	pid = fork();
	if (pid < 0)
		return NULL;
	if (!pid)
		_exit(job_child(j, res));
	self->child[0] = pid;
	status = eq_wait_exit(pid);
	self->child[0] = 0;
	EXPECT_EQ(0, status) {
		TH_LOG("unprivileged child failed: %d", status);
	}
	return status ? NULL : res;
}

/* Run @j as nobody: its ATTACH/DESTROY result, *@then the follow-up's. */
static long nobody_run(struct __test_metadata *_metadata, fixture_t *self,
		       const struct job *j, long *then)
{
	const struct job_result *res = run_nobody(_metadata, self, j);

	if (!res)
		return -10000;
	if (then)
		*then = res->then;
	return res->ret;
}

/* ATTACH (no CREATE) as nobody with @oflags, then @then. */
static long nobody_attach(struct __test_metadata *_metadata, fixture_t *self,
			  const char *name, int oflags, enum job_then then,
			  long *then_ret)
{
	const struct job j = { .op = JOB_ATTACH, .name = name,
			       .oflags = oflags, .then = then };

	return nobody_run(_metadata, self, &j, then_ret);
}

static long nobody_destroy(struct __test_metadata *_metadata, fixture_t *self,
			   const char *name)
{
	const struct job j = { .op = JOB_DESTROY, .name = name };

	return nobody_run(_metadata, self, &j, NULL);
}

/* Create @name as root with @mode (umask 0), group @gid. */
static int create_with_group(const char *name, unsigned int mode, gid_t gid)
{
	mode_t old = umask(0);
	int fd;

	setfsgid(gid);
	fd = create_q(name, O_RDWR, mode, NULL);
	setfsgid(0);
	umask(old);
	if (fd >= 0)
		close(fd);
	return fd < 0 ? fd : 0;
}

/* Who may attach how: the owner (root), group and other classes. */
TEST_F(named, perm_attach_matrix)
{
	static const struct {
		unsigned int mode;
		gid_t gid;
		int oflags;
		int want;
	} cases[] = {
		{ 0600, 0, O_RDWR, -EACCES },
		{ 0600, 0, O_RDONLY, -EACCES },
		{ 0600, 0, O_WRONLY, -EACCES },
		{ 0622, 0, O_WRONLY, 0 },
		{ 0622, 0, O_RDONLY, -EACCES },
		{ 0622, 0, O_RDWR, -EACCES },
		{ 0644, 0, O_RDONLY, 0 },
		{ 0644, 0, O_WRONLY, -EACCES },
		{ 0666, 0, O_RDWR, 0 },
		{ 0640, NOBODY, O_RDONLY, 0 },
		{ 0640, NOBODY, O_WRONLY, -EACCES },
		{ 0660, NOBODY, O_RDWR, 0 },
		/* The group class decides when the group matches. */
		{ 0606, NOBODY, O_RDONLY, -EACCES },
		{ 0066, 0, O_RDWR, 0 },
	};
	char tag[16];
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(cases); i++) {
		struct elasticq_stats st;
		const char *name;
		int fd;

		snprintf(tag, sizeof(tag), "p%u", i);
		name = qname(self, tag);
		ASSERT_EQ(0, create_with_group(name, cases[i].mode,
					       cases[i].gid));
		EXPECT_EQ(cases[i].want, nobody_attach(_metadata, self, name,
						       cases[i].oflags,
						       THEN_NONE, NULL)) {
			TH_LOG("mode %04o group %u open flags %d",
			       cases[i].mode, cases[i].gid, cases[i].oflags);
		}
		fd = open_nb(name);
		ASSERT_LE(0, fd);
		ASSERT_EQ(0, eq_get_stats(fd, &st));
		EXPECT_EQ(0, st.producers + st.consumers + st.enqueued);
		close(fd);
	}
	expect_default_unchanged(_metadata, self);
}

/* A 0622 queue: nobody produces through O_WRONLY, cannot consume. */
TEST_F(named, perm_write_only_producer)
{
	const char *name = qname(self, "wo");
	long then;
	int fd;

	ASSERT_EQ(0, create_with_group(name, 0622, 0));
	EXPECT_EQ(0, nobody_attach(_metadata, self, name, O_WRONLY, THEN_PUSH,
				   &then));
	EXPECT_EQ(0, then);
	EXPECT_EQ(0, nobody_attach(_metadata, self, name, O_WRONLY,
				   THEN_CONSUME, &then));
	EXPECT_EQ(-EBADF, then);
	EXPECT_EQ(-EACCES, nobody_attach(_metadata, self, name, O_RDONLY,
					 THEN_CONSUME, NULL));
	fd = open_nb(name);
	ASSERT_LE(0, fd);
	expect_roles(_metadata, fd, 0, 0);
	expect_stats(_metadata, fd, 1, 1, 0);
	expect_msgs(_metadata, fd, JOB_TAG, 0, 1);
	close(fd);
}

/* nobody may neither destroy nor reconfigure root's queues. */
TEST_F(named, perm_destroy_and_config_eperm)
{
	const char *name = qname(self, "rootq");
	struct elasticq_config cfg0, dcfg0, cfg;
	long then;
	int fd;

	ASSERT_EQ(0, create_with_group(name, 0666, 0));
	fd = open_nb(name);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, eq_get_config(fd, &cfg0));
	ASSERT_EQ(0, eq_get_config(self->fd, &dcfg0));

	EXPECT_EQ(-EPERM, nobody_destroy(_metadata, self, name));
	expect_present(_metadata, name);
	EXPECT_EQ(0, nobody_attach(_metadata, self, name, O_WRONLY,
				   THEN_SET_CONFIG, &then));
	EXPECT_EQ(-EPERM, then);
	ASSERT_EQ(0, eq_get_config(fd, &cfg));
	EXPECT_EQ(0, memcmp(&cfg, &cfg0, sizeof(cfg)));

	/* The default queue: CAP_SYS_ADMIN only. */
	EXPECT_EQ(0, nobody_attach(_metadata, self, NULL, O_RDWR,
				   THEN_SET_CONFIG, &then));
	EXPECT_EQ(-EPERM, then);
	ASSERT_EQ(0, eq_get_config(self->fd, &cfg));
	EXPECT_EQ(0, memcmp(&cfg, &dcfg0, sizeof(cfg)));
	expect_default_unchanged(_metadata, self);
	close(fd);
}

/* A queue nobody creates is nobody's: it may configure and destroy it. */
TEST_F(named, perm_nobody_owns_its_queue)
{
	const char *mine = qname(self, "mine"), *other = qname(self, "other");
	const char *zero = qname(self, "zero");
	struct job j = {
		.op = JOB_ATTACH, .name = mine, .oflags = O_RDWR,
		.aflags = ELASTICQ_ATTACH_CREATE | ELASTICQ_ATTACH_EXCL,
		.mode = 0666, .then = THEN_SET_CONFIG,
	};
	struct elasticq_config cfg;
	struct proc_row r;
	long then = 1;
	mode_t old;
	int fd;

	old = umask(022);
	EXPECT_EQ(0, nobody_run(_metadata, self, &j, &then));
	umask(old);
	EXPECT_EQ(0, then);
	ASSERT_EQ(1, proc_find(mine, &r));
	EXPECT_EQ(NOBODY, r.owner);
	EXPECT_EQ(NOBODY, r.group);
	EXPECT_STREQ("0644", r.mode);
	fd = open_nb(mine);
	ASSERT_LE(0, fd);	/* root may attach to anyone's */
	ASSERT_EQ(0, eq_get_config(fd, &cfg));
	EXPECT_EQ(4242 * EQ_MS, cfg.pop_timeout_ns);
	close(fd);
	EXPECT_EQ(0, nobody_destroy(_metadata, self, mine));
	expect_absent(_metadata, mine);

	/* Root destroys anyone's. */
	j.name = other;
	j.oflags = O_WRONLY;
	j.aflags = ELASTICQ_ATTACH_CREATE;
	j.mode = 0600;
	j.then = THEN_NONE;
	EXPECT_EQ(0, nobody_run(_metadata, self, &j, NULL));
	ASSERT_EQ(1, proc_find(other, &r));
	EXPECT_EQ(NOBODY, r.owner);
	EXPECT_EQ(0, eq_destroy(other));
	expect_absent(_metadata, other);

	/*
	 * Mode 0: the creator's own ATTACH is refused, and a failed ATTACH
	 * leaves nothing: no queue.
	 */
	j.name = zero;
	j.oflags = O_RDONLY;
	j.mode = 0;
	EXPECT_EQ(-EACCES, nobody_run(_metadata, self, &j, NULL));
	expect_absent(_metadata, zero);
	EXPECT_EQ(-ENOENT, nobody_attach(_metadata, self, zero, O_RDONLY,
					 THEN_NONE, NULL));
}

/* ---- 6. limits ---- */

/* Named queues now (rows minus the default queue). */
static int named_count(void)
{
	int rows = proc_find(NULL, NULL);

	return rows < 0 ? rows : rows - 1;
}

TEST_F(named, max_queues_root)
{
	const char *q[6];
	int fd0, fd, n, i;

	for (i = 0; i < 6; i++) {
		char tag[8];

		snprintf(tag, sizeof(tag), "q%d", i);
		q[i] = qname(self, tag);
	}
	n = named_count();
	ASSERT_LE(0, n);
	ASSERT_EQ(0, set_param(self, "max_queues", n + 3));

	fd0 = create_q(q[0], O_RDWR | O_NONBLOCK, 0600, NULL);
	ASSERT_LE(0, fd0);
	for (i = 1; i < 3; i++) {
		fd = create_q(q[i], O_RDWR, 0600, NULL);
		ASSERT_LE(0, fd);
		close(fd);
	}
	EXPECT_EQ(-ENOSPC, create_q(q[3], O_RDWR, 0600, NULL));
	expect_absent(_metadata, q[3]);
	EXPECT_EQ(n + 3, named_count());

	/* At the limit, CREATE of an existing queue just attaches. */
	fd = eq_open_named(q[1], O_RDWR, ELASTICQ_ATTACH_CREATE, 0600, NULL);
	EXPECT_LE(0, fd);
	if (fd >= 0)
		close(fd);

	/* Destroyed but still bound: still counts. */
	ASSERT_EQ(0, eq_destroy(q[0]));
	expect_absent(_metadata, q[0]);
	EXPECT_EQ(-ENOSPC, create_q(q[3], O_RDWR, 0600, NULL));
	expect_absent(_metadata, q[3]);
	ASSERT_EQ(0, push_msgs(fd0, 17, 0, 1, SMALL_BODY));
	expect_msgs(_metadata, fd0, 17, 0, 1);
	close(fd0);
	fd = create_q(q[3], O_RDWR, 0600, NULL);
	ASSERT_LE(0, fd);
	close(fd);

	/* Destroyed with no file bound: the slot is free at once. */
	ASSERT_EQ(0, eq_destroy(q[1]));
	fd = create_q(q[4], O_RDWR, 0600, NULL);
	ASSERT_LE(0, fd);
	close(fd);
	EXPECT_EQ(-ENOSPC, create_q(q[5], O_RDWR, 0600, NULL));
	expect_absent(_metadata, q[5]);
	expect_default_unchanged(_metadata, self);
}

TEST_F(named, max_queues_unprivileged)
{
	char names[4][ELASTICQ_NAME_SIZE];
	const struct job_result *res;
	struct proc_row r;
	struct job j = {
		.op = JOB_CREATE_MANY, .names = (const void *)names,
		.nnames = 4,
	};
	int n, i;

	for (i = 0; i < 4; i++) {
		char tag[8];

		snprintf(tag, sizeof(tag), "u%d", i);
		snprintf(names[i], sizeof(names[i]), "%s", qname(self, tag));
	}
	n = named_count();
	ASSERT_LE(0, n);
	ASSERT_EQ(0, set_param(self, "max_queues", n + 2));
	res = run_nobody(_metadata, self, &j);
	ASSERT_NE(NULL, res);
	EXPECT_EQ(2, res->count);
	EXPECT_EQ(-ENOSPC, res->ret);
	for (i = 0; i < 2; i++) {
		ASSERT_EQ(1, proc_find(names[i], &r));
		EXPECT_EQ(NOBODY, r.owner);
	}
	expect_absent(_metadata, names[2]);
	expect_absent(_metadata, names[3]);
	/* Root is held to it too. */
	EXPECT_EQ(-ENOSPC, create_q(names[2], O_RDWR, 0600, NULL));
	expect_absent(_metadata, names[2]);
}

TEST_F(named, max_queue_bytes)
{
	const char *name = qname(self, "mqb"), *small = qname(self, "small");
	struct elasticq_config cfg, now;
	unsigned long long limit;
	int fd;

	ASSERT_TRUE(eq_read_param("max_queue_bytes", &limit));
	eq_default_config(&cfg);
	cfg.max_bytes = limit + 1;
	expect_create_fails(_metadata, self, name, &cfg, -EINVAL,
			    "max_bytes above max_queue_bytes");
	cfg.max_bytes = limit;
	fd = create_q(name, O_RDWR, 0600, &cfg);
	ASSERT_LE(0, fd);

	/* SET_CONFIG above it: EINVAL, config unchanged. */
	cfg.max_bytes = 4096;
	ASSERT_EQ(0, eq_set_config(fd, &cfg));
	cfg.max_bytes = limit + 1;
	EXPECT_EQ(-EINVAL, eq_set_config(fd, &cfg));
	ASSERT_EQ(0, eq_get_config(fd, &now));
	EXPECT_EQ(4096, now.max_bytes);

	/* A lowered limit applies to the next create and SET_CONFIG. */
	ASSERT_EQ(0, set_param(self, "max_queue_bytes", 1 << 20));
	cfg.max_bytes = (1 << 20) + 1;
	expect_create_fails(_metadata, self, small, &cfg, -EINVAL,
			    "max_bytes above a lowered max_queue_bytes");
	EXPECT_EQ(-EINVAL, eq_set_config(fd, &cfg));
	cfg.max_bytes = 1 << 20;
	EXPECT_EQ(0, eq_set_config(fd, &cfg));
	close(fd);
	fd = create_q(small, O_RDWR, 0600, &cfg);
	ASSERT_LE(0, fd);
	close(fd);
}

#define BIG_BODY	(1000 - MSG_HDR)

/*
 * Lower max_total_bytes to what all queues hold now plus @room; the
 * queue for the pushes gets a push timeout so that a push that wrongly
 * blocks shows as ETIMEDOUT rather than hanging.
 */
static int budget_queue(struct __test_metadata *_metadata, fixture_t *self,
			const char *name, unsigned int mode, long long room)
{
	struct elasticq_config cfg;
	long long total;
	mode_t old = umask(0);
	int fd;

	eq_default_config(&cfg);
	cfg.push_timeout_ns = 3000 * EQ_MS;
	fd = create_q(name, O_RDWR | O_NONBLOCK, mode, &cfg);
	umask(old);
	if (fd < 0)
		return fd;
	total = proc_total_mem();
	EXPECT_LT(0, total);
	EXPECT_EQ(0, set_param(self, "max_total_bytes", total + room));
	return fd;
}

/* After ENOBUFS: @count messages queued and nothing else; drain them. */
static void expect_budget_drain(struct __test_metadata *_metadata, int fd,
				long count, uint64_t rejected)
{
	struct elasticq_stats st;

	ASSERT_EQ(0, eq_get_stats(fd, &st));
	EXPECT_EQ(count, st.len);
	EXPECT_EQ(count, st.enqueued);
	EXPECT_EQ(rejected, st.rejected);
	expect_msgs(_metadata, fd, JOB_TAG, 0, count);
	EXPECT_EQ(-EAGAIN, eq_pop(fd, msgbuf, sizeof(msgbuf)));
}

TEST_F(named, max_total_bytes)
{
	const char *name = qname(self, "budget"), *more = qname(self, "more");
	struct elasticq_stats st;
	uint64_t t0, el = 0;
	int fd, bfd, dfd;
	ssize_t r = 0;
	long count;

	fd = budget_queue(_metadata, self, name, 0600, 64 << 10);
	ASSERT_LE(0, fd);
	bfd = eq_open_named(name, O_WRONLY, 0, 0, NULL);	/* blocking */
	ASSERT_LE(0, bfd);

	for (count = 0; count < JOB_MAX_PUSH; count++) {
		size_t len = msg_make(msgbuf, JOB_TAG, count, BIG_BODY);

		t0 = eq_now_ns();
		r = eq_push(bfd, msgbuf, len);
		el = eq_now_ns() - t0;
		if (r != (ssize_t)len)
			break;
	}
	EXPECT_EQ(-ENOBUFS, r);
	EXPECT_GT(1000 * EQ_MS, el);
	EXPECT_LT(10, count);
	EXPECT_GT(70, count);

	/*
	 * Again, and on the default queue too: the budget is global (and a
	 * non-blocking file gets ENOBUFS, not EAGAIN).
	 */
	EXPECT_EQ(-ENOBUFS, eq_push(bfd, msgbuf, MSG_HDR + BIG_BODY));
	dfd = eq_open(O_NONBLOCK);
	ASSERT_LE(0, dfd);
	EXPECT_EQ(-ENOBUFS, eq_push(dfd, msgbuf, MSG_HDR + BIG_BODY));
	close(dfd);
	ASSERT_EQ(0, eq_get_stats(self->fd, &st));
	EXPECT_EQ(self->def0.rejected + 1, st.rejected);
	EXPECT_EQ(self->def0.enqueued, st.enqueued);
	EXPECT_EQ(0, st.len);
	/* A new queue needs memory too. */
	EXPECT_EQ(-ENOBUFS, create_q(more, O_RDWR, 0600, NULL));
	expect_absent(_metadata, more);

	expect_budget_drain(_metadata, fd, count, 2);
	/* The memory came back. */
	EXPECT_EQ(0, push_msgs(bfd, JOB_TAG, 0, 1, BIG_BODY));
	expect_msgs(_metadata, fd, JOB_TAG, 0, 1);
	close(bfd);
	close(fd);
}

TEST_F(named, max_total_bytes_unprivileged)
{
	const char *name = qname(self, "nbudget");
	const struct job_result *res;
	struct job j = {
		.op = JOB_ATTACH, .name = name, .oflags = O_WRONLY,
		.then = THEN_PUSH_FILL, .body = BIG_BODY,
	};
	int fd;

	fd = budget_queue(_metadata, self, name, 0622, 64 << 10);
	ASSERT_LE(0, fd);
	res = run_nobody(_metadata, self, &j);
	ASSERT_NE(NULL, res);
	EXPECT_EQ(0, res->ret);
	EXPECT_EQ(-ENOBUFS, res->then);
	EXPECT_LT(10, res->count);
	expect_budget_drain(_metadata, fd, res->count, 1);
	close(fd);
}

/* ---- 7. /proc/elasticq ---- */

TEST_F(named, proc_header_and_default_row)
{
	struct elasticq_config cfg;
	struct elasticq_stats st;
	char *tok[PROC_NCOLS + 1], *nl;
	struct proc_row r;
	struct stat sb;
	int i, n;

	ASSERT_EQ(0, stat(PROC_PATH, &sb));
	EXPECT_EQ(0444, sb.st_mode & 07777);
	ASSERT_LT(0, proc_read());
	nl = strchr(proc_buf, '\n');
	ASSERT_NE(NULL, nl);
	*nl = '\0';
	n = split(proc_buf, tok, PROC_NCOLS + 1);
	ASSERT_EQ(PROC_NCOLS, n);
	for (i = 0; i < PROC_NCOLS; i++)
		EXPECT_STREQ(proc_cols[i], tok[i]);

	ASSERT_EQ(1, proc_find("(default)", &r));
	EXPECT_EQ(0, r.owner);
	EXPECT_EQ(0, r.group);
	EXPECT_EQ(4, strlen(r.mode));
	EXPECT_EQ(strspn(r.mode, "01234567"), strlen(r.mode));
	EXPECT_STREQ("locked", r.variant);
	ASSERT_EQ(0, eq_get_config(self->fd, &cfg));
	EXPECT_STREQ(cfg.full_policy == ELASTICQ_FULL_BLOCK ? "block" :
		     cfg.full_policy == ELASTICQ_FULL_REJECT ? "reject" :
		     "drop-oldest", r.policy);
	ASSERT_EQ(0, eq_get_stats(self->fd, &st));
	expect_row_stats(_metadata, "(default)", &st);
	/* The first row is the default queue. */
	ASSERT_LT(0, proc_read());
	nl = strchr(proc_buf, '\n');
	ASSERT_NE(NULL, nl);
	EXPECT_EQ(0, strncmp(nl + 1, "(default) ", 10));
}

TEST_F(named, proc_named_rows)
{
	const char *drop = qname(self, "drop"), *rej = qname(self, "rej");
	struct elasticq_config cfg;
	struct elasticq_stats st;
	struct proc_row r;
	int pfd, cfd, rfd;
	mode_t old;

	eq_default_config(&cfg);
	cfg.initial_capacity = cfg.min_capacity = 4;
	cfg.max_capacity = 32;
	cfg.full_policy = ELASTICQ_FULL_DROP_OLDEST;
	old = umask(0);
	pfd = create_q(drop, O_WRONLY | O_NONBLOCK, 0640, &cfg);
	ASSERT_LE(0, pfd);
	cfg.full_policy = ELASTICQ_FULL_REJECT;
	rfd = create_q(rej, O_RDWR | O_NONBLOCK, 0604, &cfg);
	umask(old);
	ASSERT_LE(0, rfd);
	cfd = open_nb(drop);
	ASSERT_LE(0, cfd);

	/* 40 into 32 slots: 8 dropped, grows; 25 out: shrinks. */
	ASSERT_EQ(0, push_msgs(pfd, 18, 0, 40, 24));
	expect_msgs(_metadata, cfd, 18, 8, 25);
	ASSERT_EQ(0, eq_get_stats(cfd, &st));
	EXPECT_EQ(7, st.len);
	EXPECT_EQ(40, st.enqueued);
	EXPECT_EQ(25, st.dequeued);
	EXPECT_EQ(8, st.dropped);
	EXPECT_LT(0, st.grows);
	EXPECT_LT(0, st.shrinks);
	EXPECT_EQ(1, st.producers);
	EXPECT_EQ(1, st.consumers);
	expect_row_stats(_metadata, drop, &st);
	ASSERT_EQ(1, proc_find(drop, &r));
	EXPECT_EQ(0, r.owner);
	EXPECT_EQ(0, r.group);
	EXPECT_STREQ("0640", r.mode);
	EXPECT_STREQ("locked", r.variant);
	EXPECT_STREQ("drop-oldest", r.policy);

	ASSERT_EQ(0, push_msgs(rfd, 19, 0, 32, 0));
	EXPECT_EQ(-EAGAIN, eq_push(rfd, msgbuf, MSG_HDR));
	ASSERT_EQ(0, eq_get_stats(rfd, &st));
	EXPECT_EQ(1, st.rejected);
	expect_row_stats(_metadata, rej, &st);
	ASSERT_EQ(1, proc_find(rej, &r));
	EXPECT_STREQ("0604", r.mode);
	EXPECT_STREQ("reject", r.policy);

	/* SET_CONFIG shows. */
	ASSERT_EQ(0, eq_get_config(rfd, &cfg));
	cfg.full_policy = ELASTICQ_FULL_BLOCK;
	ASSERT_EQ(0, eq_set_config(rfd, &cfg));
	ASSERT_EQ(1, proc_find(rej, &r));
	EXPECT_STREQ("block", r.policy);
	expect_default_unchanged(_metadata, self);
	close(pfd);
	close(cfd);
	close(rfd);
}

TEST_F(named, proc_destroyed_not_listed)
{
	const char *name = qname(self, "gone");
	int fd, rows;

	rows = proc_find(NULL, NULL);
	fd = create_q(name, O_RDWR | O_NONBLOCK, 0600, NULL);
	ASSERT_LE(0, fd);
	EXPECT_EQ(rows + 1, proc_find(NULL, NULL));
	EXPECT_EQ(1, proc_find(name, NULL));
	ASSERT_EQ(0, eq_destroy(name));
	/* Not even while a file still holds it. */
	EXPECT_EQ(0, proc_find(name, NULL));
	EXPECT_EQ(rows, proc_find(NULL, NULL));
	ASSERT_EQ(0, push_msgs(fd, 20, 0, 1, SMALL_BODY));
	EXPECT_EQ(0, proc_find(name, NULL));
	close(fd);
	EXPECT_EQ(rows, proc_find(NULL, NULL));
}

/* ---- 8. two named queues under load ---- */

#define LOAD_QUEUES	2
#define LOAD_PRODUCERS	2
#define LOAD_MSGS	((int)eq_scale(20000))

static uint32_t load_tag(int q, int p)
{
	return 100 + q * LOAD_PRODUCERS + p;
}

static size_t load_body(uint32_t seq)
{
	return seq % 57;
}

static __attribute__((noinline, noreturn)) void
load_producer(const char *name, uint32_t tag)
{
	uint32_t seq;
	int fd = eq_open_named(name, O_WRONLY, 0, 0, NULL);

	if (fd < 0)
		_exit(2);
	for (seq = 0; seq < LOAD_MSGS; seq++)
		if (push_msgs(fd, tag, seq, 1, load_body(seq)))
			_exit(3);
	_exit(0);
}

/* Reports in rep: ret = messages received, ret2 = errors, data = first. */
static __attribute__((noinline, noreturn)) void
load_consumer(const char *name, int q, struct eq_child_report *rep)
{
	uint32_t next[LOAD_PRODUCERS] = { 0 }, tag = 0, seq = 0;
	long total = LOAD_PRODUCERS * LOAD_MSGS, got;
	int fd = eq_open_named(name, O_RDONLY, 0, 0, NULL);
	ssize_t r;

	if (fd < 0)
		_exit(2);
	for (got = 0; got < total; got++) {
		int p;

		r = eq_pop(fd, msgbuf, sizeof(msgbuf));
		if (r < 0) {
			snprintf(rep->data, sizeof(rep->data),
				 "pop %ld: %zd", got, r);
			rep->ret2++;
			break;
		}
		p = msg_parse(msgbuf, r, &tag, &seq) ?
			(int)tag - (int)load_tag(q, 0) : -1;
		if (p < 0 || p >= LOAD_PRODUCERS || seq != next[p] ||
		    r != MSG_HDR + load_body(seq)) {
			if (!rep->ret2++)
				snprintf(rep->data, sizeof(rep->data),
					 "message %ld: tag %u seq %u len %zd",
					 got, tag, seq, r);
			continue;
		}
		next[p]++;
	}
	rep->ret = got;
	rep->done = 1;
	_exit(0);
}

TEST_F_TIMEOUT(named, two_queues_under_load, 300)
{
	const char *names[LOAD_QUEUES];
	struct elasticq_config cfg;
	int q, p, i, fd;

	eq_default_config(&cfg);
	/* A lost message or consumer ends the waits, not the test. */
	cfg.pop_timeout_ns = 20000 * EQ_MS;
	cfg.push_timeout_ns = 20000 * EQ_MS;
	cfg.max_capacity = 4096;
	for (q = 0; q < LOAD_QUEUES; q++) {
		names[q] = qname(self, q ? "load1" : "load0");
		fd = create_q(names[q], O_RDWR, 0600, &cfg);
		ASSERT_LE(0, fd);
		close(fd);
	}
	for (q = 0, i = 0; q < LOAD_QUEUES; q++) {
		pid_t pid;

		memset((void *)&self->rep[q], 0, sizeof(self->rep[q]));
		pid = fork();
		ASSERT_LE(0, pid);
		if (!pid)
			load_consumer(names[q], q, &self->rep[q]);
		self->child[i++] = pid;
		for (p = 0; p < LOAD_PRODUCERS; p++) {
			pid = fork();
			ASSERT_LE(0, pid);
			if (!pid)
				load_producer(names[q], load_tag(q, p));
			self->child[i++] = pid;
		}
	}
	for (i = 0; i < LOAD_QUEUES * (1 + LOAD_PRODUCERS); i++) {
		EXPECT_EQ(0, eq_wait_exit(self->child[i]));
		self->child[i] = 0;
	}
	for (q = 0; q < LOAD_QUEUES; q++) {
		struct elasticq_stats st;

		EXPECT_EQ(1, self->rep[q].done);
		EXPECT_EQ(LOAD_PRODUCERS * LOAD_MSGS, self->rep[q].ret);
		EXPECT_EQ(0, self->rep[q].ret2) {
			TH_LOG("queue %d: %ld errors, first: %s", q,
			       self->rep[q].ret2, self->rep[q].data);
		}
		fd = open_nb(names[q]);
		ASSERT_LE(0, fd);
		ASSERT_EQ(0, eq_get_stats(fd, &st));
		EXPECT_EQ(0, st.len);
		EXPECT_EQ(LOAD_PRODUCERS * LOAD_MSGS, st.enqueued);
		EXPECT_EQ(LOAD_PRODUCERS * LOAD_MSGS, st.dequeued);
		EXPECT_EQ(0, st.producers);
		EXPECT_EQ(0, st.consumers);
		close(fd);
	}
	expect_default_unchanged(_metadata, self);
}

TEST_HARNESS_MAIN
