// SPDX-License-Identifier: MIT
/*
 * Unit tests of the lock-free MPSC core (kmod/eq_lfring.c) in userspace,
 * built with ASan+UBSan and with TSan: FIFO, grow on demand, shrink,
 * resizes with messages in flight, limits, position renewal near the top
 * of the 64-bit range, and producers racing a bursty consumer that resizes
 * all the time, checked message by message for exactly-once and
 * per-producer order.
 *
 * ELASTICQ_LF_MESSAGES sets the total of the threaded test (default
 * 10000000, 4 producers).
 */
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>

#include "core_cfg.h"
#include "eq_lfring.h"

#pragma GCC diagnostic ignored "-Wsign-compare"
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-parameter"
#include <kselftest_harness.h>
#pragma GCC diagnostic pop

static struct elasticq_config cfg(u32 min, u32 init, u32 max)
{
	return eq_core_cfg(min, init, max, ELASTICQ_VARIANT_LOCKFREE);
}

/* A message of @len bytes that names producer @who and its @n-th push. */
static struct eq_msg *mk(u32 who, u64 n, u32 len)
{
	struct eq_msg *m = eq_msg_alloc(len < 12 ? 12 : len);

	if (!m)
		return NULL;
	memcpy(m->data, &who, 4);
	memcpy(m->data + 4, &n, 8);
	return m;
}

static void who_n(const struct eq_msg *m, u32 *who, u64 *n)
{
	memcpy(who, m->data, 4);
	memcpy(n, m->data + 4, 8);
}

static int push(struct eq_lfq *q, u32 who, u64 n)
{
	struct eq_msg *m = mk(who, n, 16);
	int ret;

	if (!m)
		return -ENOMEM;
	ret = eq_lfq_push(q, m);
	if (ret)
		eq_msg_free(m);
	return ret;
}

/* Pop one (consumer); the message's n, or -1 if none. */
static long long pop(struct eq_lfq *q)
{
	struct eq_msg *m = eq_lfq_peek(q);
	u32 who;
	u64 n;

	if (!m)
		return -1;
	who_n(m, &who, &n);
	eq_lfq_commit(q);
	eq_msg_free(m);
	return n;
}

static struct elasticq_stats stats(struct eq_lfq *q)
{
	struct elasticq_stats st;

	memset(&st, 0, sizeof(st));
	eq_lfq_get_stats(q, &st);
	return st;
}

FIXTURE(lf) {
	struct eq_lfq q;
	struct eq_mem_budget budget;
	u64 limit;			/* the budget's */
	bool live;
};

FIXTURE_SETUP(lf)
{
	self->live = false;
	self->limit = 1ULL << 40;
	self->budget.limit = &self->limit;
}

FIXTURE_TEARDOWN(lf)
{
	if (self->live)
		eq_lfq_destroy(&self->q);
	EXPECT_EQ(0, atomic64_read(&self->budget.used));
	EXPECT_EQ(0, eq_shim_live_allocs());
	EXPECT_EQ(0, eq_shim_warnings());
}

static void up(struct __test_metadata *_metadata, FIXTURE_DATA(lf) *self,
	       struct elasticq_config c, u64 first)
{
	ASSERT_EQ(0, eq_lfq_init(&self->q, &c, &self->budget, first));
	self->live = true;
}

TEST_F(lf, fifo_and_stats)
{
	struct elasticq_stats st;
	u64 i;

	up(_metadata, self, cfg(8, 8, 64), 0);
	ASSERT_EQ(-1, pop(&self->q));
	for (i = 0; i < 8; i++)
		ASSERT_EQ(0, push(&self->q, 1, i));
	st = stats(&self->q);
	EXPECT_EQ(8, st.len);
	EXPECT_EQ(8 * 16, st.bytes);
	EXPECT_EQ(8, st.enqueued);
	EXPECT_EQ(8, st.high_water);
	EXPECT_EQ(st.mem_bytes, atomic64_read(&self->budget.used));
	for (i = 0; i < 8; i++)
		ASSERT_EQ(i, pop(&self->q));
	ASSERT_EQ(-1, pop(&self->q));
	st = stats(&self->q);
	EXPECT_EQ(0, st.len);
	EXPECT_EQ(0, st.bytes);
	EXPECT_EQ(8, st.dequeued);
}

/*
 * mem_bytes, the budget and the shim's count of what the allocator holds
 * move by each message's kmalloc size class (16 bytes of header plus the
 * payload, rounded up), and the ring counts rounded too.
 */
TEST_F(lf, mem_bytes_size_classes)
{
	static const struct {
		u32 len;
		u64 mem;
	} cases[] = {
		{ 12, 32 }, { 48, 64 }, { 49, 96 }, { 4080, 4096 },
		{ 4081, 8192 }, { 8192 - 16, 8192 }, { 8192, 16384 },
		{ 16000, 16384 },
	};
	struct elasticq_config c = cfg(8, 8, 8);
	/* The ring: a 32-byte header (here) and 8 16-byte slots, 160 bytes. */
	u64 mem = 192;
	struct eq_msg *m;
	size_t i;

	ASSERT_EQ(160, sizeof(struct eq_lf_ring) + 8 * sizeof(struct eq_lf_slot));
	c.max_msg_size = 16384;
	up(_metadata, self, c, 0);
	ASSERT_EQ(mem, stats(&self->q).mem_bytes);
	ASSERT_EQ(mem, atomic64_read(&self->budget.used));
	ASSERT_EQ(mem, eq_shim_live_bytes());
	for (i = 0; i < ARRAY_SIZE(cases); i++) {
		m = mk(1, i, cases[i].len);
		ASSERT_NE(NULL, m);
		ASSERT_EQ(0, eq_lfq_push(&self->q, m));
		mem += cases[i].mem;
		ASSERT_EQ(mem, stats(&self->q).mem_bytes)
			TH_LOG("payload %u", cases[i].len);
		ASSERT_EQ(mem, atomic64_read(&self->budget.used));
		ASSERT_EQ(mem, eq_shim_live_bytes());
	}
	for (i = 0; i < ARRAY_SIZE(cases); i++) {
		ASSERT_EQ(i, pop(&self->q));
		mem -= cases[i].mem;
		ASSERT_EQ(mem, stats(&self->q).mem_bytes);
		ASSERT_EQ(mem, atomic64_read(&self->budget.used));
		ASSERT_EQ(mem, eq_shim_live_bytes());
	}
	ASSERT_EQ(192, mem);
}

/*
 * Full below max: EAGAIN, and the consumer grows by SPEC 7's rule; the
 * capacity counts the messages of every ring, so each growth comes at
 * len == capacity as in the lock-based variant.
 */
TEST_F(lf, full_asks_the_consumer_to_grow)
{
	u32 caps[] = { 4, 8, 16, 32 };
	u64 n = 0, next = 0, i;

	up(_metadata, self, cfg(4, 4, 32), 0);
	for (i = 0; i < 4; i++) {
		while (!push(&self->q, 1, n))
			n++;
		ASSERT_EQ(caps[i], eq_lfq_capacity(&self->q));
		ASSERT_EQ(caps[i], stats(&self->q).len);
		/* The consumer's next look grows the ring (not at max). */
		ASSERT_NE(NULL, eq_lfq_peek(&self->q));
	}
	EXPECT_EQ(3, stats(&self->q).grows);
	EXPECT_EQ(0, stats(&self->q).shrinks);
	/* At max: full, no growth. */
	EXPECT_EQ(-EAGAIN, push(&self->q, 1, n));
	EXPECT_EQ(32, eq_lfq_capacity(&self->q));
	EXPECT_EQ(stats(&self->q).mem_bytes,
		  atomic64_read(&self->budget.used));
	while (next < n)
		ASSERT_EQ(next++, pop(&self->q));
	EXPECT_EQ(4, eq_lfq_capacity(&self->q));
	EXPECT_EQ(3, stats(&self->q).shrinks);
}

/*
 * Producers that found the ring full each ask for growth; one grow serves
 * them all: a request that arrives after it (the ring is no longer full)
 * grows nothing.
 */
TEST_F(lf, one_grow_serves_every_request)
{
	u64 n = 0;

	up(_metadata, self, cfg(4, 4, 64), 0);
	while (!push(&self->q, 1, n))
		n++;
	ASSERT_EQ(4, n);
	ASSERT_EQ(1, eq_lfq_grow_if_wanted(&self->q));
	ASSERT_EQ(8, eq_lfq_capacity(&self->q));
	/* A second producer's request, made before the grow. */
	atomic_set(&self->q.grow_wanted, 1);
	EXPECT_EQ(0, eq_lfq_grow_if_wanted(&self->q));
	EXPECT_EQ(8, eq_lfq_capacity(&self->q));
	EXPECT_EQ(1, stats(&self->q).grows);
	EXPECT_EQ(0, atomic_read(&self->q.grow_wanted));
	while (n--)
		ASSERT_LE(0, pop(&self->q));
}

TEST_F(lf, shrinks_when_drained)
{
	u64 i;

	up(_metadata, self, cfg(4, 64, 64), 0);
	for (i = 0; i < 40; i++)
		ASSERT_EQ(0, push(&self->q, 1, i));
	for (i = 0; i < 40; i++)
		ASSERT_EQ(i, pop(&self->q));
	ASSERT_EQ(-1, pop(&self->q));
	EXPECT_EQ(4, eq_lfq_capacity(&self->q));
	EXPECT_LE(1, stats(&self->q).shrinks);
	EXPECT_EQ(stats(&self->q).mem_bytes,
		  atomic64_read(&self->budget.used));
}

/* Messages pushed before and after a resize come out in order. */
TEST_F(lf, resize_keeps_order)
{
	u64 i, next = 0;

	up(_metadata, self, cfg(4, 16, 64), 0);
	for (i = 0; i < 10; i++)
		ASSERT_EQ(0, push(&self->q, 1, i));
	/* The capacity counts the old ring's messages too. */
	ASSERT_EQ(0, eq_lfq_resize(&self->q, 12));
	for (; i < 12; i++)
		ASSERT_EQ(0, push(&self->q, 1, i));
	ASSERT_EQ(-EAGAIN, push(&self->q, 1, i));
	/* A second resize before the first ring is drained: a chain. */
	ASSERT_EQ(0, eq_lfq_resize(&self->q, 15));
	EXPECT_EQ(15, eq_lfq_capacity(&self->q));
	for (; i < 15; i++)
		ASSERT_EQ(0, push(&self->q, 1, i));
	ASSERT_EQ(-EAGAIN, push(&self->q, 1, i));
	EXPECT_EQ(15, stats(&self->q).len);
	for (; next < 15; next++)
		ASSERT_EQ(next, pop(&self->q));
	ASSERT_EQ(-1, pop(&self->q));
	EXPECT_EQ(rcu_dereference_protected(self->q.prod, 1), self->q.cons);
}

/*
 * Growth while nobody consumes: each request grows the producers' ring,
 * the older full rings wait in the chain, and memory counts all of them.
 */
TEST_F(lf, grows_while_the_consumer_is_away)
{
	struct elasticq_stats st;
	u64 i, next = 0;

	up(_metadata, self, cfg(4, 4, 64), 0);
	for (i = 0; i < 61; i++) {
		if (push(&self->q, 1, i) == -EAGAIN) {
			ASSERT_EQ(1, eq_lfq_grow_if_wanted(&self->q));
			ASSERT_EQ(0, push(&self->q, 1, i));
		}
	}
	st = stats(&self->q);
	EXPECT_EQ(61, st.len);
	EXPECT_EQ(4, st.grows);			/* 4 -> 8 -> 16 -> 32 -> 64 */
	EXPECT_EQ(64, st.capacity);
	EXPECT_EQ(atomic64_read(&self->budget.used), st.mem_bytes);
	for (; next < 61; next++)
		ASSERT_EQ(next, pop(&self->q));
	ASSERT_EQ(-1, pop(&self->q));
	st = stats(&self->q);
	EXPECT_EQ(atomic64_read(&self->budget.used), st.mem_bytes);
}

/*
 * A walk with eq_lfq_peek_next() crosses from ring to ring and consumes
 * nothing; commits then take the same messages in the same order.
 */
TEST_F(lf, peek_next_walks_the_chain)
{
	struct eq_lfq_cursor c = { 0 };
	struct eq_msg *m;
	u32 who;
	u64 i, n;

	up(_metadata, self, cfg(3, 3, 64), 0);
	for (i = 0; i < 3; i++)
		ASSERT_EQ(0, push(&self->q, 1, i));
	ASSERT_EQ(0, eq_lfq_resize(&self->q, 5));
	for (; i < 5; i++)
		ASSERT_EQ(0, push(&self->q, 1, i));
	ASSERT_EQ(0, eq_lfq_resize(&self->q, 8));
	for (; i < 7; i++)
		ASSERT_EQ(0, push(&self->q, 1, i));
	ASSERT_NE(NULL, eq_lfq_peek(&self->q));
	for (i = 0; i < 7; i++) {
		m = eq_lfq_peek_next(&self->q, &c);
		ASSERT_NE(NULL, m);
		who_n(m, &who, &n);
		ASSERT_EQ(i, n);
	}
	ASSERT_EQ(NULL, eq_lfq_peek_next(&self->q, &c));
	EXPECT_EQ(7, stats(&self->q).len);
	for (i = 0; i < 7; i++)
		ASSERT_EQ(i, pop(&self->q));
	ASSERT_EQ(-1, pop(&self->q));
}

TEST_F(lf, limits)
{
	struct elasticq_config c = cfg(4, 4, 4);
	struct eq_msg *m;

	c.max_bytes = 40;
	c.max_msg_size = 30;
	up(_metadata, self, c, 0);
	m = mk(1, 0, 31);
	EXPECT_EQ(-EMSGSIZE, eq_lfq_push(&self->q, m));
	eq_msg_free(m);
	ASSERT_EQ(0, push(&self->q, 1, 0));
	ASSERT_EQ(0, push(&self->q, 1, 1));
	EXPECT_EQ(-EAGAIN, push(&self->q, 1, 2));	/* 48 > 40 bytes */
	EXPECT_EQ(32, stats(&self->q).bytes);
	EXPECT_EQ(0, pop(&self->q));
	/* The memory budget: ENOBUFS, nothing reserved. */
	self->limit = atomic64_read(&self->budget.used);
	EXPECT_EQ(-ENOBUFS, push(&self->q, 1, 2));
	EXPECT_EQ(1, stats(&self->q).len);
	EXPECT_EQ(16, stats(&self->q).bytes);
	self->limit = 1ULL << 40;
	EXPECT_EQ(1, pop(&self->q));
}

/*
 * Capacity 1: with Vyukov's plain sequence numbers "ready for p" and "free
 * for p + 1" are the same value and a second push overwrote the first.
 */
TEST_F(lf, capacity_one)
{
	u64 i;

	up(_metadata, self, cfg(1, 1, 4), 0);
	ASSERT_EQ(0, push(&self->q, 1, 0));
	ASSERT_EQ(-EAGAIN, push(&self->q, 1, 1));
	ASSERT_EQ(0, pop(&self->q));
	/* One slot, many laps: each push finds the slot the pop freed. */
	for (i = 1; i < 10; i++) {
		ASSERT_EQ(0, push(&self->q, 1, i));
		ASSERT_EQ(-EAGAIN, push(&self->q, 1, i + 1));
		ASSERT_EQ(i, pop(&self->q));
	}
	/* The refused push asked for growth: 1 -> 2. */
	ASSERT_EQ(0, push(&self->q, 1, 10));
	ASSERT_EQ(-EAGAIN, push(&self->q, 1, 11));
	ASSERT_EQ(1, eq_lfq_grow_if_wanted(&self->q));
	ASSERT_EQ(0, push(&self->q, 1, 11));
	ASSERT_EQ(10, pop(&self->q));
	ASSERT_EQ(11, pop(&self->q));
	ASSERT_EQ(-1, pop(&self->q));
}

/*
 * A shrink below what is queued, or being pushed, is refused with nothing
 * changed: a producer that counted itself in len before the shrink looked
 * could still enter the old ring, and leave the queue over its capacity.
 */
TEST_F(lf, shrink_below_len_refused)
{
	int i;

	up(_metadata, self, cfg(2, 8, 8), 0);
	for (i = 0; i < 4; i++)
		ASSERT_EQ(0, push(&self->q, 1, i));
	EXPECT_EQ(-EBUSY, eq_lfq_resize(&self->q, 3));
	EXPECT_EQ(8, eq_lfq_capacity(&self->q));
	EXPECT_EQ(8, self->q.limit);
	/* A push in progress: counted in len, no position yet. */
	atomic64_inc(&self->q.len);
	EXPECT_EQ(-EBUSY, eq_lfq_resize(&self->q, 4));
	EXPECT_EQ(8, self->q.limit);
	atomic64_dec(&self->q.len);
	ASSERT_EQ(0, eq_lfq_resize(&self->q, 4));
	EXPECT_EQ(4, eq_lfq_capacity(&self->q));
	EXPECT_EQ(4, self->q.limit);
	EXPECT_EQ(-EAGAIN, push(&self->q, 1, 4));
	for (i = 0; i < 4; i++)
		EXPECT_EQ(i, pop(&self->q));
	EXPECT_EQ(4, stats(&self->q).enqueued);
	EXPECT_EQ(0, stats(&self->q).len);
}

/* max_capacity counts the messages of both rings during a resize. */
TEST_F(lf, max_capacity_spans_both_rings)
{
	up(_metadata, self, cfg(2, 2, 3), 0);
	ASSERT_EQ(0, push(&self->q, 1, 0));
	ASSERT_EQ(0, push(&self->q, 1, 1));
	ASSERT_EQ(0, eq_lfq_resize(&self->q, 3));
	ASSERT_EQ(0, push(&self->q, 1, 2));
	/* The new ring has room; the queue does not. */
	EXPECT_EQ(-EAGAIN, push(&self->q, 1, 3));
	EXPECT_EQ(3, stats(&self->q).len);
	EXPECT_EQ(0, pop(&self->q));
	EXPECT_EQ(0, push(&self->q, 1, 3));
	EXPECT_EQ(1, pop(&self->q));
	EXPECT_EQ(2, pop(&self->q));
	EXPECT_EQ(3, pop(&self->q));
}

/*
 * Positions start just below EQ_LF_POS_RENEW: the consumer moves to a
 * fresh ring at position 0 and nothing is lost or reordered.
 */
TEST_F(lf, positions_renew_before_the_top)
{
	u64 i, next = 0;

	up(_metadata, self, cfg(8, 8, 8), EQ_LF_POS_RENEW - 20);
	for (i = 0; i < 5000; i++) {
		ASSERT_EQ(0, push(&self->q, 1, i));
		if (i >= 4)
			ASSERT_EQ(next++, pop(&self->q));
	}
	while (next < 5000)
		ASSERT_EQ(next++, pop(&self->q));
	EXPECT_GT(EQ_LF_POS_RENEW, self->q.head);
	EXPECT_EQ(rcu_dereference_protected(self->q.prod, 1), self->q.cons);
}

/* ---- producers against a bursty, resizing consumer ---------------------- */

#define NPROD	4

struct race {
	struct eq_lfq *q;
	u64 per_producer;
	u32 who;
	u64 eagain;
};

static void *producer(void *arg)
{
	struct race *r = arg;
	u64 n = 0;

	while (n < r->per_producer) {
		if (!push(r->q, r->who, n)) {
			n++;
		} else {
			r->eagain++;	/* full: the consumer will make room */
			sched_yield();
		}
	}
	return NULL;
}

/* Samples the stats while the race runs; checks what they promise. */
struct sampler {
	struct eq_lfq *q;
	u32 max_capacity;
	volatile bool stop;
	u64 samples, unsettled, bad;
	struct elasticq_stats first_bad;
};

static void *sampler(void *arg)
{
	struct sampler *s = arg;
	struct elasticq_stats st;

	while (!__atomic_load_n(&s->stop, __ATOMIC_RELAXED)) {
		memset(&st, 0, sizeof(st));
		if (!eq_lfq_get_stats(s->q, &st)) {
			s->unsettled++;
			continue;
		}
		s->samples++;
		sched_yield();	/* sample, do not hog a CPU */
		if (st.enqueued < st.dequeued || st.len != st.enqueued - st.dequeued ||
		    st.len > st.capacity || st.len > st.high_water ||
		    st.capacity > s->max_capacity) {
			if (!s->bad++)
				s->first_bad = st;
		}
	}
	return NULL;
}

static u64 total_messages(void)
{
	const char *s = getenv("ELASTICQ_LF_MESSAGES");

	return s ? strtoull(s, NULL, 0) : 10000000;
}

TEST_F_TIMEOUT(lf, producers_race_resizing_consumer, 1800)
{
	struct race r[NPROD];
	pthread_t th[NPROD];
	u64 next[NPROD] = { 0 }, total = total_messages(), got = 0, spins = 0;
	u64 per = total / NPROD, resizes = 0;
	unsigned int seed = 1, i;

	struct sampler smp = { .q = &self->q, .max_capacity = 64 };
	pthread_t sth;

	/* Small min and max: the ring changes size all the time. */
	up(_metadata, self, cfg(2, 2, 64), 0);
	ASSERT_EQ(0, pthread_create(&sth, NULL, sampler, &smp));
	for (i = 0; i < NPROD; i++) {
		r[i] = (struct race){ .q = &self->q, .per_producer = per,
				      .who = i };
		ASSERT_EQ(0, pthread_create(&th[i], NULL, producer, &r[i]));
	}
	while (got < per * NPROD) {
		struct eq_msg *m = eq_lfq_peek(&self->q);
		u32 who;
		u64 n;

		if (!m) {
			spins++;
			sched_yield();
			continue;
		}
		who_n(m, &who, &n);
		ASSERT_GT(NPROD, who);
		ASSERT_EQ(next[who], n) {
			TH_LOG("producer %u: got %llu, want %llu", who,
			       (unsigned long long)n,
			       (unsigned long long)next[who]);
		}
		next[who]++;
		got++;
		eq_lfq_commit(&self->q);
		eq_msg_free(m);
		/* Bursty: now and then a forced resize, or a pause. */
		switch (rand_r(&seed) % 64) {
		case 0:
			if (!eq_lfq_resize(&self->q, 2 + rand_r(&seed) % 63))
				resizes++;
			break;
		case 1:
			sched_yield();
			break;
		}
	}
	for (i = 0; i < NPROD; i++)
		pthread_join(th[i], NULL);
	__atomic_store_n(&smp.stop, true, __ATOMIC_RELAXED);
	pthread_join(sth, NULL);
	TH_LOG("stats: %llu samples, %llu unsettled, %llu bad",
	       (unsigned long long)smp.samples,
	       (unsigned long long)smp.unsettled,
	       (unsigned long long)smp.bad);
	EXPECT_EQ(0, smp.bad) {
		TH_LOG("len %llu capacity %llu high_water %llu enqueued %llu dequeued %llu",
		       (unsigned long long)smp.first_bad.len,
		       (unsigned long long)smp.first_bad.capacity,
		       (unsigned long long)smp.first_bad.high_water,
		       (unsigned long long)smp.first_bad.enqueued,
		       (unsigned long long)smp.first_bad.dequeued);
	}
	EXPECT_LT(0, smp.samples);
	ASSERT_EQ(NULL, eq_lfq_peek(&self->q));
	for (i = 0; i < NPROD; i++)
		ASSERT_EQ(per, next[i]);
	TH_LOG("%llu messages, %llu forced resizes, %llu grows, %llu shrinks, "
	       "%llu empty peeks", (unsigned long long)got,
	       (unsigned long long)resizes,
	       (unsigned long long)stats(&self->q).grows,
	       (unsigned long long)stats(&self->q).shrinks,
	       (unsigned long long)spins);
	EXPECT_EQ(per * NPROD, stats(&self->q).enqueued);
	EXPECT_EQ(0, stats(&self->q).len);
}

TEST_HARNESS_MAIN
