// SPDX-License-Identifier: MIT
/*
 * Queue memory is charged to the memory cgroup of the producer (SPEC
 * section 7, issue 4 "Security and limits"): a producer in a cgroup with a
 * small memory.max that pushes until its charges hit the limit gets
 * ENOMEM, is not OOM-killed, and every message it had pushed is still
 * there.  Draining uncharges the cgroup.
 *
 * Needs cgroup v2 with the memory controller (mounted here if nobody did)
 * and a slab allocator that charges cgroups (not SLOB); SKIPs without.
 */
#include <sys/mount.h>
#include <sys/vfs.h>

#include "eq_test.h"

#define CG_ROOT		"/sys/fs/cgroup"
#define CG_DIR		CG_ROOT "/elasticq-memcg"
#define CG_LIMIT	(8UL << 20)
#define QNAME		"memcg.q"
#define MSG_LEN		(64U << 10)

#ifndef CGROUP2_SUPER_MAGIC
#define CGROUP2_SUPER_MAGIC	0x63677270
#endif

static long long read_num(const char *path)
{
	char buf[64];
	ssize_t n;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = '\0';
	return strtoll(buf, NULL, 10);
}

/* Mount cgroup2 if needed and make CG_DIR with the memory controller. */
static const char *cgroup_setup(void)
{
	struct statfs sfs;
	char limit[32];

	/* SLOB (tinyconfig's allocator) charges no kernel memory to cgroups. */
	if (access("/sys/kernel/slab", F_OK) && access("/proc/slabinfo", F_OK))
		return "kernel memory is not charged to cgroups here (SLOB)";
	if (statfs(CG_ROOT, &sfs) || sfs.f_type != CGROUP2_SUPER_MAGIC) {
		if (mount("cgroup2", CG_ROOT, "cgroup2", 0, NULL))
			return "cannot mount cgroup2 on " CG_ROOT;
	}
	if (eq_write_text(CG_ROOT "/cgroup.subtree_control", "+memory"))
		return "no memory controller";
	rmdir(CG_DIR);
	if (mkdir(CG_DIR, 0755))
		return "cannot create a cgroup";
	snprintf(limit, sizeof(limit), "%lu", CG_LIMIT);
	if (eq_write_text(CG_DIR "/memory.max", limit))
		return "cannot set memory.max";
	return NULL;
}

FIXTURE(memcg) {
	EQ_FIXTURE_FIELDS;
	const char *skip;
};

FIXTURE_SETUP(memcg)
{
	EQ_FIXTURE_SETUP_BODY;
	eq_destroy(QNAME);
	self->skip = cgroup_setup();
}

FIXTURE_TEARDOWN(memcg)
{
	eq_destroy(QNAME);
	EQ_FIXTURE_TEARDOWN_BODY;
	/* Empty now that the child is gone and the queue freed. */
	rmdir(CG_DIR);
}

/*
 * The child joins the cgroup and pushes 64 KiB messages until a push
 * fails; it reports how many went in and the error.
 */
static void producer_in_cgroup(struct eq_child_report *rep)
{
	static char msg[MSG_LEN];
	char pid[32];
	long n = 0;
	ssize_t r;
	int fd;

	snprintf(pid, sizeof(pid), "%d", getpid());
	if (eq_write_text(CG_DIR "/cgroup.procs", pid)) {
		rep->ret = -1000;
		_exit(1);
	}
	fd = eq_open_named(QNAME, O_WRONLY, 0, 0, NULL);
	if (fd < 0) {
		rep->ret = -1001;
		_exit(1);
	}
	/* Stop well before max_bytes: the cgroup's limit must come first. */
	do {
		eq_fill(msg, MSG_LEN, 7, n);
		r = eq_push(fd, msg, MSG_LEN);
		if (r == MSG_LEN)
			n++;
	} while (r == MSG_LEN && n < 1000);
	rep->ret = r < 0 ? r : 0;
	rep->ret2 = n;
	rep->done = 1;
	/* Stay alive (and charged) until the parent has looked. */
	pause();
	_exit(0);
}

TEST_F_TIMEOUT(memcg, producer_over_memory_max_gets_enomem, 300)
{
	struct elasticq_config cfg;
	struct elasticq_stats st;
	long long charged, ooms;
	char state;
	static char buf[MSG_LEN];
	uint64_t end;
	long i, n;
	int fd;

	if (self->skip)
		SKIP(return, "%s", self->skip);
	eq_default_config(&cfg);
	cfg.max_capacity = 4096;
	cfg.max_msg_size = MSG_LEN;
	fd = eq_open_named(QNAME, O_RDWR, ELASTICQ_ATTACH_CREATE, 0600, &cfg);
	ASSERT_LE(0, fd);

	self->child[0] = fork();
	ASSERT_LE(0, self->child[0]);
	if (!self->child[0])
		producer_in_cgroup(&self->rep[0]);
	end = eq_now_ns() + EQ_WAIT_MS * EQ_MS;
	while (!self->rep[0].done && eq_proc_state(self->child[0]) &&
	       eq_now_ns() < end)
		eq_sleep_ms(5);
	ASSERT_EQ(1, self->rep[0].done) {
		TH_LOG("producer did not finish (report %ld)", self->rep[0].ret);
	}
	n = self->rep[0].ret2;
	EXPECT_EQ(-ENOMEM, self->rep[0].ret);
	/* Some went in, fewer than the cgroup's limit allows in payload. */
	EXPECT_LT(0, n);
	EXPECT_GT(CG_LIMIT / MSG_LEN, (unsigned long)n);
	/* Alive, and the cgroup's OOM killer never ran. */
	state = eq_proc_state(self->child[0]);
	EXPECT_TRUE(state && state != 'Z') {
		TH_LOG("producer state %c", state ? state : '-');
	}
	ooms = eq_read_key(CG_DIR "/memory.events", "oom_kill");
	EXPECT_EQ(0, ooms);
	charged = read_num(CG_DIR "/memory.current");
	EXPECT_LE((long long)n * MSG_LEN, charged);

	/* Nothing it pushed was lost; draining uncharges the cgroup. */
	ASSERT_EQ(0, eq_get_stats(fd, &st));
	EXPECT_EQ(n, st.len);
	for (i = 0; i < n; i++) {
		ASSERT_EQ(MSG_LEN, eq_pop(fd, buf, sizeof(buf)));
		ASSERT_TRUE(eq_check_fill(buf, MSG_LEN, 7, i));
	}
	EXPECT_GT(charged - (long long)n * MSG_LEN / 2,
		  read_num(CG_DIR "/memory.current"));
	eq_kill_child(&self->child[0]);
	close(fd);
}

TEST_HARNESS_MAIN
