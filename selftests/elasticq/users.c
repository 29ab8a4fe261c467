// SPDX-License-Identifier: MIT
/*
 * Several users on one machine: per-user memory and queue limits (EDQUOT),
 * the default queue's owner, group and mode, GET_OWNER and SET_OWNER, the
 * access a file needs to bind to a queue, a failed create that leaves
 * nothing behind, and /proc/elasticq showing each user only the queues it
 * may use.
 *
 * The denial-of-service scenarios are run as they were found: uid 65534
 * (no capabilities) tries to take all of the module's memory or all of its
 * queues; it must get EDQUOT at its own limit while root's pushes and
 * creates keep working.  Children drop to uid/gid 65534 (or 65533) and
 * report through the shared page; the fixture destroys every queue a test
 * named and puts back every module parameter it changed.
 */
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/syscall.h>

#define EQ_CUSTOM_FIXTURE
#include "eq_test.h"

#define NOBODY		65534U
#define OTHER		65533U
#define NAME_PREFIX	"users."
#define MAX_NAMES	40
#define MIB		(1ULL << 20)

FIXTURE(users) {
	EQ_FIXTURE_FIELDS;
	struct eq_saved_params params;
	int nnames;
	char names[MAX_NAMES][ELASTICQ_NAME_SIZE];
};

typedef FIXTURE_DATA(users) fixture_t;

FIXTURE_SETUP(users)
{
	EQ_FIXTURE_SETUP_BODY;
}

FIXTURE_TEARDOWN(users)
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

/* A new queue name "users.<pid>.<tag>", destroyed in teardown. */
static const char *qname(fixture_t *self, const char *tag)
{
	char *n;

	if (self->nnames >= MAX_NAMES)
		abort();
	n = self->names[self->nnames++];
	snprintf(n, ELASTICQ_NAME_SIZE, NAME_PREFIX "%d.%s", getpid(), tag);
	return n;
}

/* A config of @slots slots that never grows or shrinks. */
static struct elasticq_config fixed_cfg(uint32_t slots, uint32_t variant)
{
	struct elasticq_config c;

	eq_default_config(&c);
	c.initial_capacity = c.min_capacity = c.max_capacity = slots;
	c.variant = variant;
	return c;
}

/* In a child: become @uid (gid the same), no groups, no capabilities. */
static int become(unsigned int uid)
{
	if (setgroups(0, NULL) || setgid(uid) || setuid(uid))
		return -errno;
	return 0;
}

/*
 * Fork a child that runs @fn as @uid and exits; the test waits for it with
 * finish().  @fn reports through @rep; its return value is the exit status.
 */
typedef int (*child_fn)(fixture_t *self, struct eq_child_report *rep,
			const void *arg);

static void spawn_as(struct __test_metadata *_metadata, fixture_t *self,
		     int slot, unsigned int uid, child_fn fn, const void *arg)
{
	pid_t pid = fork();

	ASSERT_LE(0, pid);
	if (!pid) {
		if (become(uid))
			_exit(100);
		_exit(fn(self, &self->rep[slot], arg));
	}
	self->child[slot] = pid;
}

static void finish(struct __test_metadata *_metadata, fixture_t *self,
		   int slot)
{
	ASSERT_EQ(0, eq_wait_exit(self->child[slot]));
	self->child[slot] = 0;
}

static void run_as(struct __test_metadata *_metadata, fixture_t *self,
		   unsigned int uid, child_fn fn, const void *arg)
{
	spawn_as(_metadata, self, 0, uid, fn, arg);
	finish(_metadata, self, 0);
}

/* /proc/elasticq lists a queue named @name (as the caller sees it). */
static bool proc_lists(const char *name)
{
	static char buf[1 << 16];
	char *line, *save;

	if (eq_read_text("/proc/elasticq", buf, sizeof(buf)) < 0)
		return false;
	for (line = strtok_r(buf, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save))
		if (!strncmp(line, name, strlen(name)) &&
		    line[strlen(name)] == ' ')
			return true;
	return false;
}

/* Root's work that must keep succeeding whatever another user did. */
static void expect_root_unharmed(struct __test_metadata *_metadata,
				 fixture_t *self, uint32_t variant)
{
	struct elasticq_config c = fixed_cfg(1024, variant);
	char msg[64] = "root";
	int fd, i;

	for (i = 0; i < 4; i++)
		EXPECT_EQ(sizeof(msg), eq_push(self->fd, msg, sizeof(msg)));
	fd = eq_open_named(qname(self, "root"), O_RDWR,
			   ELASTICQ_ATTACH_CREATE, 0600, &c);
	ASSERT_LE(0, fd);
	EXPECT_EQ(sizeof(msg), eq_push(fd, msg, sizeof(msg)));
	close(fd);
}

/* ---- memory: rings ---- */

struct create_many {
	const char *names[MAX_NAMES];
	int n;
	struct elasticq_config cfg;
};

/* Create queues until one fails: rep->aux created, rep->ret the error. */
static int create_until_error(fixture_t *self, struct eq_child_report *rep,
			      const void *arg)
{
	const struct create_many *m = arg;
	int i, fd;

	(void)self;
	rep->ret = 0;
	for (i = 0; i < m->n; i++) {
		fd = eq_open_named(m->names[i], O_RDWR, ELASTICQ_ATTACH_CREATE,
				   0600, &m->cfg);
		if (fd < 0) {
			rep->ret = fd;
			break;
		}
		close(fd);
	}
	rep->aux = i;
	return 0;
}

FIXTURE_VARIANT(users) {
	uint32_t variant;
	uint64_t slot_bytes;	/* of the ring */
};

FIXTURE_VARIANT_ADD(users, locked) {
	.variant = ELASTICQ_VARIANT_LOCKED,
	.slot_bytes = 8,
};

FIXTURE_VARIANT_ADD(users, lockfree) {
	.variant = ELASTICQ_VARIANT_LOCKFREE,
	.slot_bytes = 16,
};

/*
 * Empty queues with a large min_capacity: before the per-user limit, 14
 * lock-based (or 17 lock-free) such queues of one user took all 256 MiB and
 * root's pushes and creates failed with ENOBUFS.
 */
TEST_F(users, ring_memory_is_charged_to_the_creator)
{
	struct create_many *m = calloc(1, sizeof(*m));
	unsigned long long limit;
	struct eq_child_report *rep = &self->rep[0];
	int i;

	ASSERT_NE(NULL, m);
	ASSERT_TRUE(eq_read_param("max_user_bytes", &limit));
	m->cfg = fixed_cfg(1U << 20, variant->variant);
	m->n = limit / ((1ULL << 20) * variant->slot_bytes) + 2;
	ASSERT_GE(MAX_NAMES - 2, m->n);
	for (i = 0; i < m->n; i++) {
		char tag[16];

		snprintf(tag, sizeof(tag), "ring%d", i);
		m->names[i] = qname(self, tag);
	}
	run_as(_metadata, self, NOBODY, create_until_error, m);
	EXPECT_EQ(-EDQUOT, rep->ret);
	EXPECT_LE(1, rep->aux);
	EXPECT_GE(limit, rep->aux * (1ULL << 20) * variant->slot_bytes);
	TH_LOG("uid %u: %ld queues of %llu MiB, then %s (max_user_bytes %llu MiB)",
	       NOBODY, rep->aux, ((1ULL << 20) * variant->slot_bytes) >> 20,
	       strerror(-rep->ret), limit >> 20);
	/* The queues it did create are there; the failed one is not. */
	for (i = 0; i < rep->aux; i++)
		EXPECT_TRUE(proc_lists(m->names[i]));
	EXPECT_FALSE(proc_lists(m->names[rep->aux]));
	expect_root_unharmed(_metadata, self, variant->variant);
	free(m);
}

/* ---- memory: messages ---- */

struct fill_arg {
	const char *name;
	struct elasticq_config cfg;
	size_t msg;
};

/* Push @msg-byte messages until one fails: rep->aux pushed, rep->ret why. */
static int fill_until_error(fixture_t *self, struct eq_child_report *rep,
			    const void *arg)
{
	const struct fill_arg *f = arg;
	static char buf[1 << 20];
	int fd, i;

	(void)self;
	fd = eq_open_named(f->name, O_RDWR, ELASTICQ_ATTACH_CREATE, 0600,
			   &f->cfg);
	if (fd < 0) {
		rep->ret = fd;
		return 1;
	}
	for (i = 0; i < 1000; i++) {
		rep->ret = eq_push(fd, buf, f->msg);
		if (rep->ret != (long)f->msg)
			break;
	}
	rep->aux = i;
	close(fd);
	return 0;
}

/* Filling a queue with messages hits the same per-user limit. */
TEST_F(users, message_memory_is_charged_to_the_creator)
{
	struct eq_child_report *rep = &self->rep[0];
	struct fill_arg f = { .name = qname(self, "fill"), .msg = 1 << 20 };
	unsigned long long limit, qbytes;
	struct elasticq_stats st;
	int fd;

	ASSERT_TRUE(eq_read_param("max_user_bytes", &limit));
	ASSERT_TRUE(eq_read_param("max_queue_bytes", &qbytes));
	ASSERT_LT(limit, qbytes);	/* the queue's own limit comes later */
	eq_default_config(&f.cfg);
	f.cfg.variant = variant->variant;
	f.cfg.max_msg_size = 1 << 20;
	f.cfg.max_bytes = qbytes;
	f.cfg.full_policy = ELASTICQ_FULL_REJECT;
	run_as(_metadata, self, NOBODY, fill_until_error, &f);
	EXPECT_EQ(-EDQUOT, rep->ret);
	ASSERT_LE(1, rep->aux);
	TH_LOG("uid %u: %ld messages of 1 MiB, then %s", NOBODY, rep->aux,
	       strerror(-rep->ret));
	/* Nothing of the failed push stayed; the queue counts a rejection. */
	fd = eq_open_named(f.name, O_RDONLY, 0, 0, NULL);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, eq_get_stats(fd, &st));
	EXPECT_EQ(rep->aux, st.len);
	EXPECT_EQ(rep->aux * MIB, st.bytes);
	EXPECT_EQ(1, st.rejected);
	/* Within the limit, and one more message would have passed it. */
	EXPECT_GE(limit, st.mem_bytes);
	EXPECT_LT(limit, st.mem_bytes + st.mem_bytes / rep->aux);
	close(fd);
	expect_root_unharmed(_metadata, self, variant->variant);
}

/* ---- queue count ---- */

/*
 * One user's queues are bounded by max_user_queues (EDQUOT), so it cannot
 * take all of max_queues from the others; a destroyed queue gives its
 * place back.
 */
TEST_F(users, queue_count_is_per_user)
{
	struct create_many *m = calloc(1, sizeof(*m));
	struct eq_child_report *rep = &self->rep[0];
	unsigned long long per_user, max_queues;
	int i;

	ASSERT_NE(NULL, m);
	ASSERT_TRUE(eq_read_param("max_user_queues", &per_user));
	ASSERT_TRUE(eq_read_param("max_queues", &max_queues));
	ASSERT_LT(per_user, max_queues);
	m->cfg = fixed_cfg(1, variant->variant);
	m->n = per_user + 1;
	ASSERT_GE(MAX_NAMES - 2, m->n);
	for (i = 0; i < m->n; i++) {
		char tag[16];

		snprintf(tag, sizeof(tag), "q%d", i);
		m->names[i] = qname(self, tag);
	}
	run_as(_metadata, self, NOBODY, create_until_error, m);
	EXPECT_EQ(-EDQUOT, rep->ret);
	EXPECT_EQ(per_user, rep->aux);
	EXPECT_FALSE(proc_lists(m->names[per_user]));
	expect_root_unharmed(_metadata, self, variant->variant);
	/* Its owner destroys one: the user may create one more. */
	ASSERT_EQ(0, eq_destroy(m->names[0]));
	m->names[0] = m->names[per_user];
	m->names[1] = qname(self, "extra");
	m->n = 2;
	run_as(_metadata, self, NOBODY, create_until_error, m);
	EXPECT_EQ(-EDQUOT, rep->ret);
	EXPECT_EQ(1, rep->aux);
	free(m);
}

/* CAP_SYS_RESOURCE passes the per-user limits, never max_total_bytes. */
TEST_F(users, privileged_creator_passes_user_limits)
{
	struct elasticq_config c = fixed_cfg(1U << 18, variant->variant);
	struct create_many *m = calloc(1, sizeof(*m));
	struct eq_child_report *rep = &self->rep[0];
	int fd[3], i;

	ASSERT_NE(NULL, m);
	/* Rings of 2 or 4 MiB against a 1 MiB limit and one queue per user. */
	ASSERT_EQ(0, eq_set_param(&self->params, "max_user_bytes", MIB));
	ASSERT_EQ(0, eq_set_param(&self->params, "max_user_queues", 1));
	for (i = 0; i < 3; i++) {
		char tag[16];

		snprintf(tag, sizeof(tag), "big%d", i);
		fd[i] = eq_open_named(qname(self, tag), O_RDWR,
				      ELASTICQ_ATTACH_CREATE, 0600, &c);
		EXPECT_LE(0, fd[i]);
	}
	for (i = 0; i < 3; i++)
		if (fd[i] >= 0)
			close(fd[i]);
	m->cfg = c;
	m->names[0] = qname(self, "small");
	m->n = 1;
	run_as(_metadata, self, NOBODY, create_until_error, m);
	EXPECT_EQ(-EDQUOT, rep->ret);
	EXPECT_EQ(0, rep->aux);
	free(m);
}

/* ---- the default queue ---- */

/* What an unprivileged user may do on the default queue (mode 0662). */
static int default_queue_as_other(fixture_t *self,
				  struct eq_child_report *rep, const void *arg)
{
	struct elasticq_pop_batch b;
	struct elasticq_stats st;
	struct pollfd p;
	char buf[64];
	int fd, ro;

	(void)self;
	(void)arg;
	fd = eq_open(O_NONBLOCK);
	ro = open(EQ_DEV, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0 || ro < 0)
		return 1;
	/* Anyone may produce. */
	rep->ret = eq_push(fd, "x", 1);
	/* Only the owner and the group may consume. */
	rep->ret2 = eq_pop(fd, buf, sizeof(buf));
	rep->aux = ioctl(fd, ELASTICQ_IOC_CONSUME, 0) ? -errno : 0;
	eq_pop_args(&b, buf, sizeof(buf), 4);
	rep->elapsed_ns = ioctl(fd, ELASTICQ_IOC_POP_BATCH, &b) ? errno : 0;
	/* A producer sees the stats; a file with no access sees nothing. */
	rep->handled = eq_get_stats(fd, &st) == 0 && st.len == 2 &&
		       eq_get_stats(ro, &st) == -EACCES &&
		       eq_pop(ro, buf, sizeof(buf)) == -EACCES;
	p.fd = ro;
	p.events = POLLIN;
	if (poll(&p, 1, 0) != 1 || p.revents != POLLERR)
		rep->handled = 0;
	close(ro);
	close(fd);
	return 0;
}

/*
 * Before: uid 65534 popped the message root had pushed, and on a lock-free
 * default queue took the one consumer role from root.
 */
TEST_F(users, default_queue_consumers_are_owner_and_group)
{
	struct eq_child_report *rep = &self->rep[0];
	struct elasticq_owner o;
	char buf[64];

	ASSERT_EQ(0, eq_get_owner(self->fd, &o));
	EXPECT_EQ(EQ_DEF_UID, o.uid);
	EXPECT_EQ(EQ_DEF_GID, o.gid);
	EXPECT_EQ(EQ_DEF_MODE, o.mode);
	ASSERT_EQ(6, eq_push(self->fd, "secret", 6));
	run_as(_metadata, self, NOBODY, default_queue_as_other, NULL);
	EXPECT_EQ(1, rep->ret);
	EXPECT_EQ(-EACCES, rep->ret2);
	EXPECT_EQ(-EACCES, rep->aux);
	EXPECT_EQ(EACCES, rep->elapsed_ns);
	EXPECT_EQ(1, rep->handled);
	/* Root consumes both, in order: nothing was taken, no role held. */
	ASSERT_EQ(0, ioctl(self->fd, ELASTICQ_IOC_CONSUME, 0));
	ASSERT_EQ(6, eq_pop(self->fd, buf, sizeof(buf)));
	EXPECT_EQ(0, memcmp(buf, "secret", 6));
	ASSERT_EQ(1, eq_pop(self->fd, buf, sizeof(buf)));
	EXPECT_EQ('x', buf[0]);
}

/* The new owner consumes; its file keeps that access after a chown back. */
static int consume_as_owner(fixture_t *self, struct eq_child_report *rep,
			    const void *arg)
{
	char buf[64];
	int fd = eq_open(O_NONBLOCK);

	(void)arg;
	if (fd < 0)
		return 1;
	rep->ret = eq_pop(fd, buf, sizeof(buf));
	rep->ret2 = eq_set_owner(fd, ELASTICQ_OWNER_MODE, 0, 0, 0642);
	/* Not a member of group 0; and only CAP_CHOWN gives a queue away. */
	rep->aux = eq_set_owner(fd, ELASTICQ_OWNER_GID, 0, 0, 0);
	rep->elapsed_ns = -eq_set_owner(fd, ELASTICQ_OWNER_UID, 0, 0, 0);
	rep->done = 1;
	/* Root gives the queue back; this file may still consume. */
	while (__atomic_load_n(&self->rep[1].done, __ATOMIC_ACQUIRE) != 1)
		eq_sleep_ms(1);
	rep->handled = eq_pop(fd, buf, sizeof(buf));
	close(fd);
	return 0;
}

static int chmod_as_stranger(fixture_t *self, struct eq_child_report *rep,
			     const void *arg)
{
	int fd = eq_open(0);

	(void)self;
	(void)arg;
	if (fd < 0)
		return 1;
	rep->ret = eq_set_owner(fd, ELASTICQ_OWNER_MODE, 0, 0, 0666);
	rep->ret2 = eq_set_owner(fd, ELASTICQ_OWNER_UID, OTHER, 0, 0);
	close(fd);
	return 0;
}

TEST_F(users, set_owner_follows_chown_and_chmod)
{
	struct eq_child_report *rep = &self->rep[0];
	struct elasticq_owner o;

	ASSERT_EQ(0, eq_set_owner(self->fd, EQ_OWNER_ALL, NOBODY, NOBODY,
				  0600));
	ASSERT_EQ(0, eq_get_owner(self->fd, &o));
	EXPECT_EQ(NOBODY, o.uid);
	EXPECT_EQ(NOBODY, o.gid);
	EXPECT_EQ(0600, o.mode);
	ASSERT_EQ(2, eq_push(self->fd, "m1", 2));
	ASSERT_EQ(2, eq_push(self->fd, "m2", 2));
	spawn_as(_metadata, self, 0, NOBODY, consume_as_owner, NULL);
	while (!__atomic_load_n(&rep->done, __ATOMIC_ACQUIRE))
		eq_sleep_ms(1);
	EXPECT_EQ(2, rep->ret);
	EXPECT_EQ(0, rep->ret2);
	EXPECT_EQ(-EPERM, rep->aux);
	EXPECT_EQ(EPERM, rep->elapsed_ns);
	ASSERT_EQ(0, eq_get_owner(self->fd, &o));
	EXPECT_EQ(NOBODY, o.uid);
	EXPECT_EQ(NOBODY, o.gid);
	EXPECT_EQ(0642, o.mode);
	/* Someone else, who may produce there, may not change it. */
	spawn_as(_metadata, self, 2, OTHER, chmod_as_stranger, NULL);
	finish(_metadata, self, 2);
	EXPECT_EQ(-EPERM, self->rep[2].ret);
	EXPECT_EQ(-EPERM, self->rep[2].ret2);
	ASSERT_EQ(0, eq_get_owner(self->fd, &o));
	EXPECT_EQ(0642, o.mode);
	/* Root takes it back; the owner's open file still consumes. */
	ASSERT_EQ(0, eq_set_owner(self->fd, EQ_OWNER_ALL, EQ_DEF_UID,
				  EQ_DEF_GID, EQ_DEF_MODE));
	__atomic_store_n(&self->rep[1].done, 1, __ATOMIC_RELEASE);
	finish(_metadata, self, 0);
	EXPECT_EQ(2, rep->handled);
}

/* Bad SET_OWNER and GET_OWNER arguments: EINVAL, and nothing changes. */
TEST_F(users, owner_ioctls_reject_bad_input)
{
	struct {
		struct elasticq_owner o;
		const char *why;
	} bad[] = {
		{ { .flags = 0 }, "no flag" },
		{ { .flags = 0x8 }, "unknown flag" },
		{ { .flags = ELASTICQ_OWNER_MODE, .mode = 01000 }, "mode" },
		{ { .flags = ELASTICQ_OWNER_MODE, .mode = 0600, .uid = 1 },
		  "uid without its flag" },
		{ { .flags = ELASTICQ_OWNER_MODE, .mode = 0600, .gid = 1 },
		  "gid without its flag" },
		{ { .flags = ELASTICQ_OWNER_UID, .mode = 0600 },
		  "mode without its flag" },
		{ { .flags = ELASTICQ_OWNER_UID, .uid = (__u32)-1 },
		  "invalid uid" },
		{ { .flags = ELASTICQ_OWNER_GID, .gid = (__u32)-1 },
		  "invalid gid" },
		{ { .flags = ELASTICQ_OWNER_MODE, .reserved0 = 1 },
		  "reserved0" },
		{ { .flags = ELASTICQ_OWNER_MODE, .reserved = { 0, 1 } },
		  "reserved" },
		{ { .size = 8, .flags = ELASTICQ_OWNER_MODE }, "size" },
	};
	struct elasticq_owner o;
	unsigned int i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		o = bad[i].o;
		if (!o.size)
			o.size = sizeof(o);
		EXPECT_EQ(-1, ioctl(self->fd, ELASTICQ_IOC_SET_OWNER, &o));
		EXPECT_EQ(EINVAL, errno) {
			TH_LOG("SET_OWNER, %s", bad[i].why);
		}
	}
	memset(&o, 0, sizeof(o));
	o.size = sizeof(o);
	o.flags = 1;
	EXPECT_EQ(-1, ioctl(self->fd, ELASTICQ_IOC_GET_OWNER, &o));
	EXPECT_EQ(EINVAL, errno);
	ASSERT_EQ(0, eq_get_owner(self->fd, &o));
	EXPECT_EQ(EQ_DEF_UID, o.uid);
	EXPECT_EQ(EQ_DEF_GID, o.gid);
	EXPECT_EQ(EQ_DEF_MODE, o.mode);
}

/* ---- binding needs access; a failed create leaves nothing ---- */

struct attach_arg {
	const char *priv;	/* root's, 0600 */
	const char *open;	/* root's, 0666 */
	const char *mine;	/* created by the child */
};

/* What attach_as_other() saw, in its report's data. */
enum { A_NOACC_PRIV, A_NOACC_OPEN, A_RO_PRIV, A_RO_OPEN, A_UMASK, A_MODE0,
       A_AFTER, A_N };

static int attach_as_other(fixture_t *self, struct eq_child_report *rep,
			   const void *arg)
{
	const struct attach_arg *a = arg;
	int *res = (int *)rep->data, fd;

	(void)self;
	/* Opened for neither reading nor writing: no queue at all. */
	fd = open(EQ_DEV, 3 | O_CLOEXEC);
	if (fd < 0)
		return 1;
	res[A_NOACC_PRIV] = eq_attach(fd, a->priv, 0, 0, NULL);
	res[A_NOACC_OPEN] = eq_attach(fd, a->open, 0, 0, NULL);
	close(fd);
	fd = eq_open_named(a->priv, O_RDONLY, 0, 0, NULL);
	res[A_RO_PRIV] = fd < 0 ? fd : 0;
	if (fd >= 0)
		close(fd);
	fd = eq_open_named(a->open, O_RDONLY, 0, 0, NULL);
	res[A_RO_OPEN] = fd < 0 ? fd : 0;
	if (fd >= 0)
		close(fd);
	/* Creates the creator itself may not use: EACCES, and no queue. */
	umask(0777);
	fd = eq_open_named(a->mine, O_RDWR, ELASTICQ_ATTACH_CREATE, 0666, NULL);
	res[A_UMASK] = fd < 0 ? fd : 0;
	umask(0);
	fd = eq_open_named(a->mine, O_RDWR, ELASTICQ_ATTACH_CREATE, 0, NULL);
	res[A_MODE0] = fd < 0 ? fd : 0;
	fd = eq_open_named(a->mine, O_RDWR, 0, 0, NULL);
	res[A_AFTER] = fd < 0 ? fd : 0;
	if (fd >= 0)
		close(fd);
	return 0;
}

/*
 * Before: a file opened with access mode 3 attached to another user's 0600
 * queue and kept it (and its max_queues place) alive after DESTROY; a
 * create refused by the creator's own umask left the queue behind.
 */
TEST_F(users, binding_needs_access_and_failures_leave_nothing)
{
	struct eq_child_report *rep = &self->rep[0];
	struct attach_arg a = {
		.priv = qname(self, "priv"),
		.open = qname(self, "open"),
		.mine = qname(self, "mine"),
	};
	struct create_many *m = calloc(1, sizeof(*m));
	int *res, fd;

	ASSERT_NE(NULL, m);
	fd = eq_open_named(a.priv, O_RDWR, ELASTICQ_ATTACH_CREATE, 0600, NULL);
	ASSERT_LE(0, fd);
	close(fd);
	fd = eq_open_named(a.open, O_RDWR, ELASTICQ_ATTACH_CREATE, 0666, NULL);
	ASSERT_LE(0, fd);
	close(fd);
	/* One queue for the user, so a leaked count would show. */
	ASSERT_EQ(0, eq_set_param(&self->params, "max_user_queues", 1));
	run_as(_metadata, self, NOBODY, attach_as_other, &a);
	res = (int *)rep->data;
	EXPECT_EQ(-EBADF, res[A_NOACC_PRIV]);
	EXPECT_EQ(-EBADF, res[A_NOACC_OPEN]);
	EXPECT_EQ(-EACCES, res[A_RO_PRIV]);
	EXPECT_EQ(0, res[A_RO_OPEN]);
	EXPECT_EQ(-EACCES, res[A_UMASK]);
	EXPECT_EQ(-EACCES, res[A_MODE0]);
	EXPECT_EQ(-ENOENT, res[A_AFTER]);
	EXPECT_FALSE(proc_lists(a.mine));
	/* Nothing was counted against the user: its one queue is free. */
	m->cfg = fixed_cfg(1, variant->variant);
	m->names[0] = a.mine;
	m->n = 1;
	run_as(_metadata, self, NOBODY, create_until_error, m);
	EXPECT_EQ(0, rep->ret);
	EXPECT_EQ(1, rep->aux);
	free(m);
}

/* ---- /proc/elasticq ---- */

static int proc_as_other(fixture_t *self, struct eq_child_report *rep,
			 const void *arg)
{
	const struct attach_arg *a = arg;
	int fd;

	(void)self;
	fd = eq_open_named(a->mine, O_RDWR, ELASTICQ_ATTACH_CREATE, 0600, NULL);
	if (fd < 0)
		return 1;
	close(fd);
	rep->ret = proc_lists(a->priv);
	rep->ret2 = proc_lists(a->open);
	rep->aux = proc_lists(a->mine);
	rep->handled = proc_lists("(default)");
	return 0;
}

/* Before: every user saw every queue, its owner and its traffic. */
TEST_F(users, proc_lists_what_the_reader_may_use)
{
	struct eq_child_report *rep = &self->rep[0];
	struct attach_arg a = {
		.priv = qname(self, "priv"),
		.open = qname(self, "ro"),
		.mine = qname(self, "mine"),
	};
	int fd;

	fd = eq_open_named(a.priv, O_RDWR, ELASTICQ_ATTACH_CREATE, 0600, NULL);
	ASSERT_LE(0, fd);
	close(fd);
	fd = eq_open_named(a.open, O_RDWR, ELASTICQ_ATTACH_CREATE, 0604, NULL);
	ASSERT_LE(0, fd);
	close(fd);
	run_as(_metadata, self, NOBODY, proc_as_other, &a);
	EXPECT_EQ(0, rep->ret);
	EXPECT_EQ(1, rep->ret2);
	EXPECT_EQ(1, rep->aux);
	EXPECT_EQ(1, rep->handled);	/* it may produce there */
	/* Root sees them all. */
	EXPECT_TRUE(proc_lists(a.priv));
	EXPECT_TRUE(proc_lists(a.open));
	EXPECT_TRUE(proc_lists(a.mine));
	/* With no access at all the default queue is hidden too. */
	ASSERT_EQ(0, eq_set_owner(self->fd, ELASTICQ_OWNER_MODE, 0, 0, 0660));
	run_as(_metadata, self, NOBODY, proc_as_other, &a);
	EXPECT_EQ(0, rep->handled);
}

/* ---- user namespaces ---- */

/*
 * The test VM runs the tests chrooted into the host's root, and a chrooted
 * process may not create a user namespace.  As root, in a mount namespace
 * of its own: climb out of the chroot to the namespace's root, move the
 * old root's mount on top of it (as switch_root does) and enter it, so
 * that it is the root of the namespace, not a chroot.  Nothing to do
 * where the tests are not chrooted.
 */
static int leave_chroot(void)
{
	struct stat ours, init;
	int oldroot, i;

	if (stat("/", &ours) || stat("/proc/1/root/", &init))
		return -errno;
	if (ours.st_dev == init.st_dev && ours.st_ino == init.st_ino)
		return 0;
	/* After the unshare: a path of the new namespace, not the old one's. */
	if (unshare(CLONE_NEWNS))
		return -errno;
	oldroot = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (oldroot < 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) ||
	    (mkdir("/tmp/.users-chroot", 0700) && errno != EEXIST) ||
	    chroot("/tmp/.users-chroot"))
		return -errno;
	for (i = 0; i < 64; i++)
		if (chdir(".."))
			return -errno;
	if (chroot(".") || fchdir(oldroot) ||
	    mount(".", "/", NULL, MS_MOVE, NULL) || chroot(".") || chdir("/"))
		return -errno;
	close(oldroot);
	return 0;
}

/* What userns_child() saw, in its report's data. */
enum { U_UNSHARE, U_OWNER_UID, U_OWNER_GID, U_SET_MODE, U_SET_UID, U_READ,
       U_CREATE, U_MINE_UID, U_PROC_ROOT, U_PROC_MINE, U_N };

/*
 * As uid 65534, in a new user namespace where it is root (0 maps to
 * 65534): capabilities there give nothing over queues, ids are shown as
 * the namespace sees them, and what it creates is 65534's.
 */
static int userns_child(fixture_t *self, struct eq_child_report *rep,
			const void *arg)
{
	const struct attach_arg *a = arg;
	int *res = (int *)rep->data, fd, ret;
	static char buf[1 << 16];
	struct elasticq_owner o;
	char line[128];
	char *row;

	(void)self;
	/* Dumpable again after setuid(), or /proc/self/ would be root's. */
	if (become(NOBODY) || prctl(PR_SET_DUMPABLE, 1, 0, 0, 0))
		return 100;
	res[U_UNSHARE] = unshare(CLONE_NEWUSER) ? -errno : 0;
	if (res[U_UNSHARE])
		return 0;
	if (eq_write_text("/proc/self/uid_map", "0 65534 1") ||
	    eq_write_text("/proc/self/setgroups", "deny") ||
	    eq_write_text("/proc/self/gid_map", "0 65534 1"))
		return 2;
	fd = eq_open(O_NONBLOCK);
	if (fd < 0)
		return 3;
	ret = eq_get_owner(fd, &o);
	res[U_OWNER_UID] = ret ? ret : (int)o.uid;
	res[U_OWNER_GID] = ret ? ret : (int)o.gid;
	res[U_SET_MODE] = eq_set_owner(fd, ELASTICQ_OWNER_MODE, 0, 0, 0666);
	res[U_SET_UID] = eq_set_owner(fd, ELASTICQ_OWNER_UID, 0, 0, 0);
	res[U_READ] = eq_pop(fd, buf, 64);
	close(fd);
	fd = eq_open_named(a->mine, O_RDWR, ELASTICQ_ATTACH_CREATE, 0600, NULL);
	res[U_CREATE] = fd < 0 ? fd : 0;
	if (fd >= 0) {
		ret = eq_get_owner(fd, &o);
		res[U_MINE_UID] = ret ? ret : (int)o.uid;
		close(fd);
	}
	/* /proc/elasticq's OWNER column, as this namespace sees it. */
	res[U_PROC_ROOT] = res[U_PROC_MINE] = -1;
	if (eq_read_text("/proc/elasticq", buf, sizeof(buf)) < 0)
		return 4;
	for (row = strtok(buf, "\n"); row; row = strtok(NULL, "\n")) {
		char name[ELASTICQ_NAME_SIZE];
		unsigned int uid;

		snprintf(line, sizeof(line), "%s", row);
		if (sscanf(line, "%63s %u", name, &uid) != 2)
			continue;
		if (!strcmp(name, "(default)"))
			res[U_PROC_ROOT] = uid;
		else if (!strcmp(name, a->mine))
			res[U_PROC_MINE] = uid;
	}
	return 0;
}

TEST_F(users, user_namespace_root_is_not_root)
{
	struct eq_child_report *rep = &self->rep[0];
	struct attach_arg a = { .mine = qname(self, "userns") };
	struct elasticq_owner o;
	int *res = (int *)rep->data;
	int fd;

	ASSERT_EQ(4, eq_push(self->fd, "root", 4));
	self->child[0] = fork();
	ASSERT_LE(0, self->child[0]);
	if (!self->child[0])
		_exit(leave_chroot() ? 101 : userns_child(self, rep, &a));
	finish(_metadata, self, 0);
	if (res[U_UNSHARE])
		SKIP(return, "no unprivileged user namespaces here (%s)",
		     strerror(-res[U_UNSHARE]));
	/* Root has no mapping there: the overflow id. */
	EXPECT_EQ(65534, res[U_OWNER_UID]);
	EXPECT_EQ(65534, res[U_OWNER_GID]);
	EXPECT_EQ(-EPERM, res[U_SET_MODE]);
	EXPECT_EQ(-EPERM, res[U_SET_UID]);
	EXPECT_EQ(-EACCES, res[U_READ]);
	EXPECT_EQ(0, res[U_CREATE]);
	EXPECT_EQ(0, res[U_MINE_UID]);		/* itself: 0 there */
	EXPECT_EQ(65534, res[U_PROC_ROOT]);
	EXPECT_EQ(0, res[U_PROC_MINE]);
	/* Outside, the queue is 65534's. */
	fd = eq_open_named(a.mine, O_RDONLY, 0, 0, NULL);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, eq_get_owner(fd, &o));
	EXPECT_EQ(NOBODY, o.uid);
	EXPECT_EQ(NOBODY, o.gid);
	close(fd);
}

TEST_HARNESS_MAIN
