// SPDX-License-Identifier: MIT
/*
 * mem_bytes in GET_STATS is what the kernel's allocator really holds for a
 * queue: every message and ring array rounded up to its kmalloc size class
 * (or power-of-two page order), not the bytes asked for.  Checked two ways:
 *
 *   - message by message at the class boundaries, against the guest
 *     kernel's own kmalloc size classes, read from /proc/slabinfo;
 *   - for many messages half a class in size, against the slab memory
 *     charged to the producer's memory cgroup (memory.stat "slab").
 *
 * Each check SKIPs where the kernel does not offer what it reads.
 */
#include <sys/mount.h>
#include <sys/vfs.h>

#include "eq_test.h"

/* struct eq_msg ahead of each payload: u32 len, u32 flags, u64 seq */
#define MSG_HDR		16
#define QNAME		"memacct.q"
#define CG_ROOT		"/sys/fs/cgroup"
#define CG_DIR		CG_ROOT "/elasticq-memacct"
#define MAX_CLASSES	64

#ifndef CGROUP2_SUPER_MAGIC
#define CGROUP2_SUPER_MAGIC	0x63677270
#endif

/*
 * The object sizes of the kmalloc caches (kmalloc-96, kmalloc-cg-8k, ...),
 * ascending, without repeats.  Return how many, or 0 if unreadable.
 */
static int kmalloc_classes(size_t *cls)
{
	char line[512], name[128], *num, *end;
	size_t size;
	int n = 0, i, j;
	FILE *f;

	f = fopen("/proc/slabinfo", "re");
	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f)) {
		/*
		 * The class is in the name (kmalloc-96, kmalloc-cg-8k): the
		 * objsize column adds debug metadata (red zones, KASAN).
		 */
		if (sscanf(line, "%127s", name) != 1 ||
		    (strncmp(name, "kmalloc-", 8) &&
		     strncmp(name, "dma-kmalloc-", 12)))
			continue;
		num = strrchr(name, '-') + 1;
		size = strtoul(num, &end, 10);
		if (end == num)
			continue;
		if (*end == 'k')
			size <<= 10;
		else if (*end == 'M')
			size <<= 20;
		if (!size)
			continue;
		for (i = 0; i < n && cls[i] < size; i++)
			;
		if ((i < n && cls[i] == size) || n == MAX_CLASSES)
			continue;
		for (j = n++; j > i; j--)
			cls[j] = cls[j - 1];
		cls[i] = size;
	}
	fclose(f);
	return n;
}

/*
 * Whether slab debugging (red zones, KASAN metadata) makes the kmalloc
 * caches' objects larger than their class: then a class costs more than
 * its size, which the queue does not count.
 */
static bool slab_objects_padded(void)
{
	char line[512], name[128];
	bool padded = false;
	size_t objsize;
	FILE *f;

	f = fopen("/proc/slabinfo", "re");
	if (!f)
		return false;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "%127s %*u %*u %zu", name, &objsize) == 2 &&
		    !strcmp(name, "kmalloc-8k") && objsize != 8192)
			padded = true;
	fclose(f);
	return padded;
}

/*
 * What kmalloc(@size) takes: the smallest class that holds it, else whole
 * pages of the next power-of-two order.
 */
static size_t kmalloc_real(const size_t *cls, int n, size_t size)
{
	size_t pages = sysconf(_SC_PAGESIZE);
	int i;

	for (i = 0; i < n; i++)
		if (cls[i] >= size)
			return cls[i];
	while (pages < size)
		pages *= 2;
	return pages;
}

static int move_self(const char *cgroup)
{
	char path[128], pid[32];

	snprintf(path, sizeof(path), "%s/cgroup.procs", cgroup);
	snprintf(pid, sizeof(pid), "%d", getpid());
	return eq_write_text(path, pid);
}

/* Mount cgroup2 if needed and make CG_DIR with the memory controller. */
static const char *cgroup_setup(void)
{
	struct statfs sfs;

	if (statfs(CG_ROOT, &sfs) || sfs.f_type != CGROUP2_SUPER_MAGIC) {
		if (mount("cgroup2", CG_ROOT, "cgroup2", 0, NULL))
			return "cannot mount cgroup2 on " CG_ROOT;
	}
	if (eq_write_text(CG_ROOT "/cgroup.subtree_control", "+memory"))
		return "no memory controller";
	rmdir(CG_DIR);
	if (mkdir(CG_DIR, 0755))
		return "cannot create a cgroup";
	if (eq_read_key(CG_DIR "/memory.stat", "slab") < 0)
		return "no slab line in memory.stat";
	return NULL;
}

/* A named queue of @cap slots that never grows or shrinks. */
static int fixed_queue(__u32 cap, __u32 max_msg)
{
	struct elasticq_config cfg;

	eq_default_config(&cfg);
	cfg.min_capacity = cap;
	cfg.initial_capacity = cap;
	cfg.max_capacity = cap;
	cfg.max_msg_size = max_msg;
	return eq_open_named(QNAME, O_RDWR, ELASTICQ_ATTACH_CREATE, 0600, &cfg);
}

static __u64 mem_bytes(int fd)
{
	struct elasticq_stats st;

	if (eq_get_stats(fd, &st))
		return 0;
	return st.mem_bytes;
}

FIXTURE(memacct) {
	EQ_FIXTURE_FIELDS;
	size_t cls[MAX_CLASSES];
	int ncls;
};

FIXTURE_SETUP(memacct)
{
	EQ_FIXTURE_SETUP_BODY;
	eq_destroy(QNAME);
	self->ncls = kmalloc_classes(self->cls);
}

FIXTURE_TEARDOWN(memacct)
{
	eq_destroy(QNAME);
	EQ_FIXTURE_TEARDOWN_BODY;
	rmdir(CG_DIR);
}

/*
 * Payloads at the class boundaries: with its header each fills a class
 * (0, 48, 4080, 8176) or is one byte over one (1, 49, 4081, 8192), and
 * 16000 takes four pages.  Accounting by the size asked for would be off
 * for every second one.
 */
TEST_F(memacct, mem_bytes_follows_kmalloc_classes)
{
	static const __u32 lens[] = {
		0, 1, 48, 49, 4080, 4081, 8192 - MSG_HDR, 8192, 16000,
	};
	static char buf[16000];
	struct elasticq_config cfg;
	__u64 ring, mem, want, slots;
	unsigned int i;
	int fd;

	if (!self->ncls)
		SKIP(return, "no kmalloc caches in /proc/slabinfo");
	/* SLUB on x86_64: 8 .. 8192, with 96 and 192 */
	EXPECT_EQ(8192, self->cls[self->ncls - 1]);
	EXPECT_EQ(96, kmalloc_real(self->cls, self->ncls, 65));
	fd = fixed_queue(ARRAY_SIZE(lens), sizeof(buf));
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, eq_get_config(fd, &cfg));

	/*
	 * The ring: 9 8-byte slots (lock-based), or 9 16-byte slots and a
	 * header (lock-free); neither 72 nor 144 + header is a class size.
	 */
	ring = mem_bytes(fd);
	slots = ARRAY_SIZE(lens) *
		(cfg.variant == ELASTICQ_VARIANT_LOCKFREE ? 16 : 8);
	TH_LOG("variant %u: %llu bytes of slots take %llu", cfg.variant,
	       (unsigned long long)slots, (unsigned long long)ring);
	EXPECT_LE(slots, ring);
	EXPECT_EQ(kmalloc_real(self->cls, self->ncls, ring), ring);
	EXPECT_GT(2 * slots + 64, ring);

	mem = ring;
	for (i = 0; i < ARRAY_SIZE(lens); i++) {
		eq_fill(buf, lens[i], 3, i);
		ASSERT_EQ(lens[i], eq_push(fd, buf, lens[i]));
		want = kmalloc_real(self->cls, self->ncls, MSG_HDR + lens[i]);
		EXPECT_EQ(mem + want, mem_bytes(fd)) {
			TH_LOG("payload %u: %llu bytes for it, not %llu", lens[i],
			       (unsigned long long)(mem_bytes(fd) - mem),
			       (unsigned long long)want);
		}
		mem += want;
	}
	for (i = 0; i < ARRAY_SIZE(lens); i++) {
		ASSERT_EQ(lens[i], eq_pop(fd, buf, sizeof(buf)));
		ASSERT_TRUE(eq_check_fill(buf, lens[i], 3, i));
		mem -= kmalloc_real(self->cls, self->ncls, MSG_HDR + lens[i]);
		EXPECT_EQ(mem, mem_bytes(fd));
	}
	EXPECT_EQ(ring, mem_bytes(fd));
	close(fd);
}

/* How far the cgroup's slab may be from mem_bytes: 1/8 under, 1/4 over. */
static bool close_to(long long slab, long long mem)
{
	return slab >= mem - mem / 8 && slab <= mem + mem / 4;
}

/*
 * Wait until the cgroup's "slab" rose (@sign 1) or fell (-1) by about @mem
 * from @base: a read flushes the statistics, or if it found a flush under
 * way, the kernel's periodic one does within 2 s.  Return the last change
 * seen, rise positive.
 */
static long long slab_delta(long long base, long long mem, int sign)
{
	uint64_t end = eq_now_ns() + 10000 * EQ_MS;
	long long d;

	for (;;) {
		d = sign * (eq_read_key(CG_DIR "/memory.stat", "slab") - base);
		if (close_to(d, mem) || eq_now_ns() > end)
			return d;
		eq_sleep_ms(100);
	}
}

/*
 * 256 messages of 4081 bytes (8192-byte objects, twice the 4097 bytes
 * asked for) pushed from a fresh cgroup: mem_bytes moves by what the
 * cgroup's slab memory does, within the allocator's own overhead; and
 * popping them gives it back.
 */
TEST_F_TIMEOUT(memacct, mem_bytes_matches_memcg_slab, 120)
{
	const __u32 len = 4081, n = 256;
	static char buf[4081];
	long long s0, s1, d, mem;
	const char *skip;
	__u64 m0;
	__u32 i;
	int fd;

	if (slab_objects_padded())
		SKIP(return, "slab debugging pads every object past its class");
	skip = cgroup_setup();
	if (skip)
		SKIP(return, "%s", skip);
	/* The ring is allocated here, outside the cgroup. */
	fd = fixed_queue(n + 8, EQ_DEF_MSG_SIZE);
	ASSERT_LE(0, fd);
	m0 = mem_bytes(fd);
	ASSERT_EQ(0, move_self(CG_DIR));
	s0 = eq_read_key(CG_DIR "/memory.stat", "slab");
	ASSERT_LE(0, s0);
	for (i = 0; i < n; i++) {
		eq_fill(buf, len, 5, i);
		ASSERT_EQ(len, eq_push(fd, buf, len));
	}
	mem = mem_bytes(fd) - m0;
	d = slab_delta(s0, mem, 1);
	s1 = s0 + d;
	ASSERT_EQ(0, move_self(CG_ROOT));
	if (self->ncls)
		EXPECT_EQ((long long)n *
			  kmalloc_real(self->cls, self->ncls, MSG_HDR + len),
			  mem);
	TH_LOG("%u messages: mem_bytes +%lld, the cgroup's slab +%lld",
	       n, mem, d);
	EXPECT_TRUE(close_to(d, mem));
	for (i = 0; i < n; i++) {
		ASSERT_EQ(len, eq_pop(fd, buf, sizeof(buf)));
		ASSERT_TRUE(eq_check_fill(buf, len, 5, i));
	}
	EXPECT_EQ(m0, mem_bytes(fd));
	d = slab_delta(s1, mem, -1);
	TH_LOG("popped: mem_bytes -%lld, the cgroup's slab -%lld", mem, d);
	EXPECT_TRUE(close_to(d, mem));
	close(fd);
}

TEST_HARNESS_MAIN
