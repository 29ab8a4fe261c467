// SPDX-License-Identifier: MIT
/*
 * Many producer processes, one or more consumers (SPEC sections 1, 3, 4 and
 * 10): every message exactly once, per-producer FIFO, counters that add up.
 */
#include "eq_test.h"

struct smsg {
	uint32_t id;		/* producer */
	uint32_t seq;		/* per producer, from 0 */
	uint32_t check;		/* id and seq mixed */
	uint32_t len;		/* bytes in the message */
	uint8_t pad[48];	/* eq_fill(id, seq) */
};

static uint32_t smsg_check(uint32_t id, uint32_t seq)
{
	return (id + 1) * 0x9e3779b9U ^ seq * 0x85ebca6bU;
}

/* Messages of 16..64 bytes, depending on the sequence number. */
static size_t smsg_make(struct smsg *m, uint32_t id, uint32_t seq)
{
	size_t len = 16 + seq % 49;

	m->id = id;
	m->seq = seq;
	m->check = smsg_check(id, seq);
	m->len = len;
	eq_fill(m->pad, len - 16, id, seq);
	return len;
}

static bool smsg_valid(const struct smsg *m, ssize_t n)
{
	return n >= 16 && m->len == (size_t)n &&
	       m->check == smsg_check(m->id, m->seq) &&
	       eq_check_fill(m->pad, n - 16, m->id, m->seq);
}

/*
 * Producer child: push @n messages through a file of its own, then keep the
 * file open until @hold reads EOF.  Exit status 0 or the failing step.
 */
static void producer(uint32_t id, uint32_t n, int hold)
{
	struct smsg m;
	uint32_t seq;
	char c;
	int fd;

	fd = eq_open(0);
	if (fd < 0)
		_exit(2);
	for (seq = 0; seq < n; seq++) {
		size_t len = smsg_make(&m, id, seq);

		if (eq_push(fd, &m, len) != (ssize_t)len)
			_exit(3);
	}
	if (hold >= 0)
		while (read(hold, &c, 1) > 0)
			;
	close(fd);
	_exit(0);
}

/* The queue's config, with a pop timeout so a lost message cannot hang. */
static void stress_config(struct __test_metadata *_metadata, int fd)
{
	struct elasticq_config cfg;

	ASSERT_EQ(0, eq_get_config(fd, &cfg));
	cfg.pop_timeout_ns = 60000 * EQ_MS;
	ASSERT_EQ(0, eq_set_config(fd, &cfg));
}

#define NPROD	4
#define NMSG	((int)eq_scale(100000))

TEST_F_TIMEOUT(eq, four_producers_one_consumer, 1200)
{
	struct elasticq_stats st0, st;
	uint32_t next[NPROD] = { 0 };
	pid_t pids[NPROD];
	uint64_t total, t0;
	int hold[2], cfd, i;
	struct smsg m;

	stress_config(_metadata, self->fd);
	ASSERT_EQ(0, eq_get_stats(self->fd, &st0));
	ASSERT_EQ(0, pipe2(hold, O_CLOEXEC));
	cfd = eq_open(0);
	ASSERT_LE(0, cfd);

	for (i = 0; i < NPROD; i++) {
		pids[i] = fork();
		ASSERT_LE(0, pids[i]);
		if (pids[i] == 0) {
			close(hold[1]);
			producer(i, NMSG, hold[0]);
		}
		self->child[i] = pids[i];
	}
	close(hold[0]);

	t0 = eq_now_ns();
	for (total = 0; total < (uint64_t)NPROD * NMSG; total++) {
		ssize_t n = eq_pop(cfd, &m, sizeof(m));

		ASSERT_TRUE(smsg_valid(&m, n)) {
			TH_LOG("message %llu: read %zd, id %u seq %u",
			       (unsigned long long)total, n, m.id, m.seq);
		}
		ASSERT_GT(NPROD, m.id);
		ASSERT_EQ(next[m.id], m.seq) {
			TH_LOG("producer %u: got seq %u", m.id, m.seq);
		}
		next[m.id]++;
	}
	TH_LOG("%d x %d messages in %.2f s", NPROD, NMSG,
	       (eq_now_ns() - t0) / 1e9);
	for (i = 0; i < NPROD; i++)
		EXPECT_EQ(NMSG, next[i]);
	/* Nothing more. */
	EXPECT_EQ(-EAGAIN, eq_pop_nb(cfd, &m, sizeof(m)));

	/* The producers still hold their files. */
	ASSERT_EQ(0, eq_get_stats(self->fd, &st));
	EXPECT_EQ(st0.producers + NPROD, st.producers);
	EXPECT_EQ(st0.consumers + 1, st.consumers);
	EXPECT_EQ(0, st.len);
	EXPECT_EQ(0, st.bytes);
	EXPECT_EQ(st0.enqueued + (uint64_t)NPROD * NMSG, st.enqueued);
	EXPECT_EQ(st0.dequeued + (uint64_t)NPROD * NMSG, st.dequeued);
	EXPECT_EQ(st0.dropped, st.dropped);
	EXPECT_EQ(st0.rejected, st.rejected);
	EXPECT_GE(EQ_DEF_MAX, st.high_water);

	close(hold[1]);
	for (i = 0; i < NPROD; i++) {
		EXPECT_EQ(0, eq_wait_exit(pids[i]));
		self->child[i] = 0;
	}
	close(cfd);
	ASSERT_EQ(0, eq_get_stats(self->fd, &st));
	EXPECT_EQ(st0.producers, st.producers);
	EXPECT_EQ(st0.consumers, st.consumers);
}

/* producers: files that have pushed; consumers: files that have read. */
TEST_F(eq, producer_consumer_counts)
{
	struct elasticq_stats st0, st;
	bool lf = eq_lockfree();
	int a, b, c, d;
	char x[8];
	pid_t pid;

	ASSERT_EQ(0, eq_get_stats(self->fd, &st0));
	a = eq_open(0);
	b = eq_open(0);
	c = eq_open(O_NONBLOCK);
	d = eq_open(0);
	ASSERT_LE(0, a);
	ASSERT_LE(0, b);
	ASSERT_LE(0, c);
	ASSERT_LE(0, d);
	/* Opening alone takes no role. */
	ASSERT_EQ(0, eq_get_stats(self->fd, &st));
	EXPECT_EQ(st0.producers, st.producers);
	EXPECT_EQ(st0.consumers, st.consumers);

	ASSERT_EQ(1, eq_push(a, "a", 1));
	ASSERT_EQ(1, eq_push(b, "b", 1));
	ASSERT_EQ(1, eq_push(b, "b", 1));
	ASSERT_EQ(1, eq_push(d, "d", 1));
	ASSERT_EQ(1, eq_pop(c, x, sizeof(x)));
	/* Lock-free: one consumer file; d is refused and takes no role. */
	ASSERT_EQ(lf ? -EBUSY : 1, eq_pop(d, x, sizeof(x)));
	ASSERT_EQ(0, eq_get_stats(self->fd, &st));
	EXPECT_EQ(st0.producers + 3, st.producers);
	EXPECT_EQ(st0.consumers + (lf ? 1 : 2), st.consumers);

	/* A forked child shares the file: no new role. */
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0)
		_exit(eq_push(a, "A", 1) == 1 ? 0 : 1);
	EXPECT_EQ(0, eq_wait_exit(pid));
	ASSERT_EQ(0, eq_get_stats(self->fd, &st));
	EXPECT_EQ(st0.producers + 3, st.producers);

	close(a);
	close(d);
	ASSERT_EQ(0, eq_get_stats(self->fd, &st));
	EXPECT_EQ(st0.producers + 1, st.producers);
	EXPECT_EQ(st0.consumers + 1, st.consumers);
	close(b);
	if (lf) {
		/* Still c's: the role goes with the file that holds it. */
		d = eq_open(O_NONBLOCK);
		ASSERT_LE(0, d);
		EXPECT_EQ(-EBUSY, eq_pop(d, x, sizeof(x)));
		close(d);
	}
	close(c);
	ASSERT_EQ(0, eq_get_stats(self->fd, &st));
	EXPECT_EQ(st0.producers, st.producers);
	EXPECT_EQ(st0.consumers, st.consumers);
}

/* Many short-lived publishers, one processor (the MQTT-proxy pattern). */
TEST_F_TIMEOUT(eq, short_lived_producers, 600)
{
	enum { NP = 64, PER = 20 };
	uint32_t next[NP] = { 0 };
	pid_t pids[NP];
	struct smsg m;
	int i, done;

	stress_config(_metadata, self->fd);
	/* They come and go while the processor drains. */
	for (i = 0; i < NP; i++) {
		pids[i] = fork();
		ASSERT_LE(0, pids[i]);
		if (pids[i] == 0)
			producer(i, PER, -1);
	}
	for (done = 0; done < NP * PER; done++) {
		ssize_t n = eq_pop(self->fd, &m, sizeof(m));

		ASSERT_TRUE(smsg_valid(&m, n));
		ASSERT_GT(NP, m.id);
		ASSERT_EQ(next[m.id], m.seq);
		next[m.id]++;
	}
	for (i = 0; i < NP; i++)
		EXPECT_EQ(0, eq_wait_exit(pids[i]));
	for (i = 0; i < NP; i++)
		EXPECT_EQ(PER, next[i]);
}

/* Several consumers on the lock-based queue: each message exactly once. */
#define MP_PROD	2
#define MP_CONS	2
#define MP_MSG_MAX	40000
#define MP_MSG		((int)eq_scale(MP_MSG_MAX))

struct mpmc_shared {
	uint8_t seen[MP_PROD][MP_MSG_MAX];
	uint32_t got[MP_CONS];
	uint32_t disorder[MP_CONS];
	uint32_t invalid[MP_CONS];
};

static void consumer(struct mpmc_shared *sh, int me)
{
	uint32_t last[MP_PROD];
	struct smsg m;
	int fd;

	memset(last, 0xff, sizeof(last));
	fd = eq_open(0);
	if (fd < 0)
		_exit(2);
	for (;;) {
		ssize_t n = eq_pop(fd, &m, sizeof(m));

		if (n == 0)		/* the stop message */
			break;
		if (!smsg_valid(&m, n) || m.id >= MP_PROD || m.seq >= MP_MSG) {
			sh->invalid[me]++;
			if (n < 0)
				_exit(3);
			continue;
		}
		__atomic_fetch_add(&sh->seen[m.id][m.seq], 1, __ATOMIC_RELAXED);
		if (last[m.id] != ~0U && m.seq <= last[m.id])
			sh->disorder[me]++;
		last[m.id] = m.seq;
		sh->got[me]++;
	}
	close(fd);
	_exit(0);
}

TEST_F_TIMEOUT(eq, several_consumers, 900)
{
	struct mpmc_shared *sh;
	struct elasticq_stats st0, st;
	uint32_t i, j, dup = 0, lost = 0, total = 0;
	pid_t pids[MP_PROD + MP_CONS];

	if (eq_lockfree())
		SKIP(return, "lock-free: one consumer (lockfree.c)");
	stress_config(_metadata, self->fd);
	ASSERT_EQ(0, eq_get_stats(self->fd, &st0));
	sh = eq_shared_alloc(sizeof(*sh));
	ASSERT_NE(NULL, sh);
	for (i = 0; i < MP_PROD + MP_CONS; i++) {
		pids[i] = fork();
		ASSERT_LE(0, pids[i]);
		if (pids[i] == 0) {
			if (i < MP_CONS)
				consumer(sh, i);
			producer(i - MP_CONS, MP_MSG, -1);
		}
		self->child[i] = pids[i];
	}
	for (i = MP_CONS; i < MP_CONS + MP_PROD; i++) {
		EXPECT_EQ(0, eq_wait_exit(pids[i]));
		self->child[i] = 0;
	}
	/* One stop message per consumer, after everything else. */
	for (i = 0; i < MP_CONS; i++)
		ASSERT_EQ(0, eq_push(self->fd, "", 0));
	for (i = 0; i < MP_CONS; i++) {
		EXPECT_EQ(0, eq_wait_exit(pids[i]));
		self->child[i] = 0;
	}
	for (i = 0; i < MP_PROD; i++)
		for (j = 0; j < MP_MSG; j++) {
			dup += sh->seen[i][j] > 1;
			lost += sh->seen[i][j] == 0;
		}
	for (i = 0; i < MP_CONS; i++) {
		EXPECT_EQ(0, sh->disorder[i]);
		EXPECT_EQ(0, sh->invalid[i]);
		total += sh->got[i];
	}
	EXPECT_EQ(0, dup);
	EXPECT_EQ(0, lost);
	EXPECT_EQ(MP_PROD * MP_MSG, total);
	TH_LOG("consumers got %u and %u", sh->got[0], sh->got[1]);
	ASSERT_EQ(0, eq_get_stats(self->fd, &st));
	EXPECT_EQ(0, st.len);
	EXPECT_EQ(st0.enqueued + MP_PROD * MP_MSG + MP_CONS, st.enqueued);
	EXPECT_EQ(st0.dequeued + MP_PROD * MP_MSG + MP_CONS, st.dequeued);
	munmap(sh, sizeof(*sh));
}

/*
 * Reconfiguration while producers and a consumer run: every SET_CONFIG
 * resizes the ring (min 16 <-> min 4096) under their feet.
 */
TEST_F_TIMEOUT(eq, resize_under_load, 900)
{
	enum { RP = 2, RMSG = 30000 };
	struct elasticq_config a, b;
	uint32_t next[RP] = { 0 };
	struct elasticq_stats st;
	uint64_t total, sets = 0;
	pid_t pids[RP];
	struct smsg m;
	int i, nb;

	stress_config(_metadata, self->fd);
	ASSERT_EQ(0, eq_get_config(self->fd, &a));
	a.min_capacity = 16;
	a.initial_capacity = 16;
	b = a;
	b.min_capacity = 4096;
	b.initial_capacity = 4096;
	for (i = 0; i < RP; i++) {
		pids[i] = fork();
		ASSERT_LE(0, pids[i]);
		if (pids[i] == 0)
			producer(i, RMSG, -1);
		self->child[i] = pids[i];
	}
	/* Reconfigure from a child while this process consumes. */
	self->child[RP] = fork();
	ASSERT_LE(0, self->child[RP]);
	if (self->child[RP] == 0) {
		for (;;) {
			eq_set_config(self->fd, (sets++ & 1) ? &a : &b);
			self->rep[0].ret = sets;
			usleep(200);
		}
	}
	nb = eq_open(0);
	ASSERT_LE(0, nb);
	for (total = 0; total < (uint64_t)RP * RMSG; total++) {
		ssize_t n = eq_pop(nb, &m, sizeof(m));

		ASSERT_TRUE(smsg_valid(&m, n)) {
			TH_LOG("message %llu: read %zd",
			       (unsigned long long)total, n);
		}
		ASSERT_GT(RP, m.id);
		ASSERT_EQ(next[m.id], m.seq);
		next[m.id]++;
	}
	eq_kill_child(&self->child[RP]);
	for (i = 0; i < RP; i++) {
		EXPECT_EQ(0, eq_wait_exit(pids[i]));
		self->child[i] = 0;
	}
	TH_LOG("%ld config changes", self->rep[0].ret);
	EXPECT_LT(10, self->rep[0].ret);
	ASSERT_EQ(0, eq_get_stats(self->fd, &st));
	EXPECT_EQ(0, st.len);
	EXPECT_EQ(0, st.bytes);
	close(nb);
}

TEST_HARNESS_MAIN
