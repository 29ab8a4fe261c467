// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * Blocking push and pop around the lock-free core (eq_lfring.c): the
 * ELASTICQ_VARIANT_LOCKFREE half of eq_queue.c, which calls these.
 *
 * Producers push with atomics only.  They take a wait queue's lock only to
 * wake a sleeper (wq_has_sleeper() first) or to sleep themselves when the
 * queue is full under the block policy.  A producer that finds the ring
 * full below max_capacity grows it itself if no consumer is busy
 * (mutex_trylock() of the consumer lock: it never waits for it), so that a
 * burst is absorbed while the consumer is away, as with the lock-based
 * variant; otherwise the busy consumer grows it before it lets go.
 *
 * The consumer role is exclusive (eq_file_claim()); q->consumer_lock
 * serialises the tasks that share the consumer's file and config changes.
 * It is held from eq_queue_take() to eq_queue_finish(), across the copy to
 * userspace: taken messages stay in the ring until finish commits those
 * delivered, so a fault or a kill part-way loses nothing.  Stats and the
 * config are read without it.  The price: while a copy is in progress
 * (normally microseconds; as long as a page fault takes), the ring cannot
 * grow, and SET_CONFIG waits.
 */
#include <linux/jiffies.h>
#include <linux/sched/signal.h>
#include <linux/wait.h>

#include "eq_queue.h"

/* Wake sleepers, without touching the wait queue's lock if there are none. */
static void eq_lf_wake(wait_queue_head_t *wq, __poll_t events)
{
	if (wq_has_sleeper(wq))
		wake_up_interruptible_poll(wq, events);
}

/*
 * Let go of the consumer side; first serve a growth asked for meanwhile.
 *
 * A producer that finds the ring full while the lock is held asks for
 * growth after eq_lfq_grow_if_wanted() may have looked, fails its
 * trylock, and sleeps if eq_lf_may_grow() still sees the lock held: so
 * while the queue needs growth, look for sleepers after the unlock.  The
 * smp_mb() in wq_has_sleeper() orders the unlock before that look; it
 * pairs with the barrier of set_current_state() in the producer's
 * prepare_to_wait_event() (or with the smp_mb() of eq_queue_poll()),
 * between queueing itself and reading the lock in eq_lf_may_grow().
 * Either the producer sees the lock free and does not sleep, or it is
 * seen and woken (it then grows the ring itself).
 */
static void eq_lf_consumer_unlock(struct eq_queue *q)
{
	int grew = eq_lfq_grow_if_wanted(&q->lfq);

	mutex_unlock(&q->consumer_lock);
	if (grew > 0 || eq_lfq_needs_growth(&q->lfq))
		eq_lf_wake(&q->writers, EPOLLOUT | EPOLLWRNORM);
}

/* Lockless hint: a producer could grow the ring right now. */
static bool eq_lf_may_grow(struct eq_queue *q)
{
	return eq_lfq_needs_growth(&q->lfq) &&
	       !mutex_is_locked(&q->consumer_lock);
}

/*
 * A producer's push failed: if the queue is at the ring's capacity below
 * max_capacity, grow it, unless somebody holds the consumer side (who
 * then grows it before letting go).  Return: 1 if grown, 0 if not,
 * -ENOMEM or -ENOBUFS.
 */
static int eq_lf_try_grow(struct eq_queue *q)
{
	int ret;

	if (!eq_lfq_needs_growth(&q->lfq))
		return 0;
	atomic_set(&q->lfq.grow_wanted, 1);
	if (!mutex_trylock(&q->consumer_lock))
		return 0;
	ret = eq_lfq_grow_if_wanted(&q->lfq);
	mutex_unlock(&q->consumer_lock);
	if (ret > 0)
		eq_lf_wake(&q->writers, EPOLLOUT | EPOLLWRNORM);
	return ret;
}

/*
 * A failed push counted itself in the queue's length or bytes for a
 * moment, and another producer may have found the queue full because of
 * that and gone to sleep.  If there is room now, wake it: nobody else
 * would.  Only then, so that producers of a full queue do not wake each
 * other in turn.  eq_lfq_try_push() gave the reservation back
 * before it returned, and the smp_mb() in wq_has_sleeper() orders that
 * before the look for sleepers; it pairs with the barrier between a
 * sleeper's queueing itself and its reading of the queue's length (in
 * prepare_to_wait_event(), or the smp_mb() of eq_queue_poll()).
 */
static void eq_lf_backed_out(struct eq_queue *q)
{
	if (eq_lfq_has_room(&q->lfq, 0) || eq_lf_may_grow(q))
		eq_lf_wake(&q->writers, EPOLLOUT | EPOLLWRNORM);
}

/**
 * eq_lfqueue_enqueue() - eq_queue_enqueue() of a lock-free queue
 * @q:        the queue
 * @msg:      the message; the queue owns it on success
 * @nonblock: fail with -EAGAIN instead of sleeping
 * @left:     jiffies the caller may still wait; updated
 *
 * Return: as eq_queue_enqueue().
 */
int eq_lfqueue_enqueue(struct eq_queue *q, struct eq_msg *msg, bool nonblock,
		       long *left)
{
	struct eq_lfq *lfq = &q->lfq;
	bool backed_out;
	long waited;
	int ret;

	for (;;) {
		ret = eq_lfq_try_push(lfq, msg, &backed_out);
		if (backed_out)
			eq_lf_backed_out(q);
		if (ret != -EAGAIN)
			break;
		ret = eq_lf_try_grow(q);
		if (ret > 0)
			continue;
		if (ret)
			break;
		ret = -EAGAIN;
		if (nonblock ||
		    READ_ONCE(lfq->cfg.full_policy) == ELASTICQ_FULL_REJECT)
			break;
		if (!left)
			return -EAGAIN;	/* the caller parks: not rejected */
		waited = wait_event_interruptible_timeout(q->writers,
							  eq_lfq_has_room(lfq, msg->len) ||
							  eq_lf_may_grow(q) ||
							  msg->len > eq_queue_max_msg(q),
							  *left);
		ret = eq_wait_result(waited, left);
		if (ret)
			break;
	}
	if (ret == -EAGAIN || ret == -ENOBUFS || ret == -EDQUOT ||
	    ret == -ETIMEDOUT)
		atomic64_inc(&lfq->rejected);
	if (!ret)
		eq_lf_wake(&q->readers, EPOLLIN | EPOLLRDNORM);
	return ret;
}

/*
 * Killable, not interruptible, as a pipe's mutex is uninterruptible: the
 * wait is for another task's copy, and an io-wq worker running an io_uring
 * command has TIF_NOTIFY_SIGNAL set at times, which would make an
 * interruptible wait fail with a spurious -EINTR.
 */
static int eq_lf_consumer_lock(struct eq_queue *q, bool nowait)
{
	if (nowait)
		return mutex_trylock(&q->consumer_lock) ? 0 : -EBUSY;
	return mutex_lock_killable(&q->consumer_lock) ? -EINTR : 0;
}

/**
 * eq_lfqueue_take() - eq_queue_take() of a lock-free queue
 * @q:        the queue
 * @msgs:     receives the messages, oldest first
 * @max:      most messages to take, >= 1
 * @room:     bytes the caller's buffer holds
 * @framed:   each message needs ELASTICQ_FRAME_SIZE(len) bytes, not len
 * @nonblock: fail with -EAGAIN instead of sleeping for a message
 * @nowait:   fail with -EAGAIN instead of sleeping on the consumer lock
 * @left:     jiffies the caller may still wait; updated
 *
 * Like a pipe's reader, a non-blocking pop may wait for the lock while
 * another task of the consumer's file copies out (or SET_CONFIG runs):
 * otherwise it would say EAGAIN with messages queued.  On success the
 * consumer lock stays held until eq_lfqueue_finish().
 *
 * Return: as eq_queue_take().
 */
int eq_lfqueue_take(struct eq_queue *q, struct eq_msg **msgs, u32 max,
		    u64 room, bool framed, bool nonblock, bool nowait,
		    long *left)
{
	struct eq_lfq *lfq = &q->lfq;
	struct eq_lfq_cursor c;
	struct eq_msg *msg;
	long waited;
	u32 n;
	int ret;

	for (;;) {
		ret = eq_lf_consumer_lock(q, nowait);
		if (ret)
			return ret;
		n = 0;
		msg = eq_lfq_peek(lfq);
		if (msg && eq_msg_room(msg, framed) > room)
			ret = -EMSGSIZE;
		memset(&c, 0, sizeof(c));
		while (!ret && n < max) {
			msg = eq_lfq_peek_next(lfq, &c);
			if (!msg || eq_msg_room(msg, framed) > room)
				break;
			room -= eq_msg_room(msg, framed);
			msgs[n++] = msg;
		}
		if (n)
			return n;
		eq_lf_consumer_unlock(q);
		if (ret)
			return ret;
		if (nonblock)
			return -EAGAIN;
		waited = wait_event_interruptible_timeout(q->readers,
							  eq_lfq_has_message(lfq),
							  *left);
		ret = eq_wait_result(waited, left);
		if (ret)
			return ret;
	}
}

/**
 * eq_lfqueue_finish() - eq_queue_finish() of a lock-free queue
 * @q:         the queue, its consumer lock held by eq_lfqueue_take()
 * @msgs:      the messages taken, oldest first
 * @taken:     how many
 * @delivered: how many of the first were copied out; they are consumed,
 *             the others stay at the head of the queue
 */
void eq_lfqueue_finish(struct eq_queue *q, struct eq_msg **msgs, u32 taken,
		       u32 delivered)
{
	u32 i;

	lockdep_assert_held(&q->consumer_lock);
	for (i = 0; i < delivered; i++) {
		/* take() walked from the head and nobody else consumes. */
		WARN_ON_ONCE(eq_lfq_peek(&q->lfq) != msgs[i]);
		eq_lfq_commit(&q->lfq);
	}
	eq_lf_consumer_unlock(q);
	for (i = 0; i < delivered; i++)
		eq_msg_free(msgs[i]);
	if (delivered)
		eq_lf_wake(&q->writers, EPOLLOUT | EPOLLWRNORM);
	/*
	 * Another task of the consumer's file may have gone to sleep while
	 * this one held the lock and moved the head (its look at the head
	 * then proves nothing): what is left is for it.
	 */
	if (eq_lfq_has_message(&q->lfq))
		eq_lf_wake(&q->readers, EPOLLIN | EPOLLRDNORM);
}

/**
 * eq_lfqueue_poll_events() - the events eq_queue_poll() reports
 * @q: the queue
 *
 * Return: EPOLLIN when a message is queued, EPOLLOUT when one of the
 * largest allowed size could be pushed without blocking.
 */
__poll_t eq_lfqueue_poll_events(struct eq_queue *q)
{
	__poll_t events = 0;

	if (eq_lfq_has_message(&q->lfq))
		events |= EPOLLIN | EPOLLRDNORM;
	if (eq_lfq_has_room(&q->lfq, eq_queue_max_msg(q)) || eq_lf_may_grow(q))
		events |= EPOLLOUT | EPOLLWRNORM;
	return events;
}

/**
 * eq_lfqueue_set_config() - eq_queue_set_config() of a lock-free queue
 * @q:   the queue
 * @cfg: the configuration
 *
 * Waits for a consumer's copy in progress (killable).
 *
 * Return: as eq_queue_set_config(), or -EINTR if killed while waiting.
 */
int eq_lfqueue_set_config(struct eq_queue *q,
			  const struct elasticq_config *cfg)
{
	int ret;

	ret = eq_config_validate(cfg);
	if (ret)
		return ret;
	if (cfg->variant != q->variant)
		return -EINVAL;
	if (mutex_lock_killable(&q->consumer_lock))
		return -EINTR;
	mutex_lock(&q->config_lock);
	ret = eq_lfq_set_config(&q->lfq, cfg);
	mutex_unlock(&q->config_lock);
	eq_lf_consumer_unlock(q);
	return ret;
}

/**
 * eq_lfqueue_get_config() - eq_queue_get_config() of a lock-free queue
 * @q:   the queue
 * @cfg: filled in whole
 */
void eq_lfqueue_get_config(struct eq_queue *q, struct elasticq_config *cfg)
{
	mutex_lock(&q->config_lock);
	*cfg = q->lfq.cfg;
	mutex_unlock(&q->config_lock);
	cfg->size = sizeof(*cfg);
}
