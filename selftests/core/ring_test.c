// SPDX-License-Identifier: MIT
/*
 * ring_test.c - unit tests of the queue core (kmod/eq_ring.c) in userspace.
 *
 * Build and run from the top of the tree (gcc or clang; for TSan use
 * -fsanitize=thread instead of -fsanitize=address,undefined):
 *
 *   mkdir -p build/core && gcc -std=gnu11 -O1 -g -Wall -Wextra -Werror \
 *     -fsanitize=address,undefined -fno-sanitize-recover=all -D_GNU_SOURCE \
 *     -Iselftests/core/shim -Iuapi -Ikmod -I/var/cache/elasticq/ksft \
 *     -o build/core/ring_test kmod/eq_ring.c selftests/core/shim/shim.c \
 *     selftests/core/ring_test.c -lpthread
 *   ./build/core/ring_test
 *
 * Every test runs in its own process (the harness forks); the fixture's
 * teardown destroys the ring and checks that the shim saw no WARN_ON and
 * that nothing allocated through it is still live.  The expected capacities
 * come from ref_grow()/ref_shrink() below, an independent integer
 * implementation of SPEC section 7, and for two configurations also from
 * tables worked out by hand.
 */
#include <pthread.h>
#include <sched.h>

#include "eq_ring.h"

/*
 * This harness is not -Wextra clean: its checks compare values of any two
 * types (ASSERT_EQ(0, u64)), and its SIGALRM handler has an unused
 * parameter.
 */
#pragma GCC diagnostic ignored "-Wsign-compare"
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-parameter"
#include <kselftest_harness.h>
#pragma GCC diagnostic pop

/*
 * The harness runs each test in a child that ends with _exit(), so sanitizer
 * reports must stop the child at once to fail the test (ASan does; UBSan
 * does with -fno-sanitize-recover; TSan needs this) and LeakSanitizer never
 * runs: the shim's live-allocation count stands in for it.
 */
const char *__tsan_default_options(void);
const char *__tsan_default_options(void)
{
	return "halt_on_error=1";
}

#define MSG_HDR		sizeof(struct eq_msg)
#define PTR_SIZE	sizeof(struct eq_msg *)
#define BIG_BYTES	(1ull << 30)

/* What a message and a slot array take: the allocator's size classes. */
static u64 msg_mem(u64 len)
{
	return kmalloc_size_roundup(MSG_HDR + len);
}

static u64 slots_mem(u64 cap)
{
	return kmalloc_size_roundup(cap * PTR_SIZE);
}

static struct elasticq_config default_cfg(void)
{
	struct elasticq_config c = {
		.size = sizeof(c),
		.initial_capacity = 1024,
		.min_capacity = 1024,
		.max_capacity = 65536,
		.growth_pct = 200,
		.shrink_pct = 25,
		.max_msg_size = 8192,
		.max_bytes = BIG_BYTES,
		.push_timeout_ns = ELASTICQ_TIMEOUT_NONE,
		.pop_timeout_ns = ELASTICQ_TIMEOUT_NONE,
		.variant = ELASTICQ_VARIANT_LOCKED,
		.full_policy = ELASTICQ_FULL_BLOCK,
	};
	return c;
}

static struct elasticq_config mk_cfg(u32 min, u32 init, u32 max, u32 growth,
				     u32 shrink, u64 max_bytes, u32 policy)
{
	struct elasticq_config c = default_cfg();

	c.min_capacity = min;
	c.initial_capacity = init;
	c.max_capacity = max;
	c.growth_pct = growth;
	c.shrink_pct = shrink;
	c.max_bytes = max_bytes;
	c.full_policy = policy;
	return c;
}

/* ---- messages: payload derived from an id, so contents can be checked -- */

static u8 pat(u64 id, u32 i)
{
	return (u8)(id * 131 + i * 7 + (id >> 8) + 1);
}

static struct eq_msg *mk(u32 len, u64 id)
{
	struct eq_msg *m = eq_msg_alloc(len);
	u32 i;

	if (!m)
		return NULL;
	for (i = 0; i < len; i++)
		m->data[i] = pat(id, i);
	if (len >= sizeof(id))
		memcpy(m->data, &id, sizeof(id));
	return m;
}

static bool msg_ok(const struct eq_msg *m, u64 id, u32 len)
{
	u32 i;

	if (!m || m->len != len || m->flags)
		return false;
	if (len >= sizeof(id) && memcmp(m->data, &id, sizeof(id)))
		return false;
	for (i = len >= sizeof(id) ? sizeof(id) : 0; i < len; i++)
		if (m->data[i] != pat(id, i))
			return false;
	return true;
}

/* Take and commit the head message; the caller checks and frees it. */
static struct eq_msg *pop(struct eq_ring *r)
{
	struct eq_msg *m = eq_ring_take(r);

	if (m)
		eq_ring_commit(r, m);
	return m;
}

/* Push a fresh message; on failure it is freed and the error returned. */
static int push(struct eq_ring *r, u32 len, u64 id)
{
	struct eq_msg *m = mk(len, id);
	int ret;

	if (!m)
		return -ENOMEM;
	ret = eq_ring_push(r, m);
	if (ret)
		eq_msg_free(m);
	return ret;
}

static struct elasticq_stats stats(struct eq_ring *r)
{
	struct elasticq_stats s;

	memset(&s, 0, sizeof(s));
	eq_ring_get_stats(r, &s);
	return s;
}

static struct elasticq_config get_cfg(struct eq_ring *r)
{
	struct elasticq_config c;

	memset(&c, 0xa5, sizeof(c));
	eq_ring_get_config(r, &c);
	return c;
}

/* White box: the i-th queued message, head first. */
static struct eq_msg *slot_at(const struct eq_ring *r, u32 i)
{
	return r->slots[(r->head + i) % r->capacity];
}

#define ASSERT_POP(r, id, len) do {					\
	struct eq_msg *__m = pop(r);					\
	ASSERT_NE(NULL, __m);						\
	ASSERT_TRUE(msg_ok(__m, id, len)) TH_LOG("want id %llu len %u",\
		(unsigned long long)(id), (unsigned)(len));		\
	eq_msg_free(__m);						\
} while (0)

#define ASSERT_STATS_EQ(a, b) \
	ASSERT_EQ(0, memcmp(&(a), &(b), sizeof(a)))

/* ---- SPEC section 7, re-implemented independently, integers only ------ */

static u32 ref_grow(u32 cap, u32 occ, const struct elasticq_config *c)
{
	u64 prod = (u64)cap * c->growth_pct;
	u64 t = prod / 100 + (prod % 100 != 0);		/* ceil */

	if (t < (u64)occ + 1)
		t = (u64)occ + 1;
	if (t > c->max_capacity)
		t = c->max_capacity;
	return (u32)t;
}

static bool ref_should_shrink(u32 cap, u32 occ, const struct elasticq_config *c)
{
	return cap > c->min_capacity &&
	       occ <= (u64)cap * c->shrink_pct / 100;	/* floor */
}

static u32 ref_shrink(u32 cap, u32 occ, const struct elasticq_config *c)
{
	u64 t = (u64)cap * 100 / c->growth_pct;		/* floor */

	if (t < occ)
		t = occ;
	if (t < c->min_capacity)
		t = c->min_capacity;
	return (u32)t;
}

/* SPEC 7 and uapi: the validation rules. */
static bool ref_valid(const struct elasticq_config *c)
{
	return !c->flags && !c->reserved[0] && !c->reserved[1] &&
	       !c->reserved[2] && !c->reserved[3] &&
	       c->min_capacity >= 1 && c->max_capacity >= c->min_capacity &&
	       c->max_capacity <= ELASTICQ_CAPACITY_LIMIT &&
	       c->initial_capacity >= c->min_capacity &&
	       c->initial_capacity <= c->max_capacity &&
	       c->growth_pct > 100 &&
	       c->shrink_pct >= 1 && c->shrink_pct <= 99 &&
	       (u64)c->shrink_pct * c->growth_pct < 10000 &&
	       c->max_msg_size >= 1 &&
	       c->max_msg_size <= ELASTICQ_MSG_SIZE_LIMIT &&
	       c->max_bytes > 0 && c->variant <= ELASTICQ_VARIANT_LOCKFREE &&
	       c->full_policy <= ELASTICQ_FULL_DROP_OLDEST &&
	       !(c->variant == ELASTICQ_VARIANT_LOCKFREE &&
		 c->full_policy == ELASTICQ_FULL_DROP_OLDEST);
}

/* ---- a reference model: a plain circular array plus the formulas ------ */

struct ment {
	struct eq_msg *m;
	u64 id;
	u32 len;
};

#define MODEL_SLOTS	(1u << 17)
#define MODEL_TAKEN	8

struct model {
	struct elasticq_config cfg;
	u32 cap;
	u32 head, len;
	struct ment q[MODEL_SLOTS];
	struct ment taken[MODEL_TAKEN];	/* in take order */
	u32 ntaken;
	u64 bytes, mem, hw, enq, deq, dropped, rejected, grows, shrinks;
};

static struct model *model_new(const struct elasticq_config *c)
{
	struct model *m = calloc(1, sizeof(*m));	/* not via the shim */

	if (!m)
		abort();
	m->cfg = *c;
	m->cap = c->initial_capacity;
	return m;
}

static u32 m_occ(const struct model *m)
{
	return m->len + m->ntaken;
}

static struct ment *m_at(struct model *m, u32 i)
{
	return &m->q[(m->head + i) % MODEL_SLOTS];
}

static bool m_full(const struct model *m, u32 len)
{
	return m_occ(m) >= m->cfg.max_capacity ||
	       m->bytes + len > m->cfg.max_bytes;
}

static void m_drop_head(struct model *m)
{
	struct ment *e = m_at(m, 0);

	m->bytes -= e->len;
	m->mem -= msg_mem(e->len);
	m->dropped++;
	m->head = (m->head + 1) % MODEL_SLOTS;
	m->len--;
}

/*
 * Drop-oldest cannot make room when the taken messages alone hold too much;
 * eq_ring_push() must then fail without dropping anything (see the test
 * drop_oldest_fail_leaves_ring_unchanged).
 */
static bool m_drop_cannot_help(const struct model *m, u32 len)
{
	u64 taken_bytes = 0;
	u32 i;

	if (m->cfg.full_policy != ELASTICQ_FULL_DROP_OLDEST || !m->len ||
	    !m_full(m, len))
		return false;
	for (i = 0; i < m->ntaken; i++)
		taken_bytes += m->taken[i].len;
	return m->ntaken >= m->cfg.max_capacity ||
	       taken_bytes + len > m->cfg.max_bytes;
}

/* What eq_ring_push() must do; *allocs = allocations it may attempt. */
static int m_push(struct model *m, struct ment e, bool fail, int *allocs)
{
	u64 limit = m->cfg.max_msg_size < m->cfg.max_bytes ?
		    m->cfg.max_msg_size : m->cfg.max_bytes;

	*allocs = 0;
	if (e.len > limit)
		return -EMSGSIZE;
	if (m_drop_cannot_help(m, e.len))
		return -EAGAIN;		/* the contract: nothing changes */
	if (m->cfg.full_policy == ELASTICQ_FULL_DROP_OLDEST)
		while (m->len && m_full(m, e.len))
			m_drop_head(m);
	if (m_full(m, e.len))
		return -EAGAIN;
	if (m_occ(m) == m->cap) {
		*allocs = 1;
		if (fail)
			return -ENOMEM;
		m->cap = ref_grow(m->cap, m_occ(m), &m->cfg);
		m->grows++;
	}
	*m_at(m, m->len) = e;
	m->len++;
	m->bytes += e.len;
	m->mem += msg_mem(e.len);
	m->enq++;
	if (m_occ(m) > m->hw)
		m->hw = m_occ(m);
	return 0;
}

static struct ment m_take(struct model *m)
{
	struct ment e = *m_at(m, 0);

	m->head = (m->head + 1) % MODEL_SLOTS;
	m->len--;
	m->taken[m->ntaken++] = e;
	return e;
}

/* Commit taken[idx]; returns the allocations the shrink may attempt. */
static int m_commit(struct model *m, u32 idx, bool fail)
{
	struct ment e = m->taken[idx];

	memmove(&m->taken[idx], &m->taken[idx + 1],
		(m->ntaken - idx - 1) * sizeof(e));
	m->ntaken--;
	m->bytes -= e.len;
	m->mem -= msg_mem(e.len);
	m->deq++;
	if (!ref_should_shrink(m->cap, m_occ(m), &m->cfg))
		return 0;
	if (!fail) {
		m->cap = ref_shrink(m->cap, m_occ(m), &m->cfg);
		m->shrinks++;
	}
	return 1;
}

static void m_untake(struct model *m)
{
	m->head = (m->head + MODEL_SLOTS - 1) % MODEL_SLOTS;
	*m_at(m, 0) = m->taken[--m->ntaken];
	m->len++;
}

static int m_set_config(struct model *m, const struct elasticq_config *c,
			bool fail, int *allocs)
{
	u32 cap = m->cap;

	*allocs = 0;
	if (!ref_valid(c) || c->variant != m->cfg.variant)
		return -EINVAL;
	if (m_occ(m) > c->max_capacity || m->bytes > c->max_bytes)
		return -EBUSY;
	if (cap < c->min_capacity)
		cap = c->min_capacity;
	if (cap > c->max_capacity)
		cap = c->max_capacity;
	if (cap != m->cap) {
		*allocs = 1;
		if (fail)
			return -ENOMEM;
	}
	m->cap = cap;
	m->cfg = *c;
	return 0;
}

/* Compare the ring with the model: stats, contents, and shim memory. */
static void check_model(struct __test_metadata *_metadata,
			struct eq_ring *r, struct model *m)
{
	struct elasticq_stats s = stats(r);
	u32 i;

	ASSERT_EQ(m_occ(m), s.len);
	ASSERT_EQ(m->cap, s.capacity);
	ASSERT_EQ(m->bytes, s.bytes);
	ASSERT_EQ(m->mem + slots_mem(m->cap), s.mem_bytes);
	ASSERT_EQ(s.mem_bytes, eq_shim_live_bytes());
	ASSERT_EQ(m->hw, s.high_water);
	ASSERT_EQ(m->enq, s.enqueued);
	ASSERT_EQ(m->deq, s.dequeued);
	ASSERT_EQ(m->dropped, s.dropped);
	ASSERT_EQ(m->rejected, s.rejected);
	ASSERT_EQ(m->grows, s.grows);
	ASSERT_EQ(m->shrinks, s.shrinks);
	ASSERT_EQ(m->len, r->len);
	ASSERT_EQ(m->ntaken, r->taken);
	ASSERT_EQ(m->len != 0, eq_ring_has_message(r));
	for (i = 0; i < m->len; i++)
		ASSERT_EQ(m_at(m, i)->m, slot_at(r, i));
	ASSERT_EQ(m->len ? m_at(m, 0)->m : NULL, eq_ring_peek(r));
}

/* ---- fixture ---------------------------------------------------------- */

FIXTURE(ring) {
	struct eq_ring r;
	struct eq_mem_budget budget;	/* outlives r: teardown uncharges */
	u64 limit;			/* the budget's */
	bool live;
};

FIXTURE_SETUP(ring)
{
	self->live = false;
	self->budget.limit = &self->limit;
}

FIXTURE_TEARDOWN(ring)
{
	if (self->live) {
		if (eq_shim_mutex_held(&self->r.lock))
			mutex_unlock(&self->r.lock);
		eq_ring_destroy(&self->r);
	}
	EXPECT_EQ(0, eq_shim_live_allocs());
	EXPECT_EQ(0, eq_shim_live_bytes());
	EXPECT_EQ(0, eq_shim_warnings());
}

/* Initialise the fixture's ring and take its lock. */
static void ring_up(struct __test_metadata *_metadata,
		    FIXTURE_DATA(ring) *self, struct elasticq_config c)
{
	ASSERT_EQ(0, eq_config_validate(&c));
	ASSERT_EQ(0, eq_ring_init(&self->r, &c, NULL));
	self->live = true;
	mutex_lock(&self->r.lock);
}

/* ---- validation ------------------------------------------------------- */

struct vcase {
	const char *name;
	void (*mutate)(struct elasticq_config *c);
};

#define VCASE(n, body) \
	static void vc_##n(struct elasticq_config *c) { body; }
VCASE(flags, c->flags = 1)
VCASE(flags_high, c->flags = 0x80000000u)
VCASE(res0, c->reserved[0] = 1)
VCASE(res1, c->reserved[1] = 1)
VCASE(res2, c->reserved[2] = 1ull << 63)
VCASE(res3, c->reserved[3] = 1)
VCASE(min0, c->min_capacity = 0; c->initial_capacity = 0)
VCASE(min0_init1, c->min_capacity = 0; c->initial_capacity = 1)
VCASE(max_lt_min, c->max_capacity = c->min_capacity - 1)
VCASE(max_over, c->max_capacity = ELASTICQ_CAPACITY_LIMIT + 1)
VCASE(max_huge, c->max_capacity = 0xffffffffu)
VCASE(init_lt_min, c->initial_capacity = c->min_capacity - 1)
VCASE(init_gt_max, c->initial_capacity = c->max_capacity + 1)
VCASE(growth100, c->growth_pct = 100)
VCASE(growth0, c->growth_pct = 0)
VCASE(shrink0, c->shrink_pct = 0)
VCASE(shrink100, c->shrink_pct = 100)
VCASE(shrink_huge, c->shrink_pct = 0xffffffffu)
VCASE(shrink_thrash, c->shrink_pct = 50; c->growth_pct = 200)
VCASE(growth_thrash, c->shrink_pct = 1; c->growth_pct = 10000)
VCASE(growth_huge, c->growth_pct = 0xffffffffu)
VCASE(msg0, c->max_msg_size = 0)
VCASE(msg_over, c->max_msg_size = ELASTICQ_MSG_SIZE_LIMIT + 1)
VCASE(bytes0, c->max_bytes = 0)
VCASE(variant2, c->variant = ELASTICQ_VARIANT_LOCKFREE + 1)
VCASE(lockfree_drop, c->variant = ELASTICQ_VARIANT_LOCKFREE;
      c->full_policy = ELASTICQ_FULL_DROP_OLDEST)
VCASE(variant_huge, c->variant = 0xffffffffu)
VCASE(policy3, c->full_policy = ELASTICQ_FULL_DROP_OLDEST + 1)
VCASE(policy_huge, c->full_policy = 0xffffffffu)

#define V(n) { #n, vc_##n }
static const struct vcase invalid_cases[] = {
	V(flags), V(flags_high), V(res0), V(res1), V(res2), V(res3), V(min0),
	V(min0_init1), V(max_lt_min), V(max_over), V(max_huge), V(init_lt_min),
	V(init_gt_max), V(growth100), V(growth0), V(shrink0), V(shrink100),
	V(shrink_huge), V(shrink_thrash), V(growth_thrash), V(growth_huge),
	V(msg0), V(msg_over), V(bytes0), V(variant2), V(lockfree_drop),
	V(variant_huge), V(policy3), V(policy_huge),
};

VCASE(ok_tiny, c->min_capacity = 1; c->initial_capacity = 1;
      c->max_capacity = 1)
VCASE(ok_limits, c->max_capacity = ELASTICQ_CAPACITY_LIMIT;
      c->max_msg_size = ELASTICQ_MSG_SIZE_LIMIT; c->max_bytes = ~0ull)
VCASE(ok_growth101, c->growth_pct = 101)
VCASE(ok_growth_huge, c->growth_pct = 9999; c->shrink_pct = 1)
VCASE(ok_shrink1, c->shrink_pct = 1)
VCASE(ok_shrink99, c->shrink_pct = 99; c->growth_pct = 101)
VCASE(ok_thrash_edge, c->shrink_pct = 49; c->growth_pct = 204)
VCASE(ok_msg1_bytes1, c->max_msg_size = 1; c->max_bytes = 1)
VCASE(ok_reject, c->full_policy = ELASTICQ_FULL_REJECT)
VCASE(ok_drop, c->full_policy = ELASTICQ_FULL_DROP_OLDEST)
VCASE(ok_size_ignored, c->size = 0)
VCASE(ok_timeouts, c->push_timeout_ns = 0; c->pop_timeout_ns = 1)
VCASE(ok_init_max, c->initial_capacity = c->max_capacity)

static const struct vcase valid_cases[] = {
	V(ok_tiny), V(ok_limits), V(ok_growth101), V(ok_growth_huge),
	V(ok_shrink1), V(ok_shrink99), V(ok_msg1_bytes1), V(ok_reject),
	V(ok_drop), V(ok_size_ignored), V(ok_timeouts), V(ok_init_max),
	V(ok_thrash_edge),
};

TEST_F(ring, validate_default_ok)
{
	struct elasticq_config c = default_cfg();

	ASSERT_EQ(0, eq_config_validate(&c));
	ASSERT_TRUE(ref_valid(&c));
}

TEST_F(ring, validate_rejects_each_rule)
{
	size_t i;

	for (i = 0; i < ARRAY_SIZE(invalid_cases); i++) {
		struct elasticq_config c = default_cfg();

		invalid_cases[i].mutate(&c);
		ASSERT_FALSE(ref_valid(&c));
		EXPECT_EQ(-EINVAL, eq_config_validate(&c))
			TH_LOG("case %s", invalid_cases[i].name);
	}
}

TEST_F(ring, validate_accepts_boundaries)
{
	size_t i;

	for (i = 0; i < ARRAY_SIZE(valid_cases); i++) {
		struct elasticq_config c = default_cfg();

		valid_cases[i].mutate(&c);
		ASSERT_TRUE(ref_valid(&c));
		EXPECT_EQ(0, eq_config_validate(&c))
			TH_LOG("case %s", valid_cases[i].name);
	}
}

/* ---- init, destroy, allocation ----------------------------------------- */

TEST_F(ring, init_empty)
{
	struct elasticq_config c = default_cfg(), got;
	struct elasticq_stats s;

	c.size = 0;
	ring_up(_metadata, self, c);
	s = stats(&self->r);
	ASSERT_EQ(sizeof(s), s.size);
	ASSERT_EQ(0, s.len);
	ASSERT_EQ(1024, s.capacity);
	ASSERT_EQ(0, s.bytes);
	ASSERT_EQ(slots_mem(1024), s.mem_bytes);
	ASSERT_EQ(s.mem_bytes, eq_shim_live_bytes());
	ASSERT_EQ(1, eq_shim_live_allocs());
	ASSERT_EQ(0, s.high_water + s.enqueued + s.dequeued + s.dropped +
		     s.rejected + s.grows + s.shrinks);
	ASSERT_EQ(0, s.producers + s.consumers);
	ASSERT_NULL(eq_ring_peek(&self->r));
	ASSERT_NULL(eq_ring_take(&self->r));
	ASSERT_FALSE(eq_ring_has_message(&self->r));
	ASSERT_TRUE(eq_ring_has_room(&self->r, 8192));
	ASSERT_EQ(8192, eq_ring_max_msg(&self->r));
	got = get_cfg(&self->r);
	c.size = sizeof(c);
	ASSERT_EQ(0, memcmp(&c, &got, sizeof(c)));
}

TEST_F(ring, init_initial_between_bounds)
{
	struct elasticq_config c = mk_cfg(3, 17, 100, 150, 30, BIG_BYTES, 0);

	ring_up(_metadata, self, c);
	ASSERT_EQ(17, stats(&self->r).capacity);
	ASSERT_EQ(slots_mem(17), eq_shim_live_bytes());
}

TEST_F(ring, init_enomem)
{
	struct elasticq_config c = default_cfg();
	unsigned long calls = eq_shim_alloc_calls();

	eq_shim_fail_nth(1);
	ASSERT_EQ(-ENOMEM, eq_ring_init(&self->r, &c, NULL));
	ASSERT_EQ(calls + 1, eq_shim_alloc_calls());
	ASSERT_EQ(0, eq_shim_live_allocs());
	ASSERT_EQ(0, eq_ring_init(&self->r, &c, NULL));
	self->live = true;
}

TEST_F(ring, msg_alloc)
{
	struct eq_msg *m;

	m = eq_msg_alloc(0);
	ASSERT_NE(NULL, m);
	ASSERT_EQ(0, m->len);
	ASSERT_EQ(0, m->flags);
	ASSERT_EQ(msg_mem(0), eq_shim_live_bytes());
	eq_msg_free(m);
	m = eq_msg_alloc(ELASTICQ_MSG_SIZE_LIMIT);
	ASSERT_NE(NULL, m);
	ASSERT_EQ(ELASTICQ_MSG_SIZE_LIMIT, m->len);
	m->data[ELASTICQ_MSG_SIZE_LIMIT - 1] = 1;
	ASSERT_EQ(msg_mem(ELASTICQ_MSG_SIZE_LIMIT), eq_shim_live_bytes());
	eq_msg_free(m);
	eq_msg_free(NULL);

	eq_shim_fail_nth(1);
	ASSERT_NULL(eq_msg_alloc(16));
	ASSERT_EQ(0, eq_shim_live_allocs());
	eq_shim_fail_nth(2);
	m = eq_msg_alloc(16);
	ASSERT_NE(NULL, m);
	ASSERT_NULL(eq_msg_alloc(16));
	eq_msg_free(m);

	/*
	 * struct_size() saturates; kvmalloc() refuses, without a warning:
	 * userspace can provoke allocation failures at will (__GFP_NOWARN).
	 */
	ASSERT_NULL(eq_msg_alloc(SIZE_MAX));
	ASSERT_EQ(0, eq_shim_warnings());
}

TEST_F(ring, destroy_frees_everything)
{
	struct elasticq_config c = mk_cfg(4, 4, 4096, 200, 25, BIG_BYTES, 0);
	u64 i;

	ring_up(_metadata, self, c);
	for (i = 0; i < 3000; i++)
		ASSERT_EQ(0, push(&self->r, i % 100, i));
	for (i = 0; i < 1000; i++)
		ASSERT_POP(&self->r, i, i % 100);	/* head moved, wraps */
	for (i = 3000; i < 3500; i++)
		ASSERT_EQ(0, push(&self->r, i % 100, i));
	ASSERT_EQ(2501, eq_shim_live_allocs());
	mutex_unlock(&self->r.lock);
	eq_ring_destroy(&self->r);
	self->live = false;
	ASSERT_EQ(0, eq_shim_live_allocs());
	ASSERT_EQ(0, eq_shim_live_bytes());
	ASSERT_NULL(self->r.slots);
}

TEST_F(ring, destroy_with_taken_warns)
{
	struct elasticq_config c = mk_cfg(4, 4, 64, 200, 25, BIG_BYTES, 0);
	struct eq_msg *m;

	ring_up(_metadata, self, c);
	ASSERT_EQ(0, push(&self->r, 10, 1));
	ASSERT_EQ(0, push(&self->r, 10, 2));
	m = eq_ring_take(&self->r);
	mutex_unlock(&self->r.lock);
	eq_ring_destroy(&self->r);
	self->live = false;
	ASSERT_EQ(1, eq_shim_warnings());
	eq_shim_reset_warnings();
	/* the taken message is the caller's; the queued one was freed */
	ASSERT_EQ(1, eq_shim_live_allocs());
	ASSERT_TRUE(msg_ok(m, 1, 10));
	eq_msg_free(m);
}

/* ---- FIFO --------------------------------------------------------------- */

TEST_F(ring, fifo_order)
{
	struct elasticq_config c = mk_cfg(8, 8, 4096, 150, 25, BIG_BYTES, 0);
	u64 in = 0, out = 0;
	int round, k;

	ring_up(_metadata, self, c);
	/* Uneven bursts, so the head wraps at many capacities. */
	for (round = 0; round < 200; round++) {
		for (k = 0; k < (round * 37) % 61 + 1; k++, in++)
			ASSERT_EQ(0, push(&self->r, in % 300, in));
		for (k = 0; k < (round * 53) % 59 + 1 && out < in; k++, out++)
			ASSERT_POP(&self->r, out, out % 300);
	}
	while (out < in) {
		ASSERT_POP(&self->r, out, out % 300);
		out++;
	}
	ASSERT_NULL(pop(&self->r));
	ASSERT_EQ(in, stats(&self->r).enqueued);
	ASSERT_EQ(in, stats(&self->r).dequeued);
	ASSERT_EQ(0, stats(&self->r).bytes);
}

TEST_F(ring, zero_byte_messages)
{
	struct elasticq_config c = mk_cfg(4, 4, 1000, 200, 25, 1, 0);
	struct eq_msg *ms[600];
	struct elasticq_stats s;
	int i;

	c.max_msg_size = 1;
	ring_up(_metadata, self, c);
	for (i = 0; i < 600; i++) {
		ms[i] = mk(0, i);
		ASSERT_EQ(0, eq_ring_push(&self->r, ms[i]));
	}
	s = stats(&self->r);
	ASSERT_EQ(600, s.len);
	ASSERT_EQ(0, s.bytes);
	ASSERT_EQ(600 * msg_mem(0) + slots_mem(s.capacity), s.mem_bytes);
	ASSERT_EQ(s.mem_bytes, eq_shim_live_bytes());
	/* max_bytes = 1 is full with one byte, never with empty messages */
	ASSERT_EQ(0, push(&self->r, 1, 1000));
	ASSERT_EQ(-EAGAIN, push(&self->r, 1, 1001));
	ASSERT_EQ(0, push(&self->r, 0, 1002));
	for (i = 0; i < 600; i++) {
		struct eq_msg *m = pop(&self->r);

		ASSERT_EQ(ms[i], m);
		ASSERT_EQ(0, m->len);
		eq_msg_free(m);
	}
	ASSERT_POP(&self->r, 1000, 1);
	ASSERT_POP(&self->r, 1002, 0);
	ASSERT_EQ(0, stats(&self->r).bytes);
}

/* ---- capacity sequences ------------------------------------------------- */

/*
 * Fill the ring to max_capacity, then drain it, in lockstep with the model;
 * record each capacity change of the ring and compare with the tables.
 */
static void run_sequence(struct __test_metadata *_metadata,
			 FIXTURE_DATA(ring) *self, struct elasticq_config c,
			 const u32 *up, size_t nup, const u32 *down,
			 size_t ndown)
{
	struct model *m = model_new(&c);
	u32 last = c.initial_capacity, i;
	size_t iu = 0, id = 0;
	int allocs;

	ring_up(_metadata, self, c);
	for (i = 0; i < c.max_capacity; i++) {
		struct ment e = { .m = mk(i % 3 * 8, i), .id = i,
				  .len = i % 3 * 8 };

		ASSERT_EQ(0, m_push(m, e, false, &allocs));
		ASSERT_EQ(0, eq_ring_push(&self->r, e.m));
		ASSERT_EQ(m->cap, self->r.capacity) TH_LOG("push %u", i);
		if (self->r.capacity != last) {
			ASSERT_LT(iu, nup);
			ASSERT_EQ(up[iu], self->r.capacity) TH_LOG("grow %zu", iu);
			iu++;
			last = self->r.capacity;
		}
	}
	ASSERT_EQ(nup, iu);
	ASSERT_EQ(c.max_capacity, self->r.capacity);
	check_model(_metadata, &self->r, m);
	ASSERT_EQ(-EAGAIN, push(&self->r, 0, ~0ull));

	for (i = 0; i < c.max_capacity; i++) {
		struct eq_msg *msg = eq_ring_take(&self->r);
		struct ment e = m_take(m);

		ASSERT_EQ(e.m, msg);
		ASSERT_TRUE(msg_ok(msg, i, i % 3 * 8));
		m_commit(m, 0, false);
		eq_ring_commit(&self->r, msg);
		eq_msg_free(msg);
		ASSERT_EQ(m->cap, self->r.capacity) TH_LOG("pop %u", i);
		if (self->r.capacity != last) {
			ASSERT_LT(id, ndown);
			ASSERT_EQ(down[id], self->r.capacity)
				TH_LOG("shrink %zu", id);
			id++;
			last = self->r.capacity;
		}
	}
	ASSERT_EQ(ndown, id);
	check_model(_metadata, &self->r, m);
	ASSERT_EQ(nup, stats(&self->r).grows);
	ASSERT_EQ(ndown, stats(&self->r).shrinks);
	ASSERT_EQ(c.max_capacity, stats(&self->r).high_water);
	ASSERT_EQ(c.max_capacity, stats(&self->r).enqueued);
	ASSERT_EQ(c.max_capacity, stats(&self->r).dequeued);
	ASSERT_EQ(c.min_capacity, stats(&self->r).capacity);
	free(m);
}

TEST_F(ring, capacity_sequence_default)
{
	static const u32 up[] = { 2048, 4096, 8192, 16384, 32768, 65536 };
	static const u32 down[] = { 32768, 16384, 8192, 4096, 2048, 1024 };

	run_sequence(_metadata, self, default_cfg(), up, ARRAY_SIZE(up),
		     down, ARRAY_SIZE(down));
}

TEST_F(ring, capacity_sequence_odd)
{
	/* ceil(x * 1.5), capped at 1000 */
	static const u32 up[] = { 15, 23, 35, 53, 80, 120, 180, 270, 405,
				  608, 912, 1000 };
	/* at len <= floor(cap * 0.3): floor(cap / 1.5), at least 10 */
	static const u32 down[] = { 666, 444, 296, 197, 131, 87, 58, 38, 25,
				    16, 10 };

	run_sequence(_metadata, self, mk_cfg(10, 10, 1000, 150, 30, BIG_BYTES,
					     0),
		     up, ARRAY_SIZE(up), down, ARRAY_SIZE(down));
}

TEST_F(ring, capacity_sequence_len_term)
{
	/*
	 * growth 101 and shrink 99: a grow adds ceil(cap / 100) slots, and
	 * the shrink target is the length, not cap / 1.01, once that is
	 * larger; so most pops shrink.  The tables are the model's.
	 */
	struct elasticq_config c = mk_cfg(1, 1, 300, 101, 99, BIG_BYTES, 0);
	u32 up[300], down[300], cap = 1, n = 0, k = 0, i;

	for (i = 0; i < 300; i++) {
		if (i == cap) {
			cap = ref_grow(cap, i, &c);
			ASSERT_EQ(min(i + (i + 99) / 100, 300u), cap);
			up[n++] = cap;
		}
	}
	ASSERT_EQ(300, cap);
	for (i = 300; i-- > 0;) {
		if (ref_should_shrink(cap, i, &c)) {
			cap = ref_shrink(cap, i, &c);
			down[k++] = cap;
		}
	}
	ASSERT_EQ(1, cap);
	ASSERT_EQ(297, down[0]);	/* at 297 left: max(297, 297, 1) */
	ASSERT_GT(k, 150);
	run_sequence(_metadata, self, c, up, n, down, k);
}

/* ---- full --------------------------------------------------------------- */

TEST_F(ring, full_max_capacity_eagain)
{
	struct elasticq_config c = mk_cfg(2, 2, 5, 200, 25, BIG_BYTES, 0);
	struct elasticq_stats before, after;
	struct eq_msg *m;
	unsigned long calls;
	int i;

	ring_up(_metadata, self, c);
	for (i = 0; i < 5; i++)
		ASSERT_EQ(0, push(&self->r, 4, i));
	ASSERT_EQ(5, self->r.capacity);		/* 2 -> 4 -> min(8, 5) */
	ASSERT_EQ(2, stats(&self->r).grows);
	ASSERT_FALSE(eq_ring_has_room(&self->r, 0));
	before = stats(&self->r);
	m = mk(4, 99);
	calls = eq_shim_alloc_calls();
	ASSERT_EQ(-EAGAIN, eq_ring_push(&self->r, m));
	ASSERT_EQ(calls, eq_shim_alloc_calls());
	after = stats(&self->r);
	ASSERT_STATS_EQ(before, after);
	ASSERT_TRUE(msg_ok(m, 99, 4));		/* still ours */
	eq_msg_free(m);
	for (i = 0; i < 5; i++)
		ASSERT_POP(&self->r, i, 4);
	ASSERT_TRUE(eq_ring_has_room(&self->r, 0));
}

TEST_F(ring, full_max_bytes_eagain)
{
	struct elasticq_config c = mk_cfg(4, 4, 100, 200, 25, 100, 0);
	struct elasticq_stats before, after;

	ring_up(_metadata, self, c);
	ASSERT_EQ(100, eq_ring_max_msg(&self->r));
	ASSERT_EQ(0, push(&self->r, 60, 1));
	ASSERT_TRUE(eq_ring_has_room(&self->r, 40));
	ASSERT_FALSE(eq_ring_has_room(&self->r, 41));
	ASSERT_EQ(0, push(&self->r, 40, 2));		/* exactly max_bytes */
	ASSERT_EQ(100, stats(&self->r).bytes);
	before = stats(&self->r);
	ASSERT_EQ(-EAGAIN, push(&self->r, 1, 3));
	ASSERT_EQ(-EAGAIN, push(&self->r, 100, 4));
	after = stats(&self->r);
	ASSERT_STATS_EQ(before, after);
	ASSERT_POP(&self->r, 1, 60);
	ASSERT_EQ(0, push(&self->r, 60, 5));
	ASSERT_POP(&self->r, 2, 40);
	ASSERT_POP(&self->r, 5, 60);
}

TEST_F(ring, msgsize)
{
	struct elasticq_config c = mk_cfg(4, 4, 100, 200, 25, 1000, 0);
	struct elasticq_stats before, after;

	c.max_msg_size = 500;
	ring_up(_metadata, self, c);
	ASSERT_EQ(500, eq_ring_max_msg(&self->r));
	before = stats(&self->r);
	ASSERT_EQ(-EMSGSIZE, push(&self->r, 501, 1));
	ASSERT_EQ(-EMSGSIZE, push(&self->r, 8192, 1));
	after = stats(&self->r);
	ASSERT_STATS_EQ(before, after);
	ASSERT_EQ(0, push(&self->r, 500, 2));
	ASSERT_EQ(0, push(&self->r, 500, 3));
	/* full now: too large still wins over full */
	ASSERT_EQ(-EMSGSIZE, push(&self->r, 501, 4));
	ASSERT_EQ(-EAGAIN, push(&self->r, 1, 4));
	ASSERT_POP(&self->r, 2, 500);
	ASSERT_POP(&self->r, 3, 500);

	/* max_bytes below max_msg_size bounds the message size */
	c.max_msg_size = 8192;
	c.max_bytes = 300;
	ASSERT_EQ(0, eq_ring_set_config(&self->r, &c));
	ASSERT_EQ(300, eq_ring_max_msg(&self->r));
	ASSERT_EQ(-EMSGSIZE, push(&self->r, 301, 5));
	ASSERT_EQ(0, push(&self->r, 300, 6));
	ASSERT_POP(&self->r, 6, 300);

	/* and under drop-oldest too: nothing is dropped for it */
	c.full_policy = ELASTICQ_FULL_DROP_OLDEST;
	ASSERT_EQ(0, eq_ring_set_config(&self->r, &c));
	ASSERT_EQ(0, push(&self->r, 10, 7));
	ASSERT_EQ(-EMSGSIZE, push(&self->r, 301, 8));
	ASSERT_EQ(0, stats(&self->r).dropped);
	ASSERT_POP(&self->r, 7, 10);
}

/* ---- take / commit / untake --------------------------------------------- */

TEST_F(ring, take_untake_restores_order)
{
	struct elasticq_config c = mk_cfg(8, 8, 64, 200, 25, BIG_BYTES, 0);
	struct eq_msg *t[4];
	struct elasticq_stats s, s2;
	u64 i;

	ring_up(_metadata, self, c);
	for (i = 0; i < 5; i++)		/* move the head off slot 0 */
		ASSERT_EQ(0, push(&self->r, 3, 1000 + i));
	for (i = 0; i < 5; i++)
		ASSERT_POP(&self->r, 1000 + i, 3);
	for (i = 0; i < 6; i++)
		ASSERT_EQ(0, push(&self->r, 16, i));	/* wraps at 8 */
	s = stats(&self->r);

	t[0] = eq_ring_take(&self->r);
	ASSERT_TRUE(msg_ok(t[0], 0, 16));
	ASSERT_EQ(6, stats(&self->r).len);	/* taken still counts */
	ASSERT_EQ(96, stats(&self->r).bytes);
	ASSERT_EQ(5, self->r.len);
	ASSERT_EQ(1, self->r.taken);
	eq_ring_untake(&self->r, t[0]);
	ASSERT_EQ(t[0], eq_ring_peek(&self->r));

	for (i = 0; i < 4; i++) {
		t[i] = eq_ring_take(&self->r);
		ASSERT_TRUE(msg_ok(t[i], i, 16));
	}
	ASSERT_EQ(4, self->r.taken);
	for (i = 4; i-- > 0;)
		eq_ring_untake(&self->r, t[i]);
	ASSERT_EQ(0, self->r.taken);
	s2 = stats(&self->r);
	ASSERT_STATS_EQ(s, s2);		/* take/untake: invisible to counters */
	for (i = 0; i < 6; i++)
		ASSERT_POP(&self->r, i, 16);
	ASSERT_EQ(6 + 5, stats(&self->r).dequeued);
}

/* Several readers whose copies fault put back in any order: FIFO holds. */
TEST_F(ring, untake_any_order_keeps_fifo)
{
	struct elasticq_config c = mk_cfg(8, 8, 64, 200, 25, BIG_BYTES, 0);
	static const int order[4] = { 0, 2, 1, 3 };
	struct eq_msg *t[4];
	u64 i;

	ring_up(_metadata, self, c);
	for (i = 0; i < 6; i++)
		ASSERT_EQ(0, push(&self->r, 16, i));
	for (i = 0; i < 4; i++)
		t[i] = eq_ring_take(&self->r);
	for (i = 0; i < 4; i++)
		eq_ring_untake(&self->r, t[order[i]]);
	for (i = 0; i < 6; i++)
		ASSERT_POP(&self->r, i, 16);
}

TEST_F(ring, take_commit_shrinks)
{
	struct elasticq_config c = mk_cfg(4, 4, 64, 200, 25, BIG_BYTES, 0);
	struct eq_msg *m;
	u64 i;

	ring_up(_metadata, self, c);
	for (i = 0; i < 32; i++)
		ASSERT_EQ(0, push(&self->r, 1, i));
	ASSERT_EQ(32, self->r.capacity);
	ASSERT_EQ(3, stats(&self->r).grows);
	for (i = 0; i < 23; i++)
		ASSERT_POP(&self->r, i, 1);
	ASSERT_EQ(32, self->r.capacity);
	ASSERT_EQ(9, stats(&self->r).len);
	/* take leaves 8 queued (= 32 * 25%) but its slot stays reserved */
	m = eq_ring_take(&self->r);
	ASSERT_EQ(32, self->r.capacity);
	ASSERT_EQ(0, stats(&self->r).shrinks);
	/* the commit is the pop: 32 -> max(32 / 2, 8, 4) */
	eq_ring_commit(&self->r, m);
	ASSERT_TRUE(msg_ok(m, 23, 1));
	eq_msg_free(m);
	ASSERT_EQ(16, self->r.capacity);
	ASSERT_EQ(1, stats(&self->r).shrinks);
	ASSERT_EQ(slots_mem(16) + 8 * msg_mem(1), stats(&self->r).mem_bytes);
	ASSERT_EQ(eq_shim_live_bytes(), stats(&self->r).mem_bytes);
	for (i = 24; i < 27; i++)
		ASSERT_POP(&self->r, i, 1);
	ASSERT_EQ(16, self->r.capacity);	/* 5 left > 16 * 25% */
	ASSERT_POP(&self->r, 27, 1);
	ASSERT_EQ(8, self->r.capacity);
	ASSERT_POP(&self->r, 28, 1);
	ASSERT_EQ(8, self->r.capacity);
	ASSERT_POP(&self->r, 29, 1);
	ASSERT_EQ(4, self->r.capacity);
	ASSERT_POP(&self->r, 30, 1);
	ASSERT_POP(&self->r, 31, 1);
	ASSERT_EQ(4, self->r.capacity);		/* never below min */
	ASSERT_EQ(3, stats(&self->r).shrinks);
	ASSERT_EQ(32, stats(&self->r).dequeued);
}

TEST_F(ring, untake_after_grow)
{
	struct elasticq_config c = mk_cfg(4, 4, 1024, 150, 25, BIG_BYTES, 0);
	struct eq_msg *t[3];
	u64 i;
	int k;

	ring_up(_metadata, self, c);
	/* head in the middle of a full ring of 4 */
	ASSERT_EQ(0, push(&self->r, 5, 900));
	ASSERT_EQ(0, push(&self->r, 5, 901));
	ASSERT_POP(&self->r, 900, 5);
	ASSERT_POP(&self->r, 901, 5);
	for (i = 0; i < 4; i++)
		ASSERT_EQ(0, push(&self->r, 9, i));
	ASSERT_EQ(4, self->r.capacity);
	for (k = 0; k < 3; k++)
		t[k] = eq_ring_take(&self->r);
	/* occupancy is 4 = capacity: the next push grows */
	ASSERT_EQ(0, push(&self->r, 9, 4));
	ASSERT_EQ(6, self->r.capacity);
	ASSERT_EQ(1, stats(&self->r).grows);
	for (i = 5; i < 100; i++)
		ASSERT_EQ(0, push(&self->r, 9, i));
	ASSERT_EQ(100, stats(&self->r).len);
	ASSERT_EQ(97, self->r.len);
	for (k = 3; k-- > 0;)
		eq_ring_untake(&self->r, t[k]);
	for (i = 0; i < 100; i++)
		ASSERT_POP(&self->r, i, 9);
}

TEST_F(ring, untake_after_shrink)
{
	struct elasticq_config c = mk_cfg(2, 2, 1024, 200, 25, BIG_BYTES, 0);
	struct eq_msg *a, *b, *d;
	u64 i;

	ring_up(_metadata, self, c);
	for (i = 0; i < 16; i++)
		ASSERT_EQ(0, push(&self->r, 2, i));
	for (i = 0; i < 11; i++)
		ASSERT_POP(&self->r, i, 2);
	ASSERT_EQ(16, self->r.capacity);
	/* take 11, 12, 13; commit 11: occupancy 4 <= 16 / 4 shrinks to 8 */
	a = eq_ring_take(&self->r);
	b = eq_ring_take(&self->r);
	d = eq_ring_take(&self->r);
	eq_ring_commit(&self->r, a);
	ASSERT_TRUE(msg_ok(a, 11, 2));
	eq_msg_free(a);
	ASSERT_EQ(8, self->r.capacity);
	ASSERT_EQ(1, stats(&self->r).shrinks);
	ASSERT_EQ(4, stats(&self->r).len);
	eq_ring_untake(&self->r, d);
	eq_ring_untake(&self->r, b);
	for (i = 12; i < 16; i++)
		ASSERT_POP(&self->r, i, 2);
}

TEST_F(ring, taken_counts_toward_bounds)
{
	struct elasticq_config c = mk_cfg(4, 4, 4, 200, 25, 40, 0);
	struct eq_msg *t1, *t2;

	ring_up(_metadata, self, c);
	ASSERT_EQ(0, push(&self->r, 10, 1));
	ASSERT_EQ(0, push(&self->r, 10, 2));
	ASSERT_EQ(0, push(&self->r, 10, 3));
	t1 = eq_ring_take(&self->r);
	t2 = eq_ring_take(&self->r);
	ASSERT_EQ(-EAGAIN, push(&self->r, 11, 4));	/* bytes: 30 + 11 */
	ASSERT_EQ(0, push(&self->r, 0, 5));
	ASSERT_EQ(-EAGAIN, push(&self->r, 0, 6));	/* 4 slots */
	ASSERT_FALSE(eq_ring_has_room(&self->r, 0));
	ASSERT_EQ(4, stats(&self->r).high_water);
	eq_ring_commit(&self->r, t1);
	eq_msg_free(t1);
	ASSERT_EQ(0, push(&self->r, 10, 7));
	eq_ring_untake(&self->r, t2);
	ASSERT_POP(&self->r, 2, 10);
	ASSERT_POP(&self->r, 3, 10);
	ASSERT_POP(&self->r, 5, 0);
	ASSERT_POP(&self->r, 7, 10);
}

/* ---- policies ----------------------------------------------------------- */

TEST_F(ring, reject_policy)
{
	struct elasticq_config c = mk_cfg(2, 2, 2, 200, 25, BIG_BYTES,
					  ELASTICQ_FULL_REJECT);
	struct elasticq_stats before, after;

	ring_up(_metadata, self, c);
	ASSERT_EQ(0, push(&self->r, 1, 1));
	ASSERT_EQ(0, push(&self->r, 1, 2));
	before = stats(&self->r);
	ASSERT_EQ(-EAGAIN, push(&self->r, 1, 3));
	after = stats(&self->r);
	ASSERT_STATS_EQ(before, after);		/* the caller counts */
	eq_ring_count_rejected(&self->r);
	eq_ring_count_rejected(&self->r);
	after = stats(&self->r);
	ASSERT_EQ(2, after.rejected);
	after.rejected = 0;
	ASSERT_STATS_EQ(before, after);
	ASSERT_POP(&self->r, 1, 1);
	ASSERT_POP(&self->r, 2, 1);
}

TEST_F(ring, drop_oldest_by_capacity)
{
	struct elasticq_config c = mk_cfg(2, 2, 4, 200, 25, BIG_BYTES,
					  ELASTICQ_FULL_DROP_OLDEST);
	struct elasticq_stats s;
	u64 i;

	ring_up(_metadata, self, c);
	for (i = 1; i <= 4; i++)
		ASSERT_EQ(0, push(&self->r, 8, i));
	ASSERT_TRUE(eq_ring_has_room(&self->r, 8));	/* it will drop */
	for (i = 5; i <= 7; i++)
		ASSERT_EQ(0, push(&self->r, 8, i));
	s = stats(&self->r);
	ASSERT_EQ(3, s.dropped);
	ASSERT_EQ(7, s.enqueued);
	ASSERT_EQ(0, s.dequeued);
	ASSERT_EQ(4, s.len);
	ASSERT_EQ(32, s.bytes);
	ASSERT_EQ(4 * msg_mem(8) + slots_mem(4), s.mem_bytes);
	ASSERT_EQ(s.mem_bytes, eq_shim_live_bytes());
	for (i = 4; i <= 7; i++)
		ASSERT_POP(&self->r, i, 8);
}

TEST_F(ring, drop_oldest_by_bytes_several)
{
	struct elasticq_config c = mk_cfg(8, 8, 8, 200, 25, 100,
					  ELASTICQ_FULL_DROP_OLDEST);
	struct elasticq_stats s;

	ring_up(_metadata, self, c);
	ASSERT_EQ(0, push(&self->r, 30, 1));
	ASSERT_EQ(0, push(&self->r, 30, 2));
	ASSERT_EQ(0, push(&self->r, 30, 3));
	ASSERT_EQ(0, push(&self->r, 0, 4));
	ASSERT_EQ(0, push(&self->r, 70, 5));	/* drops 1 and 2 */
	s = stats(&self->r);
	ASSERT_EQ(2, s.dropped);
	ASSERT_EQ(100, s.bytes);
	ASSERT_EQ(3, s.len);
	ASSERT_EQ(0, push(&self->r, 100, 6));	/* drops 3, 4 and 5 */
	ASSERT_EQ(5, stats(&self->r).dropped);
	ASSERT_EQ(1, stats(&self->r).len);
	ASSERT_POP(&self->r, 6, 100);
	ASSERT_EQ(6, stats(&self->r).enqueued);
	ASSERT_EQ(1, stats(&self->r).dequeued);
}

TEST_F(ring, drop_oldest_skips_taken)
{
	struct elasticq_config c = mk_cfg(2, 2, 2, 200, 25, BIG_BYTES,
					  ELASTICQ_FULL_DROP_OLDEST);
	struct eq_msg *a;

	ring_up(_metadata, self, c);
	ASSERT_EQ(0, push(&self->r, 8, 1));
	ASSERT_EQ(0, push(&self->r, 8, 2));
	a = eq_ring_take(&self->r);
	ASSERT_EQ(0, push(&self->r, 8, 3));	/* drops 2, not the taken 1 */
	ASSERT_EQ(1, stats(&self->r).dropped);
	ASSERT_EQ(2, stats(&self->r).len);
	eq_ring_untake(&self->r, a);
	ASSERT_POP(&self->r, 1, 8);
	ASSERT_POP(&self->r, 3, 8);
	a = eq_ring_take(&self->r);
	ASSERT_NULL(a);
	ASSERT_EQ(0, push(&self->r, 8, 4));
	ASSERT_EQ(0, push(&self->r, 8, 5));
	/* all queued ones taken: nothing to drop, so the ring is full */
	a = eq_ring_take(&self->r);
	{
		struct eq_msg *b = eq_ring_take(&self->r);

		ASSERT_FALSE(eq_ring_has_room(&self->r, 0));
		ASSERT_EQ(-EAGAIN, push(&self->r, 8, 6));
		eq_ring_untake(&self->r, b);
	}
	eq_ring_untake(&self->r, a);
	ASSERT_EQ(1, stats(&self->r).dropped);
	ASSERT_POP(&self->r, 4, 8);
	ASSERT_POP(&self->r, 5, 8);
}

/*
 * Drop-oldest when the taken messages alone keep the ring full: dropping the
 * queued ones cannot make room.  eq_ring_push() documents "On error the ring
 * is unchanged": it must not drop them and then fail with -EAGAIN (it once
 * did, losing messages although the push failed).
 */
TEST_F(ring, drop_oldest_fail_leaves_ring_unchanged)
{
	struct elasticq_config c = mk_cfg(8, 8, 8, 200, 25, 100,
					  ELASTICQ_FULL_DROP_OLDEST);
	struct elasticq_stats before, after;
	struct eq_msg *t;

	ring_up(_metadata, self, c);
	ASSERT_EQ(0, push(&self->r, 80, 1));
	ASSERT_EQ(0, push(&self->r, 10, 2));
	t = eq_ring_take(&self->r);
	before = stats(&self->r);
	ASSERT_EQ(-EAGAIN, push(&self->r, 30, 3));
	after = stats(&self->r);
	ASSERT_STATS_EQ(before, after);
	eq_ring_untake(&self->r, t);
	ASSERT_POP(&self->r, 1, 80);
	ASSERT_POP(&self->r, 2, 10);
}

/* ---- set_config --------------------------------------------------------- */

/* A ring of capacity 2048 holding 1000 messages, with 2 of them taken. */
static void set_config_ring(struct __test_metadata *_metadata,
			    FIXTURE_DATA(ring) *self, struct eq_msg **t)
{
	struct elasticq_config c = mk_cfg(16, 16, 4096, 200, 25, 100000, 0);
	u64 i;

	ring_up(_metadata, self, c);
	for (i = 0; i < 1500; i++)
		ASSERT_EQ(0, push(&self->r, i % 50, i));
	for (i = 0; i < 500; i++)
		ASSERT_POP(&self->r, i, i % 50);
	ASSERT_EQ(2048, self->r.capacity);
	t[0] = eq_ring_take(&self->r);
	t[1] = eq_ring_take(&self->r);
}

static void set_config_ring_check(struct __test_metadata *_metadata,
				  FIXTURE_DATA(ring) *self, struct eq_msg **t)
{
	u64 i;

	eq_ring_untake(&self->r, t[1]);
	eq_ring_untake(&self->r, t[0]);
	for (i = 500; i < 1500; i++)
		ASSERT_POP(&self->r, i, i % 50);
}

TEST_F(ring, set_config_einval_changes_nothing)
{
	struct elasticq_config base, got, c;
	struct elasticq_stats before, after;
	struct eq_msg *t[2];
	size_t i;

	set_config_ring(_metadata, self, t);
	base = get_cfg(&self->r);
	before = stats(&self->r);
	for (i = 0; i < ARRAY_SIZE(invalid_cases); i++) {
		c = default_cfg();
		c.max_bytes = 100000;
		invalid_cases[i].mutate(&c);
		EXPECT_EQ(-EINVAL, eq_ring_set_config(&self->r, &c))
			TH_LOG("case %s", invalid_cases[i].name);
		got = get_cfg(&self->r);
		ASSERT_EQ(0, memcmp(&base, &got, sizeof(got)));
		after = stats(&self->r);
		ASSERT_STATS_EQ(before, after);
	}
	set_config_ring_check(_metadata, self, t);
}

TEST_F(ring, set_config_variant_change)
{
	struct elasticq_config c = default_cfg();

	ring_up(_metadata, self, c);
	c.variant = ELASTICQ_VARIANT_LOCKFREE;
	ASSERT_EQ(-EINVAL, eq_ring_set_config(&self->r, &c));
	ASSERT_EQ(ELASTICQ_VARIANT_LOCKED, get_cfg(&self->r).variant);
}

TEST_F(ring, set_config_ebusy)
{
	struct elasticq_config c, base, got;
	struct elasticq_stats before, after;
	struct eq_msg *t[2];
	u64 bytes;

	set_config_ring(_metadata, self, t);
	base = get_cfg(&self->r);
	before = stats(&self->r);
	bytes = before.bytes;
	ASSERT_EQ(1000, before.len);

	c = base;
	c.max_capacity = 999;		/* 998 queued + 2 taken */
	c.initial_capacity = 16;
	ASSERT_EQ(-EBUSY, eq_ring_set_config(&self->r, &c));
	c = base;
	c.max_bytes = bytes - 1;
	ASSERT_EQ(-EBUSY, eq_ring_set_config(&self->r, &c));
	got = get_cfg(&self->r);
	ASSERT_EQ(0, memcmp(&base, &got, sizeof(got)));
	after = stats(&self->r);
	ASSERT_STATS_EQ(before, after);

	/* exactly what is queued is fine: the ring becomes full */
	c = base;
	c.max_capacity = 1000;
	c.initial_capacity = 16;
	c.max_bytes = bytes;
	ASSERT_EQ(0, eq_ring_set_config(&self->r, &c));
	ASSERT_EQ(1000, self->r.capacity);
	ASSERT_FALSE(eq_ring_has_room(&self->r, 0));
	ASSERT_EQ(-EAGAIN, push(&self->r, 0, 1));
	set_config_ring_check(_metadata, self, t);
}

TEST_F(ring, set_config_clamps_capacity)
{
	struct elasticq_config c, base, got;
	struct eq_msg *t[2];
	unsigned long calls;
	struct elasticq_stats s;

	set_config_ring(_metadata, self, t);
	base = get_cfg(&self->r);

	/* down into a lower max */
	c = base;
	c.max_capacity = 1500;
	ASSERT_EQ(0, eq_ring_set_config(&self->r, &c));
	ASSERT_EQ(1500, self->r.capacity);
	got = get_cfg(&self->r);
	ASSERT_EQ(0, memcmp(&c, &got, sizeof(c)));

	/* up to a higher min */
	c.min_capacity = 3000;
	c.initial_capacity = 3000;
	c.max_capacity = 5000;
	ASSERT_EQ(0, eq_ring_set_config(&self->r, &c));
	ASSERT_EQ(3000, self->r.capacity);

	/* inside the bounds: no reallocation */
	c.min_capacity = 100;
	c.initial_capacity = 100;
	calls = eq_shim_alloc_calls();
	ASSERT_EQ(0, eq_ring_set_config(&self->r, &c));
	ASSERT_EQ(calls, eq_shim_alloc_calls());
	ASSERT_EQ(3000, self->r.capacity);

	s = stats(&self->r);
	ASSERT_EQ(slots_mem(3000) + self->r.msg_mem, s.mem_bytes);
	ASSERT_EQ(s.mem_bytes, eq_shim_live_bytes());
	ASSERT_EQ(1000, s.len);
	/* the ring's own counters only count push/pop resizes */
	ASSERT_EQ(7, s.grows);		/* 16 -> 2048 */
	ASSERT_EQ(0, s.shrinks);
	set_config_ring_check(_metadata, self, t);
	/* the new min holds for shrinking: 3000 -> 1500 -> 750 -> 375 ... */
	ASSERT_EQ(100, self->r.capacity);
}

TEST_F(ring, set_config_enomem_changes_nothing)
{
	struct elasticq_config c, base, got;
	struct elasticq_stats before, after;
	struct eq_msg *t[2];

	set_config_ring(_metadata, self, t);
	base = get_cfg(&self->r);
	before = stats(&self->r);
	c = base;
	c.max_capacity = 1200;
	c.full_policy = ELASTICQ_FULL_DROP_OLDEST;
	eq_shim_fail_nth(1);
	ASSERT_EQ(-ENOMEM, eq_ring_set_config(&self->r, &c));
	got = get_cfg(&self->r);
	ASSERT_EQ(0, memcmp(&base, &got, sizeof(got)));
	after = stats(&self->r);
	ASSERT_STATS_EQ(before, after);
	ASSERT_EQ(after.mem_bytes, eq_shim_live_bytes());
	ASSERT_EQ(0, eq_ring_set_config(&self->r, &c));
	ASSERT_EQ(1200, self->r.capacity);
	set_config_ring_check(_metadata, self, t);
}

TEST_F(ring, set_config_takes_effect)
{
	struct elasticq_config c = mk_cfg(2, 2, 4, 200, 25, BIG_BYTES, 0), got;

	ring_up(_metadata, self, c);
	ASSERT_EQ(0, push(&self->r, 8, 1));
	ASSERT_EQ(0, push(&self->r, 8, 2));
	ASSERT_EQ(0, push(&self->r, 8, 3));
	ASSERT_EQ(0, push(&self->r, 8, 4));
	ASSERT_EQ(-EAGAIN, push(&self->r, 8, 5));
	c.full_policy = ELASTICQ_FULL_DROP_OLDEST;
	c.size = 12345;				/* ignored, stored as sizeof */
	c.push_timeout_ns = 77;
	ASSERT_EQ(0, eq_ring_set_config(&self->r, &c));
	got = get_cfg(&self->r);
	ASSERT_EQ(sizeof(got), got.size);
	ASSERT_EQ(77, got.push_timeout_ns);
	ASSERT_EQ(0, push(&self->r, 8, 5));
	ASSERT_EQ(1, stats(&self->r).dropped);
	c.max_msg_size = 7;
	ASSERT_EQ(0, eq_ring_set_config(&self->r, &c));
	ASSERT_EQ(7, eq_ring_max_msg(&self->r));
	ASSERT_EQ(-EMSGSIZE, push(&self->r, 8, 6));
	c.max_capacity = 8;
	c.full_policy = ELASTICQ_FULL_BLOCK;
	ASSERT_EQ(0, eq_ring_set_config(&self->r, &c));
	ASSERT_EQ(0, push(&self->r, 7, 6));	/* grows again: 4 -> 8 */
	ASSERT_EQ(8, self->r.capacity);
	ASSERT_POP(&self->r, 2, 8);
	ASSERT_POP(&self->r, 3, 8);
	ASSERT_POP(&self->r, 4, 8);
	ASSERT_POP(&self->r, 5, 8);
	ASSERT_POP(&self->r, 6, 7);
}

/* ---- allocation failure in grow and shrink ------------------------------ */

TEST_F(ring, grow_enomem_changes_nothing)
{
	struct elasticq_config c = mk_cfg(4, 4, 64, 200, 25, BIG_BYTES, 0);
	struct elasticq_stats before, after;
	struct eq_msg *m, *t;
	u64 i;

	ring_up(_metadata, self, c);
	ASSERT_EQ(0, push(&self->r, 3, 100));
	ASSERT_POP(&self->r, 100, 3);
	for (i = 0; i < 4; i++)
		ASSERT_EQ(0, push(&self->r, 3, i));
	t = eq_ring_take(&self->r);
	before = stats(&self->r);
	m = mk(3, 4);
	eq_shim_fail_nth(1);
	ASSERT_EQ(-ENOMEM, eq_ring_push(&self->r, m));
	after = stats(&self->r);
	ASSERT_STATS_EQ(before, after);
	ASSERT_EQ(4, self->r.capacity);
	ASSERT_TRUE(msg_ok(m, 4, 3));		/* still ours */
	ASSERT_EQ(0, eq_ring_push(&self->r, m));
	ASSERT_EQ(8, self->r.capacity);
	eq_ring_untake(&self->r, t);
	for (i = 0; i < 5; i++)
		ASSERT_POP(&self->r, i, 3);
}

TEST_F(ring, shrink_enomem_postpones)
{
	struct elasticq_config c = mk_cfg(4, 4, 64, 200, 25, BIG_BYTES, 0);
	struct eq_msg *m;
	u64 i;

	ring_up(_metadata, self, c);
	for (i = 0; i < 16; i++)
		ASSERT_EQ(0, push(&self->r, 2, i));
	ASSERT_EQ(16, self->r.capacity);
	for (i = 0; i < 11; i++)
		ASSERT_POP(&self->r, i, 2);
	ASSERT_EQ(16, self->r.capacity);
	/* this commit leaves 4 <= 16 * 25%: shrink, but it cannot */
	m = eq_ring_take(&self->r);
	eq_shim_fail_nth(1);
	eq_ring_commit(&self->r, m);
	eq_shim_fail_nth(0);
	ASSERT_TRUE(msg_ok(m, 11, 2));
	eq_msg_free(m);
	ASSERT_EQ(16, self->r.capacity);
	ASSERT_EQ(0, stats(&self->r).shrinks);
	ASSERT_EQ(12, stats(&self->r).dequeued);
	ASSERT_EQ(slots_mem(16) + 4 * msg_mem(2), stats(&self->r).mem_bytes);
	/* the next pop does it: 16 -> 8 */
	ASSERT_POP(&self->r, 12, 2);
	ASSERT_EQ(8, self->r.capacity);
	ASSERT_EQ(1, stats(&self->r).shrinks);
	ASSERT_POP(&self->r, 13, 2);
	ASSERT_POP(&self->r, 14, 2);
	ASSERT_EQ(4, self->r.capacity);
	ASSERT_POP(&self->r, 15, 2);
	ASSERT_EQ(2, stats(&self->r).shrinks);
}

/* ---- stats -------------------------------------------------------------- */

TEST_F(ring, stats_mem_bytes)
{
	struct elasticq_config c = mk_cfg(4, 4, 4096, 150, 25, BIG_BYTES, 0);
	struct elasticq_stats s;
	u64 i, mem = 0, bytes = 0;

	ring_up(_metadata, self, c);
	for (i = 0; i < 700; i++) {
		ASSERT_EQ(0, push(&self->r, (i * 97) % 1500, i));
		mem += msg_mem((i * 97) % 1500);
		bytes += (i * 97) % 1500;
	}
	for (i = 0; i < 300; i++) {
		ASSERT_POP(&self->r, i, (i * 97) % 1500);
		mem -= msg_mem((i * 97) % 1500);
		bytes -= (i * 97) % 1500;
	}
	s = stats(&self->r);
	ASSERT_EQ(bytes, s.bytes);
	ASSERT_EQ(mem + slots_mem(s.capacity), s.mem_bytes);
	ASSERT_EQ(eq_shim_live_bytes(), s.mem_bytes);
	ASSERT_EQ(700, s.high_water);
	ASSERT_EQ(400, s.len);
	for (i = 300; i < 700; i++)
		ASSERT_POP(&self->r, i, (i * 97) % 1500);
	s = stats(&self->r);
	ASSERT_EQ(slots_mem(4), s.mem_bytes);
	ASSERT_EQ(700, s.high_water);
}

/* ---- the shim itself ---------------------------------------------------- */

struct holder {
	struct mutex *lock;
	pthread_barrier_t b;
};

static void *hold_lock(void *arg)
{
	struct holder *h = arg;

	mutex_lock(h->lock);
	pthread_barrier_wait(&h->b);	/* locked */
	pthread_barrier_wait(&h->b);	/* main thread checked */
	mutex_unlock(h->lock);
	return NULL;
}

TEST_F(ring, shim_lockdep_and_alloc)
{
	struct elasticq_config c = default_cfg();
	struct holder h;
	pthread_t th;
	void *p, *q;

	ASSERT_EQ(0, eq_ring_init(&self->r, &c, NULL));
	self->live = true;
	/* not held at all */
	ASSERT_NULL(eq_ring_peek(&self->r));
	ASSERT_EQ(1, eq_shim_warnings());
	/* held, but by another thread */
	h.lock = &self->r.lock;
	pthread_barrier_init(&h.b, NULL, 2);
	ASSERT_EQ(0, pthread_create(&th, NULL, hold_lock, &h));
	pthread_barrier_wait(&h.b);
	ASSERT_TRUE(mutex_is_locked(&self->r.lock));
	ASSERT_EQ(0, mutex_trylock(&self->r.lock));
	eq_ring_count_rejected(&self->r);
	ASSERT_EQ(2, eq_shim_warnings());
	pthread_barrier_wait(&h.b);
	pthread_join(th, NULL);
	pthread_barrier_destroy(&h.b);
	/* held by us */
	ASSERT_EQ(1, mutex_trylock(&self->r.lock));
	ASSERT_NULL(eq_ring_peek(&self->r));
	ASSERT_EQ(2, eq_shim_warnings());
	eq_shim_reset_warnings();

	ASSERT_NULL(kvmalloc_array(SIZE_MAX / 8 + 1, 8, GFP_KERNEL));
	ASSERT_NULL(kvmalloc_array(2, SIZE_MAX / 2 + 1, GFP_KERNEL));
	ASSERT_NULL(kvmalloc((size_t)INT_MAX + 1, GFP_KERNEL | __GFP_NOWARN));
	ASSERT_EQ(0, eq_shim_warnings());

	p = kzalloc(24, GFP_KERNEL);
	ASSERT_NE(NULL, p);
	ASSERT_EQ(0, ((char *)p)[23]);
	ASSERT_EQ(2, eq_shim_live_allocs());	/* with the ring's slots */
	eq_shim_fail_nth(3);
	q = kmalloc(1, GFP_KERNEL);
	ASSERT_NE(NULL, q);
	kfree(q);
	q = kmalloc(1, GFP_KERNEL);
	ASSERT_NE(NULL, q);
	kfree(q);
	ASSERT_NULL(kmalloc(1, GFP_KERNEL));
	q = kmalloc(1, GFP_KERNEL);		/* one-shot */
	ASSERT_NE(NULL, q);
	kfree(q);
	kvfree(p);
}

/* ---- randomized differential test against the model --------------------- */

static u64 rng_next(u64 *s)
{
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 0x2545f4914f6cdd1dull;
}

static u32 rnd(u64 *s, u32 n)
{
	return (u32)((rng_next(s) >> 33) % n);
}

/* A random configuration, valid most of the time. */
static struct elasticq_config rand_cfg(u64 *s, const struct elasticq_config *b)
{
	struct elasticq_config c = *b;

	c.min_capacity = 1 + rnd(s, 64);
	c.max_capacity = c.min_capacity + rnd(s, 2048);
	c.initial_capacity = c.min_capacity + rnd(s, c.max_capacity -
						   c.min_capacity + 1);
	c.growth_pct = 101 + rnd(s, 300);
	c.shrink_pct = 1 + rnd(s, c.growth_pct < 102 ? 98 : 9999 / c.growth_pct);
	c.max_msg_size = 1 + rnd(s, 200);
	c.max_bytes = 1 + rnd(s, 40000);
	c.full_policy = rnd(s, 3);
	switch (rnd(s, 40)) {
	case 0: c.growth_pct = 100; break;
	case 1: c.shrink_pct = 100; break;
	case 2: c.max_capacity = c.min_capacity - 1; break;
	case 3: c.reserved[rnd(s, 4)] = 1; break;
	case 4: c.full_policy = 3; break;
	case 5: c.variant = 1; break;
	case 6: c.initial_capacity = c.max_capacity + 1; break;
	case 7: c.shrink_pct = 10000 / c.growth_pct + 1; break;
	}
	return c;
}

enum {
	EV_PUSH, EV_EAGAIN, EV_EMSGSIZE, EV_GROW_ENOMEM, EV_POP, EV_TAKE,
	EV_UNTAKE, EV_COMMIT, EV_SHRINK_ENOMEM, EV_SETCFG, EV_SETCFG_EINVAL,
	EV_SETCFG_EBUSY, EV_SETCFG_ENOMEM, EV_NR
};

static const char *const ev_names[EV_NR] = {
	"push", "eagain", "emsgsize", "grow_enomem", "pop", "take", "untake",
	"commit", "shrink_enomem", "set_config", "set_config_einval",
	"set_config_ebusy", "set_config_enomem",
};

static void run_diff(struct __test_metadata *_metadata,
		     FIXTURE_DATA(ring) *self, struct elasticq_config c,
		     u64 seed, u32 ops)
{
	struct model *m = model_new(&c);
	u64 s = seed, next_id = 0, ev[EV_NR] = { 0 };
	char line[512];
	size_t off = 0;
	u32 op, i;

	ring_up(_metadata, self, c);
	for (op = 0; op < ops; op++) {
		bool fill = (op / 1500) % 2 == 0;
		bool fail = rnd(&s, 16) == 0;
		u32 dice = rnd(&s, 1000);
		unsigned long calls = eq_shim_alloc_calls();
		int want, got, allocs = 0;

		if (dice < (fill ? 600 : 300)) {
			/* push */
			u32 lim = m->cfg.max_msg_size;
			struct ment e;

			e.len = rnd(&s, 8) == 0 ? 0 :
				rnd(&s, 4) == 0 ? rnd(&s, lim + 3) :
				rnd(&s, lim / 8 + 1);
			e.id = next_id++;
			e.m = mk(e.len, e.id);
			ASSERT_NE(NULL, e.m);
			calls = eq_shim_alloc_calls();
			if (fail)
				eq_shim_fail_nth(1);
			want = m_push(m, e, fail, &allocs);
			got = eq_ring_push(&self->r, e.m);
			ASSERT_EQ(want, got) TH_LOG("op %u push", op);
			if (got == -EAGAIN &&
			    m->cfg.full_policy == ELASTICQ_FULL_REJECT) {
				eq_ring_count_rejected(&self->r);
				m->rejected++;
			}
			if (got)
				eq_msg_free(e.m);
			ev[got == -EAGAIN ? EV_EAGAIN : got == -EMSGSIZE ?
			   EV_EMSGSIZE : got == -ENOMEM ? EV_GROW_ENOMEM :
			   EV_PUSH]++;
		} else if (dice < 900) {
			/* pop: take and commit the head */
			struct eq_msg *msg = eq_ring_take(&self->r);
			struct ment e;

			if (!m->len) {
				ASSERT_NULL(msg);
				continue;
			}
			if (m->ntaken == MODEL_TAKEN) {
				eq_ring_untake(&self->r, msg);
				continue;
			}
			e = m_take(m);
			ASSERT_EQ(e.m, msg);
			ASSERT_TRUE(msg_ok(msg, e.id, e.len));
			if (fail)
				eq_shim_fail_nth(1);
			allocs = m_commit(m, m->ntaken - 1, fail);
			eq_ring_commit(&self->r, msg);
			eq_msg_free(msg);
			ev[EV_POP]++;
			ev[EV_SHRINK_ENOMEM] += fail && allocs;
		} else if (dice < 940) {
			/* take and keep */
			struct eq_msg *msg;

			if (!m->len || m->ntaken == MODEL_TAKEN)
				continue;
			msg = eq_ring_take(&self->r);
			ASSERT_EQ(m_take(m).m, msg);
			ev[EV_TAKE]++;
		} else if (dice < 970) {
			/* untake the last taken */
			if (!m->ntaken)
				continue;
			eq_ring_untake(&self->r, m->taken[m->ntaken - 1].m);
			m_untake(m);
			ev[EV_UNTAKE]++;
		} else if (dice < 998) {
			/* commit any taken */
			struct ment e;
			u32 idx;

			if (!m->ntaken)
				continue;
			idx = rnd(&s, m->ntaken);
			e = m->taken[idx];
			ASSERT_TRUE(msg_ok(e.m, e.id, e.len));
			if (fail)
				eq_shim_fail_nth(1);
			allocs = m_commit(m, idx, fail);
			eq_ring_commit(&self->r, e.m);
			eq_msg_free(e.m);
			ev[EV_COMMIT]++;
			ev[EV_SHRINK_ENOMEM] += fail && allocs;
		} else {
			/* half the time back to the configuration under test */
			struct elasticq_config nc = rnd(&s, 2) ? c :
						    rand_cfg(&s, &m->cfg);

			if (fail)
				eq_shim_fail_nth(1);
			want = m_set_config(m, &nc, fail, &allocs);
			got = eq_ring_set_config(&self->r, &nc);
			ASSERT_EQ(want, got) TH_LOG("op %u set_config", op);
			ev[got == -EINVAL ? EV_SETCFG_EINVAL : got == -EBUSY ?
			   EV_SETCFG_EBUSY : got == -ENOMEM ? EV_SETCFG_ENOMEM :
			   EV_SETCFG]++;
		}
		eq_shim_fail_nth(0);
		ASSERT_EQ(calls + allocs, eq_shim_alloc_calls())
			TH_LOG("op %u: allocations", op);
		check_model(_metadata, &self->r, m);
	}
	for (i = 0; i < EV_NR; i++)
		off += snprintf(line + off, sizeof(line) - off, " %s=%llu",
				ev_names[i], (unsigned long long)ev[i]);
	TH_LOG("%s; grows=%llu shrinks=%llu dropped=%llu rejected=%llu", line,
	       (unsigned long long)m->grows, (unsigned long long)m->shrinks,
	       (unsigned long long)m->dropped,
	       (unsigned long long)m->rejected);
	/* every kind of operation and outcome really happened */
	for (i = 0; i <= EV_SETCFG_EINVAL; i++)
		ASSERT_GT(ev[i], 0);	/* see the log line */
	ASSERT_GT(m->grows, 20);
	ASSERT_GT(m->shrinks, 20);
	if (c.full_policy == ELASTICQ_FULL_DROP_OLDEST)
		ASSERT_GT(m->dropped, 0);
	if (c.full_policy == ELASTICQ_FULL_REJECT)
		ASSERT_GT(m->rejected, 0);
	while (m->ntaken) {
		eq_ring_untake(&self->r, m->taken[m->ntaken - 1].m);
		m_untake(m);
	}
	while (m->len) {
		struct ment e = m_take(m);
		struct eq_msg *msg = pop(&self->r);

		m_commit(m, 0, false);
		ASSERT_EQ(e.m, msg);
		eq_msg_free(msg);
	}
	check_model(_metadata, &self->r, m);
	free(m);
}

TEST_F(ring, differential_block)
{
	run_diff(_metadata, self, mk_cfg(4, 4, 256, 150, 30, 4000, 0),
		 0x9e3779b97f4a7c15ull, 50000);
}

TEST_F(ring, differential_reject)
{
	run_diff(_metadata, self,
		 mk_cfg(16, 100, 300, 300, 10, BIG_BYTES,
			ELASTICQ_FULL_REJECT), 0xdeadbeefcafef00dull, 50000);
}

TEST_F(ring, differential_drop_oldest)
{
	run_diff(_metadata, self,
		 mk_cfg(8, 8, 1024, 200, 25, 3000, ELASTICQ_FULL_DROP_OLDEST),
		 0x0123456789abcdefull, 50000);
}

TEST_F(ring, differential_thrash)
{
	/* growth 101 and shrink 99: the length term decides most shrinks */
	run_diff(_metadata, self,
		 mk_cfg(1, 1, 97, 101, 99, 1000, ELASTICQ_FULL_DROP_OLDEST),
		 0x5eed5eed5eed5eedull, 50000);
}

/* ---- threads: the mutex and the lockless hints ------------------------- */

#define THR_PRODUCERS	4
#define THR_CONSUMERS	2
#define THR_MSGS	20000

struct thr {
	struct eq_ring *r;
	u32 id;
	u64 got;		/* consumers: messages consumed */
	u64 last[THR_PRODUCERS];
	bool bad;
	u32 *seen;		/* shared: per message, times consumed */
	u64 *done;		/* shared: messages consumed, all consumers */
};

static void *producer(void *arg)
{
	struct thr *t = arg;
	u32 i;

	for (i = 0; i < THR_MSGS; i++) {
		u64 id = (u64)t->id << 32 | i;
		struct eq_msg *m = mk(i % 40, id);
		int ret;

		if (!m) {
			t->bad = true;
			return NULL;
		}
		for (;;) {
			mutex_lock(&t->r->lock);
			ret = eq_ring_push(t->r, m);
			mutex_unlock(&t->r->lock);
			if (ret != -EAGAIN)
				break;
			while (!eq_ring_has_room(t->r, m->len))
				sched_yield();
		}
		if (ret) {
			t->bad = true;
			eq_msg_free(m);
			return NULL;
		}
	}
	return NULL;
}

static void *consumer(void *arg)
{
	struct thr *t = arg;
	u64 total = (u64)THR_PRODUCERS * THR_MSGS;

	memset(t->last, 0xff, sizeof(t->last));
	while (__atomic_load_n(t->done, __ATOMIC_RELAXED) < total) {
		struct eq_msg *m;
		u64 id;
		u32 p, i;

		if (!eq_ring_has_message(t->r)) {
			sched_yield();
			continue;
		}
		mutex_lock(&t->r->lock);
		m = eq_ring_take(t->r);
		if (m)
			eq_ring_commit(t->r, m);
		mutex_unlock(&t->r->lock);
		if (!m)
			continue;
		if (m->len >= 8)
			memcpy(&id, m->data, 8);
		else
			id = 0;
		p = id >> 32;
		i = (u32)id;
		if (m->len >= 8) {
			/* one producer's messages arrive in order */
			if (p >= THR_PRODUCERS || !msg_ok(m, id, m->len) ||
			    (t->last[p] != ~0ull && t->last[p] >= i))
				t->bad = true;
			else
				__atomic_add_fetch(&t->seen[p * THR_MSGS + i],
						   1, __ATOMIC_RELAXED);
			if (p < THR_PRODUCERS)
				t->last[p] = i;
		}
		eq_msg_free(m);
		t->got++;
		__atomic_add_fetch(t->done, 1, __ATOMIC_RELAXED);
	}
	return NULL;
}

static void *observer(void *arg)
{
	struct thr *t = arg;
	u64 total = (u64)THR_PRODUCERS * THR_MSGS, n = 0;

	while (__atomic_load_n(t->done, __ATOMIC_RELAXED) < total) {
		n += eq_ring_has_message(t->r);
		n += eq_ring_has_room(t->r, 39);
		n += eq_ring_max_msg(t->r) == 8192;
		sched_yield();
	}
	t->got = n;
	return NULL;
}

TEST_F_TIMEOUT(ring, threads_mpmc, 120)
{
	struct elasticq_config c = mk_cfg(4, 4, 64, 150, 25, 1000, 0);
	struct thr prod[THR_PRODUCERS], cons[THR_CONSUMERS], obs;
	pthread_t pt[THR_PRODUCERS], ct[THR_CONSUMERS], ot;
	u32 *seen = calloc((size_t)THR_PRODUCERS * THR_MSGS, sizeof(*seen));
	u64 done = 0, got = 0, expect_seen = 0, i;
	struct elasticq_stats s;

	ASSERT_NE(NULL, seen);
	ring_up(_metadata, self, c);
	mutex_unlock(&self->r.lock);
	memset(prod, 0, sizeof(prod));
	memset(cons, 0, sizeof(cons));
	memset(&obs, 0, sizeof(obs));
	obs.r = &self->r;
	obs.done = &done;
	ASSERT_EQ(0, pthread_create(&ot, NULL, observer, &obs));
	for (i = 0; i < THR_CONSUMERS; i++) {
		cons[i].r = &self->r;
		cons[i].seen = seen;
		cons[i].done = &done;
		ASSERT_EQ(0, pthread_create(&ct[i], NULL, consumer, &cons[i]));
	}
	for (i = 0; i < THR_PRODUCERS; i++) {
		prod[i].r = &self->r;
		prod[i].id = i;
		ASSERT_EQ(0, pthread_create(&pt[i], NULL, producer, &prod[i]));
	}
	for (i = 0; i < THR_PRODUCERS; i++) {
		pthread_join(pt[i], NULL);
		ASSERT_FALSE(prod[i].bad);
	}
	for (i = 0; i < THR_CONSUMERS; i++) {
		pthread_join(ct[i], NULL);
		ASSERT_FALSE(cons[i].bad);
		got += cons[i].got;
	}
	pthread_join(ot, NULL);
	ASSERT_EQ((u64)THR_PRODUCERS * THR_MSGS, got);
	for (i = 0; i < (u64)THR_PRODUCERS * THR_MSGS; i++) {
		if ((u32)i % 40 >= 8) {
			ASSERT_EQ(1, seen[i]) TH_LOG("message %llu",
						     (unsigned long long)i);
			expect_seen++;
		}
	}
	ASSERT_GT(expect_seen, 0);
	mutex_lock(&self->r.lock);
	s = stats(&self->r);
	ASSERT_EQ(got, s.enqueued);
	ASSERT_EQ(got, s.dequeued);
	ASSERT_EQ(0, s.len);
	ASSERT_EQ(0, s.bytes);
	ASSERT_LE(s.high_water, 64);
	ASSERT_EQ(s.mem_bytes, eq_shim_live_bytes());
	free(seen);
}

struct cfg_flipper {
	struct eq_ring *r;
	int stop;
};

static void *hint_reader(void *arg)
{
	struct cfg_flipper *f = arg;
	u64 n = 0;

	while (!__atomic_load_n(&f->stop, __ATOMIC_RELAXED)) {
		n += eq_ring_has_room(f->r, 1);
		n += eq_ring_max_msg(f->r);
		n += eq_ring_has_message(f->r);
	}
	return (void *)(uintptr_t)n;
}

/*
 * set_config under the lock against the lockless hints.  Only TSan can see
 * a failure here: eq_ring_store_config() must publish the fields the hints
 * READ_ONCE() with WRITE_ONCE (it once used a plain struct assignment).
 */
TEST_F(ring, threads_set_config_vs_hints)
{
	struct elasticq_config c = mk_cfg(4, 4, 64, 200, 25, 1000, 0);
	struct cfg_flipper f = { .r = &self->r };
	pthread_t th;
	u32 i;

	ring_up(_metadata, self, c);
	mutex_unlock(&self->r.lock);
	ASSERT_EQ(0, pthread_create(&th, NULL, hint_reader, &f));
	for (i = 0; i < 20000; i++) {
		c.max_bytes = 1000 + i % 7;
		c.max_msg_size = 100 + i % 5;
		c.full_policy = i % 3;
		mutex_lock(&self->r.lock);
		ASSERT_EQ(0, eq_ring_set_config(&self->r, &c));
		mutex_unlock(&self->r.lock);
	}
	__atomic_store_n(&f.stop, 1, __ATOMIC_RELAXED);
	pthread_join(th, NULL);
}

/* ---- memory budget (the module-wide max_total_bytes) ------------------- */

static u64 used(const struct eq_mem_budget *b)
{
	return atomic64_read(&b->used);
}

static void ring_up_budget(struct __test_metadata *_metadata,
			   FIXTURE_DATA(ring) *self, struct elasticq_config c,
			   struct eq_mem_budget *b)
{
	ASSERT_EQ(0, eq_ring_init(&self->r, &c, b));
	self->live = true;
	mutex_lock(&self->r.lock);
}

/* Every operation keeps the budget equal to what the ring holds. */
TEST_F(ring, budget_tracks_ring_memory)
{
	struct elasticq_config c = mk_cfg(4, 4, 64, 200, 25, 1000, 0);
	struct eq_mem_budget *b = &self->budget;
	struct eq_msg *m;
	u64 i;

	self->limit = BIG_BYTES;
	ring_up_budget(_metadata, self, c, b);
	ASSERT_EQ(slots_mem(4), used(b));
	for (i = 0; i < 40; i++) {		/* grows */
		ASSERT_EQ(0, push(&self->r, i, i));
		ASSERT_EQ(stats(&self->r).mem_bytes, used(b));
	}
	m = eq_ring_take(&self->r);
	eq_ring_untake(&self->r, m);
	ASSERT_EQ(stats(&self->r).mem_bytes, used(b));
	for (i = 0; i < 30; i++) {		/* shrinks */
		ASSERT_POP(&self->r, i, i);
		ASSERT_EQ(stats(&self->r).mem_bytes, used(b));
	}
	ASSERT_LT(0, stats(&self->r).shrinks);
	c.full_policy = ELASTICQ_FULL_DROP_OLDEST;
	c.max_capacity = 10;
	c.min_capacity = 10;
	c.initial_capacity = 10;
	ASSERT_EQ(0, eq_ring_set_config(&self->r, &c));	/* resizes */
	ASSERT_EQ(stats(&self->r).mem_bytes, used(b));
	for (i = 100; i < 120; i++) {		/* drops */
		ASSERT_EQ(0, push(&self->r, 9, i));
		ASSERT_EQ(stats(&self->r).mem_bytes, used(b));
	}
	ASSERT_EQ(20, stats(&self->r).dropped);
	mutex_unlock(&self->r.lock);
	eq_ring_destroy(&self->r);
	self->live = false;
	ASSERT_EQ(0, used(b));
}

/*
 * The hierarchy the module builds: a queue's budget (no limit of its own)
 * under its creator's (-EDQUOT) under the module's (-ENOBUFS).  A charge
 * that passes any limit fails with that level's errno and charges nothing
 * anywhere; an exempt queue passes its creator's limit, never the module's.
 */
TEST_F(ring, budget_hierarchy)
{
	u64 module_limit = 1000, user_limit = 300;
	struct eq_mem_budget module = { .limit = &module_limit, .over = -ENOBUFS };
	struct eq_mem_budget user = { .limit = &user_limit, .parent = &module,
				      .over = -EDQUOT };
	struct eq_mem_budget q1 = { .parent = &user };
	struct eq_mem_budget q2 = { .parent = &user, .exempt = true };
	struct eq_mem_budget other = { .limit = &user_limit, .parent = &module,
				       .over = -EDQUOT };
	struct eq_mem_budget q3 = { .parent = &other };

	ASSERT_EQ(0, eq_budget_charge(&q1, 200));
	ASSERT_EQ(-EDQUOT, eq_budget_charge(&q1, 101));
	ASSERT_EQ(200, used(&q1));
	ASSERT_EQ(200, used(&user));
	ASSERT_EQ(200, used(&module));
	/* The exempt queue of the same user goes past the user's limit. */
	ASSERT_EQ(0, eq_budget_charge(&q2, 500));
	ASSERT_EQ(700, used(&user));
	ASSERT_EQ(500, used(&q2));
	/* ... but not past the module's, and then nothing is charged. */
	ASSERT_EQ(-ENOBUFS, eq_budget_charge(&q2, 301));
	ASSERT_EQ(500, used(&q2));
	ASSERT_EQ(700, used(&user));
	ASSERT_EQ(700, used(&module));
	/* The user over its limit (by its exempt queue) can't charge q1. */
	ASSERT_EQ(-EDQUOT, eq_budget_charge(&q1, 1));
	ASSERT_EQ(200, used(&q1));
	/* Another user: its own limit, the module's room. */
	ASSERT_EQ(0, eq_budget_charge(&q3, 300));
	ASSERT_EQ(1000, used(&module));
	ASSERT_EQ(-ENOBUFS, eq_budget_charge(&q2, 1));
	ASSERT_EQ(-EDQUOT, eq_budget_charge(&q3, 1));
	ASSERT_EQ(1000, used(&module));
	/* The limit is read at every charge: a module parameter may change. */
	user_limit = 1000;
	module_limit = 2000;
	ASSERT_EQ(0, eq_budget_charge(&q1, 100));
	eq_budget_uncharge(&q1, 300);
	eq_budget_uncharge(&q2, 500);
	eq_budget_uncharge(&q3, 300);
	ASSERT_EQ(0, used(&user));
	ASSERT_EQ(0, used(&other));
	ASSERT_EQ(0, used(&module));
}

/*
 * At the limit: -ENOBUFS for a message, for the growth a push needs, for a
 * new ring and for a resize by set_config; each leaves everything as it was.
 */
TEST_F(ring, budget_limit_enobufs_changes_nothing)
{
	struct elasticq_config c = mk_cfg(2, 2, 64, 200, 25, 1000, 0);
	struct eq_mem_budget *b = &self->budget;
	struct elasticq_stats before, after;
	struct eq_ring other;
	struct eq_msg *m;

	self->limit = slots_mem(2);
	ring_up_budget(_metadata, self, c, b);
	/* No room for any message. */
	m = mk(8, 1);
	ASSERT_EQ(-ENOBUFS, eq_ring_push(&self->r, m));
	ASSERT_EQ(0, stats(&self->r).len);
	ASSERT_EQ(slots_mem(2), used(b));
	/*
	 * Room for two messages and an empty third, not for growing the
	 * ring to hold it.
	 */
	self->limit += 2 * msg_mem(8) + msg_mem(0) +
		       slots_mem(4) - slots_mem(2) - 1;
	ASSERT_EQ(0, eq_ring_push(&self->r, m));
	ASSERT_EQ(0, push(&self->r, 8, 2));
	before = stats(&self->r);
	ASSERT_EQ(-ENOBUFS, push(&self->r, 0, 3));
	after = stats(&self->r);
	ASSERT_EQ(0, memcmp(&before, &after, sizeof(before)));
	ASSERT_EQ(before.mem_bytes, used(b));
	/* set_config that must grow the ring. */
	c.min_capacity = c.initial_capacity = 8;
	ASSERT_EQ(-ENOBUFS, eq_ring_set_config(&self->r, &c));
	ASSERT_EQ(2, get_cfg(&self->r).min_capacity);
	/* A second ring does not fit at all. */
	ASSERT_EQ(-ENOBUFS, eq_ring_init(&other, &c, b));
	ASSERT_EQ(before.mem_bytes, used(b));
	/* Drop-oldest drops nothing when the new message cannot be charged. */
	c = mk_cfg(2, 2, 2, 200, 25, 1000, ELASTICQ_FULL_DROP_OLDEST);
	ASSERT_EQ(0, eq_ring_set_config(&self->r, &c));
	before = stats(&self->r);
	ASSERT_EQ(-ENOBUFS, push(&self->r, 100, 4));
	after = stats(&self->r);
	ASSERT_EQ(0, memcmp(&before, &after, sizeof(before)));
	ASSERT_POP(&self->r, 1, 8);
	ASSERT_POP(&self->r, 2, 8);
	ASSERT_EQ(slots_mem(2), used(b));
}


/* ---- what is charged: the allocator's sizes ----------------------------- */

/*
 * A payload length, and the memory its message takes: 16 bytes of header
 * plus the payload, rounded up to the kmalloc size class (8, 16, 32, 64,
 * 96, 128, 192, 256, ... 8192), then to a power-of-two number of pages.
 */
static const struct {
	u32 len;
	u64 mem;
} msg_classes[] = {
	{ 0, 16 }, { 1, 32 }, { 16, 32 }, { 48, 64 }, { 49, 96 },
	{ 80, 96 }, { 81, 128 }, { 113, 192 }, { 177, 256 }, { 1000, 1024 },
	{ 4080, 4096 }, { 4081, 8192 }, { 8192 - 16, 8192 }, { 8192, 16384 },
	{ 12000, 16384 }, { 16000, 16384 }, { 16369, 32768 },
	{ ELASTICQ_MSG_SIZE_LIMIT, 2 << 20 },
};

TEST_F(ring, kvmalloc_size_classes)
{
	size_t i;

	for (i = 0; i < ARRAY_SIZE(msg_classes); i++)
		EXPECT_EQ(msg_classes[i].mem,
			  eq_kvmalloc_size(MSG_HDR + msg_classes[i].len))
			TH_LOG("payload %u", msg_classes[i].len);
	EXPECT_EQ(8, eq_kvmalloc_size(1));
	EXPECT_EQ(8, eq_kvmalloc_size(8));
	EXPECT_EQ(16, eq_kvmalloc_size(9));
	EXPECT_EQ(192, eq_kvmalloc_size(129));
	EXPECT_EQ(512, eq_kvmalloc_size(257));
	EXPECT_EQ(4 << 20, eq_kvmalloc_size(4 << 20));
	/* Past kmalloc's largest: vmalloc, whole pages, no power of two. */
	EXPECT_EQ((4 << 20) + 4096, eq_kvmalloc_size((4 << 20) + 1));
	EXPECT_EQ(128 << 20, eq_kvmalloc_size((size_t)ELASTICQ_CAPACITY_LIMIT *
					      PTR_SIZE));
}

/*
 * mem_bytes, the budget and the shim's count of what the allocator holds
 * all move by the rounded size of each message, and the slot array counts
 * rounded too (20 slots: 160 bytes in the 192-byte class).
 */
TEST_F(ring, mem_bytes_size_classes)
{
	struct elasticq_config c = mk_cfg(20, 20, 20, 200, 25, BIG_BYTES, 0);
	struct eq_mem_budget *b = &self->budget;
	u64 mem = 192;
	size_t i;

	_Static_assert(ARRAY_SIZE(msg_classes) <= 20, "all fit");
	c.max_msg_size = ELASTICQ_MSG_SIZE_LIMIT;
	self->limit = BIG_BYTES;
	ring_up_budget(_metadata, self, c, b);
	ASSERT_EQ(mem, stats(&self->r).mem_bytes);
	ASSERT_EQ(mem, used(b));
	ASSERT_EQ(mem, eq_shim_live_bytes());
	for (i = 0; i < ARRAY_SIZE(msg_classes); i++) {
		ASSERT_EQ(0, push(&self->r, msg_classes[i].len, i));
		mem += msg_classes[i].mem;
		ASSERT_EQ(mem, stats(&self->r).mem_bytes)
			TH_LOG("payload %u", msg_classes[i].len);
		ASSERT_EQ(mem, used(b));
		ASSERT_EQ(mem, eq_shim_live_bytes());
	}
	ASSERT_EQ(0, stats(&self->r).grows);
	for (i = 0; i < ARRAY_SIZE(msg_classes); i++) {
		ASSERT_POP(&self->r, i, msg_classes[i].len);
		mem -= msg_classes[i].mem;
		ASSERT_EQ(mem, stats(&self->r).mem_bytes);
		ASSERT_EQ(mem, used(b));
	}
	ASSERT_EQ(192, mem);
}

/* The budget refuses a message by its rounded size, to the byte. */
TEST_F(ring, budget_charges_rounded_size)
{
	struct elasticq_config c = mk_cfg(2, 2, 2, 200, 25, BIG_BYTES, 0);
	struct eq_mem_budget *b = &self->budget;
	struct elasticq_stats before, after;

	/* 16 bytes of slots; a 4081-byte payload takes 8192, not 4097 */
	self->limit = 16 + 8192 - 1;
	ring_up_budget(_metadata, self, c, b);
	before = stats(&self->r);
	ASSERT_EQ(-ENOBUFS, push(&self->r, 4081, 1));
	after = stats(&self->r);
	ASSERT_STATS_EQ(before, after);
	ASSERT_EQ(16, used(b));
	self->limit++;
	ASSERT_EQ(0, push(&self->r, 4081, 1));
	ASSERT_EQ(16 + 8192, used(b));
	ASSERT_POP(&self->r, 1, 4081);
}

/* A slot array too big for kmalloc() counts in whole pages (vmalloc). */
TEST_F(ring, mem_bytes_vmalloc_slots)
{
	struct elasticq_config c = mk_cfg(600000, 600000, 600000, 200, 25,
					  BIG_BYTES, 0);

	ring_up(_metadata, self, c);
	/* 4800000 bytes: 1172 pages */
	ASSERT_EQ(4800512, stats(&self->r).mem_bytes);
	ASSERT_EQ(4800512, eq_shim_live_bytes());
}

TEST_HARNESS_MAIN
