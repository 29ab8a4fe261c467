// SPDX-License-Identifier: MIT
/*
 * The ioctls (uapi/linux/elasticq.h, SPEC sections 7, 8, 11 and 12): config
 * validation, extensible struct sizes, unknown commands, bad user pointers,
 * privileges and the full policies.
 */
#include <grp.h>
#include <stddef.h>
#include <termios.h>

#include "eq_test.h"

static long page_size;
/* Bad pointers the compiler cannot see through. */
static uint8_t *volatile null_ptr;
static uint8_t *volatile low_ptr = (uint8_t *)8;
static uint8_t buf[ELASTICQ_MSG_SIZE_LIMIT];

/* Two pages; the second one PROT_NONE. */
static uint8_t *guarded_page(void)
{
	uint8_t *p;

	page_size = sysconf(_SC_PAGESIZE);
	p = mmap(NULL, 2 * page_size, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return NULL;
	if (mprotect(p + page_size, page_size, PROT_NONE)) {
		munmap(p, 2 * page_size);
		return NULL;
	}
	return p;
}

static int poll_now_in_out(int fd)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN | POLLOUT };

	return poll(&pfd, 1, 0) < 0 ? -1 : pfd.revents;
}

static void expect_config(struct __test_metadata *_metadata, int fd,
			  const struct elasticq_config *want)
{
	struct elasticq_config now;

	ASSERT_EQ(0, eq_get_config(fd, &now));
	EXPECT_EQ(sizeof(now), now.size);
	EXPECT_EQ(0, memcmp(&now, want, sizeof(now))) {
		TH_LOG("config changed: initial %u min %u max %u growth %u shrink %u msg %u bytes %llu policy %u",
		       now.initial_capacity, now.min_capacity,
		       now.max_capacity, now.growth_pct, now.shrink_pct,
		       now.max_msg_size, (unsigned long long)now.max_bytes,
		       now.full_policy);
	}
}

TEST_F(eq, get_config_and_stats)
{
	struct elasticq_config load, cfg;
	struct elasticq_stats st;
	unsigned int i;

	eq_load_config(&load);
	memset(&cfg, 0xff, sizeof(cfg));
	cfg.size = sizeof(cfg);
	cfg.flags = 0;
	/* Only size and flags are input: the rest is overwritten. */
	ASSERT_EQ(0, ioctl(self->fd, ELASTICQ_IOC_GET_CONFIG, &cfg));
	EXPECT_EQ(ELASTICQ_CONFIG_SIZE_VER0, cfg.size);
	EXPECT_EQ(0, memcmp(&cfg, &load, sizeof(cfg)));
	EXPECT_EQ(ELASTICQ_TIMEOUT_NONE, cfg.push_timeout_ns);
	EXPECT_EQ(ELASTICQ_TIMEOUT_NONE, cfg.pop_timeout_ns);
	EXPECT_EQ(eq_variant(), cfg.variant);
	for (i = 0; i < 4; i++)
		EXPECT_EQ(0, cfg.reserved[i]);

	memset(&st, 0xff, sizeof(st));
	st.size = sizeof(st);
	st.flags = 0;
	ASSERT_EQ(0, ioctl(self->fd, ELASTICQ_IOC_GET_STATS, &st));
	EXPECT_EQ(ELASTICQ_STATS_SIZE_VER0, st.size);
	EXPECT_EQ(0, st.flags);
	EXPECT_EQ(0, st.len);
	EXPECT_EQ(0, st.bytes);
	EXPECT_EQ(load.initial_capacity, st.capacity);
	EXPECT_LE(st.dequeued, st.enqueued);
	for (i = 0; i < 4; i++)
		EXPECT_EQ(0, st.reserved[i]);
}

/* A change to one or two fields of a valid config. */
struct mutation {
	const char *name;
	size_t off[2], size[2];
	uint64_t val[2];
};

#define FOFF(f)	offsetof(struct elasticq_config, f)
#define FSIZE(f) sizeof(((struct elasticq_config *)0)->f)
#define MUT1(n, f, v) { n, { FOFF(f) }, { FSIZE(f) }, { v } }
#define MUT2(n, f, v, g, w) \
	{ n, { FOFF(f), FOFF(g) }, { FSIZE(f), FSIZE(g) }, { v, w } }

static void mutate(struct elasticq_config *cfg, const struct mutation *m)
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

/* Every validation rule, broken one at a time (base: the SPEC defaults). */
static const struct mutation invalid[] = {
	MUT1("flags 1", flags, 1),
	MUT1("flags top bit", flags, 0x80000000),
	MUT1("min 0", min_capacity, 0),
	MUT2("min 0 initial 0", min_capacity, 0, initial_capacity, 0),
	MUT2("max below min", max_capacity, 1000, initial_capacity, 1000),
	MUT1("max above limit", max_capacity, ELASTICQ_CAPACITY_LIMIT + 1),
	MUT1("max ~0", max_capacity, 0xffffffff),
	MUT1("initial below min", initial_capacity, EQ_DEF_MIN - 1),
	MUT1("initial above max", initial_capacity, EQ_DEF_MAX + 1),
	MUT1("initial 0", initial_capacity, 0),
	MUT1("growth 100", growth_pct, 100),
	MUT1("growth 99", growth_pct, 99),
	MUT1("growth 0", growth_pct, 0),
	MUT1("shrink 0", shrink_pct, 0),
	MUT1("shrink 100", shrink_pct, 100),
	MUT1("shrink 101", shrink_pct, 101),
	MUT1("shrink ~0", shrink_pct, 0xffffffff),
	MUT1("max_msg_size 0", max_msg_size, 0),
	MUT1("max_msg_size above limit", max_msg_size,
	     ELASTICQ_MSG_SIZE_LIMIT + 1),
	MUT1("max_msg_size ~0", max_msg_size, 0xffffffff),
	MUT1("max_bytes 0", max_bytes, 0),
	MUT1("max_bytes > max_queue_bytes", max_bytes, (64ULL << 20) + 1),
	MUT1("max_bytes ~0", max_bytes, ~0ULL),
	MUT1("variant 2", variant, ELASTICQ_VARIANT_LOCKFREE + 1),
	MUT1("variant ~0", variant, 0xffffffff),
	MUT1("full_policy 3", full_policy, 3),
	MUT1("full_policy ~0", full_policy, 0xffffffff),
	MUT1("reserved[0]", reserved[0], 1),
	MUT1("reserved[1]", reserved[1], 1ULL << 32),
	MUT1("reserved[2]", reserved[2], 1ULL << 63),
	MUT1("reserved[3]", reserved[3], 0x80),
	/* shrink x growth >= 100%: a shrink could leave the ring full. */
	MUT2("shrink 50 growth 200", shrink_pct, 50, growth_pct, 200),
	MUT2("shrink 25 growth 400", shrink_pct, 25, growth_pct, 400),
	MUT2("shrink 99 growth 102", shrink_pct, 99, growth_pct, 102),
};

/* Boundary values that must be accepted. */
static const struct mutation valid[] = {
	MUT1("growth 101", growth_pct, 101),
	MUT2("growth 1000 shrink 9", growth_pct, 1000, shrink_pct, 9),
	MUT1("shrink 1", shrink_pct, 1),
	MUT2("shrink 99 growth 101", shrink_pct, 99, growth_pct, 101),
	MUT2("shrink 49 growth 204", shrink_pct, 49, growth_pct, 204),
	MUT1("max_msg_size 1", max_msg_size, 1),
	MUT1("max_msg_size limit", max_msg_size, ELASTICQ_MSG_SIZE_LIMIT),
	MUT1("max_bytes 1", max_bytes, 1),
	MUT1("max_bytes = max_queue_bytes", max_bytes, 64ULL << 20),
	MUT2("min 1 initial 1", min_capacity, 1, initial_capacity, 1),
	MUT1("max limit", max_capacity, ELASTICQ_CAPACITY_LIMIT),
	MUT2("initial = max", initial_capacity, EQ_DEF_MAX,
	     min_capacity, EQ_DEF_MAX),
	MUT1("full_policy reject", full_policy, ELASTICQ_FULL_REJECT),
	MUT1("full_policy drop", full_policy, ELASTICQ_FULL_DROP_OLDEST),
	MUT2("timeouts 0", push_timeout_ns, 0, pop_timeout_ns, 0),
	MUT2("timeouts", push_timeout_ns, 123456789,
	     pop_timeout_ns, 987654321),
};

TEST_F(eq, config_validation)
{
	struct elasticq_config base, cfg;
	unsigned int i;

	eq_default_config(&base);
	ASSERT_EQ(0, eq_set_config(self->fd, &base));
	for (i = 0; i < sizeof(invalid) / sizeof(invalid[0]); i++) {
		cfg = base;
		mutate(&cfg, &invalid[i]);
		EXPECT_EQ(-EINVAL, eq_set_config_raw(self->fd, &cfg)) {
			TH_LOG("invalid config accepted: %s", invalid[i].name);
		}
		expect_config(_metadata, self->fd, &base);
	}
	for (i = 0; i < sizeof(valid) / sizeof(valid[0]); i++) {
		cfg = base;
		mutate(&cfg, &valid[i]);
		if (eq_lockfree() &&
		    cfg.full_policy == ELASTICQ_FULL_DROP_OLDEST) {
			/* Not with the lock-free variant. */
			EXPECT_EQ(-EINVAL, eq_set_config_raw(self->fd, &cfg));
			expect_config(_metadata, self->fd, &base);
			continue;
		}
		EXPECT_EQ(0, eq_set_config_raw(self->fd, &cfg)) {
			TH_LOG("valid config refused: %s", valid[i].name);
		}
		expect_config(_metadata, self->fd, &cfg);
		ASSERT_EQ(0, eq_set_config(self->fd, &base));
	}
}

/* The size field must match the size in the command. */
TEST_F(eq, size_field_mismatch)
{
	static const uint32_t sizes[] = { 0, 8, 95, 97, 136, 4096, ~0U };
	struct elasticq_config base, cfg;
	struct elasticq_stats st;
	unsigned int i;

	ASSERT_EQ(0, eq_get_config(self->fd, &base));
	for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		cfg = base;
		cfg.size = sizes[i];
		cfg.shrink_pct = 30;
		EXPECT_EQ(-EINVAL, eq_set_config_raw(self->fd, &cfg)) {
			TH_LOG("SET_CONFIG size %u", sizes[i]);
		}
		memset(&cfg, 0, sizeof(cfg));
		cfg.size = sizes[i];
		errno = 0;
		EXPECT_EQ(-1, ioctl(self->fd, ELASTICQ_IOC_GET_CONFIG, &cfg));
		EXPECT_EQ(EINVAL, errno);
		memset(&st, 0, sizeof(st));
		st.size = sizes[i] == 136 ? 96 : sizes[i];
		errno = 0;
		EXPECT_EQ(-1, ioctl(self->fd, ELASTICQ_IOC_GET_STATS, &st));
		EXPECT_EQ(EINVAL, errno);
	}
	expect_config(_metadata, self->fd, &base);
}

#define IOC_SET(sz)	_IOC(_IOC_WRITE, ELASTICQ_IOC_MAGIC, 0x03, (sz))
#define IOC_GETC(sz)	_IOC(_IOC_READ | _IOC_WRITE, ELASTICQ_IOC_MAGIC, 0x02, (sz))
#define IOC_GETS(sz)	_IOC(_IOC_READ | _IOC_WRITE, ELASTICQ_IOC_MAGIC, 0x01, (sz))

/* A struct smaller than the first published size is refused. */
TEST_F(eq, struct_smaller_than_ver0)
{
	static const uint32_t sizes[] = { 0, 4, 8, 64, 88 };
	struct elasticq_config base, cfg;
	unsigned int i;

	ASSERT_EQ(96, ELASTICQ_CONFIG_SIZE_VER0);
	ASSERT_EQ(136, ELASTICQ_STATS_SIZE_VER0);
	ASSERT_EQ(0, eq_get_config(self->fd, &base));
	for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		uint32_t sz = sizes[i];

		cfg = base;
		cfg.size = sz;
		cfg.growth_pct = 300;
		errno = 0;
		EXPECT_EQ(-1, ioctl(self->fd, IOC_SET(sz), &cfg));
		EXPECT_EQ(EINVAL, errno) {
			TH_LOG("SET_CONFIG of %u bytes", sz);
		}
		memset(buf, 0, 256);
		memcpy(buf, &sz, 4);
		errno = 0;
		EXPECT_EQ(-1, ioctl(self->fd, IOC_GETC(sz), buf));
		EXPECT_EQ(EINVAL, errno);
		errno = 0;
		EXPECT_EQ(-1, ioctl(self->fd, IOC_GETS(sz), buf));
		EXPECT_EQ(EINVAL, errno);
	}
	/* Stats between the config size and its own first size, too. */
	memset(buf, 0, 256);
	buf[0] = 128;
	errno = 0;
	EXPECT_EQ(-1, ioctl(self->fd, IOC_GETS(128), buf));
	EXPECT_EQ(EINVAL, errno);
	expect_config(_metadata, self->fd, &base);
}

/* A newer, larger struct: accepted when its unknown tail is zero. */
TEST_F(eq, set_config_larger_struct)
{
	struct {
		struct elasticq_config cfg;
		uint8_t tail[40];
	} big;
	struct elasticq_config base;

	ASSERT_EQ(0, eq_get_config(self->fd, &base));
	memset(&big, 0, sizeof(big));
	big.cfg = base;
	big.cfg.size = sizeof(big);
	big.cfg.shrink_pct = 33;
	big.tail[sizeof(big.tail) - 1] = 1;
	errno = 0;
	EXPECT_EQ(-1, ioctl(self->fd, IOC_SET(sizeof(big)), &big));
	EXPECT_EQ(E2BIG, errno);
	big.tail[sizeof(big.tail) - 1] = 0;
	big.tail[0] = 0x80;
	errno = 0;
	EXPECT_EQ(-1, ioctl(self->fd, IOC_SET(sizeof(big)), &big));
	EXPECT_EQ(E2BIG, errno);
	expect_config(_metadata, self->fd, &base);

	big.tail[0] = 0;
	ASSERT_EQ(0, ioctl(self->fd, IOC_SET(sizeof(big)), &big));
	big.cfg.size = sizeof(big.cfg);
	expect_config(_metadata, self->fd, &big.cfg);
}

/*
 * GET with a larger struct: the known part is filled in, @size says how
 * much, the tail is zeroed.  The known part's input is ignored except size
 * and flags.
 */
TEST_F(eq, get_larger_struct)
{
	struct {
		struct elasticq_stats st;
		uint8_t tail[64];
	} bs;
	struct {
		struct elasticq_config cfg;
		uint8_t tail[24];
	} bc;
	struct elasticq_config cfg;
	struct elasticq_stats st;
	unsigned int i;

	ASSERT_EQ(5, eq_push(self->fd, "hello", 5));
	ASSERT_EQ(0, eq_get_stats(self->fd, &st));
	memset(&bs, 0, sizeof(bs));
	memset(&bs.st, 0xee, sizeof(bs.st));
	bs.st.size = sizeof(bs);
	bs.st.flags = 0;
	ASSERT_EQ(0, ioctl(self->fd, IOC_GETS(sizeof(bs)), &bs));
	EXPECT_EQ(ELASTICQ_STATS_SIZE_VER0, bs.st.size);
	EXPECT_EQ(1, bs.st.len);
	EXPECT_EQ(5, bs.st.bytes);
	EXPECT_EQ(st.capacity, bs.st.capacity);
	EXPECT_EQ(st.enqueued, bs.st.enqueued);
	for (i = 0; i < 4; i++)
		EXPECT_EQ(0, bs.st.reserved[i]);
	for (i = 0; i < sizeof(bs.tail); i++)
		ASSERT_EQ(0, bs.tail[i]);

	ASSERT_EQ(0, eq_get_config(self->fd, &cfg));
	memset(&bc, 0, sizeof(bc));
	memset(&bc.cfg, 0xee, sizeof(bc.cfg));
	bc.cfg.size = sizeof(bc);
	bc.cfg.flags = 0;
	ASSERT_EQ(0, ioctl(self->fd, IOC_GETC(sizeof(bc)), &bc));
	EXPECT_EQ(0, memcmp(&cfg, &bc.cfg, sizeof(cfg)));
	for (i = 0; i < sizeof(bc.tail); i++)
		ASSERT_EQ(0, bc.tail[i]);
}

/*
 * "The GET ioctls read only @size and @flags, fill in the rest": whatever
 * the caller's buffer held beyond its known part is zeroed, not refused.
 */
TEST_F(eq, get_larger_struct_zero_fills_tail)
{
	struct {
		struct elasticq_stats st;
		uint8_t tail[64];
	} bs;
	struct {
		struct elasticq_config cfg;
		uint8_t tail[24];
	} bc;
	struct elasticq_config cfg;
	unsigned int i;

	memset(&bs, 0xa5, sizeof(bs));
	bs.st.size = sizeof(bs);
	bs.st.flags = 0;
	ASSERT_EQ(0, ioctl(self->fd, IOC_GETS(sizeof(bs)), &bs)) {
		TH_LOG("GET_STATS refused a garbage tail: %s", strerror(errno));
	}
	EXPECT_EQ(ELASTICQ_STATS_SIZE_VER0, bs.st.size);
	EXPECT_EQ(0, bs.st.len);
	for (i = 0; i < sizeof(bs.tail); i++)
		ASSERT_EQ(0, bs.tail[i]);

	ASSERT_EQ(0, eq_get_config(self->fd, &cfg));
	memset(&bc, 0xa5, sizeof(bc));
	bc.cfg.size = sizeof(bc);
	bc.cfg.flags = 0;
	ASSERT_EQ(0, ioctl(self->fd, IOC_GETC(sizeof(bc)), &bc)) {
		TH_LOG("GET_CONFIG refused a garbage tail: %s", strerror(errno));
	}
	EXPECT_EQ(0, memcmp(&cfg, &bc.cfg, sizeof(cfg)));
	for (i = 0; i < sizeof(bc.tail); i++)
		ASSERT_EQ(0, bc.tail[i]);
}

TEST_F(eq, flags_nonzero)
{
	struct elasticq_config base, cfg;
	struct elasticq_stats st;

	ASSERT_EQ(0, eq_get_config(self->fd, &base));
	memset(&st, 0, sizeof(st));
	st.size = sizeof(st);
	st.flags = 1;
	errno = 0;
	EXPECT_EQ(-1, ioctl(self->fd, ELASTICQ_IOC_GET_STATS, &st));
	EXPECT_EQ(EINVAL, errno);

	memset(&cfg, 0, sizeof(cfg));
	cfg.size = sizeof(cfg);
	cfg.flags = 0x100;
	errno = 0;
	EXPECT_EQ(-1, ioctl(self->fd, ELASTICQ_IOC_GET_CONFIG, &cfg));
	EXPECT_EQ(EINVAL, errno);

	cfg = base;
	cfg.flags = 2;
	EXPECT_EQ(-EINVAL, eq_set_config_raw(self->fd, &cfg));
	expect_config(_metadata, self->fd, &base);
}

TEST_F(eq, variant_change)
{
	struct elasticq_config base, cfg;

	ASSERT_EQ(0, eq_get_config(self->fd, &base));
	ASSERT_EQ(eq_variant(), base.variant);
	cfg = base;
	cfg.variant = base.variant == ELASTICQ_VARIANT_LOCKED ?
		      ELASTICQ_VARIANT_LOCKFREE : ELASTICQ_VARIANT_LOCKED;
	EXPECT_EQ(-EINVAL, eq_set_config(self->fd, &cfg));
	expect_config(_metadata, self->fd, &base);
}

/* The new limits must hold what is queued now. */
TEST_F(eq, ebusy_below_queued)
{
	struct elasticq_config cfg, base;
	struct elasticq_stats st;
	uint32_t i;
	int nb;

	ASSERT_EQ(0, eq_get_config(self->fd, &cfg));
	cfg.min_capacity = 1;
	cfg.initial_capacity = 16;
	cfg.max_capacity = 16;
	ASSERT_EQ(0, eq_set_config(self->fd, &cfg));
	ASSERT_EQ(0, eq_push_n(self->fd, 5, 0, 10, 100));
	base = cfg;

	cfg.max_capacity = 9;
	cfg.initial_capacity = 9;
	EXPECT_EQ(-EBUSY, eq_set_config(self->fd, &cfg));
	expect_config(_metadata, self->fd, &base);
	cfg = base;
	cfg.max_bytes = 999;
	EXPECT_EQ(-EBUSY, eq_set_config(self->fd, &cfg));
	expect_config(_metadata, self->fd, &base);

	/* Exactly what is queued fits. */
	cfg.max_capacity = 10;
	cfg.initial_capacity = 10;
	cfg.max_bytes = 1000;
	ASSERT_EQ(0, eq_set_config(self->fd, &cfg));
	expect_config(_metadata, self->fd, &cfg);
	ASSERT_EQ(0, eq_get_stats(self->fd, &st));
	EXPECT_EQ(10, st.len);
	EXPECT_EQ(10, st.capacity);
	EXPECT_EQ(1000, st.bytes);

	/* Full now, and nothing was lost or reordered. */
	nb = eq_open(O_NONBLOCK);
	ASSERT_LE(0, nb);
	EXPECT_EQ(-EAGAIN, eq_push(nb, buf, 1));
	for (i = 0; i < 10; i++) {
		ASSERT_EQ(100, eq_pop(nb, buf, sizeof(buf)));
		EXPECT_TRUE(eq_check_fill(buf, 100, 5, i));
	}
	EXPECT_EQ(-EAGAIN, eq_pop(nb, buf, sizeof(buf)));
	close(nb);
}

/* A config change brings the capacity within the new bounds at once. */
TEST_F(eq, set_config_clamps_capacity)
{
	struct elasticq_config cfg;
	struct elasticq_stats st;

	ASSERT_EQ(0, eq_get_config(self->fd, &cfg));
	cfg.min_capacity = 2048;
	cfg.initial_capacity = 2048;
	cfg.max_capacity = 65536;
	ASSERT_EQ(0, eq_set_config(self->fd, &cfg));
	ASSERT_EQ(0, eq_get_stats(self->fd, &st));
	EXPECT_EQ(2048, st.capacity);
	cfg.min_capacity = 16;
	cfg.initial_capacity = 16;
	cfg.max_capacity = 100;
	ASSERT_EQ(0, eq_set_config(self->fd, &cfg));
	ASSERT_EQ(0, eq_get_stats(self->fd, &st));
	EXPECT_EQ(100, st.capacity);
}

TEST_F(eq, unknown_command_enotty)
{
	const unsigned long cmds[] = {
		_IOWR('x', 0x01, struct elasticq_stats),
		_IOWR(0xEB, 0x02, struct elasticq_config),
		_IOW(0x00, 0x03, struct elasticq_config),
		_IOWR(ELASTICQ_IOC_MAGIC, 0x00, struct elasticq_stats),
		_IOWR(ELASTICQ_IOC_MAGIC, 0x40, struct elasticq_config),
		_IOW(ELASTICQ_IOC_MAGIC, 0x40, struct elasticq_config),
		/* ATTACH, DESTROY, the batches: the wrong direction. */
		_IOWR(ELASTICQ_IOC_MAGIC, 0x04, struct elasticq_attach),
		_IOR(ELASTICQ_IOC_MAGIC, 0x05, struct elasticq_destroy),
		_IOW(ELASTICQ_IOC_MAGIC, 0x07, struct elasticq_push_batch),
		_IOR(ELASTICQ_IOC_MAGIC, 0x08, struct elasticq_pop_batch),
		/* CONSUME takes no struct. */
		_IOW(ELASTICQ_IOC_MAGIC, 0x06, __u64),
		_IOWR(ELASTICQ_IOC_MAGIC, 0x7f, struct elasticq_stats),
		_IOWR(ELASTICQ_IOC_MAGIC, 0xff, struct elasticq_config),
		_IO(ELASTICQ_IOC_MAGIC, 0x01),
		/* The right number with the wrong direction. */
		_IOR(ELASTICQ_IOC_MAGIC, 0x01, struct elasticq_stats),
		_IOW(ELASTICQ_IOC_MAGIC, 0x02, struct elasticq_config),
		_IOWR(ELASTICQ_IOC_MAGIC, 0x03, struct elasticq_config),
		TCGETS,
	};
	struct elasticq_config base;
	unsigned int i;

	ASSERT_EQ(0, eq_get_config(self->fd, &base));
	for (i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
		memset(buf, 0, 256);
		eq_get_config(self->fd, (struct elasticq_config *)buf);
		errno = 0;
		EXPECT_EQ(-1, ioctl(self->fd, cmds[i], buf));
		EXPECT_EQ(ENOTTY, errno) {
			TH_LOG("command %#lx", cmds[i]);
		}
	}
	EXPECT_EQ(0, isatty(self->fd));
	expect_config(_metadata, self->fd, &base);
}

TEST_F(eq, ioctl_efault)
{
	const unsigned long cmds[] = {
		ELASTICQ_IOC_GET_STATS, ELASTICQ_IOC_GET_CONFIG,
		ELASTICQ_IOC_SET_CONFIG,
	};
	struct elasticq_config base, cfg;
	uint8_t *p, *ro;
	unsigned int i;

	ASSERT_EQ(0, eq_get_config(self->fd, &base));
	p = guarded_page();
	ASSERT_NE(NULL, p);
	for (i = 0; i < 3; i++) {
		unsigned long sz = _IOC_SIZE(cmds[i]);
		uint8_t *straddle = p + page_size - sz / 2;

		errno = 0;
		EXPECT_EQ(-1, ioctl(self->fd, cmds[i], null_ptr));
		EXPECT_EQ(EFAULT, errno);
		errno = 0;
		EXPECT_EQ(-1, ioctl(self->fd, cmds[i], low_ptr));
		EXPECT_EQ(EFAULT, errno);
		errno = 0;
		EXPECT_EQ(-1, ioctl(self->fd, cmds[i], p + page_size));
		EXPECT_EQ(EFAULT, errno);
		/* Readable at first, faulting part-way. */
		cfg = base;
		cfg.size = sz;
		cfg.shrink_pct = 40;
		memcpy(straddle, &cfg, sz / 2);
		errno = 0;
		EXPECT_EQ(-1, ioctl(self->fd, cmds[i], straddle));
		EXPECT_EQ(EFAULT, errno) {
			TH_LOG("command %#lx", cmds[i]);
		}
		expect_config(_metadata, self->fd, &base);
	}
	munmap(p, 2 * page_size);

	/* A read-only struct: GETs fault writing back, SET only reads. */
	ro = mmap(NULL, page_size, PROT_READ | PROT_WRITE,
		  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, ro);
	cfg = base;
	cfg.shrink_pct = 40;
	memcpy(ro, &cfg, sizeof(cfg));
	memset(ro + 1024, 0, 256);
	*(uint32_t *)(ro + 1024) = sizeof(struct elasticq_stats);
	ASSERT_EQ(0, mprotect(ro, page_size, PROT_READ));
	errno = 0;
	EXPECT_EQ(-1, ioctl(self->fd, ELASTICQ_IOC_GET_STATS, ro + 1024));
	EXPECT_EQ(EFAULT, errno);
	errno = 0;
	EXPECT_EQ(-1, ioctl(self->fd, ELASTICQ_IOC_GET_CONFIG, ro));
	EXPECT_EQ(EFAULT, errno);
	expect_config(_metadata, self->fd, &base);
	EXPECT_EQ(0, ioctl(self->fd, ELASTICQ_IOC_SET_CONFIG, ro));
	expect_config(_metadata, self->fd, &cfg);
	munmap(ro, page_size);
}

TEST_F(eq, write_efault)
{
	struct elasticq_stats st0, st;
	struct iovec iov[2];
	uint8_t *p;

	p = guarded_page();
	ASSERT_NE(NULL, p);
	ASSERT_EQ(0, eq_get_stats(self->fd, &st0));
	EXPECT_EQ(-EFAULT, eq_push(self->fd, null_ptr, 10));
	EXPECT_EQ(-EFAULT, eq_push(self->fd, low_ptr, 10));
	EXPECT_EQ(-EFAULT, eq_push(self->fd, p + page_size, 10));
	/* Faulting part-way through the payload. */
	EXPECT_EQ(-EFAULT, eq_push(self->fd, p + page_size - 100, 200));
	iov[0].iov_base = p;
	iov[0].iov_len = 100;
	iov[1].iov_base = p + page_size;
	iov[1].iov_len = 100;
	errno = 0;
	EXPECT_EQ(-1, writev(self->fd, iov, 2));
	EXPECT_EQ(EFAULT, errno);
	ASSERT_EQ(0, eq_get_stats(self->fd, &st));
	EXPECT_EQ(0, st.len);
	EXPECT_EQ(0, st.bytes);
	EXPECT_EQ(st0.enqueued, st.enqueued);
	EXPECT_EQ(st0.mem_bytes, st.mem_bytes);
	/* The right part of the buffer still works. */
	EXPECT_EQ(100, eq_push(self->fd, p + page_size - 100, 100));
	EXPECT_EQ(100, eq_pop(self->fd, buf, sizeof(buf)));
	munmap(p, 2 * page_size);
}

/* A read whose copy-out faults leaves the message queued, intact. */
TEST_F(eq, read_efault_keeps_message)
{
	struct elasticq_stats st0, st;
	struct iovec iov[2];
	uint8_t *p;

	p = guarded_page();
	ASSERT_NE(NULL, p);
	eq_fill(buf, 6000, 11, 1);
	ASSERT_EQ(6000, eq_push(self->fd, buf, 6000));
	ASSERT_EQ(1, eq_push(self->fd, "2", 1));
	ASSERT_EQ(0, eq_get_stats(self->fd, &st0));

	/* The copy gets 1000 bytes in, then hits the PROT_NONE page. */
	EXPECT_EQ(-EFAULT, eq_pop(self->fd, p + page_size - 1000, 6000));
	EXPECT_EQ(-EFAULT, eq_pop(self->fd, null_ptr, 8192));
	EXPECT_EQ(-EFAULT, eq_pop(self->fd, p + page_size, 8192));
	iov[0].iov_base = p;
	iov[0].iov_len = 3000;
	iov[1].iov_base = p + page_size;
	iov[1].iov_len = 3000;
	errno = 0;
	EXPECT_EQ(-1, readv(self->fd, iov, 2));
	EXPECT_EQ(EFAULT, errno);
	ASSERT_EQ(0, eq_get_stats(self->fd, &st));
	EXPECT_EQ(2, st.len);
	EXPECT_EQ(6001, st.bytes);
	EXPECT_EQ(st0.dequeued, st.dequeued);
	EXPECT_EQ(st0.mem_bytes, st.mem_bytes);

	memset(buf, 0, 6000);
	ASSERT_EQ(6000, eq_pop(self->fd, buf, sizeof(buf)));
	EXPECT_TRUE(eq_check_fill(buf, 6000, 11, 1));
	ASSERT_EQ(1, eq_pop(self->fd, buf, sizeof(buf)));
	EXPECT_EQ('2', buf[0]);
	munmap(p, 2 * page_size);
}

/* SET_CONFIG needs CAP_SYS_ADMIN; reading config and stats does not. */
TEST_F(eq, set_config_unprivileged_eperm)
{
	struct eq_child_report *rep = &self->rep[0];
	struct elasticq_config base;
	pid_t pid;

	ASSERT_EQ(0, eq_get_config(self->fd, &base));
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		struct elasticq_config cfg = base;
		struct elasticq_stats st;
		int fd;

		if (setgroups(0, NULL) || setgid(65534) || setuid(65534))
			_exit(2);
		/* The same config: refused all the same. */
		rep->ret = eq_set_config(self->fd, &cfg);
		fd = eq_open(0);
		if (fd < 0)
			_exit(3);
		cfg.shrink_pct = 50;
		rep->ret2 = eq_set_config(fd, &cfg);
		rep->handled = eq_get_config(fd, &cfg) == 0 &&
			       eq_get_stats(fd, &st) == 0;
		_exit(0);
	}
	self->child[0] = pid;
	ASSERT_EQ(0, eq_wait_exit(pid));
	self->child[0] = 0;
	EXPECT_EQ(-EPERM, rep->ret);
	EXPECT_EQ(-EPERM, rep->ret2);
	EXPECT_EQ(1, rep->handled);
	expect_config(_metadata, self->fd, &base);
}

/* Set a 4-slot queue (or @max_bytes) with @policy; 30 s push timeout. */
static void small_queue(struct __test_metadata *_metadata, int fd,
			uint32_t policy, uint64_t max_bytes)
{
	struct elasticq_config cfg;

	ASSERT_EQ(0, eq_get_config(fd, &cfg));
	if (!max_bytes) {
		cfg.min_capacity = 1;
		cfg.initial_capacity = 4;
		cfg.max_capacity = 4;
	} else {
		cfg.max_bytes = max_bytes;
	}
	cfg.full_policy = policy;
	/* A push that wrongly blocks fails the test instead of hanging. */
	cfg.push_timeout_ns = 30000 * EQ_MS;
	ASSERT_EQ(0, eq_set_config(fd, &cfg));
}

TEST_F(eq, policy_reject)
{
	struct elasticq_stats st0, st;
	uint64_t t0;
	int nb;

	small_queue(_metadata, self->fd, ELASTICQ_FULL_REJECT, 0);
	ASSERT_EQ(0, eq_get_stats(self->fd, &st0));
	ASSERT_EQ(0, eq_push_n(self->fd, 6, 0, 4, 8));
	t0 = eq_now_ns();
	EXPECT_EQ(-EAGAIN, eq_push(self->fd, buf, 8));
	EXPECT_GT(10000 * EQ_MS, eq_now_ns() - t0);
	nb = eq_open(O_NONBLOCK);
	ASSERT_LE(0, nb);
	EXPECT_EQ(-EAGAIN, eq_push(nb, buf, 8));
	close(nb);
	ASSERT_EQ(0, eq_get_stats(self->fd, &st));
	EXPECT_EQ(4, st.len);
	EXPECT_EQ(st0.enqueued + 4, st.enqueued);
	EXPECT_EQ(st0.rejected + 2, st.rejected);
	EXPECT_EQ(st0.dropped, st.dropped);
	EXPECT_EQ(POLLIN, poll_now_in_out(self->fd));

	/* Room again after a pop. */
	ASSERT_EQ(8, eq_pop(self->fd, buf, sizeof(buf)));
	EXPECT_TRUE(eq_check_fill(buf, 8, 6, 0));
	eq_fill(buf, 8, 6, 4);
	EXPECT_EQ(8, eq_push(self->fd, buf, 8));
	ASSERT_EQ(0, eq_get_stats(self->fd, &st));
	EXPECT_EQ(st0.rejected + 2, st.rejected);
}

TEST_F(eq, policy_reject_bytes)
{
	struct elasticq_stats st0, st;
	uint64_t t0;

	small_queue(_metadata, self->fd, ELASTICQ_FULL_REJECT, 100);
	ASSERT_EQ(0, eq_get_stats(self->fd, &st0));
	ASSERT_EQ(60, eq_push(self->fd, buf, 60));
	t0 = eq_now_ns();
	EXPECT_EQ(-EAGAIN, eq_push(self->fd, buf, 41));
	EXPECT_GT(10000 * EQ_MS, eq_now_ns() - t0);
	EXPECT_EQ(40, eq_push(self->fd, buf, 40));
	ASSERT_EQ(0, eq_get_stats(self->fd, &st));
	EXPECT_EQ(2, st.len);
	EXPECT_EQ(100, st.bytes);
	EXPECT_EQ(st0.rejected + 1, st.rejected);
}

TEST_F(eq, policy_drop_oldest)
{
	struct elasticq_stats st0, st;
	uint32_t i;
	int nb;

	if (eq_lockfree())
		SKIP(return, "lock-free: no drop-oldest policy");
	small_queue(_metadata, self->fd, ELASTICQ_FULL_DROP_OLDEST, 0);
	ASSERT_EQ(0, eq_get_stats(self->fd, &st0));
	ASSERT_EQ(0, eq_push_n(self->fd, 7, 0, 6, 16));
	nb = eq_open(O_NONBLOCK);
	ASSERT_LE(0, nb);
	/* Non-blocking too: a write never has to wait. */
	EXPECT_EQ(POLLIN | POLLOUT, poll_now_in_out(nb));
	ASSERT_EQ(0, eq_push_n(nb, 7, 6, 1, 16));
	ASSERT_EQ(0, eq_get_stats(self->fd, &st));
	EXPECT_EQ(4, st.len);
	EXPECT_EQ(4, st.capacity);
	EXPECT_EQ(64, st.bytes);
	EXPECT_EQ(st0.enqueued + 7, st.enqueued);
	EXPECT_EQ(st0.dropped + 3, st.dropped);
	EXPECT_EQ(st0.rejected, st.rejected);
	/* The newest four, oldest first. */
	for (i = 3; i < 7; i++) {
		ASSERT_EQ(16, eq_pop(nb, buf, sizeof(buf)));
		EXPECT_TRUE(eq_check_fill(buf, 16, 7, i)) {
			TH_LOG("message %u", i);
		}
	}
	EXPECT_EQ(-EAGAIN, eq_pop(nb, buf, sizeof(buf)));
	ASSERT_EQ(0, eq_get_stats(self->fd, &st));
	EXPECT_EQ(st0.dequeued + 4, st.dequeued);
	close(nb);
}

TEST_F(eq, policy_drop_oldest_bytes)
{
	struct elasticq_stats st0, st;

	if (eq_lockfree())
		SKIP(return, "lock-free: no drop-oldest policy");
	small_queue(_metadata, self->fd, ELASTICQ_FULL_DROP_OLDEST, 100);
	ASSERT_EQ(0, eq_get_stats(self->fd, &st0));
	memset(buf, 'a', 60);
	ASSERT_EQ(60, eq_push(self->fd, buf, 60));
	memset(buf, 'b', 30);
	ASSERT_EQ(30, eq_push(self->fd, buf, 30));
	/* 60 + 30 + 50 > 100: "a" goes. */
	memset(buf, 'c', 50);
	ASSERT_EQ(50, eq_push(self->fd, buf, 50));
	ASSERT_EQ(0, eq_get_stats(self->fd, &st));
	EXPECT_EQ(2, st.len);
	EXPECT_EQ(80, st.bytes);
	EXPECT_EQ(st0.dropped + 1, st.dropped);
	/* A message of max_bytes pushes out everything. */
	memset(buf, 'd', 100);
	ASSERT_EQ(100, eq_push(self->fd, buf, 100));
	ASSERT_EQ(0, eq_get_stats(self->fd, &st));
	EXPECT_EQ(1, st.len);
	EXPECT_EQ(100, st.bytes);
	EXPECT_EQ(st0.dropped + 3, st.dropped);
	EXPECT_EQ(st0.enqueued + 4, st.enqueued);
	ASSERT_EQ(100, eq_pop(self->fd, buf, sizeof(buf)));
	EXPECT_EQ('d', buf[0]);
	EXPECT_EQ('d', buf[99]);
}

/*
 * 32-bit callers (compat_ptr_ioctl): the i386 system calls, entered with
 * int $0x80 from this 64-bit process, with buffers below 4 GiB.
 */
static long int80(long nr, long a, long b, long c)
{
	long ret;

	asm volatile("int $0x80"
		     : "=a"(ret)
		     : "a"(nr), "b"(a), "c"(b), "d"(c)
		     : "memory", "r8", "r9", "r10", "r11");
	return ret;
}

#define NR32_READ	3
#define NR32_WRITE	4
#define NR32_GETPID	20
#define NR32_IOCTL	54

/*
 * Without IA32_EMULATION int $0x80 is a general protection fault; its
 * sysctl tells without trying (6.7+ may still turn it off at boot).
 */
static bool have_int80(void)
{
	pid_t pid;

	if (access("/proc/sys/abi/vsyscall32", F_OK))
		return false;
	pid = fork();

	if (pid == 0)
		_exit(int80(NR32_GETPID, 0, 0, 0) == getpid() ? 0 : 1);
	return pid > 0 && eq_wait_exit(pid) == 0;
}

TEST_F(eq, compat_32bit_callers)
{
	struct elasticq_config native, *cfg;
	struct elasticq_stats mine, *st;
	struct elasticq_pop_batch *pb;
	uint8_t *p;
	long r;

	if (!have_int80())
		SKIP(return, "no 32-bit system calls in this kernel");
	p = mmap(NULL, 4096, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_32BIT, -1, 0);
	ASSERT_NE(MAP_FAILED, p);
	ASSERT_GT(1ULL << 32, (unsigned long long)(uintptr_t)p);
	st = (struct elasticq_stats *)p;
	cfg = (struct elasticq_config *)(p + 512);

	ASSERT_EQ(3, eq_push(self->fd, "abc", 3));
	memset(st, 0, sizeof(*st));
	st->size = sizeof(*st);
	r = int80(NR32_IOCTL, self->fd, ELASTICQ_IOC_GET_STATS, (long)st);
	if (r == -ENOSYS)
		SKIP(return, "no 32-bit system calls in this kernel");
	ASSERT_EQ(0, r);
	ASSERT_EQ(0, eq_get_stats(self->fd, &mine));
	EXPECT_EQ(sizeof(*st), st->size);
	EXPECT_EQ(1, st->len);
	EXPECT_EQ(3, st->bytes);
	EXPECT_EQ(mine.capacity, st->capacity);
	EXPECT_EQ(mine.enqueued, st->enqueued);

	memset(cfg, 0, sizeof(*cfg));
	cfg->size = sizeof(*cfg);
	ASSERT_EQ(0, int80(NR32_IOCTL, self->fd, ELASTICQ_IOC_GET_CONFIG,
			   (long)cfg));
	ASSERT_EQ(0, eq_get_config(self->fd, &native));
	EXPECT_EQ(0, memcmp(&native, cfg, sizeof(native)));
	cfg->shrink_pct = 45;
	ASSERT_EQ(0, int80(NR32_IOCTL, self->fd, ELASTICQ_IOC_SET_CONFIG,
			   (long)cfg));
	expect_config(_metadata, self->fd, cfg);
	cfg->shrink_pct = 0;
	EXPECT_EQ(-EINVAL, int80(NR32_IOCTL, self->fd, ELASTICQ_IOC_SET_CONFIG,
				 (long)cfg));
	EXPECT_EQ(-ENOTTY, int80(NR32_IOCTL, self->fd,
				 _IOWR(ELASTICQ_IOC_MAGIC, 0x7f,
				       struct elasticq_stats), (long)st));
	EXPECT_EQ(-EFAULT, int80(NR32_IOCTL, self->fd,
				 ELASTICQ_IOC_GET_STATS, 16));

	/* And messages both ways. */
	memcpy(p + 2048, "compat", 6);
	EXPECT_EQ(6, int80(NR32_WRITE, self->fd, (long)(p + 2048), 6));
	EXPECT_EQ(3, int80(NR32_READ, self->fd, (long)(p + 3072), 100));
	EXPECT_EQ(0, memcmp(p + 3072, "abc", 3));
	EXPECT_EQ(6, int80(NR32_READ, self->fd, (long)(p + 3072), 100));
	EXPECT_EQ(0, memcmp(p + 3072, "compat", 6));

	/* A batch: the struct's pointers are __u64 whatever the caller. */
	ASSERT_EQ(2, eq_push(self->fd, "b1", 2));
	pb = (struct elasticq_pop_batch *)(p + 1024);
	memset(pb, 0, sizeof(*pb));
	pb->size = sizeof(*pb);
	pb->buf = (uintptr_t)(p + 3072);
	pb->buf_len = 1024;
	pb->max_msgs = 8;
	EXPECT_EQ(1, int80(NR32_IOCTL, self->fd, ELASTICQ_IOC_POP_BATCH,
			   (long)pb));
	EXPECT_EQ(ELASTICQ_FRAME_SIZE(2), pb->bytes);
	EXPECT_EQ(0, memcmp(p + 3072 + sizeof(struct elasticq_frame), "b1", 2));
	munmap(p, 4096);
}

TEST_HARNESS_MAIN
