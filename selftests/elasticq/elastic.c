// SPDX-License-Identifier: MIT
/*
 * Elastic capacity (SPEC section 7): the ring grows and shrinks exactly as
 * the formulas say.  A reference model of the formulas runs next to the
 * queue and GET_STATS is compared with it after every push and every pop.
 */
#include "eq_test.h"

/* SPEC section 7, written out independently of the module. */
struct model {
	uint64_t cap, len, min, max, growth, shrink;
	uint64_t grows, shrinks, high;
};

static void model_init(struct model *m, const struct elasticq_config *cfg)
{
	memset(m, 0, sizeof(*m));
	m->cap = cfg->initial_capacity;
	m->min = cfg->min_capacity;
	m->max = cfg->max_capacity;
	m->growth = cfg->growth_pct;
	m->shrink = cfg->shrink_pct;
}

/* Grow: a push finds len == capacity and capacity < max. */
static void model_push(struct model *m)
{
	if (m->len == m->cap && m->cap < m->max) {
		/* ceil(capacity x growth) */
		uint64_t c = m->cap * m->growth / 100 +
			     (m->cap * m->growth % 100 != 0);

		if (c < m->len + 1)
			c = m->len + 1;
		if (c > m->max)
			c = m->max;
		m->cap = c;
		m->grows++;
	}
	m->len++;
	if (m->len > m->high)
		m->high = m->len;
}

/* Shrink: a pop leaves len <= floor(capacity x threshold), capacity > min. */
static void model_pop(struct model *m)
{
	m->len--;
	if (m->len <= m->cap * m->shrink / 100 && m->cap > m->min) {
		/* max(floor(capacity / growth), len, min) */
		uint64_t c = m->cap * 100 / m->growth;

		if (c < m->len)
			c = m->len;
		if (c < m->min)
			c = m->min;
		m->cap = c;
		m->shrinks++;
	}
}

/* The queue and its model side by side. */
struct run {
	int fd;
	struct model m;
	struct elasticq_stats st0;	/* before the first operation */
	uint32_t next_push, next_pop;	/* message sequence numbers */
	uint64_t caps[256];		/* capacities in the order seen */
	unsigned int ncaps;
	uint64_t peak_mem;
};

/*
 * Install @cfg with the ring at exactly cfg->initial_capacity: the queue is
 * empty, so a config with max == initial clamps it there first.
 */
static void run_start(struct __test_metadata *_metadata, struct run *r, int fd,
		      const struct elasticq_config *cfg)
{
	struct elasticq_config tight = *cfg;

	memset(r, 0, sizeof(*r));
	r->fd = fd;
	tight.min_capacity = cfg->initial_capacity;
	tight.max_capacity = cfg->initial_capacity;
	ASSERT_EQ(0, eq_set_config(fd, &tight));
	ASSERT_EQ(0, eq_set_config(fd, cfg));
	ASSERT_EQ(0, eq_get_stats(fd, &r->st0));
	ASSERT_EQ(0, r->st0.len);
	ASSERT_EQ(cfg->initial_capacity, r->st0.capacity);
	model_init(&r->m, cfg);
	r->caps[r->ncaps++] = r->m.cap;
	r->peak_mem = r->st0.mem_bytes;
}

static void run_check(struct __test_metadata *_metadata, struct run *r,
		      const char *op)
{
	struct elasticq_stats st;

	ASSERT_EQ(0, eq_get_stats(r->fd, &st));
	ASSERT_EQ(r->m.len, st.len) {
		TH_LOG("after %s #%u", op, r->next_push);
	}
	ASSERT_EQ(r->m.cap, st.capacity) {
		TH_LOG("after %s: len %llu, capacity %llu, expected %llu",
		       op, (unsigned long long)st.len,
		       (unsigned long long)st.capacity,
		       (unsigned long long)r->m.cap);
	}
	ASSERT_EQ(r->st0.grows + r->m.grows, st.grows);
	ASSERT_EQ(r->st0.shrinks + r->m.shrinks, st.shrinks);
	ASSERT_EQ(r->st0.enqueued + r->next_push, st.enqueued);
	ASSERT_EQ(r->st0.dequeued + r->next_pop, st.dequeued);
	ASSERT_EQ(4 * r->m.len, st.bytes);
	/* The payload and a ring of that many slots are held, at the least. */
	ASSERT_LE(st.bytes + st.capacity, st.mem_bytes);
	if (st.mem_bytes > r->peak_mem)
		r->peak_mem = st.mem_bytes;
	if (r->caps[r->ncaps - 1] != st.capacity) {
		ASSERT_GT(sizeof(r->caps) / sizeof(r->caps[0]), r->ncaps);
		r->caps[r->ncaps++] = st.capacity;
	}
}

static void run_push(struct __test_metadata *_metadata, struct run *r,
		     uint32_t n)
{
	while (n--) {
		uint32_t seq = r->next_push;

		ASSERT_EQ(4, eq_push(r->fd, &seq, 4));
		r->next_push++;
		model_push(&r->m);
		run_check(_metadata, r, "push");
	}
}

static void run_pop(struct __test_metadata *_metadata, struct run *r,
		    uint32_t n)
{
	while (n--) {
		uint32_t seq = ~0U;

		ASSERT_EQ(4, eq_pop(r->fd, &seq, 4));
		ASSERT_EQ(r->next_pop, seq);
		r->next_pop++;
		model_pop(&r->m);
		run_check(_metadata, r, "pop");
	}
}

static void run_end(struct __test_metadata *_metadata, struct run *r)
{
	struct elasticq_stats st;

	ASSERT_EQ(0, r->m.len);
	ASSERT_EQ(0, eq_get_stats(r->fd, &st));
	EXPECT_EQ(0, st.len);
	EXPECT_EQ(0, st.bytes);
	EXPECT_EQ(r->st0.high_water > r->m.high ? r->st0.high_water : r->m.high,
		  st.high_water);
	EXPECT_EQ(r->st0.dropped, st.dropped);
	EXPECT_EQ(r->st0.rejected, st.rejected);
}

static void expect_caps(struct __test_metadata *_metadata, const struct run *r,
			const uint64_t *want, unsigned int n)
{
	unsigned int i;

	EXPECT_EQ(n, r->ncaps);
	for (i = 0; i < n && i < r->ncaps; i++)
		EXPECT_EQ(want[i], r->caps[i]) {
			TH_LOG("capacity change #%u", i);
		}
}

TEST_F_TIMEOUT(eq, defaults_grow_and_shrink, 600)
{
	static const uint64_t want[] = {
		1024, 2048, 4096, 8192, 16384, 32768, 65536,
		32768, 16384, 8192, 4096, 2048, 1024,
	};
	struct elasticq_config cfg;
	struct elasticq_stats st;
	uint64_t mem_full, mem_start;
	uint32_t x = 0;
	struct run r;
	int nb;

	eq_default_config(&cfg);
	run_start(_metadata, &r, self->fd, &cfg);
	mem_start = r.st0.mem_bytes;
	run_push(_metadata, &r, EQ_DEF_MAX);
	ASSERT_EQ(6, r.m.grows);

	/* Full at max: no growth beyond it. */
	nb = eq_open(O_NONBLOCK);
	ASSERT_LE(0, nb);
	EXPECT_EQ(-EAGAIN, eq_push(nb, &x, 4));
	close(nb);
	ASSERT_EQ(0, eq_get_stats(self->fd, &st));
	EXPECT_EQ(EQ_DEF_MAX, st.capacity);
	EXPECT_EQ(EQ_DEF_MAX, st.len);
	EXPECT_EQ(EQ_DEF_MAX, st.high_water);
	mem_full = st.mem_bytes;
	/* The rejected push above is not part of the model's counters. */
	r.st0.rejected = st.rejected;

	run_pop(_metadata, &r, EQ_DEF_MAX);
	ASSERT_EQ(6, r.m.shrinks);
	run_end(_metadata, &r);
	expect_caps(_metadata, &r, want, sizeof(want) / sizeof(want[0]));

	/* The memory went back: as little held as before the burst. */
	ASSERT_EQ(0, eq_get_stats(self->fd, &st));
	EXPECT_EQ(mem_start, st.mem_bytes);
	EXPECT_LT(st.mem_bytes * 32, mem_full);
	EXPECT_EQ(mem_full, r.peak_mem);
}

TEST_F_TIMEOUT(eq, growth150_shrink30, 300)
{
	/* ceil(x * 1.5) from 10, capped at 3000. */
	static const uint64_t up[] = {
		10, 15, 23, 35, 53, 80, 120, 180, 270, 405, 608, 912,
		1368, 2052, 3000,
	};
	struct elasticq_config cfg;
	struct elasticq_stats st;
	struct run r;

	eq_default_config(&cfg);
	cfg.min_capacity = 10;
	cfg.initial_capacity = 10;
	cfg.max_capacity = 3000;
	cfg.growth_pct = 150;
	cfg.shrink_pct = 30;
	run_start(_metadata, &r, self->fd, &cfg);
	run_push(_metadata, &r, 3000);
	expect_caps(_metadata, &r, up, sizeof(up) / sizeof(up[0]));
	ASSERT_EQ(0, eq_get_stats(self->fd, &st));
	EXPECT_EQ(3000, st.capacity);

	/* Down to empty, then a zigzag: the model decides every step. */
	run_pop(_metadata, &r, 3000);
	EXPECT_EQ(10, r.m.cap);
	run_push(_metadata, &r, 500);
	run_pop(_metadata, &r, 400);
	run_push(_metadata, &r, 1000);
	run_pop(_metadata, &r, 1050);
	run_push(_metadata, &r, 37);
	run_pop(_metadata, &r, 20);
	run_push(_metadata, &r, 2500);
	run_pop(_metadata, &r, 2567);
	run_end(_metadata, &r);
	ASSERT_EQ(0, eq_get_stats(self->fd, &st));
	EXPECT_EQ(10, st.capacity);
	EXPECT_LT(20, r.m.grows);
	EXPECT_LT(20, r.m.shrinks);
}

/* Small rings, odd factors: growth 101% moves one slot at a time. */
TEST_F(eq, small_ring_odd_factors)
{
	struct elasticq_config cfg;
	struct run r;

	eq_default_config(&cfg);
	cfg.min_capacity = 1;
	cfg.initial_capacity = 1;
	cfg.max_capacity = 40;
	cfg.growth_pct = 101;
	cfg.shrink_pct = 99;
	run_start(_metadata, &r, self->fd, &cfg);
	run_push(_metadata, &r, 40);
	EXPECT_EQ(39, r.m.grows);
	run_pop(_metadata, &r, 25);
	run_push(_metadata, &r, 10);
	run_pop(_metadata, &r, 25);
	run_end(_metadata, &r);

	cfg.min_capacity = 3;
	cfg.initial_capacity = 7;
	cfg.max_capacity = 1000;
	cfg.growth_pct = 1000;
	cfg.shrink_pct = 1;
	run_start(_metadata, &r, self->fd, &cfg);
	run_push(_metadata, &r, 800);
	run_pop(_metadata, &r, 795);
	run_push(_metadata, &r, 5);
	run_pop(_metadata, &r, 10);
	run_end(_metadata, &r);
}

/* Counters across a burst that does not reach max. */
TEST_F(eq, counters)
{
	struct elasticq_stats st0, st;
	uint32_t i, seq;

	ASSERT_EQ(0, eq_get_stats(self->fd, &st0));
	ASSERT_EQ(EQ_DEF_INITIAL, st0.capacity);
	for (i = 0; i < 1500; i++)
		ASSERT_EQ(4, eq_push(self->fd, &i, 4));
	ASSERT_EQ(0, eq_get_stats(self->fd, &st));
	EXPECT_EQ(1500, st.len);
	EXPECT_EQ(6000, st.bytes);
	EXPECT_EQ(2048, st.capacity);
	EXPECT_EQ(st0.grows + 1, st.grows);
	EXPECT_EQ(st0.shrinks, st.shrinks);
	EXPECT_EQ(st0.enqueued + 1500, st.enqueued);
	EXPECT_EQ(st0.dequeued, st.dequeued);
	EXPECT_EQ(st0.high_water > 1500 ? st0.high_water : 1500, st.high_water);
	for (i = 0; i < 1500; i++) {
		ASSERT_EQ(4, eq_pop(self->fd, &seq, 4));
		ASSERT_EQ(i, seq);
	}
	ASSERT_EQ(0, eq_get_stats(self->fd, &st));
	EXPECT_EQ(0, st.len);
	EXPECT_EQ(1024, st.capacity);
	EXPECT_EQ(st0.grows + 1, st.grows);
	EXPECT_EQ(st0.shrinks + 1, st.shrinks);
	EXPECT_EQ(st0.enqueued + 1500, st.enqueued);
	EXPECT_EQ(st0.dequeued + 1500, st.dequeued);
	EXPECT_EQ(st0.dropped, st.dropped);
	EXPECT_EQ(st0.rejected, st.rejected);
	EXPECT_EQ(st0.mem_bytes, st.mem_bytes);
}

TEST_HARNESS_MAIN
