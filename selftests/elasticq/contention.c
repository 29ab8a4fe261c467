// SPDX-License-Identifier: MIT
/*
 * Small queues under contention: full (or empty) most of the time, so that
 * every push and pop depends on a wake-up.
 *
 * Wake-ups: producers and a consumer that sleep only in poll(2) (non-blocking
 * files), or only in blocking batch calls, move millions of messages
 * through a queue of 4 to 16 slots.  A lost wake-up leaves a producer
 * waiting for room and the consumer waiting for a message at once: every
 * wait is bounded (EQ_WAIT_MS), and one that runs out fails the test
 * instead of hanging it.  Every message arrives exactly once, in
 * per-producer order.
 *
 * Snapshots: GET_STATS sampled without pause while producers and a consumer
 * run holds on every sample what struct elasticq_stats promises.
 *
 * Each test makes its own named queue of the pass's variant (the lock-free
 * pass tests lock-free queues).
 */
#define EQ_CUSTOM_FIXTURE
#include <poll.h>
#include <pthread.h>

#include "eq_test.h"

FIXTURE(ct) {
	EQ_FIXTURE_FIELDS;
	char name[ELASTICQ_NAME_SIZE];
};

FIXTURE_SETUP(ct)
{
	EQ_FIXTURE_SETUP_BODY;
	self->name[0] = 0;
}

FIXTURE_TEARDOWN(ct)
{
	if (self->name[0])
		EXPECT_EQ(0, eq_destroy(self->name));
	EQ_FIXTURE_TEARDOWN_BODY;
}

/* Create the test's queue: @min..@max slots, timeouts of EQ_WAIT_MS. */
static void ct_create(struct __test_metadata *_metadata,
		      FIXTURE_DATA(ct) *self, uint32_t min, uint32_t max)
{
	struct elasticq_config cfg;
	int fd;

	eq_default_config(&cfg);
	cfg.initial_capacity = min;
	cfg.min_capacity = min;
	cfg.max_capacity = max;
	cfg.max_msg_size = 64;
	cfg.push_timeout_ns = EQ_WAIT_MS * EQ_MS;
	cfg.pop_timeout_ns = EQ_WAIT_MS * EQ_MS;
	snprintf(self->name, sizeof(self->name), "contention.%d", getpid());
	fd = eq_open_named(self->name, O_RDWR, ELASTICQ_ATTACH_CREATE |
			   ELASTICQ_ATTACH_EXCL, 0600, &cfg);
	if (fd < 0)
		self->name[0] = 0;
	ASSERT_LE(0, fd) TH_LOG("create %s: %s", self->name, strerror(-fd));
	close(fd);
}

/* How the tasks of a run wait. */
enum ct_mode {
	CT_POLL,	/* non-blocking read(2)/write(2), sleeping in poll(2) */
	CT_BATCH,	/* blocking POP_BATCH/PUSH_BATCH */
};

#define CT_MAXPROD	4
#define CT_BATCH_N	8

struct ct_msg {
	uint32_t id;
	uint32_t seq;
};

struct ct_run {
	const char *name;
	enum ct_mode mode;
	uint32_t nprod;
	uint32_t per;		/* messages per producer */
	bool pin;		/* every task on CPU 0 */
	pthread_mutex_t lock;	/* serialises @err */
	char err[256];		/* the first failure, "" if none */
	bool failed;		/* any task gave up: the others stop */
	uint64_t sleeps;	/* waits in poll(2) that found nothing ready */
};

static void ct_fail(struct ct_run *r, const char *fmt, ...)
{
	va_list ap;

	pthread_mutex_lock(&r->lock);
	if (!r->err[0]) {
		va_start(ap, fmt);
		vsnprintf(r->err, sizeof(r->err), fmt, ap);
		va_end(ap);
	}
	__atomic_store_n(&r->failed, true, __ATOMIC_RELAXED);
	pthread_mutex_unlock(&r->lock);
}

static bool ct_failed(struct ct_run *r)
{
	return __atomic_load_n(&r->failed, __ATOMIC_RELAXED);
}

/*
 * Wait in poll(2) for @events; false (failure recorded) if none came in
 * EQ_WAIT_MS although the other side kept working: a lost wake-up.
 */
static bool ct_poll(struct ct_run *r, int fd, short events, const char *who,
		    uint32_t id)
{
	struct pollfd p = { .fd = fd, .events = events };
	int n;

	do {
		n = poll(&p, 1, EQ_WAIT_MS);
	} while (n < 0 && errno == EINTR);
	if (n < 0) {
		ct_fail(r, "%s %u: poll: %s", who, id, strerror(errno));
		return false;
	}
	if (!n) {
		ct_fail(r, "%s %u: no %s for %d ms: lost wake-up", who, id,
			events == POLLIN ? "POLLIN" : "POLLOUT", EQ_WAIT_MS);
		return false;
	}
	__atomic_fetch_add(&r->sleeps, 1, __ATOMIC_RELAXED);
	return true;
}

struct ct_prod {
	struct ct_run *r;
	uint32_t id;
};

static void ct_produce_poll(struct ct_run *r, int fd, uint32_t id)
{
	struct ct_msg m = { .id = id };
	ssize_t n;

	while (m.seq < r->per && !ct_failed(r)) {
		n = write(fd, &m, sizeof(m));
		if (n == sizeof(m)) {
			m.seq++;
		} else if (n < 0 && errno == EAGAIN) {
			if (!ct_poll(r, fd, POLLOUT, "producer", id))
				return;
		} else {
			ct_fail(r, "producer %u: write %zd: %s", id, n,
				strerror(errno));
			return;
		}
	}
}

static void ct_produce_batch(struct ct_run *r, int fd, uint32_t id)
{
	struct ct_msg m[CT_BATCH_N];
	struct elasticq_msg_vec v[CT_BATCH_N];
	uint32_t seq = 0, i, k;
	int error;
	long n;

	while (seq < r->per && !ct_failed(r)) {
		k = r->per - seq < CT_BATCH_N ? r->per - seq : CT_BATCH_N;
		for (i = 0; i < k; i++) {
			m[i] = (struct ct_msg){ .id = id, .seq = seq + i };
			v[i] = (struct elasticq_msg_vec){ (uintptr_t)&m[i],
							  sizeof(m[i]) };
		}
		n = eq_push_batch(fd, v, k, 0, 0, &error);
		if (n > 0) {
			seq += n;
		} else {
			ct_fail(r, "producer %u: push batch: %s%s", id,
				strerror((int)-n), n == -ETIMEDOUT ?
				" (no room for EQ_WAIT_MS: lost wake-up)" : "");
			return;
		}
	}
}

/* On CPU 0 if @r says so. */
static void ct_pin(struct ct_run *r)
{
	cpu_set_t set;

	if (!r->pin)
		return;
	CPU_ZERO(&set);
	CPU_SET(0, &set);
	if (pthread_setaffinity_np(pthread_self(), sizeof(set), &set))
		ct_fail(r, "pin to CPU 0 failed");
}

static void *ct_producer(void *arg)
{
	struct ct_prod *p = arg;
	struct ct_run *r = p->r;
	int fd;

	ct_pin(r);
	fd = eq_open_named(r->name, O_WRONLY |
			   (r->mode == CT_POLL ? O_NONBLOCK : 0), 0, 0, NULL);
	if (fd < 0) {
		ct_fail(r, "producer %u: open: %s", p->id, strerror(-fd));
		return NULL;
	}
	if (r->mode == CT_POLL)
		ct_produce_poll(r, fd, p->id);
	else
		ct_produce_batch(r, fd, p->id);
	close(fd);
	return NULL;
}

/* One message for the consumer: in order, exactly once. */
static bool ct_check(struct ct_run *r, uint32_t *next, const void *buf,
		     size_t len)
{
	struct ct_msg m;

	if (len != sizeof(m)) {
		ct_fail(r, "consumer: message of %zu bytes", len);
		return false;
	}
	memcpy(&m, buf, sizeof(m));
	if (m.id >= r->nprod || m.seq != next[m.id]) {
		ct_fail(r, "consumer: got %u/%u, want seq %u", m.id, m.seq,
			m.id < r->nprod ? next[m.id] : 0);
		return false;
	}
	next[m.id]++;
	return true;
}

/* The consumer, in the calling thread; returns the messages it got. */
static uint64_t ct_consume(struct ct_run *r, int fd)
{
	uint64_t got = 0, total = (uint64_t)r->nprod * r->per, bytes, pos;
	uint32_t next[CT_MAXPROD] = { 0 }, len;
	char buf[CT_BATCH_N * ELASTICQ_FRAME_SIZE(sizeof(struct ct_msg))];
	const void *f;
	ssize_t n;

	while (got < total && !ct_failed(r)) {
		if (r->mode == CT_POLL) {
			n = read(fd, buf, sizeof(buf));
			if (n < 0 && errno == EAGAIN) {
				if (!ct_poll(r, fd, POLLIN, "consumer", 0))
					break;
				continue;
			}
			if (n < 0) {
				ct_fail(r, "consumer: read: %s",
					strerror(errno));
				break;
			}
			if (!ct_check(r, next, buf, n))
				break;
			got++;
			continue;
		}
		n = eq_pop_batch(fd, buf, sizeof(buf), CT_BATCH_N, 0, 0,
				 &bytes);
		if (n <= 0) {
			ct_fail(r, "consumer: pop batch: %s%s",
				strerror((int)-n), n == -ETIMEDOUT ?
				" (no message for EQ_WAIT_MS: lost wake-up)" :
				"");
			break;
		}
		pos = 0;
		while ((f = eq_next_frame(buf, bytes, &pos, &len))) {
			if (!ct_check(r, next, f, len))
				break;
			got++;
			n--;
		}
		if (n) {
			ct_fail(r, "consumer: %zd frames missing", n);
			break;
		}
	}
	return got;
}

struct ct_cons {
	struct ct_run *r;
	int fd;
	uint64_t got;
	bool done;
};

static void *ct_consumer(void *arg)
{
	struct ct_cons *c = arg;

	c->got = ct_consume(c->r, c->fd);
	__atomic_store_n(&c->done, true, __ATOMIC_RELEASE);
	return NULL;
}

struct ct_samples {
	uint64_t n, bad;
	uint32_t min, max;	/* the queue's capacity bounds */
	struct elasticq_stats prev, first_bad;
	const char *why;
};

/* What struct elasticq_stats promises of one snapshot (and the last). */
static const char *ct_stats_bad(const struct ct_samples *s,
				const struct elasticq_stats *st)
{
	if (st->len != st->enqueued - st->dequeued - st->dropped)
		return "len != enqueued - dequeued - dropped";
	if (st->enqueued < st->dequeued + st->dropped)
		return "enqueued < dequeued + dropped";
	if (st->len > st->capacity)
		return "len > capacity";
	if (st->len > st->high_water)
		return "len > high_water";
	if (st->high_water > s->max)
		return "high_water > max_capacity";
	if (st->capacity < s->min || st->capacity > s->max)
		return "capacity out of bounds";
	if (st->enqueued < s->prev.enqueued || st->dequeued < s->prev.dequeued ||
	    st->rejected < s->prev.rejected || st->grows < s->prev.grows ||
	    st->shrinks < s->prev.shrinks ||
	    st->high_water < s->prev.high_water)
		return "a counter went down";
	return NULL;
}

/* Sample GET_STATS through @fd until @c is done. */
static void ct_sample(struct ct_samples *s, int fd, struct ct_cons *c)
{
	struct elasticq_stats st;
	const char *why;

	while (!__atomic_load_n(&c->done, __ATOMIC_ACQUIRE)) {
		if (eq_get_stats(fd, &st)) {
			why = "GET_STATS failed";
		} else {
			why = ct_stats_bad(s, &st);
			s->prev = st;
		}
		s->n++;
		if (why && !s->bad++) {
			s->first_bad = st;
			s->why = why;
		}
	}
}

/*
 * @nprod producers of @per messages each, one consumer, all waiting as
 * @mode says, through the fixture's queue; with @s, GET_STATS is sampled
 * all the while.
 */
static void ct_run(struct __test_metadata *_metadata, FIXTURE_DATA(ct) *self,
		   enum ct_mode mode, uint32_t nprod, uint32_t per,
		   struct ct_samples *s, bool pin)
{
	struct ct_run r = { .name = self->name, .mode = mode, .nprod = nprod,
			    .per = per, .pin = pin };
	struct ct_prod p[CT_MAXPROD];
	pthread_t th[CT_MAXPROD], cth;
	struct ct_cons c = { .r = &r };
	struct elasticq_stats st;
	uint64_t got, t0 = eq_now_ns();
	uint32_t i;
	int fd;

	ASSERT_GE(CT_MAXPROD, nprod);
	pthread_mutex_init(&r.lock, NULL);
	fd = eq_open_named(self->name, O_RDONLY |
			   (mode == CT_POLL ? O_NONBLOCK : 0), 0, 0, NULL);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, ioctl(fd, ELASTICQ_IOC_CONSUME, 0));
	ct_pin(&r);
	for (i = 0; i < nprod; i++) {
		p[i] = (struct ct_prod){ .r = &r, .id = i };
		ASSERT_EQ(0, pthread_create(&th[i], NULL, ct_producer, &p[i]));
	}
	if (s) {
		c.fd = fd;
		ASSERT_EQ(0, pthread_create(&cth, NULL, ct_consumer, &c));
		ct_sample(s, self->fd, &c);
		pthread_join(cth, NULL);
		got = c.got;
	} else {
		got = ct_consume(&r, fd);
	}
	if (ct_failed(&r)) {
		/* Unblock the producers: they stop at their next failure. */
		ASSERT_EQ(0, eq_get_stats(fd, &st));
		TH_LOG("queue: len %llu capacity %llu enqueued %llu dequeued %llu",
		       (unsigned long long)st.len,
		       (unsigned long long)st.capacity,
		       (unsigned long long)st.enqueued,
		       (unsigned long long)st.dequeued);
		while (eq_pop_nb(fd, &st, sizeof(st)) > 0 || !ct_failed(&r))
			;
	}
	for (i = 0; i < nprod; i++)
		pthread_join(th[i], NULL);
	TH_LOG("%llu messages in %.1f s, %llu sleeps in poll",
	       (unsigned long long)got, (eq_now_ns() - t0) / 1e9,
	       (unsigned long long)r.sleeps);
	EXPECT_FALSE(ct_failed(&r)) TH_LOG("%s", r.err);
	EXPECT_EQ((uint64_t)nprod * per, got);
	ASSERT_EQ(0, eq_get_stats(fd, &st));
	EXPECT_EQ((uint64_t)nprod * per, st.enqueued);
	EXPECT_EQ((uint64_t)nprod * per, st.dequeued);
	EXPECT_EQ(0, st.len);
	close(fd);
}

/* Messages per test; ELASTICQ_CT_MSGS overrides (to time a run). */
static uint32_t ct_msgs(uint32_t n)
{
	const char *e = getenv("ELASTICQ_CT_MSGS");

	return e ? (uint32_t)strtoul(e, NULL, 0) : (uint32_t)eq_scale(n);
}

#define CT_MSGS		ct_msgs(200000)

/*
 * One producer, one consumer, 4 slots: poll(2) only.  Both sleep at
 * once if a wake-up is lost.  Every sleep is a cross-CPU wake-up, slow
 * under emulation (about 1 ms): few messages.
 */
TEST_F_TIMEOUT(ct, poll_one_producer_four_slots, 900)
{
	ct_create(_metadata, self, 4, 4);
	ct_run(_metadata, self, CT_POLL, 1, ct_msgs(10000), NULL, false);
}

/* The same on one CPU: wake-ups without IPIs, so a million messages. */
TEST_F_TIMEOUT(ct, poll_one_producer_four_slots_one_cpu, 900)
{
	ct_create(_metadata, self, 4, 4);
	ct_run(_metadata, self, CT_POLL, 1, ct_msgs(1000000), NULL, true);
}

/* Four producers, 4 to 16 slots (growth asked for while full): poll(2). */
TEST_F_TIMEOUT(ct, poll_four_producers_growing, 900)
{
	ct_create(_metadata, self, 4, 16);
	ct_run(_metadata, self, CT_POLL, 4, ct_msgs(100000) / 4, NULL, false);
}

/* The same, sleeping in blocking batch calls instead. */
TEST_F_TIMEOUT(ct, blocking_batches_four_producers, 900)
{
	ct_create(_metadata, self, 4, 16);
	ct_run(_metadata, self, CT_BATCH, 4, CT_MSGS / 4, NULL, false);
}

#define CT_STATS_MSGS	ct_msgs(100000)

/*
 * GET_STATS sampled without pause while 4 producers push batches into 4
 * to 64 slots (growing and shrinking) and a consumer pops batches: every
 * sample holds what struct elasticq_stats promises.
 */
TEST_F_TIMEOUT(ct, stats_snapshots_under_load, 900)
{
	struct ct_samples s = { .min = 4, .max = 64 };
	int fd;

	ct_create(_metadata, self, 4, 64);
	fd = eq_open_named(self->name, O_RDONLY, 0, 0, NULL);
	ASSERT_LE(0, fd);
	/* The sampling file: bound to the queue, no role. */
	close(self->fd);
	self->fd = fd;
	ct_run(_metadata, self, CT_BATCH, 4, CT_STATS_MSGS / 4, &s, false);
	TH_LOG("%llu samples; last: capacity %llu high_water %llu grows %llu shrinks %llu",
	       (unsigned long long)s.n, (unsigned long long)s.prev.capacity,
	       (unsigned long long)s.prev.high_water,
	       (unsigned long long)s.prev.grows,
	       (unsigned long long)s.prev.shrinks);
	EXPECT_LT(0, s.n);
	EXPECT_EQ(0, s.bad) {
		TH_LOG("%llu bad samples, the first: %s: len %llu capacity %llu high_water %llu enqueued %llu dequeued %llu dropped %llu",
		       (unsigned long long)s.bad, s.why,
		       (unsigned long long)s.first_bad.len,
		       (unsigned long long)s.first_bad.capacity,
		       (unsigned long long)s.first_bad.high_water,
		       (unsigned long long)s.first_bad.enqueued,
		       (unsigned long long)s.first_bad.dequeued,
		       (unsigned long long)s.first_bad.dropped);
	}
}

TEST_HARNESS_MAIN
