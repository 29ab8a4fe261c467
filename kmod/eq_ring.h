/* SPDX-License-Identifier: GPL-2.0 OR MIT */
/*
 * The lock-based queue core: an elastic ring of message pointers.
 *
 * This file and eq_ring.c build both in the kernel and in userspace (over the
 * shim in selftests/core/shim), so that the grow/shrink rules and the
 * accounting run under ASan, UBSan and a fuzzer.  Nothing here sleeps except
 * in the allocator, and nothing here touches user memory.
 */
#ifndef _EQ_RING_H
#define _EQ_RING_H

#include <linux/atomic.h>
#include <linux/mutex.h>
#include <linux/types.h>
#include <linux/elasticq.h>

/**
 * struct eq_msg - one queued message
 * @len:	payload length in bytes
 * @flags:	reserved for per-message flags, zero today
 * @seq:	position in the queue's FIFO order (set by eq_ring_push())
 * @data:	the payload
 */
struct eq_msg {
	u32 len;
	u32 flags;
	u64 seq;
	u8 data[];
};

/**
 * struct eq_mem_budget - memory charged against a limit, in a hierarchy
 * @used:	bytes charged now: ring slot arrays plus queued messages
 * @limit:	most bytes that may be charged, or NULL for no limit of its
 *		own; the value may change at any time (a module parameter)
 *		and is read with READ_ONCE
 * @parent:	charged with every charge of this budget, or NULL
 * @over:	what a charge over @limit fails with (-ENOBUFS or -EDQUOT)
 * @exempt:	charges through this budget ignore the limits of the budgets
 *		above it, except the topmost one's (a queue created with
 *		CAP_SYS_RESOURCE: above its creator's limit, never above the
 *		module's)
 *
 * Charges and uncharges are atomic and need no lock; a charge that would
 * pass a limit fails with nothing charged anywhere.
 */
struct eq_mem_budget {
	atomic64_t used;
	const u64 *limit;
	struct eq_mem_budget *parent;
	int over;
	bool exempt;
};

/**
 * struct eq_ring - an elastic FIFO of messages
 *
 * @lock protects every other field.  Fields marked "lockless hint" are also
 * read without @lock (READ_ONCE) by wait conditions and poll, and therefore
 * written with WRITE_ONCE; a reader that acts on them always re-checks under
 * @lock.
 *
 * A consumer removes a message in two steps: eq_ring_take() detaches it while
 * its slot stays reserved (@taken), then, once the copy to userspace is done
 * outside @lock, eq_ring_commit() releases it or eq_ring_untake() puts it
 * back at the head.  So a fault during the copy loses nothing, and the put
 * back can never find the ring full.  "Occupancy" is @len + @taken; it is
 * what grow, shrink and the capacity bounds see.
 */
struct eq_ring {
	struct mutex lock;		/* protects all of the below */
	struct eq_mem_budget *budget;	/* charged for slots and msg_mem */
	struct elasticq_config cfg;	/* lockless hint: limits, policy */
	struct eq_msg **slots;		/* @capacity entries */
	u32 capacity;			/* lockless hint */
	u32 head;			/* slot of the oldest queued message */
	u32 len;			/* queued messages; lockless hint */
	u32 taken;			/* taken, not yet committed; hint */
	u64 bytes;			/* payload queued or taken; hint */
	u64 taken_bytes;		/* payload taken; lockless hint */
	u64 msg_mem;			/* memory of those messages */
	u64 high_water;			/* largest occupancy seen */
	u64 enqueued;
	u64 dequeued;
	u64 dropped;
	u64 rejected;
	u64 grows;
	u64 shrinks;
};

int eq_config_validate(const struct elasticq_config *cfg);
void eq_config_store(struct elasticq_config *dst,
		     const struct elasticq_config *src);

int eq_budget_charge(struct eq_mem_budget *b, u64 bytes);
void eq_budget_uncharge(struct eq_mem_budget *b, u64 bytes);

struct eq_msg *eq_msg_alloc(size_t len);
void eq_msg_free(struct eq_msg *msg);
size_t eq_msg_mem(const struct eq_msg *msg);
size_t eq_kvmalloc_size(size_t size);

int eq_ring_init(struct eq_ring *r, const struct elasticq_config *cfg,
		 struct eq_mem_budget *budget);
void eq_ring_destroy(struct eq_ring *r);

int eq_ring_push(struct eq_ring *r, struct eq_msg *msg);
void eq_ring_count_rejected(struct eq_ring *r);
struct eq_msg *eq_ring_peek(struct eq_ring *r);
struct eq_msg *eq_ring_take(struct eq_ring *r);
void eq_ring_commit(struct eq_ring *r, struct eq_msg *msg);
void eq_ring_untake(struct eq_ring *r, struct eq_msg *msg);

int eq_ring_set_config(struct eq_ring *r, const struct elasticq_config *cfg);
void eq_ring_get_config(struct eq_ring *r, struct elasticq_config *cfg);
void eq_ring_get_stats(struct eq_ring *r, struct elasticq_stats *st);

bool eq_ring_has_message(const struct eq_ring *r);
bool eq_ring_has_room(const struct eq_ring *r, size_t len);
size_t eq_ring_max_msg(const struct eq_ring *r);
u64 eq_ring_mem(const struct eq_ring *r);

#endif /* _EQ_RING_H */
