// SPDX-License-Identifier: MIT
/*
 * A syscall fuzzer for /dev/elasticq (issues 3 and 4), with a verifier
 * running beside it.
 *
 * FUZZ_WORKERS processes loop over random operations on files of their own:
 * write/writev/read/readv/preadv2/pwritev2 with random sizes (0, 1, around
 * the default and hard message limits, huge) and random user pointers (valid,
 * misaligned, ending exactly at a guard page, straddling it, read-only,
 * PROT_NONE, unmapped, NULL, low, kernel and non-canonical addresses); the
 * three ioctls with random struct sizes and directions, valid, boundary and
 * garbage structs, other numbers under the magic 0xEA and other magics;
 * poll and epoll; open with random flags, close, fcntl(O_NONBLOCK), lseek,
 * pread, mmap; SET_CONFIG with random valid configs including timeouts.
 * Nothing sleeps forever: a one-shot timer (SIGALRM, no SA_RESTART) ends
 * every blocking call with EINTR.  The last worker runs unprivileged.
 *
 * Named queues (issue 4): ATTACH of new and used files (EBUSY) to a few
 * names "fz.*" (fz_names), a name nobody creates and invalid names of each
 * kind, with random flags, modes, umasks, reserved fields, and config
 * pointers (valid, invalid, bigger and smaller structs, unreadable);
 * DESTROY; CONSUME with zero and non-zero arguments; PUSH_BATCH over random
 * vectors (the iovec arrays of writev, same layout) and POP_BATCH into
 * random buffers, with random counts, flags, timeouts and struct sizes;
 * /proc/elasticq.  All from root and the unprivileged worker: queues get
 * random owners and modes, so EACCES and EPERM are exact too.  A name's
 * state is known because every change of it (ATTACH|CREATE, DESTROY) is
 * made holding that name's lock in the shared page, which also records
 * owner, group and mode; a quarter of the ATTACHes without CREATE skip the
 * lock and are exact only if the name did not change meanwhile.  A file
 * remembers whether it was bound or used (EBUSY) and to which queue.  For
 * a while max_queues is 0 (ENOSPC exact), then 2.  A push batch must stop
 * exactly where an entry could fail, with that failure in its error field;
 * a pop batch returns well-formed frames, at most max_msgs, in its buffer.
 *
 * Every result is checked against what the uapi, the SPEC and the VFS say
 * it may be: the errno must be one the call documents for that situation
 * (several are exact: EBADF, ESPIPE, ENOTTY, EPERM, EINVAL for a bad struct
 * size, EFAULT for a bad pointer, never EFAULT for a good one, ...), and a
 * success must be possible (a write is all or nothing, a read never
 * returns more than its buffer or than was accessible, GET output is
 * zero-extended and consistent).
 *
 * The verifier: a producer writes numbered messages with a magic prefix,
 * non-blocking, retrying the same number until it is accepted; a consumer
 * reads.  The fuzz workers read and pop batches from the same default
 * queue, so every reader (fuzzer or consumer) records each verifier
 * message it gets (each frame of a batch) in a shared bitmap; a file bound
 * to a named queue must never get one.  At the end each accepted message
 * was seen exactly once, and none that was refused was seen at all.  Per
 * reader the numbers increase, except where a read that could fault ran at the same time (a
 * fault puts the message back at the head, behind what others took
 * meanwhile; a pop batch that faults part-way puts back the rest the same
 * way).  Drop-oldest configs are only used after the verifier's messages
 * were all accounted for (the last quarter of the run).
 *
 * At the end the queue statistics must add up (enqueued - dequeued -
 * dropped == len, no roles left), the queue drains to empty and eq_reset()
 * puts back the load-time config.  /proc/elasticq lists exactly the names
 * the workers' record says exist, with their owners and modes, and no
 * roles; they are all destroyed and the table lists none.  The kernel must
 * not have become tainted (WARN, BUG, KASAN...) nor lockdep have turned
 * itself off.  If ELASTICQ_KO
 * is set, the last test unloads and reloads the module.
 *
 * Environment: ELASTICQ_FUZZ_SEED (default: from the clock; always printed),
 * ELASTICQ_FUZZ_SECONDS (default 20).  One seed gives the same operation
 * sequence per process; the interleaving is up to the scheduler.
 */
#include <grp.h>
#include <limits.h>
#include <stdarg.h>
#include <stddef.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/time.h>

#include "eq_test.h"

#ifndef RWF_HIPRI
#define RWF_HIPRI	0x01
#define RWF_DSYNC	0x02
#define RWF_SYNC	0x04
#define RWF_NOWAIT	0x08
#define RWF_APPEND	0x10
#endif

#define FUZZ_WORKERS	3
#define FUZZ_FDS	4		/* files per worker */
#define FUZZ_MAX_FAILS	24
#define FUZZ_MAX_VSEQ	(1U << 22)	/* verifier messages at most */
#define FUZZ_DEF_SECONDS 20

#define MSG_LIMIT	ELASTICQ_MSG_SIZE_LIMIT
#define MAX_RW_COUNT	(0x7fffffffUL & ~4095UL)	/* INT_MAX & PAGE_MASK */
#define FZ_MAXIOV	1024		/* UIO_MAXIOV of the kernel */
#define ZONE_SIZE	(2UL << 20)	/* read and write zones */
#define PAGE		4096UL

#define V_MAGIC		0x2151594649524556ULL	/* "VERIFYQ!" */
#define V_TAG		0xc0ffee
#define V_HDR		16

/* ---- operations and their statistics ---- */

enum fz_op {
	OP_WRITE, OP_WRITEV, OP_PWRITEV2, OP_READ, OP_READV, OP_PREADV2,
	OP_GET_STATS, OP_GET_CONFIG, OP_SET_CONFIG, OP_SET_VALID,
	OP_IOC_EA, OP_IOC_OTHER, OP_POLL, OP_EPOLL_CTL, OP_EPOLL_WAIT,
	OP_OPEN, OP_CLOSE, OP_FCNTL, OP_LSEEK, OP_PREAD, OP_MMAP,
	OP_ATTACH, OP_DESTROY, OP_CONSUME, OP_PUSH_BATCH, OP_POP_BATCH,
	OP_PROC, OP_V_WRITE, OP_V_READ, NR_OPS
};

static const char *const op_names[NR_OPS] = {
	"write", "writev", "pwritev2", "read", "readv", "preadv2",
	"GET_STATS", "GET_CONFIG", "SET_CONFIG", "SET_CONFIG(valid)",
	"ioctl(0xEA,?)", "ioctl(other)", "poll", "epoll_ctl", "epoll_wait",
	"open", "close", "fcntl", "lseek", "pread", "mmap",
	"ATTACH", "DESTROY", "CONSUME", "PUSH_BATCH", "POP_BATCH",
	"/proc/elasticq", "verifier write", "verifier read",
};

#define NR_ERR		136		/* 0: success, 1..134: errno, 135: other */

/* The named queues the workers use: FZ_NAMES names, all "fz." */
#define FZ_NAMES	6
#define FZ_UID		65534		/* the unprivileged worker's uid and gid */
#define FZ_MISSING	"fz.never"	/* a valid name nobody creates */

static const char *const fz_names[FZ_NAMES] = {
	"fz.a", "fz.b", "fz.C-1", "fz._x", "fz.z.9",
	"fz.012345678901234567890123456789012345678901234567890123456789",
};

/*
 * What the workers know about one name: changed only with @lock held, by
 * ATTACH|CREATE and DESTROY of that name, so that a worker holding @lock
 * knows the outcome.  @gen counts the changes.
 */
struct fz_name {
	int lock;
	bool exists;
	uint32_t uid, gid, mode;
	uint64_t gen;
};

struct fz_shared {
	volatile int stop;		/* workers and consumer: finish */
	volatile int stop_producer;
	volatile int allow_drop;	/* drop-oldest configs allowed */
	uint64_t seed;
	/* Reads that may fault (and so put a message back): started, running. */
	uint64_t risky_total;
	int64_t risky_active;
	uint64_t sent;			/* verifier messages accepted: 0..sent-1 */
	uint64_t seen_total;
	uint64_t nfail;
	uint64_t cnt[NR_OPS][NR_ERR];
	uint64_t ops[FUZZ_WORKERS + 2];
	struct fz_name names[FZ_NAMES];
	/* max_queues: @maxq_gen is odd while the test changes it. */
	volatile unsigned int maxq_gen, maxq;
	unsigned int maxq_safe;		/* at least this: ENOSPC impossible */
	uint64_t max_queue_bytes;	/* the module parameter */
	uint32_t def_mode;		/* of the default queue */
	uint64_t racy_attach, racy_attach_done;	/* ATTACHes without the lock */
	char fail[FUZZ_MAX_FAILS][320];
	uint8_t seen[FUZZ_MAX_VSEQ];
};

static struct fz_shared *sh;

static void fz_count(enum fz_op op, long r)
{
	int i = r >= 0 ? 0 : -r < NR_ERR - 1 ? -r : NR_ERR - 1;

	__atomic_fetch_add(&sh->cnt[op][i], 1, __ATOMIC_RELAXED);
}

/* Record a failure (any process). */
static void __attribute__((format(printf, 2, 3)))
fz_fail(const char *who, const char *fmt, ...)
{
	uint64_t i = __atomic_fetch_add(&sh->nfail, 1, __ATOMIC_SEQ_CST);
	va_list ap;
	int n;

	if (i >= FUZZ_MAX_FAILS)
		return;
	n = snprintf(sh->fail[i], sizeof(sh->fail[i]), "%s: ", who);
	va_start(ap, fmt);
	vsnprintf(sh->fail[i] + n, sizeof(sh->fail[i]) - n, fmt, ap);
	va_end(ap);
}

/* ---- random numbers (splitmix64) ---- */

struct rng {
	uint64_t s;
};

static uint64_t rnd(struct rng *r)
{
	uint64_t z = (r->s += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static uint64_t below(struct rng *r, uint64_t n)
{
	return n ? rnd(r) % n : 0;
}

static bool chance(struct rng *r, unsigned int one_in)
{
	return below(r, one_in) == 0;
}

/* ---- errno sets ---- */

struct eset {
	uint64_t b[3];
};

static void es_add(struct eset *s, int e)
{
	if (e > 0 && e < 192)
		s->b[e / 64] |= 1ULL << (e % 64);
}

static bool es_has(const struct eset *s, int e)
{
	return e > 0 && e < 192 && (s->b[e / 64] >> (e % 64) & 1);
}

/* ---- the verifier's messages ---- */

static uint32_t v_check(uint32_t seq)
{
	return seq * 0x9e3779b1U ^ 0x5bd1e995U;
}

static size_t v_len(uint32_t seq)
{
	return V_HDR + seq % 41;
}

static size_t v_make(uint8_t *buf, uint32_t seq)
{
	uint64_t magic = V_MAGIC;
	uint32_t check = v_check(seq);
	size_t len = v_len(seq);

	memcpy(buf, &magic, 8);
	memcpy(buf + 8, &seq, 4);
	memcpy(buf + 12, &check, 4);
	eq_fill(buf + V_HDR, len - V_HDR, V_TAG, seq);
	return len;
}

/* What a reader knows about the verifier's messages it got. */
struct reader {
	const char *who;
	int64_t strict_max;	/* largest seq got by a read no risky read overlapped */
	uint64_t got;
};

/* Around every read: did a read that may fault run at the same time? */
struct overlap {
	uint64_t total0;
	int64_t active0;
	bool risky;
};

static void ov_begin(struct overlap *o, bool risky)
{
	o->risky = risky;
	if (risky) {
		__atomic_fetch_add(&sh->risky_active, 1, __ATOMIC_SEQ_CST);
		__atomic_fetch_add(&sh->risky_total, 1, __ATOMIC_SEQ_CST);
	}
	o->total0 = __atomic_load_n(&sh->risky_total, __ATOMIC_SEQ_CST);
	o->active0 = __atomic_load_n(&sh->risky_active, __ATOMIC_SEQ_CST);
}

static bool ov_end(struct overlap *o)
{
	bool ov = o->risky || o->active0 > 0 ||
		  __atomic_load_n(&sh->risky_total, __ATOMIC_SEQ_CST) !=
		  o->total0;

	if (o->risky)
		__atomic_fetch_sub(&sh->risky_active, 1, __ATOMIC_SEQ_CST);
	return ov;
}

/*
 * A read returned @n bytes (@data, contiguous): if it is a verifier
 * message, check it and account for it.
 */
static void v_seen(struct reader *rd, const uint8_t *data, size_t n,
		   bool overlapped)
{
	uint32_t seq, check;
	uint64_t magic;
	uint8_t c;

	if (n < V_HDR)
		return;
	memcpy(&magic, data, 8);
	if (magic != V_MAGIC)
		return;
	memcpy(&seq, data + 8, 4);
	memcpy(&check, data + 12, 4);
	if (check != v_check(seq) || n != v_len(seq) ||
	    !eq_check_fill(data + V_HDR, n - V_HDR, V_TAG, seq)) {
		fz_fail(rd->who, "corrupted verifier message (seq %u, %zu bytes)",
			seq, n);
		return;
	}
	if (seq >= FUZZ_MAX_VSEQ) {
		fz_fail(rd->who, "verifier seq %u out of range", seq);
		return;
	}
	c = __atomic_fetch_add(&sh->seen[seq], 1, __ATOMIC_SEQ_CST);
	__atomic_fetch_add(&sh->seen_total, 1, __ATOMIC_SEQ_CST);
	rd->got++;
	if (c)
		fz_fail(rd->who, "verifier message %u delivered %u times", seq,
			c + 1);
	if ((int64_t)seq < rd->strict_max)
		fz_fail(rd->who, "verifier message %u after %lld: out of order",
			seq, (long long)rd->strict_max);
	if (!overlapped && (int64_t)seq > rd->strict_max)
		rd->strict_max = seq;
}

/* ---- the config rules of uapi/linux/elasticq.h, written out again ---- */

static bool cfg_valid(const struct elasticq_config *c)
{
	unsigned int i;

	for (i = 0; i < 4; i++)
		if (c->reserved[i])
			return false;
	return !c->flags && c->min_capacity &&
	       c->max_capacity >= c->min_capacity &&
	       c->max_capacity <= ELASTICQ_CAPACITY_LIMIT &&
	       c->initial_capacity >= c->min_capacity &&
	       c->initial_capacity <= c->max_capacity &&
	       c->growth_pct > 100 && c->shrink_pct >= 1 &&
	       c->shrink_pct <= 99 &&
	       (uint64_t)c->shrink_pct * c->growth_pct < 10000 &&
	       c->max_msg_size >= 1 && c->max_msg_size <= MSG_LIMIT &&
	       c->max_bytes > 0 && c->variant == ELASTICQ_VARIANT_LOCKED &&
	       c->full_policy <= ELASTICQ_FULL_DROP_OLDEST;
}

static const uint64_t timeouts[] = {
	0, 1, 1000000, 10 * EQ_MS, 100 * EQ_MS, ELASTICQ_TIMEOUT_NONE,
	1ULL << 62, ELASTICQ_TIMEOUT_NONE - 1,
};

/* A random valid config; drop-oldest only when allowed. */
static void cfg_random_valid(struct rng *r, struct elasticq_config *c)
{
	static const uint32_t mins[] = { 1, 2, 3, 4, 16, 100, 1024, 4096 };
	static const uint32_t msgs[] = { 1, 15, 64, 1000, 8192, 65536,
					 MSG_LIMIT };
	static const uint64_t bytes[] = { 1, 100, 4096, 1 << 20, 16 << 20,
					  64 << 20 };

	memset(c, 0, sizeof(*c));
	c->size = sizeof(*c);
	c->min_capacity = chance(r, 2) ? mins[below(r, 8)] : 1 + below(r, 2000);
	/* Rarely a big ring (8 MiB of slots), never the full 128 MiB. */
	if (chance(r, 300))
		c->min_capacity = 1 << 20;
	switch (below(r, 4)) {
	case 0:
		c->max_capacity = c->min_capacity;
		break;
	case 1:
		c->max_capacity = ELASTICQ_CAPACITY_LIMIT;
		break;
	default:
		c->max_capacity = c->min_capacity + below(r, 70000);
	}
	c->initial_capacity = c->min_capacity +
		below(r, c->max_capacity - c->min_capacity + 1) %
		(chance(r, 2) ? 1 : 4096);
	c->growth_pct = chance(r, 3) ? 101 + below(r, 400) :
			(uint32_t[]){ 101, 150, 200, 1000 }[below(r, 4)];
	c->shrink_pct = 1 + below(r, 99);
	while ((uint64_t)c->shrink_pct * c->growth_pct >= 10000)
		c->shrink_pct = 1 + below(r, c->shrink_pct);
	c->max_msg_size = chance(r, 2) ? msgs[below(r, 7)] :
			  1 + below(r, MSG_LIMIT);
	c->max_bytes = chance(r, 2) ? bytes[below(r, 6)] : 1 + below(r, 64 << 20);
	c->push_timeout_ns = timeouts[below(r, 8)];
	c->pop_timeout_ns = timeouts[below(r, 8)];
	c->variant = ELASTICQ_VARIANT_LOCKED;
	c->full_policy = below(r, sh->allow_drop ? 3 : 2);
}

/* Valid, then maybe one field at or just past a boundary, or garbage. */
static void cfg_random(struct rng *r, struct elasticq_config *c)
{
	uint8_t *b = (uint8_t *)c;
	unsigned int i;

	cfg_random_valid(r, c);
	switch (below(r, 6)) {
	case 0:
		break;
	case 1:		/* one field at a boundary */
		switch (below(r, 14)) {
		case 0: c->flags = 1U << below(r, 32); break;
		case 1: c->reserved[below(r, 4)] = 1ULL << below(r, 64); break;
		case 2: c->min_capacity = 0; break;
		case 3: c->max_capacity = c->min_capacity - 1; break;
		case 4: c->max_capacity = ELASTICQ_CAPACITY_LIMIT + below(r, 2); break;
		case 5: c->initial_capacity = c->max_capacity + 1; break;
		case 6: c->initial_capacity = c->min_capacity - 1; break;
		case 7: c->growth_pct = 100 + below(r, 2); c->shrink_pct = 1; break;
		case 8: c->shrink_pct = below(r, 2) ? 0 : 99 + below(r, 2); break;
		case 9: c->shrink_pct = 10000 / c->growth_pct +
				      below(r, 2); break;
		case 10: c->max_msg_size = below(r, 2) ? 0 : MSG_LIMIT + below(r, 2); break;
		case 11: c->max_bytes = below(r, 2); break;
		/* (The oracle models lock-based queues: lockfree.c and the
		 * lock-free pass of the other tests cover the variant.) */
		case 12: c->variant = ELASTICQ_VARIANT_LOCKFREE + 1 +
				      below(r, 3); break;
		case 13: c->full_policy = 2 + below(r, 3); break;
		}
		break;
	case 2:		/* garbage */
		for (i = 0; i < sizeof(*c); i++)
			b[i] = rnd(r);
		c->size = sizeof(*c);
		break;
	case 3:		/* u32 extremes */
		for (i = 2; i < 8; i++)
			if (chance(r, 3))
				((uint32_t *)c)[i] = chance(r, 2) ? 0 : ~0U;
		break;
	default:	/* valid */
		break;
	}
	if (!sh->allow_drop && cfg_valid(c) &&
	    c->full_policy == ELASTICQ_FULL_DROP_OLDEST)
		c->full_policy = ELASTICQ_FULL_REJECT;
}

/* ---- a worker ---- */

struct fz_file {
	int fd;			/* -1: closed */
	int slot;		/* in worker.f[], -1 for a bad descriptor */
	int flags;		/* as opened (O_NONBLOCK tracked by fcntl) */
	bool bad;		/* a descriptor that is not open */
	bool rd, wr, path, nb;
	int q;			/* bound to: -1 the default queue, else fz_names[q] */
	int own;		/* may configure q: 1, 0, -1 unknown */
	int used;		/* pushed, popped or took a role: 0 no, 1 maybe, 2 yes */
};

struct worker {
	int id;
	bool root;
	char who[32];
	struct rng r;
	struct fz_file f[FUZZ_FDS];
	int epfd;
	uint8_t *rz, *wz;		/* ZONE_SIZE bytes, a guard page after */
	uint8_t *ro;			/* 2 read-only pages, PROT_NONE after */
	uint8_t *none;			/* a PROT_NONE page */
	uint8_t *hole;			/* an unmapped page */
	uint8_t *iovz;			/* iovec arrays, a guard page after */
	struct reader rd;
	struct elasticq_config ro_cfg;	/* the config at ro + 128 */
	uint32_t uid, gid;
	size_t seg_acc[FZ_MAXIOV + 1];	/* mk_iov: readable bytes per segment */
	char ctx[200];
	uint64_t n;
};

enum pk {
	PK_VALID, PK_VALID_END, PK_MISALIGNED, PK_STRADDLE, PK_RO, PK_NONE,
	PK_HOLE, PK_NULL, PK_LOW, PK_KERNEL, PK_NONCANON, NR_PK
};

static const char *const pk_names[NR_PK] = {
	"valid", "valid-to-guard", "misaligned", "straddling", "read-only",
	"PROT_NONE", "unmapped", "NULL", "low", "kernel", "non-canonical",
};

/* 5-level paging: 2^47 is a user address (see worker_setup()). */
static bool la57;

/* A user pointer and how many bytes from it can be read and written. */
struct uptr {
	uint8_t *p;
	size_t acc_r, acc_w;
	bool kaddr;		/* not a user address at all: access_ok() fails */
	bool range_bad;		/* [p, p + len) is not all user space */
	enum pk kind;
};

static enum pk pick_pk(struct rng *r)
{
	/* Mostly valid, so that the queue sees real traffic. */
	if (below(r, 10) < 6)
		return below(r, 3);
	return below(r, NR_PK);
}

/* A pointer of @kind for @len bytes in @zone (rz or wz). */
static struct uptr mkptr(struct worker *w, uint8_t *zone, size_t len,
			 enum pk kind)
{
	struct uptr u = { .kind = kind };
	size_t off, k;

	switch (kind) {
	case PK_VALID:
	case PK_MISALIGNED:
		off = len < ZONE_SIZE ? below(&w->r, ZONE_SIZE - len + 1) : 0;
		off = kind == PK_VALID ? off & ~7UL : off | 1;
		if (off + len > ZONE_SIZE && len <= ZONE_SIZE)
			off = ZONE_SIZE - len;
		u.p = zone + off;
		u.acc_r = u.acc_w = len < ZONE_SIZE - off ? len : ZONE_SIZE - off;
		break;
	case PK_VALID_END:
		k = len < ZONE_SIZE ? len : ZONE_SIZE;
		u.p = zone + ZONE_SIZE - k;
		u.acc_r = u.acc_w = k;
		break;
	case PK_STRADDLE:
		k = len ? below(&w->r, len < 64 ? len : 64) : 0;
		u.p = zone + ZONE_SIZE - k;
		u.acc_r = u.acc_w = k;
		break;
	case PK_RO:
		off = (size_t[]){ 0, 64, 128, 2 * PAGE - 8 }[below(&w->r, 4)];
		u.p = w->ro + off;
		u.acc_r = len < 2 * PAGE - off ? len : 2 * PAGE - off;
		break;
	case PK_NONE:
		u.p = w->none + below(&w->r, 64);
		break;
	case PK_HOLE:
		u.p = w->hole + below(&w->r, 64);
		break;
	case PK_NULL:
		u.p = NULL;
		break;
	case PK_LOW:
		u.p = (uint8_t *)(uintptr_t)(8 + below(&w->r, 4096));
		break;
	case PK_KERNEL:
		u.p = (uint8_t *)(uintptr_t)((uint64_t[]){
			0xffffffff81000000ULL, 0xffff888000000000ULL,
			0xffffffffffffffffULL - below(&w->r, 4096),
			0xffffc90000000000ULL }[below(&w->r, 4)]);
		u.kaddr = true;
		break;
	case PK_NONCANON:
		u.p = (uint8_t *)(uintptr_t)((uint64_t[]){
			0x0000800000000000ULL, 0xdead000000000000ULL,
			0x00007ffffffff000ULL }[below(&w->r, 3)]);
		/*
		 * 0xdead...: never a user address.  2^47 is one only with
		 * 5-level paging (QEMU's -cpu max has it, see la57), and the
		 * top page of 4-level user space always is one: unmapped
		 * either way.
		 */
		u.kaddr = (uintptr_t)u.p == 0xdead000000000000ULL ||
			  ((uintptr_t)u.p == 0x0000800000000000ULL && !la57);
		break;
	default:
		break;
	}
	if (u.kaddr || (!u.acc_r && len && kind != PK_RO))
		u.acc_r = u.acc_w = 0;
	u.range_bad = u.kaddr || (len &&
		((uintptr_t)u.p + len < (uintptr_t)u.p ||
		 (uintptr_t)u.p + len > 0x00007ffffffff000ULL));
	return u;
}

/* A transfer size: 0, 1, around the default and hard limits, huge. */
static size_t pick_len(struct rng *r)
{
	switch (below(r, 16)) {
	case 0: return 0;
	case 1: return 1;
	case 2: return 8192;
	case 3: return 8193;
	case 4: return MSG_LIMIT;
	case 5: return MSG_LIMIT + 1;
	case 6: return (size_t[]){ ZONE_SIZE, MAX_RW_COUNT, MAX_RW_COUNT + 1,
				   1UL << 31, SIZE_MAX, SSIZE_MAX,
				   (size_t)SSIZE_MAX + 1 }[below(r, 7)];
	case 7: return below(r, MSG_LIMIT + 2);
	case 8: case 9: return 1 + below(r, 8192);
	default: return 1 + below(r, 300);
	}
}

/* ---- files ---- */

static const char *fl_str(const struct fz_file *f, char *buf, size_t size)
{
	if (f->bad) {
		snprintf(buf, size, "fd %d (not open)", f->fd);
		return buf;
	}
	snprintf(buf, size, "fd %d %s%s%s%s", f->fd,
		 f->path ? "O_PATH" : (f->flags & O_ACCMODE) == O_RDONLY ?
		 "O_RDONLY" : (f->flags & O_ACCMODE) == O_WRONLY ? "O_WRONLY" :
		 (f->flags & O_ACCMODE) == O_RDWR ? "O_RDWR" : "O_ACCMODE",
		 f->nb ? "|O_NONBLOCK" : "",
		 f->flags & O_APPEND ? "|O_APPEND" : "",
		 f->flags & O_SYNC ? "|O_SYNC" : "");
	return buf;
}

/* One of the worker's files, or (1 in 16) a descriptor that is not open. */
static struct fz_file pick_file(struct worker *w)
{
	struct fz_file bad = { .fd = -1, .slot = -1, .bad = true };
	unsigned int i, j;

	if (chance(&w->r, 16)) {
		bad.fd = chance(&w->r, 2) ? -1 : 900 + below(&w->r, 100);
		return bad;
	}
	j = below(&w->r, FUZZ_FDS);
	for (i = 0; i < FUZZ_FDS; i++) {
		struct fz_file *f = &w->f[(i + j) % FUZZ_FDS];

		if (f->fd >= 0)
			return *f;
	}
	bad.fd = 999;
	return bad;
}

/* The slot's file is new: bound to the default queue, unused. */
static void fl_fresh(struct worker *w, struct fz_file *f)
{
	f->slot = f - w->f;
	f->q = -1;
	f->own = w->root;
	f->used = 0;
}

/*
 * The access @f has to its queue (4 read, 2 write): what it was opened
 * for, on a named queue (ATTACH checked it) or for root; on the default
 * queue (root's, mode 0662) the unprivileged worker may only write.
 */
static unsigned int fl_may(const struct worker *w, const struct fz_file *f)
{
	unsigned int want = (f->rd ? 4 : 0) | (f->wr ? 2 : 0);

	return f->q >= 0 || w->root ? want : want & 2;
}

/*
 * Something that may push or pop (and so claim a role) was tried on @f
 * and gave @r: EBADF and EINVAL come before that, the queue's own errors
 * and a transfer after it.
 */
static void fl_used(struct worker *w, const struct fz_file *f, long r)
{
	struct fz_file *s = f->slot >= 0 ? &w->f[f->slot] : NULL;

	if (!s || s->fd != f->fd || f->bad || f->path || r == -EBADF ||
	    r == -EINVAL || r == -EOPNOTSUPP || r == -ESPIPE || r == -EACCES)
		return;
	if (r > 0 || r == -EAGAIN || r == -ETIMEDOUT || r == -EINTR ||
	    r == -EMSGSIZE || r == -ENOBUFS)
		s->used = 2;
	else if (!s->used)
		s->used = 1;
}

/* Open a new file in slot @f (closing what was there); false if failed. */
static bool open_slot(struct worker *w, struct fz_file *f)
{
	static const int extra[] = { O_NONBLOCK, O_CLOEXEC, O_APPEND, O_SYNC,
				     O_NOCTTY, O_TRUNC, O_NOFOLLOW, O_DIRECT };
	int flags, acc, fd, e;
	struct eset ok = { { 0 } };
	unsigned int i;
	bool want_fail = false;

	if (f->fd >= 0) {
		close(f->fd);
		f->fd = -1;
	}
	/* Mostly O_RDWR: the other modes only ever give EBADF. */
	acc = below(&w->r, 4) ? O_RDWR :
	      (int[]){ O_RDONLY, O_WRONLY, 3 }[below(&w->r, 3)];
	flags = acc;
	for (i = 0; i < 8; i++)
		if (chance(&w->r, i == 0 ? 2 : 6))
			flags |= extra[i];
	if (chance(&w->r, 30))
		flags |= O_PATH;
	if (chance(&w->r, 60)) {
		flags |= O_DIRECTORY;
		want_fail = true;
		es_add(&ok, ENOTDIR);
	}
	if (chance(&w->r, 60)) {
		flags |= O_CREAT | O_EXCL;
		want_fail = true;
		es_add(&ok, EEXIST);
	}
	es_add(&ok, ENOMEM);
	es_add(&ok, EINVAL);
	if (!w->root)
		es_add(&ok, EACCES);
	fd = open(EQ_DEV, flags, 0600);
	e = fd < 0 ? errno : 0;
	fz_count(OP_OPEN, fd < 0 ? -e : 0);
	snprintf(w->ctx, sizeof(w->ctx), "open(%#x)", flags);
	if (fd < 0) {
		if (!es_has(&ok, e))
			fz_fail(w->who, "%s: %s", w->ctx, strerror(e));
		/* EINVAL: O_DIRECT unsupported, or O_CREAT | O_DIRECTORY. */
		if (e == EINVAL && !(flags & O_DIRECT) &&
		    !((flags & O_CREAT) && (flags & O_DIRECTORY)))
			fz_fail(w->who, "%s: EINVAL", w->ctx);
		return false;
	}
	if (want_fail && !(flags & O_PATH))
		fz_fail(w->who, "%s succeeded", w->ctx);
	f->fd = fd;
	f->flags = flags;
	f->path = flags & O_PATH;
	f->rd = !f->path && (acc == O_RDONLY || acc == O_RDWR);
	f->wr = !f->path && (acc == O_WRONLY || acc == O_RDWR);
	f->nb = flags & O_NONBLOCK;
	fl_fresh(w, f);
	return true;
}

static void op_open(struct worker *w)
{
	open_slot(w, &w->f[below(&w->r, FUZZ_FDS)]);
}

static void op_close(struct worker *w)
{
	struct fz_file *f = &w->f[below(&w->r, FUZZ_FDS)];
	int ret;

	if (f->fd < 0) {
		/* Closing what is not open. */
		ret = close(950 + below(&w->r, 40)) ? -errno : 0;
		fz_count(OP_CLOSE, ret);
		if (ret != -EBADF)
			fz_fail(w->who, "close(bad fd): %ld", (long)ret);
		return;
	}
	ret = close(f->fd) ? -errno : 0;
	fz_count(OP_CLOSE, ret);
	if (ret)
		fz_fail(w->who, "close(%d): %s", f->fd, strerror(-ret));
	f->fd = -1;
}

static void op_fcntl(struct worker *w)
{
	struct fz_file *f = &w->f[below(&w->r, FUZZ_FDS)];
	int fl, ret;

	if (f->fd < 0 || f->path)
		return;
	fl = fcntl(f->fd, F_GETFL);
	if (fl < 0) {
		fz_fail(w->who, "F_GETFL: %s", strerror(errno));
		return;
	}
	if (!!(fl & O_NONBLOCK) != f->nb)
		fz_fail(w->who, "F_GETFL %#x, expected O_NONBLOCK %d", fl, f->nb);
	fl ^= O_NONBLOCK;
	ret = fcntl(f->fd, F_SETFL, fl) ? -errno : 0;
	fz_count(OP_FCNTL, ret);
	if (ret)
		fz_fail(w->who, "F_SETFL: %s", strerror(-ret));
	else
		f->nb = !f->nb;
}

/* ---- timers: every blocking call ends ---- */

static void on_alarm(int sig)
{
	(void)sig;
}

/*
 * Periodic, so that a signal that comes before the call starts sleeping
 * is followed by another one.
 */
static void timer_arm(struct worker *w)
{
	struct itimerval it = { { 0, 10000 }, { 0, 1000 + below(&w->r, 30000) } };

	setitimer(ITIMER_REAL, &it, NULL);
}

static void timer_disarm(void)
{
	struct itimerval it = { { 0, 0 }, { 0, 0 } };

	setitimer(ITIMER_REAL, &it, NULL);
}

/* ---- write, writev, pwritev2 ---- */

#define IOVZ_SIZE	(((FZ_MAXIOV + 1) * sizeof(struct iovec) + PAGE - 1) & ~(PAGE - 1))

struct iovset {
	struct iovec *iov;	/* as passed: w->iovz, or a bad pointer */
	long cnt;		/* as passed (may be negative or too big) */
	bool arr_ok;		/* the array can be read */
	bool seg_bad;		/* some segment fails access_ok() */
	bool huge_len;		/* some iov_len > SSIZE_MAX */
	size_t total;		/* sum of lengths, capped at MAX_RW_COUNT */
	size_t acc;		/* accessible bytes from the start, in order */
	bool all_acc;		/* every byte of every segment accessible */
};

/*
 * A segment of kind @kind in @zone, after the previous ones (@cursor): the
 * segments never overlap, so what a readv put in them can be checked.
 */
static struct uptr seg_ptr(struct worker *w, uint8_t *zone, size_t len,
			   enum pk kind, size_t *cursor)
{
	struct uptr u = mkptr(w, zone, len, kind);
	size_t off;

	switch (kind) {
	case PK_VALID:
	case PK_MISALIGNED:
		off = kind == PK_VALID ? (*cursor + 7) & ~7UL : *cursor | 1;
		break;
	case PK_VALID_END:
	case PK_STRADDLE:
		off = u.p - zone;
		if (off < *cursor)
			off = *cursor;
		break;
	default:
		return u;	/* not in the zone */
	}
	if (off > ZONE_SIZE)
		off = ZONE_SIZE;	/* in the guard page */
	u.p = zone + off;
	u.acc_r = u.acc_w = len < ZONE_SIZE - off ? len : ZONE_SIZE - off;
	u.range_bad = len && ((uintptr_t)u.p + len < (uintptr_t)u.p ||
			      (uintptr_t)u.p + len > 0x00007ffffffff000ULL);
	*cursor = len < ZONE_SIZE - off ? off + len + below(&w->r, 64) :
		  ZONE_SIZE;
	return u;
}

/*
 * Random iovecs over @zone; @write: the kernel reads the segments (else
 * it writes them).  The array is built at w->iovz, then maybe moved so
 * that its last entry straddles the guard page after it.
 */
static void mk_iov(struct worker *w, uint8_t *zone, bool write,
		   struct iovset *s)
{
	static const long counts[] = { 0, 1, 2, 3, 8, 9, 16, 17, 64, FZ_MAXIOV,
				       FZ_MAXIOV + 1, -1 };
	struct iovec *v = (struct iovec *)w->iovz;
	size_t maxseg, arrlen, cursor = below(&w->r, 4096);
	bool prefix = true;
	long i, n;

	memset(s, 0, sizeof(*s));
	s->cnt = chance(&w->r, 3) ? counts[below(&w->r, 12)] :
		 1 + (long)below(&w->r, 5);
	n = s->cnt < 0 ? 0 : s->cnt;
	s->all_acc = true;
	maxseg = chance(&w->r, 4) ? MSG_LIMIT : 300;
	for (i = 0; i < n; i++) {
		size_t len = n > 16 && !chance(&w->r, 16) ? 0 :
			     below(&w->r, maxseg + 1);
		struct uptr u;
		size_t a;

		if (chance(&w->r, 40))
			len = pick_len(&w->r);
		u = seg_ptr(w, zone, len, chance(&w->r, 3) ? pick_pk(&w->r) :
							     PK_VALID, &cursor);
		v[i].iov_base = u.p;
		v[i].iov_len = len;
		if (len > SSIZE_MAX)
			s->huge_len = true;
		if (u.kaddr || len > SSIZE_MAX ||
		    (uintptr_t)u.p + len < (uintptr_t)u.p ||
		    (uintptr_t)u.p + len > 0x00007ffffffff000ULL)
			s->seg_bad = true;
		s->total = len > MAX_RW_COUNT - s->total ? MAX_RW_COUNT :
			   s->total + len;
		a = write ? u.acc_r : u.acc_w;
		w->seg_acc[i] = a;
		if (a < len)
			s->all_acc = false;
		if (prefix)
			s->acc += a < len ? a : len;
		if (a < len)
			prefix = false;
	}
	s->iov = v;
	s->arr_ok = true;
	arrlen = n * sizeof(struct iovec);
	switch (below(&w->r, 12)) {
	case 0:
		s->iov = NULL;
		s->arr_ok = n == 0;
		break;
	case 1:
		if (!n || arrlen > IOVZ_SIZE)
			break;
		/* Only the last entry's iov_base is readable. */
		s->iov = (struct iovec *)(w->iovz + IOVZ_SIZE - arrlen + 8);
		memmove(s->iov, v, arrlen - 8);
		s->arr_ok = false;
		break;
	case 2:
		s->iov = (struct iovec *)0xffff888000000000ULL;
		s->arr_ok = n == 0;
		break;
	default:
		break;
	}
	if (!s->arr_ok) {
		s->all_acc = false;
		s->acc = 0;
	}
}

static int pick_rwf(struct rng *r)
{
	static const int f[] = { 0, 0, RWF_NOWAIT, RWF_NOWAIT, RWF_HIPRI,
				 RWF_DSYNC, RWF_SYNC, RWF_APPEND, 0x100,
				 (int)0x80000000U };

	return f[below(r, 10)];
}

#define RWF_KNOWN (RWF_HIPRI | RWF_DSYNC | RWF_SYNC | RWF_NOWAIT | RWF_APPEND)

/*
 * Checks common to write, writev, pwritev2.  @total: the bytes the call
 * asks to write (capped at MAX_RW_COUNT); @all_acc: all of them readable;
 * @efault_ok, @einval_ok: the arguments are such that EFAULT or EINVAL may
 * come from the VFS.
 */
static void check_write(struct worker *w, enum fz_op op, const struct fz_file *f,
			long r, size_t total, bool all_acc, bool efault_ok,
			bool einval_ok, int rwf)
{
	struct eset ok = { { 0 } };
	char fb[64];

	fz_count(op, r);
	if (f->bad || f->path) {
		if (r != -EBADF)
			fz_fail(w->who, "%s on %s: %ld, want EBADF", w->ctx,
				fl_str(f, fb, sizeof(fb)), r);
		return;
	}
	if (r >= 0) {
		if ((size_t)r != total || total > MSG_LIMIT)
			fz_fail(w->who, "%s: returned %ld of %zu bytes", w->ctx,
				r, total);
		if (total && !all_acc)
			fz_fail(w->who, "%s: succeeded from inaccessible memory",
				w->ctx);
		if (!f->wr)
			fz_fail(w->who, "%s: succeeded on %s", w->ctx,
				fl_str(f, fb, sizeof(fb)));
		if (rwf & ~RWF_KNOWN && total)
			fz_fail(w->who, "%s: unknown RWF flags accepted", w->ctx);
		return;
	}
	if (!f->wr) {
		/* readv/writev import the iovecs before checking the mode. */
		es_add(&ok, EBADF);
		if (op != OP_WRITE) {
			if (efault_ok)
				es_add(&ok, EFAULT);
			if (einval_ok)
				es_add(&ok, EINVAL);
			es_add(&ok, ENOMEM);
		}
	} else {
		if (total > 1)
			es_add(&ok, EMSGSIZE);
		if (!all_acc || efault_ok)
			es_add(&ok, EFAULT);
		if (einval_ok)
			es_add(&ok, EINVAL);
		es_add(&ok, ENOMEM);
		es_add(&ok, ENOBUFS);	/* all queues hold max_total_bytes */
		es_add(&ok, EAGAIN);	/* full: O_NONBLOCK or policy reject */
		if (!f->nb && !(rwf & RWF_NOWAIT)) {
			es_add(&ok, ETIMEDOUT);
			es_add(&ok, EINTR);
		}
		if (rwf & ~RWF_KNOWN)
			es_add(&ok, EOPNOTSUPP);
	}
	if (!es_has(&ok, -r))
		fz_fail(w->who, "%s on %s: unexpected %s", w->ctx,
			fl_str(f, fb, sizeof(fb)), strerror(-r));
}

static void op_write(struct worker *w)
{
	struct fz_file f = pick_file(w);
	size_t len = pick_len(&w->r);
	struct uptr u = mkptr(w, w->wz, len, pick_pk(&w->r));
	long r;

	snprintf(w->ctx, sizeof(w->ctx), "write(%s %p, %zu)",
		 pk_names[u.kind], u.p, len);
	if (!f.nb)
		timer_arm(w);
	r = write(f.fd, u.p, len);
	r = r < 0 ? -errno : r;
	timer_disarm();
	check_write(w, OP_WRITE, &f, r, len > MAX_RW_COUNT ? MAX_RW_COUNT : len,
		    u.acc_r >= len && !u.kaddr, u.range_bad, false, 0);
	fl_used(w, &f, r);
}

static bool cnt_bad(long cnt)
{
	return cnt < 0 || cnt > FZ_MAXIOV;
}

static void op_writev(struct worker *w, bool v2)
{
	struct fz_file f = pick_file(w);
	struct iovset s;
	int rwf = v2 ? pick_rwf(&w->r) : 0;
	long pos = -1, r;

	mk_iov(w, w->wz, true, &s);
	if (v2 && chance(&w->r, 8))
		pos = chance(&w->r, 2) ? (long)below(&w->r, 10000) : -2;
	snprintf(w->ctx, sizeof(w->ctx),
		 "%s(cnt %ld, total %zu, array %s, pos %ld, flags %#x)",
		 v2 ? "pwritev2" : "writev", s.cnt, s.total,
		 s.arr_ok ? "ok" : "bad", pos, rwf);
	if (!f.nb)
		timer_arm(w);
	if (v2)
		r = syscall(SYS_pwritev2, f.fd, s.iov, s.cnt, pos, 0L, rwf);
	else
		r = writev(f.fd, s.iov, (int)s.cnt);
	r = r < 0 ? -errno : r;
	timer_disarm();
	fl_used(w, &f, r);
	if (v2 && pos != -1) {
		/* Not seekable: ESPIPE; negative offsets: EINVAL. */
		long want = pos < -1 ? -EINVAL : f.bad || f.path ? -EBADF :
			    -ESPIPE;

		fz_count(OP_PWRITEV2, r);
		if (r != want)
			fz_fail(w->who, "%s: %ld, want %ld", w->ctx, r, want);
		return;
	}
	if (!cnt_bad(s.cnt) || f.bad || f.path) {
		check_write(w, v2 ? OP_PWRITEV2 : OP_WRITEV, &f, r, s.total,
			    s.all_acc,
			    !s.arr_ok || s.seg_bad, s.huge_len, rwf);
		return;
	}
	/* Too many iovecs: EINVAL (6.12 checks the file mode first). */
	fz_count(v2 ? OP_PWRITEV2 : OP_WRITEV, r);
	if (r != -EINVAL && !(r == -EBADF && !f.wr))
		fz_fail(w->who, "%s: %ld, want EINVAL", w->ctx, r);
}

/* ---- read, readv, preadv2 ---- */

/*
 * Checks common to read, readv, preadv2.  @total: the buffer size (capped);
 * @acc: bytes writable from its start; @risky: the copy may fault.
 */
static void check_read(struct worker *w, enum fz_op op, const struct fz_file *f,
		       long r, size_t total, size_t acc, bool efault_ok,
		       bool einval_ok, int rwf)
{
	struct eset ok = { { 0 } };
	char fb[64];

	fz_count(op, r);
	if (f->bad || f->path) {
		if (r != -EBADF)
			fz_fail(w->who, "%s on %s: %ld, want EBADF", w->ctx,
				fl_str(f, fb, sizeof(fb)), r);
		return;
	}
	if (r >= 0) {
		if ((size_t)r > total || r > MSG_LIMIT)
			fz_fail(w->who, "%s: returned %ld for a buffer of %zu",
				w->ctx, r, total);
		if ((size_t)r > acc)
			fz_fail(w->who, "%s: returned %ld, only %zu bytes writable",
				w->ctx, r, acc);
		/* A read of nothing does not reach the queue. */
		if (!f->rd || (!(fl_may(w, f) & 4) && total))
			fz_fail(w->who, "%s: succeeded on %s", w->ctx,
				fl_str(f, fb, sizeof(fb)));
		if (rwf & ~RWF_KNOWN && total)
			fz_fail(w->who, "%s: unknown RWF flags accepted", w->ctx);
		return;
	}
	if (!(fl_may(w, f) & 4)) {
		/* No read access to the queue: EACCES where EBADF is not. */
		es_add(&ok, f->rd ? EACCES : EBADF);
		/* The VFS checks the buffer and the flags before the queue. */
		if (f->rd && efault_ok)
			es_add(&ok, EFAULT);
		if (f->rd && einval_ok)
			es_add(&ok, EINVAL);
		if (f->rd && (rwf & ~RWF_KNOWN))
			es_add(&ok, EOPNOTSUPP);
		if (op != OP_READ) {
			if (efault_ok)
				es_add(&ok, EFAULT);
			if (einval_ok)
				es_add(&ok, EINVAL);
			es_add(&ok, ENOMEM);
		}
	} else {
		/* A message is at most MSG_LIMIT: a bigger buffer always fits. */
		if (total < MSG_LIMIT)
			es_add(&ok, EMSGSIZE);
		if (efault_ok)
			es_add(&ok, EFAULT);
		if (einval_ok)
			es_add(&ok, EINVAL);
		if (f->nb || (rwf & RWF_NOWAIT))
			es_add(&ok, EAGAIN);
		else {
			es_add(&ok, ETIMEDOUT);
			es_add(&ok, EINTR);
		}
		if (rwf & ~RWF_KNOWN)
			es_add(&ok, EOPNOTSUPP);
		if (op != OP_READ)
			es_add(&ok, ENOMEM);	/* the iovec array */
	}
	if (!es_has(&ok, -r))
		fz_fail(w->who, "%s on %s: unexpected %s", w->ctx,
			fl_str(f, fb, sizeof(fb)), strerror(-r));
}

/*
 * A read or pop on @f got @n bytes at @data: a verifier message if @f is on
 * the default queue; on a named queue there are none.
 */
static void v_got(struct worker *w, const struct fz_file *f,
		  const uint8_t *data, size_t n, bool overlapped)
{
	uint64_t magic;

	if (f->q < 0) {
		v_seen(&w->rd, data, n, overlapped);
		return;
	}
	if (n >= V_HDR && (memcpy(&magic, data, 8), magic == V_MAGIC))
		fz_fail(w->who, "%s: a verifier message came out of queue %s",
			w->ctx, fz_names[f->q]);
}

/* Scrub the start of what a read may have written: no magic stays around. */
static void scrub(uint8_t *p, size_t n)
{
	memset(p, 0x5a, n < 8 ? n : 8);
}

static void op_read(struct worker *w)
{
	struct fz_file f = pick_file(w);
	size_t len = pick_len(&w->r);
	struct uptr u = mkptr(w, w->rz, len, pick_pk(&w->r));
	size_t lim = len < MSG_LIMIT ? len : MSG_LIMIT;
	bool risky = u.acc_w < lim || u.kaddr;
	struct overlap ov;
	bool over;
	long r;

	snprintf(w->ctx, sizeof(w->ctx), "read(%s %p, %zu)", pk_names[u.kind],
		 u.p, len);
	if (!f.nb)
		timer_arm(w);
	ov_begin(&ov, risky && f.q < 0);	/* a put-back elsewhere is no risk */
	r = read(f.fd, u.p, len);
	r = r < 0 ? -errno : r;
	over = ov_end(&ov);
	timer_disarm();
	fl_used(w, &f, r);
	if (r > 0 && (size_t)r <= u.acc_w)
		v_got(w, &f, u.p, r, over);
	if (u.acc_w)
		scrub(u.p, u.acc_w);
	check_read(w, OP_READ, &f, r, len > MAX_RW_COUNT ? MAX_RW_COUNT : len,
		   u.acc_w, risky || u.range_bad, false, 0);
}

static void op_readv(struct worker *w, bool v2)
{
	static uint8_t gather[MSG_LIMIT];
	const struct iovec *v = (struct iovec *)w->iovz;
	struct fz_file f = pick_file(w);
	int rwf = v2 ? pick_rwf(&w->r) : 0;
	bool risky, bad, over;
	struct overlap ov;
	struct iovset s;
	long pos = -1, r, i;

	mk_iov(w, w->rz, false, &s);
	if (v2 && chance(&w->r, 8))
		pos = chance(&w->r, 2) ? (long)below(&w->r, 10000) : -2;
	bad = !s.arr_ok || s.seg_bad || cnt_bad(s.cnt);
	risky = bad || s.acc < (s.total < MSG_LIMIT ? s.total : MSG_LIMIT);
	snprintf(w->ctx, sizeof(w->ctx),
		 "%s(cnt %ld, total %zu, acc %zu, array %s, pos %ld, flags %#x)",
		 v2 ? "preadv2" : "readv", s.cnt, s.total, s.acc,
		 s.arr_ok ? "ok" : "bad", pos, rwf);
	if (!f.nb)
		timer_arm(w);
	ov_begin(&ov, risky && f.q < 0);	/* a put-back elsewhere is no risk */
	if (v2)
		r = syscall(SYS_preadv2, f.fd, s.iov, s.cnt, pos, 0L, rwf);
	else
		r = readv(f.fd, s.iov, (int)s.cnt);
	r = r < 0 ? -errno : r;
	over = ov_end(&ov);
	timer_disarm();
	if (r > 0 && (size_t)r <= s.acc && s.arr_ok && !cnt_bad(s.cnt)) {
		/* Gather what was read, from the accessible prefix. */
		size_t got = 0;

		for (i = 0; i < s.cnt && got < (size_t)r; i++) {
			size_t k = v[i].iov_len < (size_t)r - got ?
				   v[i].iov_len : (size_t)r - got;

			memcpy(gather + got, v[i].iov_base, k);
			got += k;
		}
		v_got(w, &f, gather, r, over);
	}
	fl_used(w, &f, r);
	if (s.arr_ok && !cnt_bad(s.cnt)) {
		for (i = 0; i < s.cnt; i++) {
			uint8_t *b = v[i].iov_base;

			if (b >= w->rz && b < w->rz + ZONE_SIZE)
				scrub(b, w->rz + ZONE_SIZE - b);
		}
	}
	if (v2 && pos != -1) {
		long want = pos < -1 ? -EINVAL : f.bad || f.path ? -EBADF :
			    -ESPIPE;

		fz_count(OP_PREADV2, r);
		if (r != want)
			fz_fail(w->who, "%s: %ld, want %ld", w->ctx, r, want);
		return;
	}
	if (!cnt_bad(s.cnt) || f.bad || f.path) {
		check_read(w, v2 ? OP_PREADV2 : OP_READV, &f, r, s.total, s.acc,
			   risky, s.huge_len, rwf);
		return;
	}
	fz_count(v2 ? OP_PREADV2 : OP_READV, r);
	if (r != -EINVAL && !(r == -EBADF && !f.rd))
		fz_fail(w->who, "%s: %ld, want EINVAL", w->ctx, r);
}

/* ---- ioctls ---- */

#define IOC_SIZELESS(cmd)	((cmd) & ~(_IOC_SIZEMASK << _IOC_SIZESHIFT))

enum ioc_kind {
	IOC_STATS, IOC_CONFIG, IOC_SET, IOC_ATTACH, IOC_DESTROY, IOC_CONSUME,
	IOC_PUSH, IOC_POP, IOC_OWNER, IOC_OTHER
};

static enum ioc_kind ioc_which(unsigned int cmd)
{
	if (cmd == ELASTICQ_IOC_CONSUME)
		return IOC_CONSUME;
	if (IOC_SIZELESS(cmd) == IOC_SIZELESS(ELASTICQ_IOC_ATTACH))
		return IOC_ATTACH;
	if (IOC_SIZELESS(cmd) == IOC_SIZELESS(ELASTICQ_IOC_DESTROY))
		return IOC_DESTROY;
	if (IOC_SIZELESS(cmd) == IOC_SIZELESS(ELASTICQ_IOC_PUSH_BATCH))
		return IOC_PUSH;
	if (IOC_SIZELESS(cmd) == IOC_SIZELESS(ELASTICQ_IOC_POP_BATCH))
		return IOC_POP;
	if (IOC_SIZELESS(cmd) == IOC_SIZELESS(ELASTICQ_IOC_GET_STATS))
		return IOC_STATS;
	if (IOC_SIZELESS(cmd) == IOC_SIZELESS(ELASTICQ_IOC_GET_CONFIG))
		return IOC_CONFIG;
	if (IOC_SIZELESS(cmd) == IOC_SIZELESS(ELASTICQ_IOC_SET_CONFIG))
		return IOC_SET;
	if (IOC_SIZELESS(cmd) == IOC_SIZELESS(ELASTICQ_IOC_GET_OWNER) ||
	    IOC_SIZELESS(cmd) == IOC_SIZELESS(ELASTICQ_IOC_SET_OWNER))
		return IOC_OWNER;
	return IOC_OTHER;
}

static unsigned int pick_ioc_size(struct rng *r, unsigned int exact)
{
	if (below(r, 10) < 6)
		return exact;
	return (unsigned int[]){ 0, 8, exact - 1, exact + 1, exact + 8,
				 256, 4096, _IOC_SIZEMASK,
				 below(r, _IOC_SIZEMASK + 1) }[below(r, 9)];
}

/* Magics the VFS handles itself for every file (fs/ioctl.c do_vfs_ioctl). */
static bool vfs_magic(unsigned int type)
{
	return type == 0x00 || type == 0x15 || type == 'T' || type == 'X' ||
	       type == 'f' || type == 0x94;
}

/* ---- the new ioctls: their argument structs ---- */

/*
 * What copy_struct_from_user() of a @usize-byte argument (the kernel knows
 * @ks bytes and wants @ver0 at least) gives when the first @nview bytes
 * (@view) can be read: 0 (read, and its size field says @usize), -errno,
 * or 1: EFAULT or E2BIG, both added to @ok.
 */
static long copyin_want(const uint8_t *view, size_t nview, unsigned int usize,
			unsigned int ks, unsigned int ver0, struct eset *ok)
{
	bool tail_nz = false;
	uint32_t size;
	size_t i;

	if (usize < ver0)
		return -EINVAL;
	for (i = ks; i < nview; i++)
		tail_nz |= view[i] != 0;
	if (usize > ks && nview < usize) {
		es_add(ok, EFAULT);
		es_add(ok, E2BIG);
		return 1;
	}
	if (tail_nz)
		return -E2BIG;
	if (nview < ks)
		return -EFAULT;
	memcpy(&size, view, 4);
	return size == usize ? 0 : -EINVAL;
}

/*
 * @ks bytes of @st at @buf zero-extended to @usize (now and then with a
 * non-zero byte in the tail), the size field mostly @usize.
 */
static void mk_arg(struct worker *w, uint8_t *buf, const void *st,
		   unsigned int ks, unsigned int usize)
{
	uint32_t size = usize;

	memset(buf, 0, usize);
	memcpy(buf, st, usize < ks ? usize : ks);
	if (usize > ks && chance(&w->r, 4))
		buf[ks + below(&w->r, usize - ks)] = 1;
	if (chance(&w->r, 20))
		size = chance(&w->r, 2) ? usize + 8 : chance(&w->r, 2) ?
		       usize - 8 : (uint32_t)rnd(&w->r);
	memcpy(buf, &size, usize < 4 ? usize : 4);
}

/*
 * Put the @usize bytes at @buf where a pointer of @kind points, in wz (a
 * read-only one on the second page of ro, written through mprotect()), and
 * copy what the kernel can read of it to @view.
 */
static struct uptr put_arg(struct worker *w, enum pk kind, const uint8_t *buf,
			   unsigned int usize, uint8_t *view, size_t *nview)
{
	struct uptr u = { .kind = kind };
	size_t off, n;

	if (kind == PK_RO) {
		n = usize < PAGE ? usize : PAGE;
		off = chance(&w->r, 4) ? 2 * PAGE - below(&w->r, n + 1) :
		      PAGE + 8 * below(&w->r, 64);
		u.p = w->ro + off;
		u.acc_r = usize < 2 * PAGE - off ? usize : 2 * PAGE - off;
		if (mprotect(w->ro, 2 * PAGE, PROT_READ | PROT_WRITE))
			fz_fail(w->who, "mprotect: %s", strerror(errno));
		memcpy(u.p, buf, u.acc_r);
		mprotect(w->ro, 2 * PAGE, PROT_READ);
	} else {
		u = mkptr(w, w->wz, usize, kind);
		if (u.acc_w)
			memcpy(u.p, buf, u.acc_w < usize ? u.acc_w : usize);
	}
	*nview = u.acc_r < usize ? u.acc_r : usize;
	if (*nview)
		memcpy(view, u.p, *nview);
	return u;
}

/* The new ioctls' structs: mostly valid pointers and exact sizes. */
static enum pk pick_arg_pk(struct rng *r)
{
	return chance(r, 3) ? pick_pk(r) : PK_VALID;
}

static unsigned int pick_arg_size(struct rng *r, unsigned int exact)
{
	return chance(r, 3) ? pick_ioc_size(r, exact) : exact;
}

/* Check @r against @want: -errno, 0, or 1 (one of @ok). */
static bool check_want(struct worker *w, const struct fz_file *f, long r,
		       long want, const struct eset *ok)
{
	char fb[64];

	if (r == want || (r < 0 && es_has(ok, -r)))
		return true;
	fz_fail(w->who, "%s on %s: %s, want %s", w->ctx,
		fl_str(f, fb, sizeof(fb)), r < 0 ? strerror(-r) : "success",
		want == 1 ? "one of a set" : want < 0 ? strerror(-want) :
		"success");
	return false;
}

/* ---- named queues: names, the workers' record of them, limits ---- */

static bool name_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
}

/* The rule of the semantics: 1..63 of [A-Za-z0-9._-], then zeros only. */
static bool name_valid(const char *name)
{
	size_t len = strnlen(name, ELASTICQ_NAME_SIZE), i;

	if (!len || len > ELASTICQ_NAME_MAX)
		return false;
	for (i = 0; i < len; i++)
		if (!name_char(name[i]))
			return false;
	for (; i < ELASTICQ_NAME_SIZE; i++)
		if (name[i])
			return false;
	return true;
}

/* Index in fz_names of a valid name, else -1. */
static int name_index(const char *name)
{
	int i;

	for (i = 0; i < FZ_NAMES && name_valid(name); i++)
		if (!strcmp(name, fz_names[i]))
			return i;
	return -1;
}

/*
 * A name (ELASTICQ_NAME_SIZE bytes at @name): mostly one of fz_names, else
 * FZ_MISSING or an invalid one of each kind; never another valid name.
 */
static void pick_name(struct worker *w, char *name)
{
	static const char bad[] = "/ \n\t*:\\@+,;=\x7f\x80\xe9\xff";
	const char *base = fz_names[below(&w->r, FZ_NAMES)];
	size_t len = strlen(base), i;

	memset(name, 0, ELASTICQ_NAME_SIZE);
	if (below(&w->r, 10) < 7) {
		memcpy(name, base, len);
		return;
	}
	switch (below(&w->r, 6)) {
	case 0:
		strcpy(name, FZ_MISSING);
		return;
	case 1:		/* empty */
		break;
	case 2:		/* 64 characters, no NUL */
		memset(name, 'a' + below(&w->r, 26), ELASTICQ_NAME_SIZE);
		memcpy(name, "fz.", 3);
		break;
	case 3:		/* a character that is not allowed */
		memcpy(name, base, len);
		name[below(&w->r, len)] = bad[below(&w->r, sizeof(bad) - 1)];
		break;
	case 4:		/* garbage after the NUL */
		memcpy(name, base, len);
		name[len + 1 + below(&w->r, ELASTICQ_NAME_SIZE - len - 1)] =
			1 + below(&w->r, 255);
		break;
	default:	/* random bytes */
		for (i = 0; i < ELASTICQ_NAME_SIZE; i++)
			name[i] = rnd(&w->r);
		name[below(&w->r, ELASTICQ_NAME_SIZE)] = 0;
		break;
	}
	if (name_valid(name))
		name[0] = '/';
}

static void name_lock(int i)
{
	while (__atomic_exchange_n(&sh->names[i].lock, 1, __ATOMIC_ACQUIRE))
		sched_yield();
}

static void name_unlock(int i)
{
	__atomic_store_n(&sh->names[i].lock, 0, __ATOMIC_RELEASE);
}

static struct fz_name name_snapshot(int i)
{
	struct fz_name n;

	name_lock(i);
	n = sh->names[i];
	name_unlock(i);
	return n;
}

/* May this worker open a queue of @uid/@gid/@mode as @f is opened? */
static bool may_access(const struct worker *w, uint32_t uid, uint32_t gid,
		       uint32_t mode, const struct fz_file *f)
{
	unsigned int want = (f->rd ? 4 : 0) | (f->wr ? 2 : 0);

	if (w->root)
		return true;
	if (uid == w->uid)
		mode >>= 6;
	else if (gid == w->gid)
		mode >>= 3;
	return !(want & ~mode & 7);
}

/*
 * May @f's queue be reconfigured by this worker?  Unknown (a queue bound
 * while its name changed): EPERM joins @ok and the answer is yes.
 */
static bool may_configure(const struct worker *w, const struct fz_file *f,
			  struct eset *ok)
{
	if (w->root)
		return true;
	if (f->q < 0 || !f->own)
		return false;
	if (f->own < 0)
		es_add(ok, EPERM);
	return true;
}

/* max_queues during a call that started at generation @gen0, if known. */
static bool maxq_known(unsigned int gen0, unsigned int *limit)
{
	*limit = __atomic_load_n(&sh->maxq, __ATOMIC_SEQ_CST);
	return !(gen0 & 1) &&
	       __atomic_load_n(&sh->maxq_gen, __ATOMIC_SEQ_CST) == gen0;
}

/* ---- ATTACH ---- */

/* Config sizes tried: beyond a page the kernel says E2BIG, like clone3. */
#define FZ_BIG_CFGS	6

enum cfgk {
	CFG_NONE, CFG_VALID, CFG_RANDOM, CFG_BIG, CFG_BIG_NZ, CFG_SMALL,
	CFG_STRADDLE, CFG_BAD, CFG_RO, NR_CFGK
};

/*
 * The config pointer of an ATTACH|CREATE, built in iovz; *@want: what
 * reading and checking it gives, 0 or -errno.
 */
static uint64_t pick_attach_cfg(struct worker *w, long *want)
{
	static const enum pk bad[] = { PK_NONE, PK_HOLE, PK_KERNEL, PK_LOW,
				       PK_NONCANON };
	enum cfgk kind = below(&w->r, NR_CFGK);
	size_t off = 8 * below(&w->r, 64), readable, i;
	struct elasticq_config c;
	uint32_t size = sizeof(c);
	bool tail_nz = false;
	uint8_t *p;

	*want = 0;
	switch (kind) {
	case CFG_NONE:
		return 0;
	case CFG_RO:		/* w->ro_cfg, valid, in read-only memory */
		return (uintptr_t)(w->ro + 128);
	case CFG_BAD:
		*want = -EFAULT;
		return (uintptr_t)mkptr(w, w->rz, sizeof(c),
					bad[below(&w->r, 5)]).p;
	case CFG_RANDOM:
		cfg_random(&w->r, &c);
		break;
	default:
		cfg_random_valid(&w->r, &c);
		break;
	}
	if (kind == CFG_BIG || kind == CFG_BIG_NZ)
		size = (uint32_t[]){ 100, 104, 128, 4096, 4104, 8192 }[below(&w->r, FZ_BIG_CFGS)];
	else if (kind == CFG_SMALL)
		size = (uint32_t[]){ 0, 4, 8, 88, 95 }[below(&w->r, 5)];
	c.size = size;
	readable = size > sizeof(c) ? size : sizeof(c);
	p = w->iovz + off;
	if (kind == CFG_STRADDLE) {
		readable = below(&w->r, sizeof(c));
		p = w->iovz + IOVZ_SIZE - readable;
	}
	memset(p, 0, readable);
	memcpy(p, &c, readable < sizeof(c) ? readable : sizeof(c));
	if (kind == CFG_BIG_NZ)
		p[sizeof(c) + below(&w->r, size - sizeof(c))] = 1 + below(&w->r, 255);
	for (i = sizeof(c); i < size && i < readable; i++)
		tail_nz |= p[i] != 0;
	if (readable < 4)
		*want = -EFAULT;
	else if (size < ELASTICQ_CONFIG_SIZE_VER0)
		*want = -EINVAL;
	else if (size > PAGE)
		*want = -E2BIG;
	else if (tail_nz)
		*want = -E2BIG;
	else if (readable < size || readable < sizeof(c))
		*want = -EFAULT;
	else if (!cfg_valid(&c) || c.max_bytes > sh->max_queue_bytes)
		*want = -EINVAL;
	return (uintptr_t)p;
}

/*
 * The outcomes of a valid ATTACH on a file not yet bound nor used, with
 * the name in state @n, added to @ok (*@succ: success is one).  @cfg_want:
 * what the config pointer gives; @newmode: a new queue's mode.
 */
static void attach_outcomes(const struct worker *w, const struct fz_file *f,
			    const struct elasticq_attach *a, long cfg_want,
			    const struct fz_name *n, bool limit_known,
			    unsigned int limit, uint32_t newmode,
			    struct eset *ok, bool *succ)
{
	bool create = a->flags & ELASTICQ_ATTACH_CREATE;

	/*
	 * Opened for neither reading nor writing: nothing to bind for.  A
	 * config that cannot be read fails first, a bad one after.
	 */
	if (!f->rd && !f->wr) {
		es_add(ok, EBADF);
		if (cfg_want)
			es_add(ok, -cfg_want);
		return;
	}
	/* The config is checked even if the queue exists (or not: "ignored"). */
	if (cfg_want) {
		es_add(ok, -cfg_want);
		if (!n->exists)
			return;
	}
	if (n->exists) {
		if (create && (a->flags & ELASTICQ_ATTACH_EXCL))
			es_add(ok, EEXIST);
		else if (may_access(w, n->uid, n->gid, n->mode, f))
			*succ = true;
		else
			es_add(ok, EACCES);
		return;
	}
	if (!create) {
		es_add(ok, ENOENT);
		return;
	}
	if (!limit_known || limit < sh->maxq_safe)
		es_add(ok, ENOSPC);
	if (limit_known && !limit)
		return;
	es_add(ok, ENOBUFS);
	es_add(ok, ENOMEM);
	if (may_access(w, w->uid, w->gid, newmode, f))
		*succ = true;
	else
		es_add(ok, EACCES);
}

static void ioc_attach(struct worker *w, enum fz_op op, unsigned int cmd,
		       struct fz_file f)
{
	static const uint32_t modes[] = { 0600, 0666, 0644, 0640, 0660, 0606,
					  0400, 0200, 0, 0777 };
	static const mode_t umasks[] = { 0, 022, 077, 027, 0777 };
	static uint8_t buf[_IOC_SIZEMASK + 1], view[_IOC_SIZEMASK + 1];
	unsigned int usize = _IOC_SIZE(cmd), limit, gen0;
	struct fz_file *s = f.slot >= 0 ? &w->f[f.slot] : NULL;
	struct fz_name n0 = { 0 }, n1 = { 0 };
	struct eset ok = { { 0 } };
	struct elasticq_attach a;
	mode_t um = 022;
	long want, cfg_want = 0, r;
	bool create = false, locked = false, racy = false, succ = false, known;
	uint64_t racy0;
	size_t nview;
	struct uptr u;
	int idx = -1;

	memset(&a, 0, sizeof(a));
	a.size = usize;
	a.flags = (uint32_t[]){ ELASTICQ_ATTACH_CREATE, ELASTICQ_ATTACH_CREATE,
				ELASTICQ_ATTACH_CREATE | ELASTICQ_ATTACH_EXCL,
				0, 0, ELASTICQ_ATTACH_EXCL }[below(&w->r, 6)];
	if (chance(&w->r, 20))
		a.flags |= 1U << below(&w->r, 32);
	pick_name(w, a.name);
	if (!strcmp(a.name, FZ_MISSING))
		a.flags &= ~(ELASTICQ_ATTACH_CREATE | ELASTICQ_ATTACH_EXCL);
	if (a.flags & ELASTICQ_ATTACH_CREATE) {
		a.mode = chance(&w->r, 3) ? below(&w->r, 01000) :
			 modes[below(&w->r, 10)];
		if (chance(&w->r, 20))
			a.mode = 01000 << below(&w->r, 23);
		a.config = pick_attach_cfg(w, &cfg_want);
	} else if (chance(&w->r, 15)) {
		if (chance(&w->r, 2))
			a.mode = 1 + below(&w->r, 0777);
		else
			a.config = (uintptr_t)(w->ro + 128);
	}
	if (chance(&w->r, 30))
		a.reserved0 = 1U << below(&w->r, 32);
	if (chance(&w->r, 30))
		a.reserved[below(&w->r, 3)] = 1ULL << below(&w->r, 64);
	mk_arg(w, buf, &a, sizeof(a), usize);
	u = put_arg(w, pick_arg_pk(&w->r), buf, usize, view, &nview);

	want = f.bad || f.path ? -EBADF :
	       copyin_want(view, nview, usize, sizeof(a),
			   ELASTICQ_ATTACH_SIZE_VER0, &ok);
	if (!want) {
		memcpy(&a, view, sizeof(a));	/* as the kernel reads it */
		create = a.flags & ELASTICQ_ATTACH_CREATE;
		if (a.config == 0)
			cfg_want = 0;
		if (a.flags & ~(ELASTICQ_ATTACH_CREATE | ELASTICQ_ATTACH_EXCL) ||
		    ((a.flags & ELASTICQ_ATTACH_EXCL) && !create) ||
		    a.mode > 0777 || (!create && (a.mode || a.config)) ||
		    a.reserved0 || a.reserved[0] || a.reserved[1] ||
		    a.reserved[2] || !name_valid(a.name)) {
			want = -EINVAL;
		} else {
			want = 2;	/* it depends on the name's state */
			idx = name_index(a.name);
			/* Binding without CREATE changes nothing: no lock. */
			racy = idx >= 0 && !create && chance(&w->r, 4);
			if (idx >= 0 && !racy) {
				name_lock(idx);
				locked = true;
				n0 = sh->names[idx];
			} else if (racy) {
				n0 = name_snapshot(idx);
			}
			if (create) {
				um = umasks[below(&w->r, 5)];
				umask(um);
			}
		}
	}
	snprintf(w->ctx, sizeof(w->ctx),
		 "ATTACH(size %u, flags %#x, mode %#o, name \"%.64s\"%s, config %#llx (%ld), umask %03o, %s %p)",
		 usize, a.flags, a.mode, a.name, racy ? " unlocked" : "",
		 (unsigned long long)a.config, cfg_want, um, pk_names[u.kind],
		 u.p);
	gen0 = __atomic_load_n(&sh->maxq_gen, __ATOMIC_SEQ_CST);
	racy0 = __atomic_load_n(&sh->racy_attach, __ATOMIC_SEQ_CST);
	if (racy)
		__atomic_add_fetch(&sh->racy_attach, 1, __ATOMIC_SEQ_CST);
	r = ioctl(f.fd, cmd, u.p) ? -errno : 0;
	known = maxq_known(gen0, &limit);
	fz_count(op, r);
	if (want != 2) {
		check_want(w, &f, r, want, &ok);
		return;
	}
	n1 = racy ? name_snapshot(idx) : n0;
	/* The outcomes for a new file, in each state the name may have had. */
	attach_outcomes(w, &f, &a, cfg_want, &n0, known, limit,
			a.mode & ~um & 0777, &ok, &succ);
	if (n1.gen != n0.gen) {
		/* Unlocked, and the name changed meanwhile. */
		es_add(&ok, ENOENT);
		es_add(&ok, EACCES);
		succ = true;
	}
	/* A file bound or used already: EBUSY; the order is not specified. */
	if (f.q >= 0 || f.used == 2) {
		succ = false;
		es_add(&ok, EBUSY);
	} else if (f.used) {
		es_add(&ok, EBUSY);
	}
	/* A create refused by its own mode leaves no queue. */
	if (locked && create && !n0.exists && r == 0) {
		struct fz_name *n = &sh->names[idx];

		n->exists = true;
		n->uid = w->uid;
		n->gid = w->gid;
		n->mode = a.mode & ~um & 0777;
		n->gen++;
		n1 = *n;
	}
	if (r == 0 && s && s->fd == f.fd) {
		s->q = idx;
		s->own = w->root ? 1 : n1.gen == n0.gen || locked ?
			 n1.uid == w->uid : -1;
	}
	/*
	 * A queue this call created has the config it was given, unless an
	 * unlocked ATTACH bound to it meanwhile and reconfigured it.
	 */
	if (r == 0 && locked && !n0.exists && !cfg_want &&
	    __atomic_load_n(&sh->racy_attach, __ATOMIC_SEQ_CST) == racy0 &&
	    __atomic_load_n(&sh->racy_attach_done, __ATOMIC_SEQ_CST) == racy0) {
		struct elasticq_config want_cfg, got;

		if (a.config)
			memcpy(&want_cfg, (void *)(uintptr_t)a.config,
			       sizeof(want_cfg));
		else
			eq_load_config(&want_cfg);
		want_cfg.size = sizeof(want_cfg);
		if (eq_get_config(f.fd, &got) ||
		    memcmp(&got, &want_cfg, sizeof(got)))
			fz_fail(w->who, "%s: the new queue's config is not the one given",
				w->ctx);
	}
	if (locked)
		name_unlock(idx);
	if (racy)
		__atomic_add_fetch(&sh->racy_attach_done, 1, __ATOMIC_SEQ_CST);
	if (r == 0 ? !succ : !es_has(&ok, -r)) {
		char fb[64];

		fz_fail(w->who, "%s on %s (used %d, bound %d; %s %u:%u %04o gen %llu->%llu): %s",
			w->ctx, fl_str(&f, fb, sizeof(fb)), f.used, f.q,
			n0.exists ? "exists" : "missing", n0.uid, n0.gid,
			n0.mode, (unsigned long long)n0.gen,
			(unsigned long long)n1.gen,
			r ? strerror(-r) : "success");
	}
}

static void op_attach(struct worker *w)
{
	struct fz_file *s = &w->f[below(&w->r, FUZZ_FDS)];
	unsigned int cmd = _IOC(_IOC_WRITE, ELASTICQ_IOC_MAGIC, 4,
				pick_arg_size(&w->r, sizeof(struct elasticq_attach)));

	/* Mostly a new file: the exact cases; else one in use (EBUSY). */
	if (below(&w->r, 3)) {
		if (open_slot(w, s))
			ioc_attach(w, OP_ATTACH, cmd, *s);
		return;
	}
	ioc_attach(w, OP_ATTACH, cmd, pick_file(w));
}

/* ---- DESTROY ---- */

static void ioc_destroy(struct worker *w, enum fz_op op, unsigned int cmd)
{
	static uint8_t buf[_IOC_SIZEMASK + 1], view[_IOC_SIZEMASK + 1];
	unsigned int usize = _IOC_SIZE(cmd);
	struct fz_file f = pick_file(w);
	struct eset ok = { { 0 } };
	struct elasticq_destroy d;
	struct fz_name n = { 0 };
	bool locked = false;
	size_t nview;
	struct uptr u;
	int idx = -1;
	long want, r;

	memset(&d, 0, sizeof(d));
	d.size = usize;
	if (chance(&w->r, 20))
		d.flags = 1U << below(&w->r, 32);
	pick_name(w, d.name);
	if (chance(&w->r, 30))
		d.reserved[below(&w->r, 2)] = 1ULL << below(&w->r, 64);
	mk_arg(w, buf, &d, sizeof(d), usize);
	u = put_arg(w, pick_arg_pk(&w->r), buf, usize, view, &nview);
	want = f.bad || f.path ? -EBADF :
	       copyin_want(view, nview, usize, sizeof(d),
			   ELASTICQ_DESTROY_SIZE_VER0, &ok);
	if (!want) {
		memcpy(&d, view, sizeof(d));
		if (d.flags || d.reserved[0] || d.reserved[1] ||
		    !name_valid(d.name))
			want = -EINVAL;
		else if ((idx = name_index(d.name)) < 0)
			want = -ENOENT;
	}
	if (!want) {
		name_lock(idx);
		locked = true;
		n = sh->names[idx];
		want = !n.exists ? -ENOENT :
		       w->root || n.uid == w->uid ? 0 : -EPERM;
	}
	snprintf(w->ctx, sizeof(w->ctx),
		 "DESTROY(size %u, flags %#x, name \"%.64s\", %s %p; %s uid %u)",
		 usize, d.flags, d.name, pk_names[u.kind], u.p,
		 n.exists ? "exists" : "missing", n.uid);
	r = ioctl(f.fd, cmd, u.p) ? -errno : 0;
	fz_count(op, r);
	if (locked) {
		if (r == 0) {
			sh->names[idx].exists = false;
			sh->names[idx].gen++;
		}
		name_unlock(idx);
	}
	check_want(w, &f, r, want, &ok);
}

static void op_destroy(struct worker *w)
{
	ioc_destroy(w, OP_DESTROY,
		    _IOC(_IOC_WRITE, ELASTICQ_IOC_MAGIC, 5,
			 pick_arg_size(&w->r, sizeof(struct elasticq_destroy))));
}

/* ---- CONSUME ---- */

static void ioc_consume(struct worker *w, enum fz_op op, unsigned long arg)
{
	struct fz_file f = pick_file(w);
	struct eset ok = { { 0 } };
	long r, want = 0;

	snprintf(w->ctx, sizeof(w->ctx), "CONSUME(%#lx)", arg);
	r = ioctl(f.fd, ELASTICQ_IOC_CONSUME, arg) ? -errno : 0;
	fz_count(op, r);
	if (f.bad || f.path) {
		want = -EBADF;
	} else if (arg && !f.rd) {
		es_add(&ok, EINVAL);
		es_add(&ok, EBADF);
		want = 1;
	} else if (arg || !f.rd) {
		want = arg ? -EINVAL : -EBADF;
	} else if (!(fl_may(w, &f) & 4)) {
		want = -EACCES;
	}
	if (check_want(w, &f, r, want, &ok) && !r && f.slot >= 0 &&
	    w->f[f.slot].fd == f.fd)
		w->f[f.slot].used = 2;
}

static void op_consume(struct worker *w)
{
	ioc_consume(w, OP_CONSUME, chance(&w->r, 4) ? rnd(&w->r) | 1 : 0);
}

/* ---- PUSH_BATCH and POP_BATCH ---- */

static uint32_t pick_batch_flags(struct rng *r)
{
	return (uint32_t[]){ 0, 0, 0, ELASTICQ_BATCH_NONBLOCK,
			     ELASTICQ_BATCH_TIMEOUT, ELASTICQ_BATCH_TIMEOUT,
			     ELASTICQ_BATCH_NONBLOCK | ELASTICQ_BATCH_TIMEOUT,
			     4, 1U << 31 }[below(r, 9)];
}

static uint64_t pick_batch_timeout(struct rng *r, uint32_t flags)
{
	if (flags & ELASTICQ_BATCH_TIMEOUT)
		return timeouts[below(r, 8)];
	return chance(r, 12) ? 1 + below(r, 1000000) : 0;
}

/*
 * Entry @i of a push batch: may it be enqueued, and (to @ok) how may it
 * fail.  Checked in the order: size, allocation, copy, the queue.
 */
static bool push_entry(const struct worker *w, const struct iovec *v, long i,
		       bool nonblock, struct eset *ok)
{
	size_t len = v[i].iov_len;

	if (len > MSG_LIMIT) {
		es_add(ok, EMSGSIZE);
		return false;
	}
	if (len > 1)
		es_add(ok, EMSGSIZE);	/* max_msg_size changes under us */
	es_add(ok, ENOMEM);
	if (w->seg_acc[i] < len) {
		es_add(ok, EFAULT);
		return false;
	}
	es_add(ok, EAGAIN);
	es_add(ok, ENOBUFS);
	if (!nonblock) {
		es_add(ok, ETIMEDOUT);
		es_add(ok, EINTR);
	}
	return true;
}

static void ioc_push_batch(struct worker *w, enum fz_op op, unsigned int cmd)
{
	static uint8_t buf[_IOC_SIZEMASK + 1], view[_IOC_SIZEMASK + 1];
	const size_t eoff = offsetof(struct elasticq_push_batch, error);
	const struct iovec *v = (struct iovec *)w->iovz;
	unsigned int usize = _IOC_SIZE(cmd);
	struct fz_file f = pick_file(w);
	struct elasticq_push_batch b;
	struct eset ok = { { 0 } };
	bool nonblock, inval;
	struct iovset s;
	struct uptr u;
	size_t nview;
	long want, r, i;
	int32_t err;

	mk_iov(w, w->wz, true, &s);
	memset(&b, 0, sizeof(b));
	b.size = usize;
	b.flags = pick_batch_flags(&w->r);
	b.msgs = (uintptr_t)s.iov;
	b.count = (uint32_t)s.cnt;
	b.error = rnd(&w->r);		/* output only */
	b.timeout_ns = pick_batch_timeout(&w->r, b.flags);
	if (chance(&w->r, 30))
		b.reserved[below(&w->r, 2)] = 1ULL << below(&w->r, 64);
	mk_arg(w, buf, &b, sizeof(b), usize);
	u = put_arg(w, pick_arg_pk(&w->r), buf, usize, view, &nview);
	want = f.bad || f.path ? -EBADF :
	       copyin_want(view, nview, usize, sizeof(b),
			   ELASTICQ_PUSH_BATCH_SIZE_VER0, &ok);
	if (!want) {
		memcpy(&b, view, sizeof(b));
		inval = b.flags & ~(ELASTICQ_BATCH_NONBLOCK | ELASTICQ_BATCH_TIMEOUT) ||
			b.count > ELASTICQ_BATCH_MAX || b.reserved[0] ||
			b.reserved[1] ||
			(b.timeout_ns && !(b.flags & ELASTICQ_BATCH_TIMEOUT));
		if (inval && !f.wr) {
			es_add(&ok, EINVAL);
			es_add(&ok, EBADF);
			want = 1;
		} else if (inval || !f.wr) {
			want = inval ? -EINVAL : -EBADF;
		} else if (u.acc_w < eoff + 4) {
			want = -EFAULT;		/* @error cannot be written */
		} else if (b.count) {
			want = 2;		/* per entry, see below */
		}
	}
	nonblock = f.nb || (b.flags & ELASTICQ_BATCH_NONBLOCK);
	snprintf(w->ctx, sizeof(w->ctx),
		 "PUSH_BATCH(size %u, flags %#x, count %u, array %s, timeout %llu, %s %p)",
		 usize, b.flags, b.count, s.arr_ok ? "ok" : "bad",
		 (unsigned long long)b.timeout_ns, pk_names[u.kind], u.p);
	if (!nonblock)
		timer_arm(w);
	r = ioctl(f.fd, cmd, u.p);
	r = r < 0 ? -errno : r;
	timer_disarm();
	fz_count(op, r);
	fl_used(w, &f, r);
	if (want != 2) {
		check_want(w, &f, r, want, &ok);
		return;
	}
	memcpy(&err, u.p + eoff, 4);
	if (!s.arr_ok) {
		/* The vector is read whole first: EFAULT, nothing done. */
		if (r != -EFAULT && !(r == -ENOMEM && b.count > 16))
			fz_fail(w->who, "%s: %ld with an unreadable vector",
				w->ctx, r);
		else if (err != r)
			fz_fail(w->who, "%s: %ld, error field %d", w->ctx, r, err);
		return;
	}
	if (r == 0 || r > (long)b.count) {
		fz_fail(w->who, "%s: returned %ld of %u", w->ctx, r, b.count);
		return;
	}
	for (i = 0; i < r; i++) {
		if (!push_entry(w, v, i, nonblock, &ok)) {
			fz_fail(w->who, "%s: returned %ld, but entry %ld (%zu bytes, %zu readable) cannot be enqueued",
				w->ctx, r, i, v[i].iov_len, w->seg_acc[i]);
			return;
		}
	}
	if (r == (long)b.count) {
		if (err)
			fz_fail(w->who, "%s: all %ld enqueued, error field %d",
				w->ctx, r, err);
		return;
	}
	memset(&ok, 0, sizeof(ok));
	i = r > 0 ? r : 0;
	push_entry(w, v, i, nonblock, &ok);
	if ((r < 0 && err != r) || err >= 0 || !es_has(&ok, -err))
		fz_fail(w->who, "%s: returned %ld, error field %d (entry %ld: %zu bytes, %zu readable)",
			w->ctx, r, err, i, v[i].iov_len, w->seg_acc[i]);
}

static void op_push_batch(struct worker *w)
{
	ioc_push_batch(w, OP_PUSH_BATCH,
		       _IOC(_IOC_READ | _IOC_WRITE, ELASTICQ_IOC_MAGIC, 7,
			    pick_arg_size(&w->r, sizeof(struct elasticq_push_batch))));
}

static void ioc_pop_batch(struct worker *w, enum fz_op op, unsigned int cmd)
{
	static const uint64_t lens[] = {
		0, 1, 7, 8, 9, 16, 24, 64, 300, 4096,
		ELASTICQ_FRAME_SIZE(8192), MSG_LIMIT, ELASTICQ_FRAME_SIZE(MSG_LIMIT),
		ZONE_SIZE, SIZE_MAX, 1ULL << 63,
	};
	static const uint32_t maxes[] = { 0, 1, 2, 16, 17, ELASTICQ_BATCH_MAX,
					  ELASTICQ_BATCH_MAX + 1, ~0U };
	static uint8_t buf[_IOC_SIZEMASK + 1], view[_IOC_SIZEMASK + 1];
	const size_t boff = offsetof(struct elasticq_pop_batch, bytes);
	const uint64_t most = ELASTICQ_FRAME_SIZE(MSG_LIMIT);
	unsigned int usize = _IOC_SIZE(cmd);
	struct fz_file f = pick_file(w);
	struct elasticq_pop_batch b;
	struct eset ok = { { 0 } };
	bool nonblock, inval, risky = false, over;
	uint64_t need, bytes, pos = 0;
	struct overlap ov;
	struct uptr u, ub;
	size_t nview;
	long want, r, i;

	memset(&b, 0, sizeof(b));
	b.size = usize;
	b.flags = pick_batch_flags(&w->r);
	b.buf_len = chance(&w->r, 2) ? lens[below(&w->r, 16)] :
		    1 + below(&w->r, 20000);
	b.max_msgs = chance(&w->r, 2) ? maxes[below(&w->r, 8)] :
		     1 + below(&w->r, 64);
	ub = mkptr(w, w->rz, b.buf_len > SIZE_MAX ? SIZE_MAX : b.buf_len,
		   pick_pk(&w->r));
	b.buf = (uintptr_t)ub.p;
	b.timeout_ns = pick_batch_timeout(&w->r, b.flags);
	b.bytes = rnd(&w->r);		/* output only */
	if (chance(&w->r, 30))
		b.reserved0 = 1U << below(&w->r, 32);
	if (chance(&w->r, 30))
		b.reserved[below(&w->r, 2)] = 1ULL << below(&w->r, 64);
	mk_arg(w, buf, &b, sizeof(b), usize);
	u = put_arg(w, pick_arg_pk(&w->r), buf, usize, view, &nview);
	want = f.bad || f.path ? -EBADF :
	       copyin_want(view, nview, usize, sizeof(b),
			   ELASTICQ_POP_BATCH_SIZE_VER0, &ok);
	if (!want) {
		memcpy(&b, view, sizeof(b));
		inval = b.flags & ~(ELASTICQ_BATCH_NONBLOCK | ELASTICQ_BATCH_TIMEOUT) ||
			!b.max_msgs || b.max_msgs > ELASTICQ_BATCH_MAX ||
			b.reserved0 || b.reserved[0] || b.reserved[1] ||
			(b.timeout_ns && !(b.flags & ELASTICQ_BATCH_TIMEOUT));
		if (inval && !f.rd) {
			es_add(&ok, EINVAL);
			es_add(&ok, EBADF);
			want = 1;
		} else if (inval || !f.rd) {
			want = inval ? -EINVAL : -EBADF;
		} else if (u.acc_w < boff + 8) {
			want = -EFAULT;		/* @bytes cannot be written */
		} else if (!(fl_may(w, &f) & 4)) {
			want = -EACCES;
		} else {
			want = 2;
		}
	}
	/* The copy may fault: messages go back to the head. */
	need = b.max_msgs * most < b.buf_len ? b.max_msgs * most : b.buf_len;
	if (want == 2)
		risky = ub.kaddr || ub.acc_w < need;
	nonblock = f.nb || (b.flags & ELASTICQ_BATCH_NONBLOCK);
	snprintf(w->ctx, sizeof(w->ctx),
		 "POP_BATCH(size %u, flags %#x, buf %s %p, buf_len %llu, max %u, timeout %llu, %s %p)",
		 usize, b.flags, pk_names[ub.kind], ub.p,
		 (unsigned long long)b.buf_len, b.max_msgs,
		 (unsigned long long)b.timeout_ns, pk_names[u.kind], u.p);
	if (!nonblock)
		timer_arm(w);
	ov_begin(&ov, risky && f.q < 0);	/* a put-back elsewhere is no risk */
	r = ioctl(f.fd, cmd, u.p);
	r = r < 0 ? -errno : r;
	over = ov_end(&ov);
	timer_disarm();
	fz_count(op, r);
	fl_used(w, &f, r);
	if (want != 2) {
		check_want(w, &f, r, want, &ok);
		return;
	}
	if (r < 0) {
		if (nonblock) {
			es_add(&ok, EAGAIN);
		} else {
			es_add(&ok, ETIMEDOUT);
			es_add(&ok, EINTR);
		}
		if (b.buf_len < most)
			es_add(&ok, EMSGSIZE);
		if (risky)
			es_add(&ok, EFAULT);
		es_add(&ok, ENOMEM);
		check_want(w, &f, r, 1, &ok);
		return;
	}
	memcpy(&bytes, u.p + boff, 8);
	if (r == 0 || r > b.max_msgs || bytes > b.buf_len || bytes > ub.acc_w) {
		fz_fail(w->who, "%s: %ld messages in %llu bytes (%zu writable)",
			w->ctx, r, (unsigned long long)bytes, ub.acc_w);
		return;
	}
	for (i = 0; i < r; i++) {
		struct elasticq_frame fr;
		uint8_t *p = ub.p + pos;
		uint64_t k;

		if (bytes - pos < sizeof(fr)) {
			fz_fail(w->who, "%s: %ld messages, frame %ld beyond %llu bytes",
				w->ctx, r, i, (unsigned long long)bytes);
			return;
		}
		memcpy(&fr, p, sizeof(fr));
		if (fr.flags || fr.len > MSG_LIMIT ||
		    ELASTICQ_FRAME_SIZE(fr.len) > bytes - pos) {
			fz_fail(w->who, "%s: frame %ld at %llu: len %u flags %#x (%llu bytes)",
				w->ctx, i, (unsigned long long)pos, fr.len,
				fr.flags, (unsigned long long)bytes);
			return;
		}
		for (k = sizeof(fr) + fr.len; k < ELASTICQ_FRAME_SIZE(fr.len); k++)
			if (p[k]) {
				fz_fail(w->who, "%s: frame %ld: padding byte %#x",
					w->ctx, i, p[k]);
				break;
			}
		v_got(w, &f, p + sizeof(fr), fr.len, over);
		scrub(p, sizeof(fr) + (fr.len < 8 ? fr.len : 8));
		pos += ELASTICQ_FRAME_SIZE(fr.len);
	}
	if (pos != bytes)
		fz_fail(w->who, "%s: %ld frames in %llu bytes, bytes says %llu",
			w->ctx, r, (unsigned long long)pos,
			(unsigned long long)bytes);
}

static void op_pop_batch(struct worker *w)
{
	ioc_pop_batch(w, OP_POP_BATCH,
		      _IOC(_IOC_READ | _IOC_WRITE, ELASTICQ_IOC_MAGIC, 8,
			   pick_arg_size(&w->r, sizeof(struct elasticq_pop_batch))));
}

/* ---- /proc/elasticq ---- */

#define PROC_EQ		"/proc/elasticq"
#define PROC_COLS	19
#define PROC_ROWS	256

static const char *const proc_cols[PROC_COLS] = {
	"NAME", "OWNER", "GROUP", "MODE", "VARIANT", "POLICY", "LEN",
	"CAPACITY", "BYTES", "MEM", "HIGHWATER", "ENQUEUED", "DEQUEUED",
	"DROPPED", "REJECTED", "GROWS", "SHRINKS", "PRODUCERS", "CONSUMERS",
};

/* One line of the table; the numbers from LEN on in @v. */
struct proc_row {
	char name[ELASTICQ_NAME_SIZE + 16];
	unsigned long uid, gid, mode;
	uint64_t v[PROC_COLS - 6];
};

enum { PV_LEN, PV_CAP, PV_BYTES, PV_MEM, PV_HW, PV_ENQ, PV_DEQ, PV_DROP };

/* Read the whole table into @buf (NUL-terminated); bytes or -errno. */
static long proc_read(char *buf, size_t size)
{
	return eq_read_text(PROC_EQ, buf, size);
}

static bool decimal(const char *s, uint64_t *v)
{
	char *end;

	if (*s < '0' || *s > '9')
		return false;
	errno = 0;
	*v = strtoull(s, &end, 10);
	return !*end && !errno;
}

/*
 * Parse and check the table in @buf (changed): the header, then one line
 * per queue, the default one first, each well formed and consistent as
 * GET_STATS is.  Returns the rows, or -1 with a reason in @why.
 */
static int proc_parse(char *buf, struct proc_row *rows, char *why,
		      size_t whysize)
{
	char *line, *sl, *tok, *st;
	int nrows = -1, i, j;

	for (line = strtok_r(buf, "\n", &sl); line;
	     line = strtok_r(NULL, "\n", &sl), nrows++) {
		char *t[PROC_COLS + 1];
		struct proc_row *p = &rows[nrows];
		char nm[ELASTICQ_NAME_SIZE];
		uint64_t x;
		int n = 0;

		for (tok = strtok_r(line, " ", &st); tok && n <= PROC_COLS;
		     tok = strtok_r(NULL, " ", &st))
			t[n++] = tok;
		if (n != PROC_COLS) {
			snprintf(why, whysize, "line %d: %d columns", nrows + 1, n);
			return -1;
		}
		if (nrows < 0) {
			for (i = 0; i < PROC_COLS; i++)
				if (strcmp(t[i], proc_cols[i])) {
					snprintf(why, whysize, "header column %d: %s",
						 i, t[i]);
					return -1;
				}
			continue;
		}
		if (nrows >= PROC_ROWS) {
			snprintf(why, whysize, "more than %d queues", PROC_ROWS);
			return -1;
		}
		memset(p, 0, sizeof(*p));
		snprintf(p->name, sizeof(p->name), "%s", t[0]);
		memset(nm, 0, sizeof(nm));
		memcpy(nm, t[0], strnlen(t[0], sizeof(nm)));
		if (nrows == 0 ? strcmp(t[0], "(default)") :
		    strlen(t[0]) > ELASTICQ_NAME_MAX || !name_valid(nm)) {
			snprintf(why, whysize, "queue %d is called %.80s",
				 nrows, t[0]);
			return -1;
		}
		for (j = 0; j < nrows; j++)
			if (!strcmp(rows[j].name, p->name)) {
				snprintf(why, whysize, "%s listed twice", p->name);
				return -1;
			}
		if (!decimal(t[1], &x) || (p->uid = x, !decimal(t[2], &x)) ||
		    (p->gid = x, strlen(t[3]) != 4) || t[3][0] != '0' ||
		    strspn(t[3], "01234567") != 4 || strcmp(t[4], "locked") ||
		    (strcmp(t[5], "block") && strcmp(t[5], "reject") &&
		     strcmp(t[5], "drop-oldest"))) {
			snprintf(why, whysize, "%s: owner %s group %s mode %s variant %s policy %s",
				 p->name, t[1], t[2], t[3], t[4], t[5]);
			return -1;
		}
		p->mode = strtoul(t[3], NULL, 8);
		for (i = 6; i < PROC_COLS; i++)
			if (!decimal(t[i], &p->v[i - 6])) {
				snprintf(why, whysize, "%s: %s is %s", p->name,
					 proc_cols[i], t[i]);
				return -1;
			}
		if (p->v[PV_LEN] > p->v[PV_CAP] || !p->v[PV_CAP] ||
		    p->v[PV_ENQ] - p->v[PV_DEQ] - p->v[PV_DROP] != p->v[PV_LEN] ||
		    p->v[PV_HW] < p->v[PV_LEN] ||
		    p->v[PV_MEM] < p->v[PV_CAP] * 8 + p->v[PV_BYTES]) {
			snprintf(why, whysize, "%s: inconsistent numbers", p->name);
			return -1;
		}
	}
	if (nrows < 1)
		snprintf(why, whysize, "no default queue");
	return nrows < 1 ? -1 : nrows;
}

static const struct proc_row *proc_find(const struct proc_row *rows, int n,
					const char *name)
{
	int i;

	for (i = 0; i < n; i++)
		if (!strcmp(rows[i].name, name))
			return &rows[i];
	return NULL;
}

/* Does the row of fz_names[@i] agree with the workers' record @n? */
static bool proc_agrees(const struct proc_row *rows, int nrows, int i,
			const struct fz_name *n, bool visible, char *why,
			size_t whysize)
{
	const struct proc_row *p = proc_find(rows, nrows, fz_names[i]);
	bool listed = n->exists && visible;

	if (!p != !listed || (p && (p->uid != n->uid || p->gid != n->gid ||
				    p->mode != n->mode))) {
		snprintf(why, whysize, "%s: listed %d (%lu:%lu %04lo), should be %d (%u:%u %04o)",
			 fz_names[i], !!p, p ? p->uid : 0, p ? p->gid : 0,
			 p ? p->mode : 0, listed, n->uid, n->gid, n->mode);
		return false;
	}
	return true;
}

/* /proc/elasticq lists to a worker the queues it owns or may use. */
static bool proc_visible(const struct worker *w, const struct fz_name *n)
{
	uint32_t mode = n->mode;

	if (w->root || n->uid == w->uid)
		return true;
	if (n->gid == w->gid)
		mode >>= 3;
	return mode & 6;
}

/* The table, with one name's state known (its lock held while reading). */
static void op_proc(struct worker *w)
{
	static char buf[PROC_ROWS * 256];
	static struct proc_row rows[PROC_ROWS];
	int i = below(&w->r, FZ_NAMES), nrows;
	struct fz_name n;
	char why[200];
	long r;

	name_lock(i);
	n = sh->names[i];
	r = proc_read(buf, sizeof(buf));
	name_unlock(i);
	fz_count(OP_PROC, r < 0 ? r : 0);
	if (r < 0) {
		fz_fail(w->who, "read %s: %s", PROC_EQ, strerror(-r));
		return;
	}
	nrows = proc_parse(buf, rows, why, sizeof(why));
	if (nrows < 0 || !proc_agrees(rows, nrows, i, &n, proc_visible(w, &n),
				      why, sizeof(why)))
		fz_fail(w->who, "%s: %s", PROC_EQ, why);
	else if (rows[0].uid || rows[0].gid || rows[0].mode != sh->def_mode)
		fz_fail(w->who, "%s: the default queue is %lu:%lu %04lo",
			PROC_EQ, rows[0].uid, rows[0].gid, rows[0].mode);
}

/* Zero-extended output of a GET: fields filled, tail zero. */
static void check_get_output(struct worker *w, enum ioc_kind k,
			     const uint8_t *buf, unsigned int usize)
{
	unsigned int ksize = k == IOC_STATS ? sizeof(struct elasticq_stats) :
			     sizeof(struct elasticq_config);
	unsigned int i;
	uint32_t size, flags;

	memcpy(&size, buf, 4);
	memcpy(&flags, buf + 4, 4);
	if (size != (usize < ksize ? usize : ksize) || flags)
		fz_fail(w->who, "%s: size %u flags %u in the output", w->ctx,
			size, flags);
	for (i = ksize; i < usize; i++)
		if (buf[i]) {
			fz_fail(w->who, "%s: byte %u beyond the struct is %#x",
				w->ctx, i, buf[i]);
			break;
		}
	if (k == IOC_STATS) {
		struct elasticq_stats st;

		memcpy(&st, buf, sizeof(st));
		if (st.len > st.capacity || st.capacity == 0 ||
		    st.capacity > ELASTICQ_CAPACITY_LIMIT ||
		    st.enqueued - st.dequeued - st.dropped != st.len ||
		    st.high_water < st.len ||
		    st.mem_bytes < st.capacity * 8 + st.bytes ||
		    st.reserved[0] || st.reserved[1] || st.reserved[2] ||
		    st.reserved[3] || st.producers > 1000 ||
		    st.consumers > 1000)
			fz_fail(w->who, "%s: inconsistent stats: len %llu cap %llu "
				"bytes %llu mem %llu hw %llu enq %llu deq %llu "
				"drop %llu prod %u cons %u", w->ctx,
				(unsigned long long)st.len,
				(unsigned long long)st.capacity,
				(unsigned long long)st.bytes,
				(unsigned long long)st.mem_bytes,
				(unsigned long long)st.high_water,
				(unsigned long long)st.enqueued,
				(unsigned long long)st.dequeued,
				(unsigned long long)st.dropped,
				st.producers, st.consumers);
	} else {
		struct elasticq_config c;

		memcpy(&c, buf, sizeof(c));
		c.size = 0;
		if (!cfg_valid(&c))
			fz_fail(w->who, "%s: GET_CONFIG returned an invalid config "
				"(min %u max %u initial %u growth %u shrink %u "
				"msg %u bytes %llu policy %u)", w->ctx,
				c.min_capacity, c.max_capacity,
				c.initial_capacity, c.growth_pct, c.shrink_pct,
				c.max_msg_size, (unsigned long long)c.max_bytes,
				c.full_policy);
	}
}

/*
 * One ioctl on one of the worker's files: @cmd, the argument of pointer
 * kind @kind; for a real command the struct is (mostly) well formed.
 */
static void do_ioctl(struct worker *w, enum fz_op op, unsigned int cmd,
		     enum pk kind, const struct elasticq_config *set_cfg,
		     bool exact)
{
	static uint8_t view[_IOC_SIZEMASK + 1];
	enum ioc_kind k = ioc_which(cmd);
	unsigned int usize = _IOC_SIZE(cmd);
	struct fz_file f = pick_file(w);
	struct eset ok = { { 0 } };
	struct uptr u;
	size_t nview;
	long r, want = 0;
	char fb[64];

	u = mkptr(w, w->rz, usize, kind);
	/* The struct: a head (size, flags) and a body. */
	if (u.acc_w) {
		uint8_t tmp[_IOC_SIZEMASK + 1];
		uint32_t head[2] = { usize, 0 };

		memset(tmp, 0xaa, usize);
		if (k == IOC_SET && set_cfg) {
			memcpy(tmp, set_cfg, usize < sizeof(*set_cfg) ?
			       usize : sizeof(*set_cfg));
			if (usize > sizeof(*set_cfg)) {
				memset(tmp + sizeof(*set_cfg), 0,
				       usize - sizeof(*set_cfg));
				if (chance(&w->r, 4))
					tmp[sizeof(*set_cfg) +
					    below(&w->r, usize - sizeof(*set_cfg))] = 1;
			}
		}
		switch (exact ? 9 : below(&w->r, 10)) {
		case 0: head[0] = below(&w->r, 2) ? usize + 8 : usize - 8; break;
		case 1: head[1] = 1U << below(&w->r, 32); break;
		case 2: head[0] = rnd(&w->r); head[1] = rnd(&w->r); break;
		default: break;
		}
		memcpy(tmp, head, usize < 8 ? usize : 8);
		memcpy(u.p, tmp, u.acc_w < usize ? u.acc_w : usize);
	}
	nview = u.acc_r < usize ? u.acc_r : usize;
	if (nview)
		memcpy(view, u.p, nview);

	/* What it must give, from the uapi rules (see eq_ioctl.c's comments). */
	if (f.bad || f.path) {
		want = -EBADF;
	} else if (k == IOC_OTHER) {
		want = -ENOTTY;
	} else if (!fl_may(w, &f)) {
		want = -EACCES;		/* before looking at the argument */
	} else if (k == IOC_STATS || k == IOC_CONFIG) {
		unsigned int ver0 = k == IOC_STATS ? ELASTICQ_STATS_SIZE_VER0 :
				    ELASTICQ_CONFIG_SIZE_VER0;
		uint32_t head[2];

		if (usize < ver0)
			want = -EINVAL;
		else if (nview < 8)
			want = -EFAULT;
		else if (memcpy(head, view, 8), head[0] != usize || head[1])
			want = -EINVAL;
		else if (u.acc_w < usize)
			want = -EFAULT;
		else
			want = 0;
	} else if (!may_configure(w, &f, &ok)) {
		want = -EPERM;
	} else if (!(want = copyin_want(view, nview, usize,
					sizeof(struct elasticq_config),
					ELASTICQ_CONFIG_SIZE_VER0, &ok))) {
		struct elasticq_config c;

		memcpy(&c, view, sizeof(c));
		if (!cfg_valid(&c) || c.max_bytes > sh->max_queue_bytes) {
			want = -EINVAL;
		} else {
			es_add(&ok, EBUSY);
			es_add(&ok, ENOMEM);
			es_add(&ok, ENOBUFS);	/* a bigger ring over the limit */
			want = 0;	/* or one of the set */
			if (!sh->allow_drop &&
			    c.full_policy == ELASTICQ_FULL_DROP_OLDEST)
				fz_fail(w->who, "internal: drop-oldest too early");
		}
	}

	snprintf(w->ctx, sizeof(w->ctx), "ioctl(%#x: dir %u type %#x nr %#x size %u, %s %p)",
		 cmd, _IOC_DIR(cmd), _IOC_TYPE(cmd), _IOC_NR(cmd), usize,
		 pk_names[kind], u.p);
	r = ioctl(f.fd, cmd, u.p) ? -errno : 0;
	fz_count(op, r);
	if (r == want || (r < 0 && es_has(&ok, -r))) {
		if (r == 0 && (k == IOC_STATS || k == IOC_CONFIG))
			check_get_output(w, k, u.p, usize);
		return;
	}
	fz_fail(w->who, "%s on %s: %s, want %s", w->ctx,
		fl_str(&f, fb, sizeof(fb)), r ? strerror(-r) : "success",
		want == 1 ? "EFAULT or E2BIG" : want ? strerror(-want) :
		"success");
}

static void op_get(struct worker *w, bool stats)
{
	unsigned int exact = stats ? sizeof(struct elasticq_stats) :
			     sizeof(struct elasticq_config);
	unsigned int cmd = _IOC(_IOC_READ | _IOC_WRITE, ELASTICQ_IOC_MAGIC,
				stats ? 1 : 2, pick_ioc_size(&w->r, exact));

	do_ioctl(w, stats ? OP_GET_STATS : OP_GET_CONFIG, cmd, pick_pk(&w->r),
		 NULL, false);
}

static void op_set(struct worker *w, bool valid)
{
	struct elasticq_config c;
	unsigned int cmd;

	if (valid) {
		cfg_random_valid(&w->r, &c);
		if (!cfg_valid(&c))
			fz_fail(w->who, "internal: an invalid \"valid\" config");
		do_ioctl(w, OP_SET_VALID, ELASTICQ_IOC_SET_CONFIG, PK_VALID, &c,
			 true);
		return;
	}
	cfg_random(&w->r, &c);
	cmd = _IOC(_IOC_WRITE, ELASTICQ_IOC_MAGIC, 3,
		   pick_ioc_size(&w->r, sizeof(c)));
	if (chance(&w->r, 4))
		c.size = _IOC_SIZE(cmd);
	do_ioctl(w, OP_SET_CONFIG, cmd, pick_pk(&w->r), &c, false);
}

/* Any number under the magic 0xEA: most are unknown. */
static void op_ioc_ea(struct worker *w)
{
	unsigned int cmd = _IOC(below(&w->r, 4), ELASTICQ_IOC_MAGIC,
				chance(&w->r, 4) ? 1 + below(&w->r, 3) :
				below(&w->r, 256),
				below(&w->r, 10) < 7 ? below(&w->r, 512) :
				below(&w->r, _IOC_SIZEMASK + 1));
	struct elasticq_config c;

	switch (ioc_which(cmd)) {
	case IOC_OWNER:
		/*
		 * Not modelled: a root worker would give queues away at
		 * random.  users.c tests GET_OWNER and SET_OWNER.
		 */
		return;
	case IOC_ATTACH:
		ioc_attach(w, OP_IOC_EA, cmd, pick_file(w));
		return;
	case IOC_DESTROY:
		ioc_destroy(w, OP_IOC_EA, cmd);
		return;
	case IOC_CONSUME:
		ioc_consume(w, OP_IOC_EA, rnd(&w->r));
		return;
	case IOC_PUSH:
		ioc_push_batch(w, OP_IOC_EA, cmd);
		return;
	case IOC_POP:
		ioc_pop_batch(w, OP_IOC_EA, cmd);
		return;
	default:
		break;
	}
	cfg_random(&w->r, &c);
	do_ioctl(w, OP_IOC_EA, cmd, pick_pk(&w->r), &c, false);
}

/* Other magics, and random numbers: ENOTTY. */
static void op_ioc_other(struct worker *w)
{
	unsigned int cmd;

	do {
		if (chance(&w->r, 2))
			cmd = rnd(&w->r);
		else
			cmd = _IOC(below(&w->r, 4), below(&w->r, 256),
				   below(&w->r, 256), below(&w->r, 512));
	} while (vfs_magic(_IOC_TYPE(cmd)) ||
		 _IOC_TYPE(cmd) == ELASTICQ_IOC_MAGIC);
	do_ioctl(w, OP_IOC_OTHER, cmd, pick_pk(&w->r), NULL, false);
}

/* ---- poll and epoll ---- */

#define OUR_EVENTS	(POLLIN | POLLRDNORM | POLLOUT | POLLWRNORM)

static void op_poll(struct worker *w)
{
	struct pollfd *p = (struct pollfd *)(w->rz + below(&w->r, 1000) * 8);
	unsigned int n = 1 + below(&w->r, 3), i;
	struct fz_file fs[3];
	enum pk kind = PK_VALID;
	nfds_t nfds = n;
	long r, want_min = 0;
	int timeout = below(&w->r, 3) ? 0 : below(&w->r, 5);

	for (i = 0; i < n; i++) {
		fs[i] = chance(&w->r, 5) ?
			(struct fz_file){ .fd = 950 + i, .bad = true } :
			pick_file(w);
		if (chance(&w->r, 10))
			fs[i].fd = -1;	/* ignored */
		p[i].fd = fs[i].fd;
		p[i].events = chance(&w->r, 2) ? (short)rnd(&w->r) :
			      (short)(POLLIN | POLLOUT);
		p[i].revents = (short)0xdead;
	}
	switch (below(&w->r, 12)) {
	case 0: kind = PK_NULL; break;
	case 1: kind = PK_KERNEL; break;
	case 2: kind = PK_RO; break;
	case 3: nfds = 1U << 30; break;
	default: break;
	}
	snprintf(w->ctx, sizeof(w->ctx), "poll(%u fds, %s, %d ms)", n,
		 nfds != n ? "nfds 2^30" : pk_names[kind], timeout);
	/* Raw syscalls: the libc prototype does not allow bad pointers. */
	if (kind == PK_NULL)
		r = syscall(SYS_poll, NULL, nfds, timeout);
	else if (kind == PK_KERNEL)
		r = syscall(SYS_poll, 0xffff888000000000ULL, nfds, timeout);
	else if (kind == PK_RO)
		r = syscall(SYS_poll, w->ro, nfds, timeout);
	else
		r = syscall(SYS_poll, p, nfds, timeout);
	r = r < 0 ? -errno : r;
	fz_count(OP_POLL, r);
	if (nfds != n) {
		if (r != -EINVAL)
			fz_fail(w->who, "%s: %ld, want EINVAL", w->ctx, r);
		return;
	}
	if (kind != PK_VALID) {
		/* Read-only: it reads them but cannot write revents back. */
		if (r != -EFAULT && !(kind == PK_RO && r == 0))
			fz_fail(w->who, "%s: %ld, want EFAULT", w->ctx, r);
		return;
	}
	if (r < 0) {
		if (r != -EINTR && r != -ENOMEM)
			fz_fail(w->who, "%s: %s", w->ctx, strerror(-r));
		return;
	}
	for (i = 0; i < n; i++) {
		short ev = p[i].events, re = p[i].revents;

		if (re)
			want_min++;
		if (fs[i].fd < 0) {
			if (re)
				fz_fail(w->who, "%s: fd -1 got revents %#x",
					w->ctx, re);
		} else if (fs[i].bad || fs[i].path) {
			if (re != POLLNVAL)
				fz_fail(w->who, "%s: bad fd got revents %#x",
					w->ctx, re);
		} else if (!fl_may(w, &fs[i])) {
			if (re != POLLERR)
				fz_fail(w->who, "%s: a file without access got revents %#x",
					w->ctx, re);
		} else if (re & ~(ev & OUR_EVENTS)) {
			fz_fail(w->who, "%s: revents %#x for events %#x",
				w->ctx, (unsigned short)re, (unsigned short)ev);
		}
	}
	if (r != want_min)
		fz_fail(w->who, "%s: returned %ld, %ld entries have revents",
			w->ctx, r, want_min);
}

#define EP_TAG 0xe1a5000ULL

static void op_epoll_ctl(struct worker *w)
{
	static const uint32_t bits[] = { EPOLLIN, EPOLLOUT, EPOLLRDNORM,
					 EPOLLWRNORM, EPOLLET, EPOLLONESHOT,
					 EPOLLPRI, EPOLLRDHUP, EPOLLEXCLUSIVE,
					 EPOLLWAKEUP, EPOLLERR };
	unsigned int slot = below(&w->r, FUZZ_FDS), i;
	struct fz_file f = w->f[slot];
	struct epoll_event *ev = (struct epoll_event *)w->rz;
	int op = (int[]){ EPOLL_CTL_ADD, EPOLL_CTL_MOD, EPOLL_CTL_DEL,
			  EPOLL_CTL_ADD, 7 }[below(&w->r, 5)];
	bool bad_ptr = chance(&w->r, 10);
	long r;

	if (chance(&w->r, 16)) {
		f.fd = 960;
		f.bad = true;
	}
	ev->events = 0;
	for (i = 0; i < sizeof(bits) / sizeof(bits[0]); i++)
		if (chance(&w->r, 3))
			ev->events |= bits[i];
	ev->data.u64 = EP_TAG + slot;
	snprintf(w->ctx, sizeof(w->ctx), "epoll_ctl(%d, fd %d, %#x%s)", op,
		 f.fd, ev->events, bad_ptr ? ", kernel pointer" : "");
	r = epoll_ctl(w->epfd, op, f.fd,
		      bad_ptr ? (struct epoll_event *)0xffff888000000000ULL : ev);
	r = r < 0 ? -errno : r;
	fz_count(OP_EPOLL_CTL, r);
	if (r == 0 || r == -EBADF || r == -EEXIST || r == -ENOENT ||
	    r == -EINVAL || r == -ENOMEM || r == -ENOSPC ||
	    (r == -EFAULT && bad_ptr && op != EPOLL_CTL_DEL))
		return;
	fz_fail(w->who, "%s: %s", w->ctx, strerror(-r));
}

static void op_epoll_wait(struct worker *w)
{
	struct epoll_event *ev = (struct epoll_event *)(w->rz + 4096);
	int max = (int[]){ 1, 2, 8, 8, 0, -1, 1 << 30 }[below(&w->r, 7)];
	int kind = below(&w->r, 8), i;
	void *p = ev;
	long r;

	if (kind == 0)
		p = (void *)0xffff888000000000ULL;
	else if (kind == 1)
		p = w->ro;
	snprintf(w->ctx, sizeof(w->ctx), "epoll_wait(max %d, %s)", max,
		 kind == 0 ? "kernel" : kind == 1 ? "read-only" : "valid");
	r = epoll_wait(w->epfd, p, max, below(&w->r, 3));
	r = r < 0 ? -errno : r;
	fz_count(OP_EPOLL_WAIT, r);
	if (max <= 0 || max > (int)(INT32_MAX / sizeof(*ev))) {
		if (r != -EINVAL)
			fz_fail(w->who, "%s: %ld, want EINVAL", w->ctx, r);
		return;
	}
	if (kind <= 1) {
		if (r != -EFAULT && !(kind == 1 && r == 0))
			fz_fail(w->who, "%s: %ld, want EFAULT", w->ctx, r);
		return;
	}
	if (r < 0) {
		if (r != -EINTR)
			fz_fail(w->who, "%s: %s", w->ctx, strerror(-r));
		return;
	}
	if (r > max)
		fz_fail(w->who, "%s: %ld events", w->ctx, r);
	for (i = 0; i < r && i < max; i++) {
		if ((ev[i].data.u64 & ~0xffULL) != EP_TAG ||
		    ev[i].events & ~(EPOLLIN | EPOLLOUT | EPOLLRDNORM |
				     EPOLLWRNORM | EPOLLERR | EPOLLHUP))
			fz_fail(w->who, "%s: event %#x data %#llx", w->ctx,
				ev[i].events,
				(unsigned long long)ev[i].data.u64);
	}
}

/* ---- what a stream device without mmap must refuse ---- */

static void op_lseek(struct worker *w)
{
	struct fz_file f = pick_file(w);
	long r, want = f.bad || f.path ? -EBADF : -ESPIPE;

	r = lseek(f.fd, below(&w->r, 100), (int[]){ SEEK_SET, SEEK_CUR,
						    SEEK_END }[below(&w->r, 3)]);
	r = r < 0 ? -errno : r;
	fz_count(OP_LSEEK, r);
	if (r != want)
		fz_fail(w->who, "lseek on fd %d: %ld, want %ld", f.fd, r, want);
}

static void op_pread(struct worker *w)
{
	struct fz_file f = pick_file(w);
	long pos = chance(&w->r, 8) ? -1 : (long)below(&w->r, 100);
	long r, want = pos < 0 ? -EINVAL : f.bad || f.path ? -EBADF :
		       -ESPIPE;

	if (chance(&w->r, 2))
		r = pread(f.fd, w->rz, 64, pos);
	else
		r = pwrite(f.fd, w->wz, 64, pos);
	r = r < 0 ? -errno : r;
	fz_count(OP_PREAD, r);
	if (r != want)
		fz_fail(w->who, "pread/pwrite on fd %d at %ld: %ld, want %ld",
			f.fd, pos, r, want);
}

static void op_mmap(struct worker *w)
{
	struct fz_file f = pick_file(w);
	int prot = (int[]){ PROT_READ, PROT_WRITE, PROT_READ | PROT_WRITE,
			    PROT_NONE }[below(&w->r, 4)];
	int flags = chance(&w->r, 2) ? MAP_SHARED : MAP_PRIVATE;
	void *p = mmap(NULL, PAGE, prot, flags, f.fd, 0);
	long r = p == MAP_FAILED ? -errno : 0;

	fz_count(OP_MMAP, r);
	if (!r) {
		munmap(p, PAGE);
		fz_fail(w->who, "mmap of fd %d succeeded", f.fd);
	} else if (f.bad || f.path ? r != -EBADF :
		   r != -ENODEV && r != -EACCES) {
		fz_fail(w->who, "mmap of fd %d: %s", f.fd, strerror(-r));
	}
}

/* ---- the worker process ---- */

static void *map_guarded(size_t size, int prot)
{
	uint8_t *p = mmap(NULL, size + PAGE, PROT_READ | PROT_WRITE,
			  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED || mprotect(p + size, PAGE, PROT_NONE) ||
	    (prot != (PROT_READ | PROT_WRITE) && mprotect(p, size, prot)))
		return NULL;
	return p;
}

static bool worker_setup(struct worker *w)
{
	struct sigaction sa = { .sa_handler = on_alarm };
	size_t i;
	uint8_t *ro;

	/* No SA_RESTART: a blocking call ends with EINTR. */
	if (sigaction(SIGALRM, &sa, NULL))
		return false;
	w->rz = map_guarded(ZONE_SIZE, PROT_READ | PROT_WRITE);
	w->wz = map_guarded(ZONE_SIZE, PROT_READ | PROT_WRITE);
	w->iovz = map_guarded(IOVZ_SIZE, PROT_READ | PROT_WRITE);
	ro = map_guarded(2 * PAGE, PROT_READ | PROT_WRITE);
	w->none = mmap(NULL, PAGE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	w->hole = mmap(NULL, PAGE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (!w->rz || !w->wz || !w->iovz || !ro || w->none == MAP_FAILED ||
	    w->hole == MAP_FAILED || munmap(w->hole, PAGE))
		return false;
	for (i = 0; i < ZONE_SIZE; i += 8) {
		uint64_t x = rnd(&w->r);

		memcpy(w->wz + i, &x, 8);
	}
	/* Read-only: heads of both GET structs, and a valid config. */
	memset(ro, 0, 2 * PAGE);
	((uint32_t *)ro)[0] = sizeof(struct elasticq_stats);
	((uint32_t *)(ro + 64))[0] = sizeof(struct elasticq_config);
	eq_load_config(&w->ro_cfg);
	if (w->ro_cfg.full_policy == ELASTICQ_FULL_DROP_OLDEST)
		w->ro_cfg.full_policy = ELASTICQ_FULL_REJECT;
	w->ro_cfg.pop_timeout_ns = 50 * EQ_MS;
	memcpy(ro + 128, &w->ro_cfg, sizeof(w->ro_cfg));
	((uint32_t *)(ro + 2 * PAGE - 8))[0] = sizeof(struct elasticq_config);
	if (mprotect(ro, 2 * PAGE, PROT_READ))
		return false;
	w->ro = ro;
	/* Only 5-level paging maps anything at or above 2^47. */
	ro = mmap((void *)(1ULL << 47), PAGE, PROT_NONE,
		  MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
	la57 = ro != MAP_FAILED;
	if (la57)
		munmap(ro, PAGE);
	w->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (w->epfd < 0)
		return false;
	if (!w->root && geteuid() == 0 &&
	    (setgroups(0, NULL) || setgid(65534) || setuid(65534)))
		return false;
	for (i = 0; i < FUZZ_FDS; i++) {
		int fl = i == 2 ? O_RDWR : O_RDWR | O_NONBLOCK;

		w->f[i].fd = open(EQ_DEV, fl | O_CLOEXEC);
		if (w->f[i].fd < 0)
			return false;
		w->f[i].flags = fl;
		w->f[i].rd = w->f[i].wr = true;
		w->f[i].nb = fl & O_NONBLOCK;
		fl_fresh(w, &w->f[i]);
	}
	w->uid = geteuid();
	w->gid = getegid();
	return true;
}

static void wop_writev(struct worker *w) { op_writev(w, false); }
static void wop_pwritev2(struct worker *w) { op_writev(w, true); }
static void wop_readv(struct worker *w) { op_readv(w, false); }
static void wop_preadv2(struct worker *w) { op_readv(w, true); }
static void wop_get_stats(struct worker *w) { op_get(w, true); }
static void wop_get_config(struct worker *w) { op_get(w, false); }
static void wop_set(struct worker *w) { op_set(w, false); }
static void wop_set_valid(struct worker *w) { op_set(w, true); }

static const struct {
	void (*fn)(struct worker *w);
	unsigned int weight;
} op_table[] = {
	{ op_write, 14 }, { wop_writev, 6 }, { wop_pwritev2, 3 },
	{ op_read, 14 }, { wop_readv, 6 }, { wop_preadv2, 3 },
	{ wop_get_stats, 6 }, { wop_get_config, 4 }, { wop_set, 5 },
	{ wop_set_valid, 2 }, { op_ioc_ea, 4 }, { op_ioc_other, 3 },
	{ op_poll, 4 }, { op_epoll_ctl, 2 }, { op_epoll_wait, 2 },
	{ op_open, 4 }, { op_close, 2 }, { op_fcntl, 2 }, { op_lseek, 1 },
	{ op_pread, 1 }, { op_mmap, 1 }, { op_attach, 6 }, { op_destroy, 3 },
	{ op_consume, 2 }, { op_push_batch, 6 }, { op_pop_batch, 6 },
	{ op_proc, 1 },
};

static void worker(int id, bool root)
{
	struct worker *w = calloc(1, sizeof(*w));
	unsigned int total = 0, i, x;

	if (!w)
		_exit(2);
	w->id = id;
	w->root = root;
	w->r.s = sh->seed ^ (0x1000193ULL * (id + 1));
	snprintf(w->who, sizeof(w->who), "worker %d%s", id,
		 root ? "" : " (unprivileged)");
	w->rd.who = w->who;
	w->rd.strict_max = -1;
	if (!worker_setup(w)) {
		fz_fail(w->who, "setup failed: %s", strerror(errno));
		_exit(3);
	}
	for (i = 0; i < sizeof(op_table) / sizeof(op_table[0]); i++)
		total += op_table[i].weight;
	while (!sh->stop) {
		x = below(&w->r, total);
		for (i = 0; x >= op_table[i].weight; i++)
			x -= op_table[i].weight;
		op_table[i].fn(w);
		w->n++;
		if (!(w->n & 63))
			sh->ops[id] = w->n;
	}
	sh->ops[id] = w->n;
	_exit(0);
}

/* ---- the verifier ---- */

static void producer(void)
{
	static uint8_t buf[256];
	uint32_t seq = 0;
	long r;
	int fd;

	fd = open(EQ_DEV, O_WRONLY | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0) {
		fz_fail("verifier producer", "open: %s", strerror(errno));
		_exit(3);
	}
	while (!sh->stop_producer && seq < FUZZ_MAX_VSEQ) {
		size_t len;

		/* Stay a little ahead of the readers, not a queue-full ahead. */
		if (seq - __atomic_load_n(&sh->seen_total, __ATOMIC_RELAXED) > 20000) {
			usleep(500);
			continue;
		}
		len = v_make(buf, seq);
		r = write(fd, buf, len);
		r = r < 0 ? -errno : r;
		fz_count(OP_V_WRITE, r);
		if (r == (long)len) {
			seq++;
			__atomic_store_n(&sh->sent, seq, __ATOMIC_SEQ_CST);
			sh->ops[FUZZ_WORKERS]++;
		} else if (r == -EAGAIN || r == -EMSGSIZE || r == -ENOMEM ||
			   r == -ENOBUFS) {
			/*
			 * Full, a fuzzer's small config, or named queues hold
			 * max_total_bytes: the same one again.
			 */
			usleep(200);
		} else {
			fz_fail("verifier producer", "write of %zu bytes: %ld",
				len, r);
			usleep(1000);
		}
	}
	close(fd);
	_exit(0);
}

static void consumer(void)
{
	static uint8_t buf[MSG_LIMIT + 64];
	struct reader rd = { .who = "verifier consumer", .strict_max = -1 };
	uint64_t next_pause = eq_now_ns() + 500 * EQ_MS;
	struct overlap ov;
	bool over;
	long r;
	int fd;

	fd = open(EQ_DEV, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0) {
		fz_fail(rd.who, "open: %s", strerror(errno));
		_exit(3);
	}
	while (!sh->stop) {
		/*
		 * Now and then stop reading for a while, so that the queue
		 * fills up: grows, full queues, blocked and dropping writers.
		 */
		if (eq_now_ns() > next_pause &&
		    (!sh->stop_producer || sh->allow_drop)) {
			eq_sleep_ms(eq_now_ns() / 1000 % 400);
			next_pause = eq_now_ns() + 500 * EQ_MS;
		}
		ov_begin(&ov, false);
		r = read(fd, buf, sizeof(buf));
		r = r < 0 ? -errno : r;
		over = ov_end(&ov);
		fz_count(OP_V_READ, r);
		if (r >= 0) {
			v_seen(&rd, buf, r, over);
			memset(buf, 0, 16);
			sh->ops[FUZZ_WORKERS + 1]++;
		} else if (r == -EAGAIN) {
			struct pollfd p = { .fd = fd, .events = POLLIN };

			poll(&p, 1, 5);
		} else {
			fz_fail(rd.who, "read: %s", strerror(-r));
			usleep(1000);
		}
	}
	close(fd);
	_exit(0);
}

/* ---- the tests ---- */

/* Taint flags that mean the kernel complained: M, B, D, W, L. */
#define TAINT_BAD	((1UL << 4) | (1UL << 5) | (1UL << 7) | (1UL << 9) | \
			 (1UL << 14))

static unsigned long taint_at_start;
static long debug_locks_at_start = -1;

static unsigned long kernel_taint(void)
{
	char buf[64] = "";
	int fd = open("/proc/sys/kernel/tainted", O_RDONLY | O_CLOEXEC);

	if (fd >= 0) {
		if (read(fd, buf, sizeof(buf) - 1) < 0)
			buf[0] = '\0';
		close(fd);
	}
	return strtoul(buf, NULL, 10);
}

/* lockdep's debug_locks: 1 until it reported something; -1: no lockdep. */
static long lockdep_debug_locks(void)
{
	char line[256];
	long v = -1;
	FILE *f = fopen("/proc/lockdep_stats", "re");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, " debug_locks: %ld", &v) == 1)
			break;
	fclose(f);
	return v;
}

static void __attribute__((constructor)) fz_health_baseline(void)
{
	taint_at_start = kernel_taint();
	debug_locks_at_start = lockdep_debug_locks();
}

/* No new WARN/BUG/KASAN taint since the program started; lockdep still on. */
static void check_kernel_health(struct __test_metadata *_metadata)
{
	unsigned long now = kernel_taint();
	unsigned long fresh = now & ~taint_at_start & TAINT_BAD;

	EXPECT_EQ(0, fresh) {
		TH_LOG("kernel newly tainted %#lx (was %#lx): %s%s%s%s%s"
		       "see the kernel log", now, taint_at_start,
		       fresh & (1UL << 4) ? "M machine check, " : "",
		       fresh & (1UL << 5) ? "B bad page or KASAN, " : "",
		       fresh & (1UL << 7) ? "D oops, " : "",
		       fresh & (1UL << 9) ? "W warning, " : "",
		       fresh & (1UL << 14) ? "L soft lockup, " : "");
	}
	if (debug_locks_at_start == 1)
		EXPECT_EQ(1, lockdep_debug_locks()) {
			TH_LOG("lockdep turned itself off: it reported something");
		}
}

static uint64_t fuzz_seed(void)
{
	const char *s = getenv("ELASTICQ_FUZZ_SEED");

	if (s && *s)
		return strtoull(s, NULL, 0);
	return eq_now_ns() ^ ((uint64_t)getpid() << 40) ^ (uint64_t)time(NULL);
}

static unsigned int fuzz_seconds(void)
{
	const char *s = getenv("ELASTICQ_FUZZ_SECONDS");
	unsigned long v = s && *s ? strtoul(s, NULL, 0) : FUZZ_DEF_SECONDS;

	return v ? v : 1;
}

/*
 * What the kernel's allocator holds for a kvmalloc() of @size bytes on
 * x86_64 (SLUB, 4 KiB pages), as the queue counts it in mem_bytes: the
 * kmalloc size class up to 8 KiB, pages of the next power-of-two order up
 * to 4 MiB, whole pages (vmalloc) past that.
 */
static uint64_t kv_size(uint64_t size)
{
	uint64_t c;

	if (size > (4u << 20))
		return (size + 4095) & ~4095ull;
	if (size > 64 && size <= 96)
		return 96;
	if (size > 128 && size <= 192)
		return 192;
	for (c = 8; c < size; c *= 2)
		;
	return c;
}

/* Wait for @pid until @deadline_ns; kill it after that.  Exit status or -1. */
static int wait_until(pid_t pid, uint64_t deadline_ns, const char *what,
		      struct __test_metadata *_metadata)
{
	char wchan[128];
	int status;
	pid_t r;

	for (;;) {
		r = waitpid(pid, &status, WNOHANG);
		if (r == pid)
			return WIFEXITED(status) ? WEXITSTATUS(status) :
			       1000 + WTERMSIG(status);
		if (r < 0 && errno != EINTR)
			return -1;
		if (eq_now_ns() > deadline_ns)
			break;
		eq_sleep_ms(10);
	}
	eq_proc_wchan(pid, wchan, sizeof(wchan));
	TH_LOG("%s (pid %d) did not finish: state %c in %s; killed", what, pid,
	       eq_proc_state(pid), wchan);
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	return -1;
}

static void print_table(void)
{
	unsigned int op, e;

	printf("# %-18s %9s %9s  errors\n", "operation", "calls", "ok");
	for (op = 0; op < NR_OPS; op++) {
		uint64_t total = 0;
		char line[1024];
		int n = 0;

		for (e = 0; e < NR_ERR; e++)
			total += sh->cnt[op][e];
		if (!total)
			continue;
		line[0] = '\0';
		for (e = 1; e < NR_ERR && n < (int)sizeof(line) - 40; e++) {
			const char *name = e < NR_ERR - 1 ? strerrorname_np(e) :
					   "other";

			if (sh->cnt[op][e])
				n += snprintf(line + n, sizeof(line) - n,
					      " %s %llu", name ? name : "?",
					      (unsigned long long)sh->cnt[op][e]);
		}
		printf("# %-18s %9llu %9llu %s\n", op_names[op],
		       (unsigned long long)total,
		       (unsigned long long)sh->cnt[op][0], line);
	}
	fflush(stdout);
}

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

/* Change max_queues; the workers see a changing limit while it is odd. */
static int set_max_queues(unsigned int v)
{
	int ret;

	__atomic_add_fetch(&sh->maxq_gen, 1, __ATOMIC_SEQ_CST);
	ret = eq_write_param("max_queues", v);
	if (!ret)
		__atomic_store_n(&sh->maxq, v, __ATOMIC_SEQ_CST);
	__atomic_add_fetch(&sh->maxq_gen, 1, __ATOMIC_SEQ_CST);
	return ret;
}

/*
 * The named queues in /proc/elasticq: with @check, those of fz_names are
 * the ones the workers' record says, as it says, and have no roles left
 * and counters that add up; then every "fz." one is destroyed and the
 * table lists none.  Returns the other named queues, or -1.
 */
static int named_cleanup(struct __test_metadata *_metadata, bool check)
{
	static char buf[PROC_ROWS * 256];
	static struct proc_row rows[PROC_ROWS];
	int nrows, i, others = 0;
	char why[200];

	EXPECT_LE(0, proc_read(buf, sizeof(buf)));
	nrows = proc_parse(buf, rows, why, sizeof(why));
	EXPECT_LE(0, nrows) {
		TH_LOG("%s: %s", PROC_EQ, why);
		return -1;
	}
	for (i = 0; check && i < FZ_NAMES; i++) {
		const struct proc_row *p = proc_find(rows, nrows, fz_names[i]);
		struct elasticq_stats st;
		int fd;

		EXPECT_TRUE(proc_agrees(rows, nrows, i, &sh->names[i], true, why,
					sizeof(why))) {
			TH_LOG("%s", why);
		}
		if (!p)
			continue;
		fd = eq_open_named(fz_names[i], O_RDONLY, 0, 0, NULL);
		EXPECT_LE(0, fd);
		if (fd < 0)
			continue;
		EXPECT_EQ(0, eq_get_stats(fd, &st));
		EXPECT_EQ(st.len, st.enqueued - st.dequeued - st.dropped);
		EXPECT_EQ(0, st.producers);
		EXPECT_EQ(0, st.consumers) {
			TH_LOG("%s: %u consumers", fz_names[i], st.consumers);
		}
		close(fd);
	}
	for (i = 1; i < nrows; i++) {
		if (strncmp(rows[i].name, "fz.", 3)) {
			others++;
			continue;
		}
		EXPECT_EQ(0, eq_destroy(rows[i].name)) {
			TH_LOG("DESTROY %s", rows[i].name);
		}
	}
	EXPECT_LE(0, proc_read(buf, sizeof(buf)));
	nrows = proc_parse(buf, rows, why, sizeof(why));
	EXPECT_LE(0, nrows) {
		TH_LOG("%s: %s", PROC_EQ, why);
		return -1;
	}
	for (i = 1; i < nrows; i++)
		EXPECT_NE(0, strncmp(rows[i].name, "fz.", 3)) {
			TH_LOG("%s still listed after DESTROY", rows[i].name);
		}
	return others;
}

/*
 * The fuzzer and the verifier.  Phase 1 (three quarters of the time): the
 * workers, the producer and the consumer.  Then the producer stops and the
 * readers account for all its messages; phase 2: drop-oldest allowed.
 */
TEST_F_TIMEOUT(eq, fuzz, 900)
{
	uint64_t seed = fuzz_seed(), t0, t1, sent, dup = 0, lost = 0, ghost = 0;
	unsigned int secs = fuzz_seconds(), i;
	const char *ko = getenv("ELASTICQ_KO");
	struct elasticq_config cfg;
	struct elasticq_stats st;
	uint64_t first_lost = 0, first_dup = 0, first_ghost = 0;
	unsigned long long maxq0, qbytes;
	struct stat dst;
	int st_exit, others;
	long n;

	printf("# fuzz: seed %#llx (set ELASTICQ_FUZZ_SEED to repeat), %u s "
	       "(ELASTICQ_FUZZ_SECONDS), %d workers\n",
	       (unsigned long long)seed, secs, FUZZ_WORKERS);
	fflush(stdout);
	sh = eq_shared_alloc(sizeof(*sh));
	ASSERT_NE(NULL, sh);
	sh->seed = seed;

	/* Named queues: none of ours left over, the limits as loaded. */
	ASSERT_TRUE(eq_read_param("max_queues", &maxq0));
	ASSERT_TRUE(eq_read_param("max_queue_bytes", &qbytes));
	ASSERT_EQ(0, stat(EQ_DEV, &dst));
	EXPECT_EQ(0666, dst.st_mode & 0777);
	sh->def_mode = EQ_DEF_MODE;
	sh->maxq = maxq0;
	sh->max_queue_bytes = qbytes;
	others = named_cleanup(_metadata, false);
	ASSERT_LE(0, others);
	sh->maxq_safe = FZ_NAMES + FUZZ_WORKERS * FUZZ_FDS + others;
	ASSERT_LE(sh->maxq_safe, maxq0);

	/* Start from the load-time config, without drop-oldest. */
	ASSERT_EQ(0, eq_get_config(self->fd, &cfg));
	if (cfg.full_policy == ELASTICQ_FULL_DROP_OLDEST) {
		cfg.full_policy = ELASTICQ_FULL_REJECT;
		ASSERT_EQ(0, eq_set_config(self->fd, &cfg));
	}

	fflush(stdout);
	fflush(stderr);
	for (i = 0; i < FUZZ_WORKERS + 2; i++) {
		pid_t pid = fork();

		ASSERT_LE(0, pid);
		if (pid == 0) {
			close(self->fd);
			if (i == 0)
				consumer();
			else if (i == 1)
				producer();
			else
				worker(i - 2, geteuid() == 0 &&
					      i - 2 != FUZZ_WORKERS - 1);
			_exit(0);
		}
		self->child[i] = pid;
	}

	/* From 30 to 45 % of phase 1 no queue can be created, then two. */
	t0 = eq_now_ns();
	while (eq_now_ns() < t0 + secs * 750ULL * EQ_MS && !sh->nfail) {
		uint64_t pct = (eq_now_ns() - t0) / (secs * 7500ULL * EQ_MS / 1000);
		unsigned int lim = pct >= 30 && pct < 45 ? 0 :
				   pct >= 45 && pct < 60 ? 2 : maxq0;

		if (lim != sh->maxq && set_max_queues(lim))
			break;
		eq_sleep_ms(50);
	}
	EXPECT_EQ(0, set_max_queues(maxq0));
	sh->stop_producer = 1;
	st_exit = wait_until(self->child[1], eq_now_ns() + 30000 * EQ_MS,
			     "verifier producer", _metadata);
	self->child[1] = 0;
	EXPECT_EQ(0, st_exit);
	/* Every accepted verifier message gets read (by someone). */
	sent = __atomic_load_n(&sh->sent, __ATOMIC_SEQ_CST);
	while (__atomic_load_n(&sh->seen_total, __ATOMIC_SEQ_CST) < sent &&
	       eq_now_ns() < t0 + (secs + 60) * 1000ULL * EQ_MS && !sh->nfail)
		eq_sleep_ms(10);
	/* (Not if a failure cut it short: the failure says it all.) */
	if (!sh->nfail) {
		EXPECT_EQ(sent, sh->seen_total) {
			TH_LOG("after the producer stopped, %llu of %llu "
			       "verifier messages came out",
			       (unsigned long long)sh->seen_total,
			       (unsigned long long)sent);
		}
	}
	TH_LOG("phase 1 (verifier): %.1f s, %llu verifier messages",
	       (eq_now_ns() - t0) / 1e9, (unsigned long long)sent);

	/* Phase 2: drop-oldest configs too; a quarter of the time at least. */
	sh->allow_drop = 1;
	t1 = eq_now_ns() + secs * 250ULL * EQ_MS;
	if (t1 < t0 + secs * 1000ULL * EQ_MS)
		t1 = t0 + secs * 1000ULL * EQ_MS;
	while (eq_now_ns() < t1 && !sh->nfail)
		eq_sleep_ms(50);
	/* Module unload while files are open: refused, nothing breaks. */
	if (ko && *ko)
		EXPECT_EQ(-EAGAIN, unload_module());
	sh->stop = 1;
	for (i = 0; i < FUZZ_WORKERS + 2; i++) {
		if (!self->child[i])
			continue;
		st_exit = wait_until(self->child[i],
				     eq_now_ns() + 30000 * EQ_MS,
				     i ? "fuzz worker" : "verifier consumer",
				     _metadata);
		self->child[i] = 0;
		EXPECT_EQ(0, st_exit) {
			TH_LOG("process %u exited with %d", i, st_exit);
		}
	}
	TH_LOG("%.1f s; operations per worker: %llu %llu %llu; verifier: "
	       "%llu sent, %llu read by the consumer",
	       (eq_now_ns() - t0) / 1e9, (unsigned long long)sh->ops[0],
	       (unsigned long long)sh->ops[1], (unsigned long long)sh->ops[2],
	       (unsigned long long)sent,
	       (unsigned long long)sh->ops[FUZZ_WORKERS + 1]);
	print_table();

	/* The counters add up and no file keeps a role. */
	ASSERT_EQ(0, eq_get_stats(self->fd, &st));
	EXPECT_EQ(st.len, st.enqueued - st.dequeued - st.dropped);
	EXPECT_EQ(0, st.producers);
	EXPECT_EQ(0, st.consumers);
	TH_LOG("queue: len %llu, capacity %llu, enqueued %llu, dequeued %llu, "
	       "dropped %llu, rejected %llu, grows %llu, shrinks %llu, "
	       "high water %llu",
	       (unsigned long long)st.len, (unsigned long long)st.capacity,
	       (unsigned long long)st.enqueued, (unsigned long long)st.dequeued,
	       (unsigned long long)st.dropped, (unsigned long long)st.rejected,
	       (unsigned long long)st.grows, (unsigned long long)st.shrinks,
	       (unsigned long long)st.high_water);

	/* Drain what is left, as one more reader of verifier messages. */
	{
		static uint8_t buf[MSG_LIMIT + 64];
		struct reader rd = { .who = "final drain", .strict_max = -1 };
		uint64_t drained = 0;
		int fd = eq_open(O_NONBLOCK);

		ASSERT_LE(0, fd);
		while ((n = eq_pop(fd, buf, sizeof(buf))) >= 0) {
			v_seen(&rd, buf, n, false);
			drained++;
		}
		EXPECT_EQ(-EAGAIN, n);
		close(fd);
		EXPECT_EQ(st.len, drained);
		TH_LOG("final drain: %llu messages, %llu from the verifier",
		       (unsigned long long)drained, (unsigned long long)rd.got);
	}
	ASSERT_EQ(0, eq_get_stats(self->fd, &st));
	EXPECT_EQ(0, st.len);
	EXPECT_EQ(0, st.bytes);
	EXPECT_EQ(kv_size(st.capacity * 8), st.mem_bytes);
	EXPECT_EQ(st.len, st.enqueued - st.dequeued - st.dropped);

	EXPECT_EQ(0, sh->nfail) {
		for (i = 0; i < sh->nfail && i < FUZZ_MAX_FAILS; i++)
			TH_LOG("%s", sh->fail[i]);
		TH_LOG("%llu failures; seed %#llx",
		       (unsigned long long)sh->nfail, (unsigned long long)seed);
	}

	/* Exactly once: every accepted message, and no refused one. */
	for (i = 0; i < FUZZ_MAX_VSEQ; i++) {
		if (i < sent && sh->seen[i] == 0 && !lost++)
			first_lost = i;
		if (i < sent && sh->seen[i] > 1 && !dup++)
			first_dup = i;
		if (i >= sent && sh->seen[i] && !ghost++)
			first_ghost = i;
	}
	EXPECT_EQ(0, lost) {
		TH_LOG("%llu verifier messages lost, the first %llu",
		       (unsigned long long)lost, (unsigned long long)first_lost);
	}
	EXPECT_EQ(0, dup) {
		TH_LOG("%llu verifier messages duplicated, the first %llu",
		       (unsigned long long)dup, (unsigned long long)first_dup);
	}
	EXPECT_EQ(0, ghost) {
		TH_LOG("%llu refused verifier writes were queued, the first %llu",
		       (unsigned long long)ghost, (unsigned long long)first_ghost);
	}
	/* The named queues are as the workers left them; destroy them. */
	EXPECT_EQ(others, named_cleanup(_metadata, true));
	EXPECT_TRUE(eq_read_param("max_queues", &maxq0));
	EXPECT_EQ(sh->maxq, maxq0);
	ASSERT_EQ(0, eq_reset());
	check_kernel_health(_metadata);
	munmap(sh, sizeof(*sh));
	sh = NULL;
}

/* Let ELASTICQ_FUZZ_SECONDS stretch the harness timeout of the fuzz test. */
static void __attribute__((constructor)) fuzz_timeout(void)
{
	unsigned int secs = fuzz_seconds();

	if (secs + 300 > (unsigned int)_eq_fuzz_object.timeout)
		_eq_fuzz_object.timeout = secs + 300;
}

/* Then unload the module (it frees everything) and load it again. */
TEST_F_TIMEOUT(eq, module_unload_reload, 120)
{
	const char *ko = getenv("ELASTICQ_KO");
	const char *params = getenv("ELASTICQ_KO_PARAMS");
	struct elasticq_config want, cfg;
	struct elasticq_stats st;
	char buf[16];
	int tries, r;

	if (!ko || !*ko)
		SKIP(return, "ELASTICQ_KO is not set");
	close(self->fd);
	self->fd = -1;
	/* Files of processes that just exited may still be on their way. */
	for (tries = 0; (r = unload_module()) == -EAGAIN && tries < 100; tries++)
		eq_sleep_ms(100);
	ASSERT_EQ(0, r);
	ASSERT_FALSE(eq_module_loaded());
	ASSERT_NE(0, access(EQ_DEV, F_OK));
	ASSERT_EQ(0, load_module(ko, params ? params : ""));
	self->fd = eq_open(0);
	ASSERT_LE(0, self->fd);
	eq_load_config(&want);
	ASSERT_EQ(0, eq_get_config(self->fd, &cfg));
	EXPECT_EQ(0, memcmp(&want, &cfg, sizeof(cfg)));
	ASSERT_EQ(0, eq_get_stats(self->fd, &st));
	EXPECT_EQ(0, st.len);
	EXPECT_EQ(0, st.enqueued);
	EXPECT_EQ(want.initial_capacity, st.capacity);
	ASSERT_EQ(5, eq_push(self->fd, "hello", 5));
	ASSERT_EQ(5, eq_pop(self->fd, buf, sizeof(buf)));
	EXPECT_EQ(0, memcmp(buf, "hello", 5));
	check_kernel_health(_metadata);
}

TEST_HARNESS_MAIN
