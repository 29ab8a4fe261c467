// SPDX-License-Identifier: MIT
/*
 * Timeouts and signals (struct elasticq_config): a push or pop waiting
 * with a finite timeout ends within about that time even while a 1 ms
 * SA_RESTART signal keeps interrupting it (with ETIMEDOUT, or EINTR when
 * a signal interrupted the wait: it is not restarted with a fresh
 * timeout); a wait without a timeout fails with EINTR when the handler
 * has no SA_RESTART, and goes on waiting (restarted) when it has.  A push
 * batch's @error always agrees with what the call returned.
 *
 * Each test makes its own one-slot named queue of the pass's variant.
 */
#define EQ_CUSTOM_FIXTURE
#include <pthread.h>
#include <signal.h>
#include <sys/time.h>

#include "eq_test.h"

#define SG_TIMEOUT_NS	(200 * EQ_MS)
/* A finite wait must end before this: far beyond 200 ms, far below never. */
#define SG_LIMIT_NS	(5000 * EQ_MS)
/* The ticker stops by itself after this, so a call that never times out
 * under it still ends (late, and the test fails instead of hanging).
 */
#define SG_TICKER_MAX_NS (8000 * EQ_MS)

FIXTURE(sg) {
	EQ_FIXTURE_FIELDS;
	char name[ELASTICQ_NAME_SIZE];
	int q;			/* O_RDWR file on the test's queue */
};

FIXTURE_SETUP(sg)
{
	EQ_FIXTURE_SETUP_BODY;
	self->name[0] = 0;
	self->q = -1;
}

static void sg_ticker_stop(void);

FIXTURE_TEARDOWN(sg)
{
	sg_ticker_stop();
	if (self->q >= 0)
		close(self->q);
	if (self->name[0])
		EXPECT_EQ(0, eq_destroy(self->name));
	EQ_FIXTURE_TEARDOWN_BODY;
}

static volatile sig_atomic_t sg_count;
static uint64_t sg_stop_at;

static void sg_handler(int sig)
{
	struct itimerval off = { 0 };

	(void)sig;
	sg_count++;
	if (eq_now_ns() > sg_stop_at)
		setitimer(ITIMER_REAL, &off, NULL);
}

/* SIGALRM every @us microseconds, its handler with or without SA_RESTART. */
static int sg_ticker_start(unsigned int us, bool restart)
{
	struct itimerval it = { { 0, us }, { 0, us } };
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = sg_handler;
	sa.sa_flags = restart ? SA_RESTART : 0;
	sigemptyset(&sa.sa_mask);
	sg_count = 0;
	sg_stop_at = eq_now_ns() + SG_TICKER_MAX_NS;
	if (sigaction(SIGALRM, &sa, NULL))
		return -errno;
	return setitimer(ITIMER_REAL, &it, NULL) ? -errno : 0;
}

/* Stop the ticker; its handler stays, for a signal still pending. */
static void sg_ticker_stop(void)
{
	struct itimerval off = { 0 };

	setitimer(ITIMER_REAL, &off, NULL);
}

/* The test's queue: one slot, the given timeouts; self->q opened on it. */
static void sg_create(struct __test_metadata *_metadata,
		      FIXTURE_DATA(sg) *self, uint64_t push_ns,
		      uint64_t pop_ns)
{
	struct elasticq_config cfg;

	eq_default_config(&cfg);
	cfg.initial_capacity = 1;
	cfg.min_capacity = 1;
	cfg.max_capacity = 1;
	cfg.max_msg_size = 64;
	cfg.push_timeout_ns = push_ns;
	cfg.pop_timeout_ns = pop_ns;
	snprintf(self->name, sizeof(self->name), "signals.%d", getpid());
	self->q = eq_open_named(self->name, O_RDWR, ELASTICQ_ATTACH_CREATE |
				ELASTICQ_ATTACH_EXCL, 0600, &cfg);
	if (self->q < 0)
		self->name[0] = 0;
	ASSERT_LE(0, self->q) TH_LOG("create: %s", strerror(-self->q));
}

/* Fill the one slot through a file of its own. */
static void sg_fill(struct __test_metadata *_metadata, FIXTURE_DATA(sg) *self)
{
	int fd = eq_open_named(self->name, O_WRONLY, 0, 0, NULL);

	ASSERT_LE(0, fd);
	ASSERT_EQ(4, eq_push(fd, "full", 4));
	close(fd);
}

enum sg_op { SG_READ, SG_WRITE, SG_POP_BATCH, SG_PUSH_BATCH, SG_PUSH_TWO };

/*
 * Run @op on self->q (with ELASTICQ_BATCH_TIMEOUT @batch_ns unless it is
 * 0).  Return the result or -errno; *@error is a push batch's @error.
 */
static long sg_do(FIXTURE_DATA(sg) *self, enum sg_op op, uint64_t batch_ns,
		  int *error)
{
	unsigned int flags = batch_ns ? ELASTICQ_BATCH_TIMEOUT : 0;
	struct elasticq_msg_vec v[2] = { { (uintptr_t)"one", 3 },
					 { (uintptr_t)"two", 3 } };
	char buf[256];

	*error = 0;
	switch (op) {
	case SG_READ:
		return eq_pop(self->q, buf, sizeof(buf));
	case SG_WRITE:
		return eq_push(self->q, "more", 4);
	case SG_POP_BATCH:
		return eq_pop_batch(self->q, buf, sizeof(buf), 4, flags,
				    batch_ns, NULL);
	case SG_PUSH_BATCH:
		return eq_push_batch(self->q, v, 1, flags, batch_ns, error);
	case SG_PUSH_TWO:
		return eq_push_batch(self->q, v, 2, flags, batch_ns, error);
	}
	return -EINVAL;
}

/*
 * @op waits (queue empty for a pop, full for a push) with a finite timeout
 * of 200 ms, the queue's or the batch's, while a 1 ms SA_RESTART ticker
 * runs: it ends with @want (or EINTR) well within SG_LIMIT_NS.
 */
static void sg_finite(struct __test_metadata *_metadata,
		      FIXTURE_DATA(sg) *self, enum sg_op op, bool batch_timeout,
		      long want)
{
	bool push = op == SG_WRITE || op == SG_PUSH_BATCH || op == SG_PUSH_TWO;
	uint64_t none = ELASTICQ_TIMEOUT_NONE, t0, dt;
	int error;
	long ret;

	sg_create(_metadata, self,
		  push && !batch_timeout ? SG_TIMEOUT_NS : none,
		  !push && !batch_timeout ? SG_TIMEOUT_NS : none);
	if (push && op != SG_PUSH_TWO)
		sg_fill(_metadata, self);
	ASSERT_EQ(0, sg_ticker_start(1000, true));
	t0 = eq_now_ns();
	ret = sg_do(self, op, batch_timeout ? SG_TIMEOUT_NS : 0, &error);
	dt = eq_now_ns() - t0;
	sg_ticker_stop();
	TH_LOG("returned %ld after %.3f s, %d signals", ret, dt / 1e9,
	       (int)sg_count);
	EXPECT_GT(SG_LIMIT_NS, dt);
	if (ret != -EINTR)
		EXPECT_EQ(want, ret);
	if (ret == -ETIMEDOUT)
		EXPECT_LE(SG_TIMEOUT_NS, dt);
	if (op == SG_PUSH_BATCH)
		EXPECT_EQ(ret, error);
	if (op == SG_PUSH_TWO) {
		/* The first went in; the second's wait was cut short. */
		EXPECT_TRUE(error == -EINTR || error == -ETIMEDOUT)
			TH_LOG("error %d", error);
	}
}

TEST_F_TIMEOUT(sg, read_timeout_under_restarting_signals, 60)
{
	sg_finite(_metadata, self, SG_READ, false, -ETIMEDOUT);
}

TEST_F_TIMEOUT(sg, write_timeout_under_restarting_signals, 60)
{
	sg_finite(_metadata, self, SG_WRITE, false, -ETIMEDOUT);
}

TEST_F_TIMEOUT(sg, pop_batch_queue_timeout_under_restarting_signals, 60)
{
	sg_finite(_metadata, self, SG_POP_BATCH, false, -ETIMEDOUT);
}

TEST_F_TIMEOUT(sg, pop_batch_timeout_under_restarting_signals, 60)
{
	sg_finite(_metadata, self, SG_POP_BATCH, true, -ETIMEDOUT);
}

TEST_F_TIMEOUT(sg, push_batch_queue_timeout_under_restarting_signals, 60)
{
	sg_finite(_metadata, self, SG_PUSH_BATCH, false, -ETIMEDOUT);
}

TEST_F_TIMEOUT(sg, push_batch_timeout_under_restarting_signals, 60)
{
	sg_finite(_metadata, self, SG_PUSH_BATCH, true, -ETIMEDOUT);
}

/* Part of a batch went in before the wait: the count, @error says why. */
TEST_F_TIMEOUT(sg, push_batch_partial_under_restarting_signals, 60)
{
	sg_finite(_metadata, self, SG_PUSH_TWO, true, 1);
}

/*
 * No timeout, a handler without SA_RESTART: EINTR (the ticker repeats
 * every 20 ms, so a signal that came before the call slept does not
 * matter).
 */
static void sg_forever_eintr(struct __test_metadata *_metadata,
			     FIXTURE_DATA(sg) *self, enum sg_op op)
{
	uint64_t none = ELASTICQ_TIMEOUT_NONE;
	int error;
	long ret;

	sg_create(_metadata, self, none, none);
	if (op == SG_WRITE || op == SG_PUSH_BATCH)
		sg_fill(_metadata, self);
	ASSERT_EQ(0, sg_ticker_start(20000, false));
	ret = sg_do(self, op, 0, &error);
	sg_ticker_stop();
	EXPECT_EQ(-EINTR, ret);
	EXPECT_LT(0, sg_count);
	if (op == SG_PUSH_BATCH)
		EXPECT_EQ(-EINTR, error);
}

TEST_F_TIMEOUT(sg, read_forever_interrupted, 60)
{
	sg_forever_eintr(_metadata, self, SG_READ);
}

TEST_F_TIMEOUT(sg, write_forever_interrupted, 60)
{
	sg_forever_eintr(_metadata, self, SG_WRITE);
}

TEST_F_TIMEOUT(sg, pop_batch_forever_interrupted, 60)
{
	sg_forever_eintr(_metadata, self, SG_POP_BATCH);
}

TEST_F_TIMEOUT(sg, push_batch_forever_interrupted, 60)
{
	sg_forever_eintr(_metadata, self, SG_PUSH_BATCH);
}

struct sg_helper {
	const char *name;
	bool pop;		/* make room, else push a message */
	long ret;
};

/* After 20 signals to the other thread, make the wait end. */
static void *sg_helper(void *arg)
{
	struct sg_helper *h = arg;
	uint64_t until = eq_now_ns() + EQ_WAIT_MS * EQ_MS;
	char buf[64];
	sigset_t set;
	int fd;

	sigemptyset(&set);
	sigaddset(&set, SIGALRM);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	while (sg_count < 20 && eq_now_ns() < until)
		eq_sleep_ms(1);
	fd = eq_open_named(h->name, h->pop ? O_RDONLY : O_WRONLY, 0, 0, NULL);
	if (fd < 0) {
		h->ret = fd;
		return NULL;
	}
	h->ret = h->pop ? eq_pop(fd, buf, sizeof(buf)) :
			  eq_push(fd, "late", 4);
	close(fd);
	return NULL;
}

/*
 * No timeout, SA_RESTART: the call goes on waiting through the signals
 * and completes when another thread makes it possible.
 */
static void sg_forever_restarted(struct __test_metadata *_metadata,
				 FIXTURE_DATA(sg) *self, enum sg_op op,
				 long want)
{
	uint64_t none = ELASTICQ_TIMEOUT_NONE;
	struct sg_helper h = { .pop = op == SG_WRITE || op == SG_PUSH_BATCH };
	pthread_t th;
	int error;
	long ret;

	sg_create(_metadata, self, none, none);
	h.name = self->name;
	if (h.pop)
		sg_fill(_metadata, self);
	ASSERT_EQ(0, sg_ticker_start(1000, true));
	ASSERT_EQ(0, pthread_create(&th, NULL, sg_helper, &h));
	ret = sg_do(self, op, 0, &error);
	sg_ticker_stop();
	pthread_join(th, NULL);
	EXPECT_EQ(want, ret);
	EXPECT_LE(20, sg_count);
	EXPECT_LT(0, h.ret);
	if (op == SG_PUSH_BATCH)
		EXPECT_EQ(0, error);
}

TEST_F_TIMEOUT(sg, read_forever_restarted, 60)
{
	sg_forever_restarted(_metadata, self, SG_READ, 4);
}

TEST_F_TIMEOUT(sg, push_batch_forever_restarted, 60)
{
	sg_forever_restarted(_metadata, self, SG_PUSH_BATCH, 1);
}

TEST_HARNESS_MAIN
