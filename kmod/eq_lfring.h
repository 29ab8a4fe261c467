/* SPDX-License-Identifier: GPL-2.0 OR MIT */
/*
 * The lock-free MPSC queue core (eq_lfring.c): many producers enqueue with
 * atomics only, one consumer dequeues and resizes, RCU retires old rings.
 *
 * Builds in the kernel and in userspace (selftests/core/shim, with liburcu).
 */
#ifndef _EQ_LFRING_H
#define _EQ_LFRING_H

#include <linux/atomic.h>
#include <linux/bits.h>
#include <linux/rcupdate.h>
#include <linux/types.h>

#include "eq_ring.h"

/* Set in eq_lf_ring.tail once the ring takes no more reservations. */
#define EQ_LF_CLOSED		BIT_ULL(63)
/*
 * The consumer starts a fresh ring before its position passes this, so
 * positions and the sequence numbers below stay under bit 63.
 */
#define EQ_LF_POS_RENEW		BIT_ULL(61)
/* Slot sequence numbers: free for position p, holding position p. */
#define EQ_LF_FREE(p)		(2 * (u64)(p))
#define EQ_LF_READY(p)		(2 * (u64)(p) + 1)

/**
 * struct eq_lf_slot - one slot of a ring
 * @seq:	what the slot is ready for: EQ_LF_FREE(p) (a producer of
 *		position p), EQ_LF_READY(p) (the consumer at position p); set
 *		with release semantics, read with acquire
 * @msg:	the message, valid while @seq says so
 */
struct eq_lf_slot {
	atomic64_t seq;
	struct eq_msg *msg;
};

/**
 * struct eq_lf_ring - a fixed-size ring of slots
 * @capacity:	slots; fixed
 * @next:	the ring that replaced this one, set by the consumer before
 *		it closes this one; the consumer's way on once this one is
 *		drained (consumer only)
 * @tail:	the next position to reserve (producers CAS it), and
 *		EQ_LF_CLOSED once the consumer retired the ring
 * @rcu:	frees the ring a grace period after its retirement
 * @slots:	@capacity slots; position p lives in slot p % @capacity
 */
struct eq_lf_ring {
	u32 capacity;
	struct eq_lf_ring *next;
	atomic64_t tail;
	struct rcu_head rcu;
	struct eq_lf_slot slots[];
};

/**
 * struct eq_lfq - a lock-free MPSC queue
 *
 * Producers may call eq_lfq_push() concurrently with each other and with
 * the consumer; they take no lock and never sleep.  Everything else is the
 * consumer's: one task at a time (the queue's consumer role, or whoever
 * holds the queue exclusively, as at init and destroy).
 *
 * @prod:	the ring producers reserve in (RCU: producers read it under
 *		rcu_read_lock(); only the consumer writes it)
 * @cons:	the ring the consumer drains: @prod, or after resizes the
 *		oldest ring that still holds messages, from which a chain of
 *		->next leads to @prod; written by the consumer only
 *		(WRITE_ONCE), read by the lockless hints under RCU
 * @head:	the consumer's next position in @cons; like @cons
 * @cfg:	limits and policy; fields producers read are written with
 *		WRITE_ONCE by the consumer
 * @budget:	charged for rings and queued messages, or NULL
 * @ring_mem:	memory of the rings from @cons to @prod; written by the
 *		consumer only (WRITE_ONCE), read by stats
 * @len:	messages reserved or queued, not yet consumed (producers add
 *		before reserving and take back on failure)
 * @bytes:	their payload, the same way
 * @msg_mem:	their memory
 * @limit:	the most messages the queue may hold: @prod's capacity,
 *		lowered before a shrink publishes a smaller ring (written
 *		by the consumer, read by producers after counting themselves
 *		in @len; see eq_lfq_resize())
 * @grow_wanted: a producer found @prod full below max_capacity
 * @enqueued:	messages accepted, ever: counted once their position is
 *		reserved, before they are published
 * @rejected:	pushes refused for lack of room (counted by the caller)
 * @high_water:	largest @len seen by a push that succeeded, noted before
 *		@enqueued counts it
 * @dequeued:	written by the consumer only (WRITE_ONCE), read by stats
 * @grows:	like @dequeued
 * @shrinks:	like @dequeued
 */
struct eq_lfq {
	struct eq_lf_ring __rcu *prod;
	struct eq_lf_ring *cons;
	u64 head;
	struct elasticq_config cfg;
	struct eq_mem_budget *budget;
	u64 ring_mem;
	atomic64_t len;
	atomic64_t bytes;
	atomic64_t msg_mem;
	u32 limit;
	atomic_t grow_wanted;
	atomic64_t enqueued;
	atomic64_t rejected;
	atomic64_t high_water;
	u64 dequeued;
	u64 grows;
	u64 shrinks;
};

/**
 * struct eq_lfq_cursor - the consumer's place in a walk by eq_lfq_peek_next()
 * @ring:	NULL before the first step
 * @pos:	the next position in @ring
 */
struct eq_lfq_cursor {
	struct eq_lf_ring *ring;
	u64 pos;
};

int eq_lfq_init(struct eq_lfq *q, const struct elasticq_config *cfg,
		struct eq_mem_budget *budget, u64 first_pos);
void eq_lfq_destroy(struct eq_lfq *q);

int eq_lfq_push(struct eq_lfq *q, struct eq_msg *msg);
int eq_lfq_try_push(struct eq_lfq *q, struct eq_msg *msg, bool *backed_out);

/* The consumer's side: one task at a time. */
struct eq_msg *eq_lfq_peek(struct eq_lfq *q);
struct eq_msg *eq_lfq_peek_next(struct eq_lfq *q, struct eq_lfq_cursor *c);
void eq_lfq_commit(struct eq_lfq *q);
int eq_lfq_resize(struct eq_lfq *q, u32 capacity);
int eq_lfq_grow_if_wanted(struct eq_lfq *q);
int eq_lfq_set_config(struct eq_lfq *q, const struct elasticq_config *cfg);
u32 eq_lfq_capacity(struct eq_lfq *q);

/* Anyone, any time. */
bool eq_lfq_get_stats(struct eq_lfq *q, struct elasticq_stats *st);
bool eq_lfq_has_message(struct eq_lfq *q);
bool eq_lfq_has_room(struct eq_lfq *q, size_t len);
bool eq_lfq_needs_growth(struct eq_lfq *q);

#endif /* _EQ_LFRING_H */
