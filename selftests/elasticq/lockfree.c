// SPDX-License-Identifier: MIT
/*
 * What only the lock-free variant has (issue 5; the other test binaries run
 * once per variant and cover the semantics both share): one consumer at a
 * time, no drop-oldest policy, a variant fixed at creation, growth while
 * the consumer is away, and 4 producer processes x 1 000 000 messages
 * against a bursty batch consumer, so that the ring grows and shrinks all
 * the time, with every message checked exactly once and in per-producer
 * order.
 *
 * Each test makes its own lock-free named queue ("lockfree.<pid>.<n>"), so
 * the binary means the same in both passes of a lane; the big test runs
 * only in the lock-free pass.
 */
#define EQ_CUSTOM_FIXTURE
#include "eq_test.h"

#define NAME_PREFIX	"lockfree."

FIXTURE(lf) {
	EQ_FIXTURE_FIELDS;
	int nnames;
	char names[8][ELASTICQ_NAME_SIZE];
};

FIXTURE_SETUP(lf)
{
	EQ_FIXTURE_SETUP_BODY;
}

FIXTURE_TEARDOWN(lf)
{
	int i;

	for (i = 0; i < self->nnames; i++)
		EXPECT_EQ(0, eq_destroy(self->names[i]));
	EQ_FIXTURE_TEARDOWN_BODY;
}

/* A lock-free queue's config: small and elastic unless the test says. */
static void lf_config(struct elasticq_config *cfg)
{
	eq_default_config(cfg);
	cfg->variant = ELASTICQ_VARIANT_LOCKFREE;
	cfg->initial_capacity = 16;
	cfg->min_capacity = 16;
	cfg->max_capacity = 4096;
}

/* Create a named queue with @cfg; return its name (teardown destroys it). */
static const char *lf_create(struct __test_metadata *_metadata,
			     FIXTURE_DATA(lf) *self,
			     const struct elasticq_config *cfg)
{
	char *name = self->names[self->nnames];
	int fd;

	snprintf(name, ELASTICQ_NAME_SIZE, NAME_PREFIX "%d.%d", getpid(),
		 self->nnames);
	fd = eq_open_named(name, O_RDWR, ELASTICQ_ATTACH_CREATE |
			   ELASTICQ_ATTACH_EXCL, 0600, cfg);
	if (fd < 0) {
		TH_LOG("create %s: %s", name, strerror(-fd));
		return NULL;
	}
	self->nnames++;
	close(fd);
	return name;
}

static int lf_open(const char *name, int flags)
{
	return eq_open_named(name, O_RDWR | flags, 0, 0, NULL);
}

/* One consumer file at a time: read, CONSUME and POP_BATCH say EBUSY. */
TEST_F(lf, consumer_is_exclusive)
{
	struct elasticq_config cfg;
	struct elasticq_stats st;
	const char *name;
	char buf[64], frames[256];
	int a, b, c;

	lf_config(&cfg);
	name = lf_create(_metadata, self, &cfg);
	ASSERT_NE(NULL, name);
	a = lf_open(name, O_NONBLOCK);
	b = lf_open(name, O_NONBLOCK);
	ASSERT_LE(0, a);
	ASSERT_LE(0, b);
	ASSERT_EQ(3, eq_push(b, "one", 3));		/* b produces */
	ASSERT_EQ(0, ioctl(a, ELASTICQ_IOC_CONSUME, 0));
	ASSERT_EQ(0, ioctl(a, ELASTICQ_IOC_CONSUME, 0));	/* again: fine */
	EXPECT_EQ(-1, ioctl(b, ELASTICQ_IOC_CONSUME, 0));
	EXPECT_EQ(EBUSY, errno);
	EXPECT_EQ(-EBUSY, eq_pop(b, buf, sizeof(buf)));
	EXPECT_EQ(-EBUSY, eq_pop_batch(b, frames, sizeof(frames), 4,
				       ELASTICQ_BATCH_NONBLOCK, 0, NULL));
	/* Nothing was taken from the queue by the refused calls. */
	ASSERT_EQ(0, eq_get_stats(b, &st));
	EXPECT_EQ(1, st.len);
	EXPECT_EQ(1, st.consumers);
	EXPECT_EQ(3, eq_pop(a, buf, sizeof(buf)));
	EXPECT_EQ(-EAGAIN, eq_pop(a, buf, sizeof(buf)));
	/* The role goes with the file that held it. */
	close(a);
	ASSERT_EQ(0, eq_get_stats(b, &st));
	EXPECT_EQ(0, st.consumers);
	ASSERT_EQ(3, eq_push(b, "two", 3));
	c = lf_open(name, O_NONBLOCK);
	ASSERT_LE(0, c);
	EXPECT_EQ(3, eq_pop(c, buf, sizeof(buf)));
	EXPECT_EQ(-EBUSY, eq_pop(b, buf, sizeof(buf)));
	close(b);
	close(c);
}

/*
 * Drop-oldest needs the lock-based variant: EINVAL at creation and in
 * SET_CONFIG, with nothing created or changed; the variant itself is
 * fixed and out-of-range values are refused.
 */
TEST_F(lf, no_drop_oldest_and_fixed_variant)
{
	struct elasticq_config cfg, bad, now;
	char name[ELASTICQ_NAME_SIZE];
	const char *made;
	int fd;

	lf_config(&cfg);
	bad = cfg;
	bad.full_policy = ELASTICQ_FULL_DROP_OLDEST;
	snprintf(name, sizeof(name), NAME_PREFIX "%d.bad", getpid());
	EXPECT_EQ(-EINVAL, eq_open_named(name, O_RDWR, ELASTICQ_ATTACH_CREATE,
					 0600, &bad));
	EXPECT_EQ(-ENOENT, eq_open_named(name, O_RDWR, 0, 0, NULL));
	bad = cfg;
	bad.variant = ELASTICQ_VARIANT_LOCKFREE + 1;
	EXPECT_EQ(-EINVAL, eq_open_named(name, O_RDWR, ELASTICQ_ATTACH_CREATE,
					 0600, &bad));
	EXPECT_EQ(-ENOENT, eq_open_named(name, O_RDWR, 0, 0, NULL));

	made = lf_create(_metadata, self, &cfg);
	ASSERT_NE(NULL, made);
	fd = lf_open(made, 0);
	ASSERT_LE(0, fd);
	bad = cfg;
	bad.full_policy = ELASTICQ_FULL_DROP_OLDEST;
	EXPECT_EQ(-EINVAL, eq_set_config(fd, &bad));
	bad = cfg;
	bad.variant = ELASTICQ_VARIANT_LOCKED;
	EXPECT_EQ(-EINVAL, eq_set_config(fd, &bad));
	ASSERT_EQ(0, eq_get_config(fd, &now));
	EXPECT_EQ(0, memcmp(&cfg, &now, sizeof(cfg)));
	/* Reject and block are fine. */
	bad = cfg;
	bad.full_policy = ELASTICQ_FULL_REJECT;
	EXPECT_EQ(0, eq_set_config(fd, &bad));
	ASSERT_EQ(0, eq_get_config(fd, &now));
	EXPECT_EQ(ELASTICQ_FULL_REJECT, now.full_policy);
	EXPECT_EQ(ELASTICQ_VARIANT_LOCKFREE, now.variant);
	close(fd);
}

/*
 * Nobody consumes: non-blocking producers still never see EAGAIN below
 * max_capacity, because a producer grows the ring itself when no consumer
 * holds it; older full rings wait in a chain and come out first.
 */
TEST_F(lf, grows_while_the_consumer_is_away)
{
	enum { N = 3000 };
	struct elasticq_config cfg;
	struct elasticq_stats st;
	const char *name;
	uint32_t i, buf[4];
	int p, c;

	lf_config(&cfg);
	name = lf_create(_metadata, self, &cfg);
	ASSERT_NE(NULL, name);
	p = lf_open(name, O_NONBLOCK);
	ASSERT_LE(0, p);
	for (i = 0; i < N; i++) {
		buf[0] = i;
		ASSERT_EQ(sizeof(buf), eq_push(p, buf, sizeof(buf))) {
			TH_LOG("push %u", i);
		}
	}
	ASSERT_EQ(0, eq_get_stats(p, &st));
	EXPECT_EQ(N, st.len);
	EXPECT_EQ(4096, st.capacity);
	EXPECT_EQ(8, st.grows);			/* 16 -> 32 -> ... -> 4096 */
	EXPECT_EQ(0, st.rejected);
	/* Up to max_capacity, then a full queue. */
	for (; i < 4096; i++) {
		buf[0] = i;
		ASSERT_EQ(sizeof(buf), eq_push(p, buf, sizeof(buf)));
	}
	EXPECT_EQ(-EAGAIN, eq_push(p, buf, sizeof(buf)));
	ASSERT_EQ(0, eq_get_stats(p, &st));
	EXPECT_EQ(1, st.rejected);

	c = lf_open(name, O_NONBLOCK);
	ASSERT_LE(0, c);
	for (i = 0; i < 4096; i++) {
		ASSERT_EQ(sizeof(buf), eq_pop(c, buf, sizeof(buf)));
		ASSERT_EQ(i, buf[0]);
	}
	EXPECT_EQ(-EAGAIN, eq_pop(c, buf, sizeof(buf)));
	/* Drained, it gives the memory back down to min_capacity. */
	ASSERT_EQ(0, eq_get_stats(p, &st));
	EXPECT_EQ(0, st.len);
	EXPECT_EQ(16, st.capacity);
	EXPECT_LT(0, st.shrinks);
	close(p);
	close(c);
}

/* /proc/elasticq names the variant. */
TEST_F(lf, proc_names_the_variant)
{
	static char table[1 << 16];
	struct elasticq_config cfg;
	const char *name;
	char *line;

	lf_config(&cfg);
	name = lf_create(_metadata, self, &cfg);
	ASSERT_NE(NULL, name);
	ASSERT_LT(0, eq_read_text("/proc/elasticq", table, sizeof(table)));
	line = strstr(table, name);
	ASSERT_NE(NULL, line);
	*strchrnul(line, '\n') = '\0';
	EXPECT_NE(NULL, strstr(line, " lockfree ")) {
		TH_LOG("row: %s", line);
	}
}

/* ---- 4 producer processes x 1 000 000 messages ---------------------------- */

struct big_msg {
	uint32_t id;
	uint32_t seq;
	uint32_t check;
};

static uint32_t big_check(uint32_t id, uint32_t seq)
{
	return (id + 1) * 0x9e3779b9U ^ seq * 0x85ebca6bU;
}

#define BIG_PROD	4
#define BIG_MSGS	((uint32_t)eq_scale(1000000))

/* Producer child: @n messages, in batches of 1 to 64. */
static void big_producer(const char *name, uint32_t id, uint32_t n)
{
	struct elasticq_msg_vec v[64];
	struct big_msg m[64];
	uint32_t seq = 0, k, i;
	long ret;
	int fd;

	fd = lf_open(name, 0);
	if (fd < 0)
		_exit(2);
	while (seq < n) {
		k = 1 + (seq * 7 + id) % 64;
		if (k > n - seq)
			k = n - seq;
		for (i = 0; i < k; i++) {
			m[i].id = id;
			m[i].seq = seq + i;
			m[i].check = big_check(id, seq + i);
			v[i].addr = (uintptr_t)&m[i];
			v[i].len = sizeof(m[i]);
		}
		/* Blocking: a full queue waits; a count < k pushed k. */
		ret = eq_push_batch(fd, v, k, 0, 0, NULL);
		if (ret <= 0)
			_exit(3);
		seq += ret;
	}
	close(fd);
	_exit(0);
}

/*
 * The consumer drains in batches of up to 256 and every 64 batches pauses
 * for a millisecond, so the queue fills, grows, drains and shrinks over and
 * over; min 16 and max 4096 keep the ring cycling.
 */
TEST_F_TIMEOUT(lf, four_producers_a_million_each, 3000)
{
	static uint8_t frames[256 * ELASTICQ_FRAME_SIZE(sizeof(struct big_msg))];
	uint32_t next[BIG_PROD] = { 0 }, i;
	struct elasticq_config cfg;
	struct elasticq_stats st;
	pid_t pids[BIG_PROD];
	uint64_t total = 0, batches = 0, t0;
	const char *name;
	int c;

	if (!eq_lockfree())
		SKIP(return, "runs in the lock-free pass");
	lf_config(&cfg);
	cfg.pop_timeout_ns = 60000 * EQ_MS;	/* a lost message cannot hang */
	name = lf_create(_metadata, self, &cfg);
	ASSERT_NE(NULL, name);
	c = lf_open(name, 0);
	ASSERT_LE(0, c);
	ASSERT_EQ(0, ioctl(c, ELASTICQ_IOC_CONSUME, 0));
	for (i = 0; i < BIG_PROD; i++) {
		pids[i] = fork();
		ASSERT_LE(0, pids[i]);
		if (pids[i] == 0)
			big_producer(name, i, BIG_MSGS);
		self->child[i] = pids[i];
	}
	t0 = eq_now_ns();
	while (total < (uint64_t)BIG_PROD * BIG_MSGS) {
		const struct big_msg *m;
		uint64_t bytes, pos = 0;
		uint32_t len;
		long n;

		n = eq_pop_batch(c, frames, sizeof(frames), 256, 0, 0, &bytes);
		ASSERT_LT(0, n) {
			TH_LOG("after %llu messages: %s",
			       (unsigned long long)total, strerror(-n));
		}
		for (; n > 0; n--, total++) {
			m = eq_next_frame(frames, bytes, &pos, &len);
			ASSERT_NE(NULL, m);
			ASSERT_EQ(sizeof(*m), len);
			ASSERT_GT(BIG_PROD, m->id);
			ASSERT_EQ(big_check(m->id, m->seq), m->check);
			ASSERT_EQ(next[m->id], m->seq) {
				TH_LOG("producer %u: got %u", m->id, m->seq);
			}
			next[m->id]++;
		}
		if (++batches % 64 == 0)
			eq_sleep_ms(1);
	}
	TH_LOG("%u x %u messages in %.2f s, %llu batches", BIG_PROD, BIG_MSGS,
	       (eq_now_ns() - t0) / 1e9, (unsigned long long)batches);
	for (i = 0; i < BIG_PROD; i++) {
		EXPECT_EQ(BIG_MSGS, next[i]);
		EXPECT_EQ(0, eq_wait_exit(pids[i]));
		self->child[i] = 0;
	}
	ASSERT_EQ(0, eq_get_stats(c, &st));
	TH_LOG("grows %llu, shrinks %llu, high water %llu",
	       (unsigned long long)st.grows, (unsigned long long)st.shrinks,
	       (unsigned long long)st.high_water);
	EXPECT_EQ(0, st.len);
	EXPECT_EQ(0, st.bytes);
	EXPECT_EQ((uint64_t)BIG_PROD * BIG_MSGS, st.enqueued);
	EXPECT_EQ((uint64_t)BIG_PROD * BIG_MSGS, st.dequeued);
	EXPECT_EQ(0, st.rejected);
	EXPECT_LT(0, st.grows);
	EXPECT_LT(0, st.shrinks);
	EXPECT_GE(4096, st.high_water);
	close(c);
}

TEST_HARNESS_MAIN
