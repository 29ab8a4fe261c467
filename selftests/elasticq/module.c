// SPDX-License-Identifier: MIT
/*
 * Module load and unload (SPEC sections 3 and 7): unload with messages
 * queued frees them, a reload brings back an empty default queue, invalid
 * parameters refuse the load and leave no device, parameters show up in the
 * config.  Needs ELASTICQ_KO (the .ko path) and optionally
 * ELASTICQ_KO_PARAMS (its load parameters), as run-vm.sh exports them; the
 * module is always left loaded with those parameters.
 */
#include <grp.h>
#include <sys/syscall.h>

#define EQ_CUSTOM_FIXTURE
#include "eq_test.h"

static int load_module(const char *ko, const char *params)
{
	int fd, ret;

	fd = open(ko, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	ret = syscall(SYS_finit_module, fd, params, 0) ? -errno : 0;
	close(fd);
	return ret;
}

static int unload_module(void)
{
	return syscall(SYS_delete_module, "elasticq", O_NONBLOCK) ? -errno : 0;
}

static bool dev_exists(void)
{
	struct stat sb;

	return stat(EQ_DEV, &sb) == 0;
}

FIXTURE(mod) {
	EQ_FIXTURE_FIELDS;
	const char *ko;		/* NULL: no module to play with */
	const char *params;	/* what it was loaded with */
	bool dirty;		/* loaded with other parameters */
};

FIXTURE_SETUP(mod)
{
	self->ko = getenv("ELASTICQ_KO");
	if (self->ko && !*self->ko)
		self->ko = NULL;
	self->params = getenv("ELASTICQ_KO_PARAMS");
	if (!self->params)
		self->params = "";
	if (self->ko && !eq_module_loaded())
		ASSERT_EQ(0, load_module(self->ko, self->params));
	EQ_FIXTURE_SETUP_BODY;
}

FIXTURE_TEARDOWN(mod)
{
	int i;

	for (i = 0; i < EQ_MAX_CHILDREN; i++)
		eq_kill_child(&self->child[i]);
	if (self->fd > 0)
		close(self->fd);
	if (self->rep)
		munmap(self->rep, EQ_MAX_CHILDREN * sizeof(*self->rep));
	/* Back to the original module, whatever the test did. */
	if (self->ko && self->dirty && eq_module_loaded())
		EXPECT_EQ(0, unload_module());
	if (self->ko && !eq_module_loaded())
		EXPECT_EQ(0, load_module(self->ko, self->params));
	EXPECT_EQ(0, eq_reset());
}

#define NEED_KO()							\
	do {								\
		if (!self->ko)						\
			SKIP(return, "ELASTICQ_KO is not set");		\
	} while (0)

/* Close the fixture's file (it pins the module) and unload. */
static void close_and_unload(struct __test_metadata *_metadata,
			     FIXTURE_DATA(mod) *self)
{
	if (self->fd > 0)
		close(self->fd);
	self->fd = -1;
	ASSERT_EQ(0, unload_module());
	ASSERT_FALSE(eq_module_loaded());
	ASSERT_FALSE(dev_exists());
}

/* Load with the original parameters and reopen the fixture's file. */
static void reload_original(struct __test_metadata *_metadata,
			    FIXTURE_DATA(mod) *self)
{
	struct elasticq_config want, cfg;

	ASSERT_EQ(0, load_module(self->ko, self->params));
	self->dirty = false;
	ASSERT_TRUE(dev_exists());
	self->fd = eq_open(0);
	ASSERT_LE(0, self->fd);
	eq_load_config(&want);
	ASSERT_EQ(0, eq_get_config(self->fd, &cfg));
	EXPECT_EQ(0, memcmp(&want, &cfg, sizeof(cfg)));
}

TEST_F_TIMEOUT(mod, unload_with_messages_queued, 120)
{
	struct elasticq_config want, cfg;
	struct elasticq_stats st;
	char buf[64];
	int nb;

	NEED_KO();
	ASSERT_EQ(0, eq_push_n(self->fd, 1, 0, 3, 1000));
	ASSERT_EQ(0, eq_get_stats(self->fd, &st));
	ASSERT_EQ(3, st.len);
	ASSERT_EQ(3000, st.bytes);

	close_and_unload(_metadata, self);
	reload_original(_metadata, self);

	/* A brand new, empty default queue. */
	ASSERT_EQ(0, eq_get_stats(self->fd, &st));
	EXPECT_EQ(0, st.len);
	EXPECT_EQ(0, st.bytes);
	EXPECT_EQ(0, st.enqueued);
	EXPECT_EQ(0, st.dequeued);
	EXPECT_EQ(0, st.high_water);
	EXPECT_EQ(0, st.grows);
	EXPECT_EQ(0, st.shrinks);
	EXPECT_EQ(0, st.producers);
	EXPECT_EQ(0, st.consumers);
	eq_load_config(&want);
	EXPECT_EQ(want.initial_capacity, st.capacity);
	ASSERT_EQ(0, eq_get_config(self->fd, &cfg));
	EXPECT_EQ(0, memcmp(&want, &cfg, sizeof(cfg)));
	nb = eq_open(O_NONBLOCK);
	ASSERT_LE(0, nb);
	EXPECT_EQ(-EAGAIN, eq_pop(nb, buf, sizeof(buf)));
	close(nb);
}

/* Unload frees the named queues too; a reload starts without any. */
TEST_F_TIMEOUT(mod, unload_with_named_queues, 120)
{
	static const char *const names[] = { "mod.a", "mod.b", "mod.gone" };
	char table[8192];
	unsigned int i;
	int fd;

	NEED_KO();
	for (i = 0; i < 3; i++) {
		fd = eq_open_named(names[i], O_RDWR, ELASTICQ_ATTACH_CREATE,
				   0600, NULL);
		ASSERT_LE(0, fd);
		ASSERT_EQ(0, eq_push_n(fd, i, 0, 100 * (i + 1), 500));
		close(fd);
	}
	/* Destroyed, and freed already: its last file is closed. */
	ASSERT_EQ(0, eq_destroy("mod.gone"));

	close_and_unload(_metadata, self);
	reload_original(_metadata, self);
	for (i = 0; i < 3; i++) {
		fd = eq_open_named(names[i], O_RDWR, 0, 0, NULL);
		EXPECT_EQ(-ENOENT, fd) {
			TH_LOG("%s survived the reload", names[i]);
		}
		if (fd >= 0)
			close(fd);
	}
	ASSERT_LT(0, eq_read_text("/proc/elasticq", table, sizeof(table)));
	EXPECT_EQ(NULL, strstr(table, "mod.")) {
		TH_LOG("%s", table);
	}
	EXPECT_NE(NULL, strstr(table, "(default)"));
}

/* An open file, even one blocked in read(2), pins the module. */
TEST_F_TIMEOUT(mod, unload_refused_while_open, 120)
{
	struct eq_child_report *rep = &self->rep[0];
	char buf[64];
	pid_t pid;

	NEED_KO();
	EXPECT_EQ(-EAGAIN, unload_module());
	ASSERT_TRUE(eq_module_loaded());
	ASSERT_EQ(2, eq_push(self->fd, "ok", 2));
	ASSERT_EQ(2, eq_pop(self->fd, buf, sizeof(buf)));

	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		int fd = eq_open(0);

		close(self->fd);
		rep->ret = fd < 0 ? fd : eq_pop(fd, buf, sizeof(buf));
		_exit(0);
	}
	self->child[0] = pid;
	close(self->fd);
	self->fd = -1;
	ASSERT_EQ(0, eq_wait_blocked(pid));
	EXPECT_EQ(-EAGAIN, unload_module());
	ASSERT_TRUE(eq_module_loaded());

	/* Once the reader is gone, nothing holds it. */
	ASSERT_EQ(0, kill(pid, SIGKILL));
	EXPECT_EQ(1000 + SIGKILL, eq_wait_exit(pid));
	self->child[0] = 0;
	ASSERT_EQ(0, unload_module());
	ASSERT_FALSE(dev_exists());
	reload_original(_metadata, self);
}

TEST_F_TIMEOUT(mod, invalid_params_refused, 300)
{
	static const char *const bad[] = {
		"growth_pct=100", "growth_pct=0", "min_capacity=0",
		"min_capacity=0 initial_capacity=0",
		"initial_capacity=10", "initial_capacity=65537",
		"max_capacity=512", "max_capacity=16777217",
		"shrink_pct=0", "shrink_pct=100", "max_msg_size=0",
		"max_msg_size=1048577", "max_bytes=0", "full_policy=3",
		"growth_pct=abc",
		/* No such variant; no drop-oldest in the lock-free one. */
		"variant=2", "variant=1 full_policy=2",
		/* The default queue is bound by max_queue_bytes too. */
		"max_bytes=67108865", "max_queue_bytes=4096 max_bytes=4097",
		/* Its ring alone would pass max_total_bytes. */
		"max_total_bytes=1000",
	};
	unsigned int i;

	NEED_KO();
	close_and_unload(_metadata, self);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		EXPECT_EQ(-EINVAL, load_module(self->ko, bad[i])) {
			TH_LOG("insmod elasticq %s", bad[i]);
			self->dirty = true;
			if (eq_module_loaded())
				unload_module();
		}
		EXPECT_FALSE(eq_module_loaded());
		EXPECT_FALSE(dev_exists());
	}
	reload_original(_metadata, self);
}

TEST_F_TIMEOUT(mod, params_show_in_config, 120)
{
	static const char params[] =
		"max_capacity=2048 min_capacity=16 initial_capacity=16 "
		"growth_pct=150 shrink_pct=30 max_msg_size=100 "
		"max_bytes=4096 full_policy=1";
	struct elasticq_config want, cfg;
	struct elasticq_stats st;
	unsigned long long v = 0;
	char buf[128];
	int i;

	NEED_KO();
	close_and_unload(_metadata, self);
	self->dirty = true;
	ASSERT_EQ(0, load_module(self->ko, params));
	self->fd = eq_open(0);
	ASSERT_LE(0, self->fd);

	eq_default_config(&want);
	want.max_capacity = 2048;
	want.min_capacity = 16;
	want.initial_capacity = 16;
	want.growth_pct = 150;
	want.shrink_pct = 30;
	want.max_msg_size = 100;
	want.max_bytes = 4096;
	want.full_policy = ELASTICQ_FULL_REJECT;
	ASSERT_EQ(0, eq_get_config(self->fd, &cfg));
	EXPECT_EQ(0, memcmp(&want, &cfg, sizeof(cfg)));
	EXPECT_EQ(2048, cfg.max_capacity);
	EXPECT_EQ(16, cfg.min_capacity);
	EXPECT_EQ(16, cfg.initial_capacity);
	EXPECT_EQ(150, cfg.growth_pct);
	EXPECT_TRUE(eq_read_param("max_capacity", &v));
	EXPECT_EQ(2048, v);

	/* And the queue behaves accordingly. */
	ASSERT_EQ(0, eq_get_stats(self->fd, &st));
	EXPECT_EQ(16, st.capacity);
	memset(buf, 'p', sizeof(buf));
	EXPECT_EQ(-EMSGSIZE, eq_push(self->fd, buf, 101));
	for (i = 0; i < 40; i++)
		ASSERT_EQ(100, eq_push(self->fd, buf, 100));
	ASSERT_EQ(0, eq_get_stats(self->fd, &st));
	EXPECT_EQ(54, st.capacity);	/* 16 -> 24 -> 36 -> 54 */
	/* 4000 + 100 > 4096, policy reject: EAGAIN at once. */
	EXPECT_EQ(-EAGAIN, eq_push(self->fd, buf, 100));
	EXPECT_EQ(96, eq_push(self->fd, buf, 96));

	close_and_unload(_metadata, self);
	reload_original(_metadata, self);
}

/*
 * The node is open to everyone (each queue checks its own permissions; a
 * udev rule may narrow it); a reload gives the default queue back to root,
 * mode 0662, whatever SET_OWNER did before.
 */
TEST_F_TIMEOUT(mod, node_and_default_owner, 120)
{
	struct elasticq_owner o;
	struct stat sb;

	NEED_KO();
	ASSERT_EQ(0, stat(EQ_DEV, &sb));
	EXPECT_TRUE(S_ISCHR(sb.st_mode));
	EXPECT_EQ(0666, sb.st_mode & 07777);
	ASSERT_EQ(0, eq_set_owner(self->fd, EQ_OWNER_ALL, 65534, 65534, 0600));
	close_and_unload(_metadata, self);
	reload_original(_metadata, self);
	ASSERT_EQ(0, eq_get_owner(self->fd, &o));
	EXPECT_EQ(EQ_DEF_UID, o.uid);
	EXPECT_EQ(EQ_DEF_GID, o.gid);
	EXPECT_EQ(EQ_DEF_MODE, o.mode);
	EXPECT_EQ(sizeof(o), o.size);
}

TEST_HARNESS_MAIN
