// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * The lock-free MPSC queue core.
 *
 * Algorithm.  Each ring is Dmitry Vyukov's bounded queue: every slot carries
 * a sequence number that says which position it is ready for.  A producer
 * reads the tail t, checks that slot t % C says "free for t" (seq == 2t),
 * reserves t by CAS on the tail, stores its message and only then publishes
 * it with a release store seq = 2t + 1: the "ready mark" that the original
 * crate lacked (its consumer read slots that were reserved but not yet
 * written).  The consumer takes position p when seq == 2p + 1 (acquire), and
 * frees the slot for the next lap with seq = 2(p + C).  The factor 2 keeps
 * "ready for p" and "free for p + C" apart when C is 1 (Vyukov's t + 1 and
 * t + C coincide there: the TLA+ model found the lost message).  Positions
 * are 64-bit
 * and ring-local (they restart at 0 in every ring); the consumer starts a
 * fresh ring long before a position could reach bit 63, so they never wrap,
 * and since a slot's sequence number only grows, no stale value can be
 * mistaken for a current one (no ABA).
 *
 * Resizing is the consumer's, and copies nothing: it allocates a ring of
 * the new size, publishes it as the producers' ring (rcu_assign_pointer),
 * then closes the old one by setting EQ_LF_CLOSED in its tail, which makes
 * every later CAS on it fail.  A producer that sees the flag re-reads the
 * producers' ring and finds the new one (it was published before the
 * close).  The consumer keeps draining the old ring up to its closed tail,
 * waiting, like for any unpublished position, for producers that reserved
 * before the close to publish, then follows the old ring's ->next to the
 * new one.  A resize may come before the old ring is drained (a burst can
 * outgrow several rings while the consumer is away): the rings then form a
 * chain, oldest first, that the consumer drains in order.  So nothing is
 * lost or duplicated, and per-producer order holds: a producer that once
 * saw a newer ring never sees an older one again, and older rings are
 * drained first.  Producers use a ring only inside rcu_read_lock(), so the
 * consumer frees a drained ring after a grace period (kvfree_rcu()).
 *
 * Why this and not the alternatives: a per-slot sequence number is what
 * makes a reserved-but-unwritten slot visible as such, with one CAS per
 * push and no CAS for the single consumer; a chain of rings instead of
 * copying keeps producers in flight during a resize harmless without
 * making them wait; and kernel RCU is exactly the
 * "nobody still looks at it" guarantee the old ring's memory needs.
 * tla+/ElasticMPSC.tla models these steps.
 *
 * Limits: max_bytes and the memory budget are reserved with atomics before
 * a producer reserves a slot; the message count is bounded by the ring's
 * capacity.  A producer that finds the ring full below max_capacity asks
 * the consumer to grow it (grow_wanted): the ring grows when its consumer
 * next runs.
 */
#include <linux/err.h>
#include <linux/errno.h>
#include <linux/minmax.h>
#include <linux/mm.h>
#include <linux/overflow.h>
#include <linux/slab.h>

#include "eq_lfring.h"

#define EQ_LF_GFP	(GFP_KERNEL_ACCOUNT | __GFP_RETRY_MAYFAIL | __GFP_NOWARN)

static u64 eq_lf_ring_mem(u32 capacity)
{
	struct eq_lf_ring *r;

	/* Allocated with kvmalloc(): charged as eq_kvmalloc_size() says. */
	return eq_kvmalloc_size(struct_size(r, slots, capacity));
}

/* A ring whose positions start at @first (0 except in tests). */
static struct eq_lf_ring *eq_lf_ring_alloc(struct eq_lfq *q, u32 capacity,
					   u64 first)
{
	struct eq_lf_ring *r;
	u32 i;
	int ret;

	ret = eq_budget_charge(q->budget, eq_lf_ring_mem(capacity));
	if (ret)
		return ERR_PTR(ret);
	r = kvmalloc(struct_size(r, slots, capacity), EQ_LF_GFP);
	if (!r) {
		eq_budget_uncharge(q->budget, eq_lf_ring_mem(capacity));
		return ERR_PTR(-ENOMEM);
	}
	r->capacity = capacity;
	r->next = NULL;
	atomic64_set(&r->tail, first);
	for (i = 0; i < capacity; i++) {
		/* Slot i is free for the first position that maps to it. */
		u64 pos = first + (capacity + i - first % capacity) % capacity;

		atomic64_set(&r->slots[i].seq, EQ_LF_FREE(pos));
		r->slots[i].msg = NULL;
	}
	WRITE_ONCE(q->ring_mem, q->ring_mem + eq_lf_ring_mem(capacity));
	return r;
}

/* The ring's memory goes back to the budget now, to the kernel later. */
static void eq_lf_ring_retire(struct eq_lfq *q, struct eq_lf_ring *r)
{
	WRITE_ONCE(q->ring_mem, q->ring_mem - eq_lf_ring_mem(r->capacity));
	eq_budget_uncharge(q->budget, eq_lf_ring_mem(r->capacity));
	kvfree_rcu(r, rcu);
}

/* The producers' ring, as the consumer (its only writer) sees it. */
static struct eq_lf_ring *eq_lfq_prod(struct eq_lfq *q)
{
	return rcu_dereference_protected(q->prod, 1);
}

/**
 * eq_lfq_init() - set up an empty queue
 * @q:         the queue
 * @cfg:       a configuration that passed eq_config_validate()
 * @budget:    charged for rings and messages, or NULL
 * @first_pos: the first position of the first ring: 0, or close to
 *             EQ_LF_POS_RENEW to test the renewal
 *
 * Return: 0, -ENOMEM or -ENOBUFS with nothing allocated.
 */
int eq_lfq_init(struct eq_lfq *q, const struct elasticq_config *cfg,
		struct eq_mem_budget *budget, u64 first_pos)
{
	struct eq_lf_ring *r;

	memset(q, 0, sizeof(*q));
	eq_config_store(&q->cfg, cfg);
	q->budget = budget;
	r = eq_lf_ring_alloc(q, cfg->initial_capacity, first_pos);
	if (IS_ERR(r))
		return PTR_ERR(r);
	RCU_INIT_POINTER(q->prod, r);
	WRITE_ONCE(q->cons, r);
	WRITE_ONCE(q->head, first_pos);
	WRITE_ONCE(q->limit, r->capacity);
	return 0;
}

static void eq_lf_ring_destroy(struct eq_lfq *q, struct eq_lf_ring *r,
			       u64 from)
{
	u64 end = atomic64_read(&r->tail) & ~EQ_LF_CLOSED, p;

	for (p = from; p < end; p++)
		eq_msg_free(r->slots[p % r->capacity].msg);
	eq_budget_uncharge(q->budget, eq_lf_ring_mem(r->capacity));
	kvfree(r);
}

/**
 * eq_lfq_destroy() - free the queue's rings and every message in them
 * @q: the queue; no producer or consumer may use it any more
 */
void eq_lfq_destroy(struct eq_lfq *q)
{
	struct eq_lf_ring *r = q->cons, *next;
	u64 from = q->head;

	for (; r; r = next, from = 0) {
		next = r->next;
		eq_lf_ring_destroy(q, r, from);
	}
	eq_budget_uncharge(q->budget, atomic64_read(&q->msg_mem));
	RCU_INIT_POINTER(q->prod, NULL);
	WRITE_ONCE(q->cons, NULL);
}

static void eq_lfq_note_len(struct eq_lfq *q, s64 len)
{
	s64 hw = atomic64_read(&q->high_water);

	while (len > hw && !atomic64_try_cmpxchg(&q->high_water, &hw, len))
		;
}

/*
 * Reserve a position in the producers' ring and publish @msg there; @len
 * is the queue's length with @msg counted.
 * Return: 0, or -EAGAIN if the queue is at the ring's capacity or the
 * ring is full.
 */
static int eq_lfq_publish(struct eq_lfq *q, struct eq_msg *msg, s64 len)
{
	struct eq_lf_ring *r;
	struct eq_lf_slot *slot;
	s64 diff, t;

	rcu_read_lock();
	r = rcu_dereference(q->prod);
	/*
	 * The capacity is the producers' ring's, and every ring's messages
	 * count against it: so the queue grows and shrinks at the lengths
	 * the uapi documents, as the lock-based variant does.  @limit is
	 * lowered before a shrink publishes a smaller ring (eq_lfq_resize()).
	 */
	if (len > r->capacity || len > READ_ONCE(q->limit)) {
		rcu_read_unlock();
		return -EAGAIN;
	}
	t = atomic64_read(&r->tail);
	for (;;) {
		if ((u64)t & EQ_LF_CLOSED) {
			/* Retired: its successor was published before. */
			smp_rmb();
			r = rcu_dereference(q->prod);
			t = atomic64_read(&r->tail);
			continue;
		}
		slot = &r->slots[(u64)t % r->capacity];
		diff = atomic64_read_acquire(&slot->seq) - EQ_LF_FREE(t);
		if (diff < 0) {
			/* The message of position t - capacity is still here. */
			rcu_read_unlock();
			return -EAGAIN;
		}
		if (diff > 0)		/* another producer took t */
			t = atomic64_read(&r->tail);
		else if (atomic64_try_cmpxchg(&r->tail, &t, t + 1))
			break;
	}
	/*
	 * Position t is ours: the message is as good as queued.  Count it
	 * before it can be consumed, high_water first, so that a snapshot
	 * sees enqueued >= dequeued and high_water >= len: the release
	 * below orders both before the consumer's dequeued++.
	 */
	eq_lfq_note_len(q, len);
	/* high_water before enqueued; pairs with eq_lfq_get_stats()'s smp_rmb() */
	smp_mb__before_atomic();
	atomic64_inc(&q->enqueued);
	slot->msg = msg;
	atomic64_set_release(&slot->seq, EQ_LF_READY(t));
	rcu_read_unlock();
	return 0;
}

/* Give back what eq_lfq_push() reserved before it failed. */
static void eq_lfq_unreserve(struct eq_lfq *q, struct eq_msg *msg, u64 mem)
{
	atomic64_sub(msg->len, &q->bytes);
	atomic64_dec(&q->len);
	atomic64_sub(mem, &q->msg_mem);
	eq_budget_uncharge(q->budget, mem);
}

/**
 * eq_lfq_push() - enqueue a message; any number of producers at once
 * @q:   the queue
 * @msg: the message, payload filled in; the queue owns it on success
 *
 * Lock-free: atomics only, no sleeping.
 *
 * Return: 0; -EMSGSIZE if it can never fit; -EAGAIN if the queue is full
 * (capacity or max_bytes; below max_capacity the consumer is asked to
 * grow the ring); -ENOBUFS or -EDQUOT if a memory budget is exhausted.  On error
 * the caller still owns @msg.
 */
int eq_lfq_push(struct eq_lfq *q, struct eq_msg *msg)
{
	bool backed_out;

	return eq_lfq_try_push(q, msg, &backed_out);
}

/**
 * eq_lfq_try_push() - eq_lfq_push(), telling whether it backed out
 * @q:          the queue
 * @msg:        as eq_lfq_push()
 * @backed_out: set if it failed after counting @msg in the queue's length
 *              or bytes for a moment: another producer may have found the
 *              queue full because of that (and gone to sleep)
 *
 * A push refused because the queue is full by bytes counts nothing, so
 * that producers with messages too big for the room left do not make
 * each other retry.
 *
 * Return: as eq_lfq_push().
 */
int eq_lfq_try_push(struct eq_lfq *q, struct eq_msg *msg, bool *backed_out)
{
	u64 mem = eq_msg_mem(msg);
	s64 len, bytes;
	int ret;

	*backed_out = false;
	if (msg->len > min_t(u64, READ_ONCE(q->cfg.max_msg_size),
			     READ_ONCE(q->cfg.max_bytes)))
		return -EMSGSIZE;
	bytes = atomic64_read(&q->bytes);
	do {
		if ((u64)bytes + msg->len > READ_ONCE(q->cfg.max_bytes))
			return -EAGAIN;
	} while (!atomic64_try_cmpxchg(&q->bytes, &bytes, bytes + msg->len));
	*backed_out = true;
	ret = eq_budget_charge(q->budget, mem);
	if (ret) {
		atomic64_sub(msg->len, &q->bytes);
		return ret;
	}
	atomic64_add(mem, &q->msg_mem);
	/*
	 * Fully ordered: before @limit is read (eq_lfq_publish()).  Pairs
	 * with the smp_mb() in eq_lfq_resize() between lowering @limit and
	 * reading @len.
	 */
	len = atomic64_inc_return(&q->len);
	/* Both rings of a resize count against max_capacity. */
	if (len > READ_ONCE(q->cfg.max_capacity)) {
		eq_lfq_unreserve(q, msg, mem);
		return -EAGAIN;
	}
	if (eq_lfq_publish(q, msg, len)) {
		eq_lfq_unreserve(q, msg, mem);
		atomic_set(&q->grow_wanted, 1);
		return -EAGAIN;
	}
	*backed_out = false;
	return 0;
}

/* The growth target for a full ring of @capacity (struct elasticq_config). */
static u32 eq_lfq_grow_target(struct eq_lfq *q, u32 capacity)
{
	u64 grown = div_u64((u64)capacity * q->cfg.growth_pct + 99, 100);
	u64 len = atomic64_read(&q->len);

	grown = max_t(u64, grown, len + 1);
	return min_t(u64, grown, q->cfg.max_capacity);
}

/* Free a ring that was never published. */
static void eq_lf_ring_unalloc(struct eq_lfq *q, struct eq_lf_ring *r)
{
	WRITE_ONCE(q->ring_mem, q->ring_mem - eq_lf_ring_mem(r->capacity));
	eq_budget_uncharge(q->budget, eq_lf_ring_mem(r->capacity));
	kvfree(r);
}

/**
 * eq_lfq_resize() - move producers to a ring of @capacity slots
 * @q:        the queue (consumer)
 * @capacity: the new capacity
 *
 * The current ring (and any older ones still holding messages) are drained
 * by later eq_lfq_peek()s before the new one.
 *
 * A producer checks the queue's length against the capacity of the ring
 * it read, so one that read the old ring could still enter it after a
 * shrink chose its size, and leave more queued than the new ring's
 * capacity.  So a shrink first lowers @q->limit, which producers check
 * too, and only then reads the length: one that counted itself in it too
 * late to be seen here sees the new limit.
 *
 * Return: 0; -EBUSY if more than @capacity messages are queued or being
 * pushed; -ENOMEM or -ENOBUFS.  On error nothing changed.
 */
int eq_lfq_resize(struct eq_lfq *q, u32 capacity)
{
	struct eq_lf_ring *old = eq_lfq_prod(q), *r;

	r = eq_lf_ring_alloc(q, capacity, 0);
	if (IS_ERR(r))
		return PTR_ERR(r);
	WRITE_ONCE(q->limit, capacity);
	if (capacity < old->capacity) {
		/*
		 * Pairs with the full barrier of atomic64_inc_return() in
		 * eq_lfq_push(), between a producer's counting itself in
		 * @len and its reading @limit.
		 */
		smp_mb();
		if ((u64)atomic64_read(&q->len) > capacity) {
			WRITE_ONCE(q->limit, old->capacity);
			eq_lf_ring_unalloc(q, r);
			return -EBUSY;
		}
	}
	/* The consumer's way from the old ring to this one. */
	old->next = r;
	rcu_assign_pointer(q->prod, r);
	/* After the publication: a producer that sees the flag finds @r. */
	atomic64_fetch_or(EQ_LF_CLOSED, &old->tail);
	return 0;
}

/* The shrink of struct elasticq_config, after a pop that left @len queued. */
static void eq_lfq_maybe_shrink(struct eq_lfq *q, u64 len)
{
	u32 capacity = eq_lfq_prod(q)->capacity;
	u64 target;

	if (capacity <= q->cfg.min_capacity ||
	    len * 100 > (u64)capacity * q->cfg.shrink_pct)
		return;
	target = div_u64((u64)capacity * 100, q->cfg.growth_pct);
	target = max3(target, len, (u64)q->cfg.min_capacity);
	/* A failure (or pushes since) only postpones it to a later pop. */
	if (!eq_lfq_resize(q, target))
		WRITE_ONCE(q->shrinks, q->shrinks + 1);
}

/**
 * eq_lfq_grow_if_wanted() - grow the ring if a producer found it full
 * (consumer)
 * @q: the queue
 *
 * Also while the consumer still drains older rings: they form a chain
 * that it follows in order.  Only if the queue is still at the ring's
 * capacity: several producers that found it full ask once each.  The
 * request is used up either way; the next producer to find the ring full
 * asks again.
 *
 * Return: 1 if the producers now have a bigger ring; 0 if none was asked
 * for or the ring is at max_capacity; -ENOMEM or -ENOBUFS if allocating it
 * failed.
 */
int eq_lfq_grow_if_wanted(struct eq_lfq *q)
{
	u32 capacity = eq_lfq_prod(q)->capacity;
	int ret;

	if (!atomic_read(&q->grow_wanted))
		return 0;
	atomic_set(&q->grow_wanted, 0);
	/* Several producers may have asked; a grow since served them all. */
	if (capacity >= q->cfg.max_capacity ||
	    atomic64_read(&q->len) < capacity)
		return 0;
	ret = eq_lfq_resize(q, eq_lfq_grow_target(q, capacity));
	if (ret)
		return ret;
	WRITE_ONCE(q->grows, q->grows + 1);
	return 1;
}

/*
 * Leave the consumer's ring while it is drained and closed: on to its
 * successor, and retire it.  (Every ring but the producers' is closed: the
 * consumer closes it in the same call that publishes the next one.)
 */
static void eq_lfq_move_on(struct eq_lfq *q)
{
	struct eq_lf_ring *r;

	for (r = q->cons; r != eq_lfq_prod(q) &&
	     q->head == (atomic64_read(&r->tail) & ~EQ_LF_CLOSED); r = q->cons) {
		WRITE_ONCE(q->cons, r->next);
		WRITE_ONCE(q->head, 0);
		eq_lf_ring_retire(q, r);
	}
}

/**
 * eq_lfq_peek() - the oldest message, left in place (consumer)
 * @q: the queue
 *
 * Also where the consumer moves on from drained rings and grows the ring
 * a producer found full.
 *
 * Return: the message, or NULL if none is published yet.
 */
struct eq_msg *eq_lfq_peek(struct eq_lfq *q)
{
	struct eq_lf_slot *slot;

	eq_lfq_grow_if_wanted(q);
	eq_lfq_move_on(q);
	slot = &q->cons->slots[q->head % q->cons->capacity];
	if ((u64)atomic64_read_acquire(&slot->seq) == EQ_LF_READY(q->head))
		return slot->msg;
	return NULL;
}

/**
 * eq_lfq_peek_next() - walk the queued messages without consuming them
 * (consumer)
 * @q: the queue
 * @c: a cursor; eq_lfq_peek() returned non-NULL just before the first
 *     call, and nothing was committed since
 *
 * Starting from the oldest message, each call returns the next one and
 * advances @c; eq_lfq_commit() then consumes them in the same order.  Lets
 * the consumer take a batch and commit only the part it delivered.
 *
 * Return: the message, or NULL if no further one is published yet.
 */
struct eq_msg *eq_lfq_peek_next(struct eq_lfq *q, struct eq_lfq_cursor *c)
{
	struct eq_lf_slot *slot;

	if (!c->ring) {
		c->ring = q->cons;
		c->pos = q->head;
	}
	for (;;) {
		slot = &c->ring->slots[c->pos % c->ring->capacity];
		if ((u64)atomic64_read_acquire(&slot->seq) == EQ_LF_READY(c->pos)) {
			c->pos++;
			return slot->msg;
		}
		if (c->ring == eq_lfq_prod(q) ||
		    c->pos != (atomic64_read(&c->ring->tail) & ~EQ_LF_CLOSED))
			return NULL;
		/* The old ring ends here; its successor starts at 0. */
		c->ring = c->ring->next;
		c->pos = 0;
	}
}

/**
 * eq_lfq_commit() - consume the message eq_lfq_peek() returned (consumer)
 * @q: the queue
 *
 * The caller frees the message.  May shrink the ring (struct
 * elasticq_config says when).
 */
void eq_lfq_commit(struct eq_lfq *q)
{
	struct eq_lf_ring *r = q->cons, *prod;
	struct eq_lf_slot *slot = &r->slots[q->head % r->capacity];
	struct eq_msg *msg = slot->msg;
	u64 mem = eq_msg_mem(msg), len;

	/*
	 * Counted before the room it frees can be used: a snapshot that
	 * sees a push made possible by this pop sees this pop too (the
	 * release below and the full barrier of atomic64_dec_return()
	 * order it before both kinds of room; see eq_lfq_get_stats()).
	 */
	WRITE_ONCE(q->dequeued, q->dequeued + 1);
	atomic64_set_release(&slot->seq, EQ_LF_FREE(q->head + r->capacity));
	WRITE_ONCE(q->head, q->head + 1);
	atomic64_sub(msg->len, &q->bytes);
	atomic64_sub(mem, &q->msg_mem);
	eq_budget_uncharge(q->budget, mem);
	len = atomic64_dec_return(&q->len);

	/* A drained old ring goes now, so its memory is not held idle. */
	eq_lfq_move_on(q);
	prod = eq_lfq_prod(q);
	if (r == prod && q->head >= EQ_LF_POS_RENEW) {
		/* Start again at position 0 long before bit 63. */
		eq_lfq_resize(q, prod->capacity);
		return;
	}
	eq_lfq_maybe_shrink(q, len);
}

/**
 * eq_lfq_capacity() - the capacity of the producers' ring (consumer)
 * @q: the queue
 *
 * Return: slots.
 */
u32 eq_lfq_capacity(struct eq_lfq *q)
{
	return eq_lfq_prod(q)->capacity;
}

/* Tries of a lockless snapshot before eq_lfq_get_stats() gives up. */
#define EQ_LF_STATS_TRIES	16

/**
 * eq_lfq_get_stats() - a consistent snapshot of the queue; anyone, any time
 * @q:  the queue
 * @st: zeroed by the caller; producers and consumers are the caller's
 *
 * Lockless.  @st->len is enqueued - dequeued: the messages whose position
 * is reserved (so, as good as queued) and not yet consumed.  It is read at
 * one moment while the consumer's side (dequeued, the producers' ring)
 * stands still, and then len <= capacity and len <= high_water hold.  If
 * the consumer moves every time, the caller takes its lock and calls
 * again (which then succeeds).  @st->bytes and @st->mem_bytes also count
 * pushes in progress: they reserve bytes and memory before they reserve a
 * position.
 *
 * Return: true if @st is filled in; false if the consumer kept moving.
 */
bool eq_lfq_get_stats(struct eq_lfq *q, struct elasticq_stats *st)
{
	struct eq_lf_ring *r;
	u64 deq, enq, hw;
	int tries;

	rcu_read_lock();
	for (tries = 0; tries < EQ_LF_STATS_TRIES; tries++) {
		/*
		 * Inside one RCU read-side section a ring cannot be freed, so
		 * an unchanged @prod pointer is an unchanged ring.
		 */
		r = rcu_dereference(q->prod);
		/*
		 * dequeued first, then enqueued: every message counted in the
		 * first was counted in the second before it could be consumed
		 * (eq_lfq_publish()'s release, the consumer's acquire).
		 */
		deq = smp_load_acquire(&q->dequeued);
		enq = atomic64_read(&q->enqueued);
		/*
		 * Pairs with eq_lfq_publish()'s barrier (high_water) and with
		 * eq_lfq_commit()'s release and full barrier: a push that
		 * used room a pop freed, counted in @enq, means that pop
		 * shows in the re-read of dequeued below.
		 */
		smp_rmb();
		hw = atomic64_read(&q->high_water);
		st->grows = READ_ONCE(q->grows);
		st->shrinks = READ_ONCE(q->shrinks);
		st->mem_bytes = READ_ONCE(q->ring_mem);
		smp_rmb();	/* the values above, before the re-check */
		if (READ_ONCE(q->dequeued) == deq &&
		    rcu_dereference(q->prod) == r)
			break;
	}
	st->capacity = r->capacity;
	rcu_read_unlock();
	if (tries == EQ_LF_STATS_TRIES)
		return false;
	st->size = sizeof(*st);
	st->len = enq - deq;
	st->enqueued = enq;
	st->dequeued = deq;
	st->high_water = hw;
	st->bytes = atomic64_read(&q->bytes);
	st->mem_bytes += atomic64_read(&q->msg_mem);
	st->rejected = atomic64_read(&q->rejected);
	return true;
}

/**
 * eq_lfq_has_message() - lockless hint: would the consumer find a message?
 * @q: the queue
 *
 * For wait conditions and poll; anyone, any time.  Also true when the
 * consumer has a drained old ring to move on from, so that a woken
 * consumer does that work.
 *
 * Return: true if eq_lfq_peek() would probably return a message.
 */
bool eq_lfq_has_message(struct eq_lfq *q)
{
	struct eq_lf_ring *cons;
	struct eq_lf_slot *slot;
	bool ret;
	u64 head;

	rcu_read_lock();
	cons = READ_ONCE(q->cons);
	head = READ_ONCE(q->head);
	slot = &cons->slots[head % cons->capacity];
	ret = (u64)atomic64_read_acquire(&slot->seq) == EQ_LF_READY(head) ||
	      (cons != rcu_dereference(q->prod) && atomic64_read(&q->len));
	rcu_read_unlock();
	return ret;
}

/**
 * eq_lfq_has_room() - lockless hint: would a push of @len bytes succeed?
 * @q:   the queue
 * @len: payload length
 *
 * For wait conditions and poll; anyone, any time.  False when the ring is
 * full, even below max_capacity: growing it is the consumer's work.
 *
 * Return: true if eq_lfq_push() would probably not return -EAGAIN.
 */
bool eq_lfq_has_room(struct eq_lfq *q, size_t len)
{
	struct eq_lf_ring *r;
	bool ret;
	u64 t;

	u64 queued = atomic64_read(&q->len);

	if (queued >= READ_ONCE(q->cfg.max_capacity) ||
	    (u64)atomic64_read(&q->bytes) + len > READ_ONCE(q->cfg.max_bytes))
		return false;
	rcu_read_lock();
	r = rcu_dereference(q->prod);
	t = atomic64_read(&r->tail);
	/* A closed ring has a successor (being published). */
	ret = queued < r->capacity && queued < READ_ONCE(q->limit) &&
	      ((t & EQ_LF_CLOSED) ||
	       (s64)(atomic64_read(&r->slots[t % r->capacity].seq) -
		     EQ_LF_FREE(t)) >= 0);
	rcu_read_unlock();
	return ret;
}

/**
 * eq_lfq_needs_growth() - lockless hint: is the queue at the producers'
 * ring's capacity, below max_capacity?
 * @q: the queue
 *
 * Then a push fails until the ring grows, and eq_lfq_grow_if_wanted()
 * could grow it.
 *
 * Return: true if so.
 */
bool eq_lfq_needs_growth(struct eq_lfq *q)
{
	u64 queued = atomic64_read(&q->len);
	u32 capacity;

	rcu_read_lock();
	capacity = rcu_dereference(q->prod)->capacity;
	rcu_read_unlock();
	return queued >= capacity && capacity < READ_ONCE(q->cfg.max_capacity);
}

/**
 * eq_lfq_set_config() - apply a new configuration (consumer)
 * @q:   the queue
 * @cfg: a configuration that passed eq_config_validate(), same variant
 *
 * The capacity is brought within the new bounds at once.
 *
 * Return: 0; -EBUSY if more is queued than the new max_capacity or
 * max_bytes allow; -ENOMEM or -ENOBUFS if the capacity had to change and
 * could not.  On error nothing changed.
 */
int eq_lfq_set_config(struct eq_lfq *q, const struct elasticq_config *cfg)
{
	u32 capacity, target;
	int ret;

	if ((u64)atomic64_read(&q->len) > cfg->max_capacity ||
	    (u64)atomic64_read(&q->bytes) > cfg->max_bytes)
		return -EBUSY;
	capacity = eq_lfq_prod(q)->capacity;
	target = clamp(capacity, cfg->min_capacity, cfg->max_capacity);
	if (target != capacity) {
		ret = eq_lfq_resize(q, target);
		if (ret)
			return ret;
	}
	eq_config_store(&q->cfg, cfg);
	return 0;
}
