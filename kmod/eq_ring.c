// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * The lock-based queue core: an elastic ring of message pointers, its grow
 * and shrink rules and its accounting.  Callers hold r->lock around every
 * eq_ring_*() call except init, destroy and the lockless hints.
 *
 * Capacity changes copy the queued pointers into a freshly allocated array
 * (head back at slot 0) and free the old one, so a shrink really returns the
 * memory.  Capacities are not powers of two (growth can be 150%), hence the
 * explicit wrap instead of a mask.
 */
#include <linux/errno.h>
#include <linux/lockdep.h>
#include <linux/minmax.h>
#include <linux/mm.h>
#include <linux/overflow.h>
#include <linux/slab.h>

#include "eq_ring.h"

/**
 * eq_config_validate() - check every field of a queue configuration
 * @cfg: the configuration; @cfg->size is checked by the caller
 *
 * Return: 0 if @cfg is acceptable, -EINVAL otherwise.
 */
int eq_config_validate(const struct elasticq_config *cfg)
{
	size_t i;

	if (cfg->flags)
		return -EINVAL;
	for (i = 0; i < ARRAY_SIZE(cfg->reserved); i++)
		if (cfg->reserved[i])
			return -EINVAL;
	if (!cfg->min_capacity || cfg->max_capacity < cfg->min_capacity ||
	    cfg->max_capacity > ELASTICQ_CAPACITY_LIMIT)
		return -EINVAL;
	if (cfg->initial_capacity < cfg->min_capacity ||
	    cfg->initial_capacity > cfg->max_capacity)
		return -EINVAL;
	if (cfg->growth_pct <= 100)
		return -EINVAL;
	if (!cfg->shrink_pct || cfg->shrink_pct >= 100)
		return -EINVAL;
	/*
	 * Otherwise a shrink could leave a large ring full, and a push and a
	 * pop alternating at that size would copy the whole ring every time.
	 */
	if ((u64)cfg->shrink_pct * cfg->growth_pct >= 100 * 100)
		return -EINVAL;
	if (!cfg->max_msg_size || cfg->max_msg_size > ELASTICQ_MSG_SIZE_LIMIT)
		return -EINVAL;
	if (!cfg->max_bytes)
		return -EINVAL;
	if (cfg->variant > ELASTICQ_VARIANT_LOCKFREE)
		return -EINVAL;
	if (cfg->full_policy > ELASTICQ_FULL_DROP_OLDEST)
		return -EINVAL;
	/*
	 * Dropping the oldest message is the consumer's move in the lock-free
	 * variant: a producer cannot take it from under the consumer.
	 */
	if (cfg->variant == ELASTICQ_VARIANT_LOCKFREE &&
	    cfg->full_policy == ELASTICQ_FULL_DROP_OLDEST)
		return -EINVAL;
	return 0;
}

/**
 * eq_kvmalloc_size() - the memory kvmalloc(@size) really takes
 * @size: the size asked for
 *
 * What the queues charge for each of their allocations (all of them
 * kvmalloc()ed), so that the budget and mem_bytes count what the allocator
 * hands out, not what was asked for.  kvmalloc() tries kmalloc() first:
 * up to KMALLOC_MAX_CACHE_SIZE that gives an object of the next kmalloc size
 * class (a 4097-byte request takes 8192 bytes), above it whole pages of the
 * next power-of-two order (kmalloc_size_roundup() says both).  Only a
 * request kmalloc() cannot serve at all (over KMALLOC_MAX_SIZE) always goes
 * to vmalloc(), which maps whole pages.  When a smaller request falls back
 * to vmalloc() (kmalloc() failed, rare with __GFP_RETRY_MAYFAIL) it takes
 * PAGE_ALIGN(@size), never more than the power-of-two order charged here:
 * the charge is then conservative.  vmalloc()'s own bookkeeping is not
 * counted.
 *
 * The queues still ask for exactly what they use: the slack is of no use
 * to a message (its length is fixed) nor to a ring (its capacity follows
 * the grow and shrink rules), and KASAN then checks accesses against the
 * exact end.
 *
 * Return: bytes.
 */
size_t eq_kvmalloc_size(size_t size)
{
	if (size > KMALLOC_MAX_SIZE)
		return PAGE_ALIGN(size);
	return kmalloc_size_roundup(size);
}

/**
 * eq_msg_mem() - the memory a message takes
 * @msg: the message
 *
 * Return: bytes, header and the allocator's rounding included.
 */
size_t eq_msg_mem(const struct eq_msg *msg)
{
	return eq_kvmalloc_size(struct_size(msg, data, msg->len));
}

/*
 * Charged to the caller's memory cgroup; over the cgroup's limit the
 * allocation fails (-ENOMEM to the caller) instead of invoking the OOM
 * killer, and it does not warn: userspace can provoke it at will.
 */
#define EQ_GFP	(GFP_KERNEL_ACCOUNT | __GFP_RETRY_MAYFAIL | __GFP_NOWARN)

/* Undo a charge of @bytes on @b and its parents up to, not including, @end. */
static void eq_budget_undo(struct eq_mem_budget *b, struct eq_mem_budget *end,
			   u64 bytes)
{
	for (; b != end; b = b->parent)
		atomic64_sub(bytes, &b->used);
}

/**
 * eq_budget_charge() - charge memory to a budget and those above it
 * @b:     the budget, or NULL for none
 * @bytes: how much
 *
 * Return: 0 if charged; otherwise, with nothing charged, the @over errno
 * of the first budget whose limit it would pass (-ENOBUFS by default).
 */
int eq_budget_charge(struct eq_mem_budget *b, u64 bytes)
{
	struct eq_mem_budget *n;
	bool exempt = false;
	const u64 *limit;
	u64 used;

	if (!bytes)
		return 0;
	for (n = b; n; n = n->parent) {
		used = atomic64_add_return(bytes, &n->used);
		limit = n->limit;
		if (limit && (!exempt || !n->parent) &&
		    used > READ_ONCE(*limit)) {
			eq_budget_undo(b, n->parent, bytes);
			return n->over ? n->over : -ENOBUFS;
		}
		exempt |= n->exempt;
	}
	return 0;
}

/**
 * eq_budget_uncharge() - give back what eq_budget_charge() took
 * @b:     the budget, or NULL
 * @bytes: how much
 */
void eq_budget_uncharge(struct eq_mem_budget *b, u64 bytes)
{
	eq_budget_undo(b, NULL, bytes);
}

/* No overflow: capacity <= ELASTICQ_CAPACITY_LIMIT. */
static u64 eq_slots_mem(u32 capacity)
{
	return eq_kvmalloc_size((size_t)capacity * sizeof(struct eq_msg *));
}

/**
 * eq_msg_alloc() - allocate a message, charged to the caller's memory cgroup
 * @len: payload length; the caller bounds it by eq_ring_max_msg()
 *
 * Return: the message with @len set and its payload uninitialised, or NULL.
 */
struct eq_msg *eq_msg_alloc(size_t len)
{
	struct eq_msg *msg;

	msg = kvmalloc(struct_size(msg, data, len), EQ_GFP);
	if (!msg)
		return NULL;
	msg->len = len;
	msg->flags = 0;
	return msg;
}

/**
 * eq_msg_free() - free a message from eq_msg_alloc()
 * @msg: the message, or NULL
 */
void eq_msg_free(struct eq_msg *msg)
{
	kvfree(msg);
}

static u32 eq_ring_occupancy(const struct eq_ring *r)
{
	return r->len + r->taken;
}

static u32 eq_ring_wrap(const struct eq_ring *r, u32 pos)
{
	return pos >= r->capacity ? pos - r->capacity : pos;
}

static struct eq_msg **eq_slots_alloc(u32 capacity)
{
	return kvmalloc_array(capacity, sizeof(struct eq_msg *), EQ_GFP);
}

/*
 * Move the queued messages, in order, into a new array of @capacity slots.
 * -ENOBUFS if growing would pass the budget, -ENOMEM if the allocation
 * fails; either way nothing changed.
 */
static int eq_ring_resize(struct eq_ring *r, u32 capacity)
{
	u64 now = eq_slots_mem(r->capacity), then = eq_slots_mem(capacity);
	struct eq_msg **slots;
	u32 i, pos;
	int ret;

	lockdep_assert_held(&r->lock);
	if (then > now) {
		ret = eq_budget_charge(r->budget, then - now);
		if (ret)
			return ret;
	}
	slots = eq_slots_alloc(capacity);
	if (!slots) {
		if (then > now)
			eq_budget_uncharge(r->budget, then - now);
		return -ENOMEM;
	}
	for (i = 0, pos = r->head; i < r->len; i++) {
		slots[i] = r->slots[pos];
		pos = eq_ring_wrap(r, pos + 1);
	}
	kvfree(r->slots);
	if (then < now)
		eq_budget_uncharge(r->budget, now - then);
	r->slots = slots;
	r->head = 0;
	WRITE_ONCE(r->capacity, capacity);
	return 0;
}

static u32 eq_grow_target(const struct eq_ring *r)
{
	u64 grown = div_u64((u64)r->capacity * r->cfg.growth_pct + 99, 100);

	grown = max_t(u64, grown, eq_ring_occupancy(r) + 1);
	return min_t(u64, grown, r->cfg.max_capacity);
}

/* Shrink by one step if the last pop left the ring sparse enough. */
static void eq_ring_maybe_shrink(struct eq_ring *r)
{
	u32 occ = eq_ring_occupancy(r);
	u64 target;

	if (r->capacity <= r->cfg.min_capacity)
		return;
	if ((u64)occ * 100 > (u64)r->capacity * r->cfg.shrink_pct)
		return;
	target = div_u64((u64)r->capacity * 100, r->cfg.growth_pct);
	target = max3(target, (u64)occ, (u64)r->cfg.min_capacity);
	/* An allocation failure only postpones the shrink to a later pop. */
	if (!eq_ring_resize(r, target))
		r->shrinks++;
}

/**
 * eq_config_store() - copy a configuration into a live queue's
 * @dst: the queue's configuration
 * @src: a configuration that passed eq_config_validate()
 *
 * Field by field: the fields producers and the lockless hints read are
 * published with WRITE_ONCE, which a plain struct copy would not do.
 */
void eq_config_store(struct elasticq_config *dst,
		     const struct elasticq_config *src)
{
	dst->size = sizeof(*dst);
	dst->flags = src->flags;
	dst->initial_capacity = src->initial_capacity;
	dst->min_capacity = src->min_capacity;
	dst->growth_pct = src->growth_pct;
	dst->shrink_pct = src->shrink_pct;
	dst->variant = src->variant;
	memcpy(dst->reserved, src->reserved, sizeof(dst->reserved));
	WRITE_ONCE(dst->max_capacity, src->max_capacity);
	WRITE_ONCE(dst->max_bytes, src->max_bytes);
	WRITE_ONCE(dst->max_msg_size, src->max_msg_size);
	WRITE_ONCE(dst->full_policy, src->full_policy);
	WRITE_ONCE(dst->push_timeout_ns, src->push_timeout_ns);
	WRITE_ONCE(dst->pop_timeout_ns, src->pop_timeout_ns);
}

/**
 * eq_ring_init() - set up an empty ring
 * @r:      the ring
 * @cfg:    a configuration that passed eq_config_validate()
 * @budget: charged for the ring's memory (slots and queued messages) for
 *          as long as it lives; NULL for none
 *
 * Return: 0; -ENOBUFS if the slots would pass @budget's limit; -ENOMEM.
 * On error nothing is allocated or charged.
 */
int eq_ring_init(struct eq_ring *r, const struct elasticq_config *cfg,
		 struct eq_mem_budget *budget)
{
	int ret;

	memset(r, 0, sizeof(*r));
	r->budget = budget;
	ret = eq_budget_charge(r->budget, eq_slots_mem(cfg->initial_capacity));
	if (ret)
		return ret;
	r->slots = eq_slots_alloc(cfg->initial_capacity);
	if (!r->slots) {
		eq_budget_uncharge(r->budget, eq_slots_mem(cfg->initial_capacity));
		return -ENOMEM;
	}
	mutex_init(&r->lock);
	eq_config_store(&r->cfg, cfg);
	r->capacity = cfg->initial_capacity;
	return 0;
}

/**
 * eq_ring_destroy() - free the ring and every message still queued
 * @r: the ring; nobody else may use it any more, and nothing may be taken
 */
void eq_ring_destroy(struct eq_ring *r)
{
	u32 i, pos = r->head;

	WARN_ON(r->taken);
	for (i = 0; i < r->len; i++) {
		eq_msg_free(r->slots[pos]);
		pos = eq_ring_wrap(r, pos + 1);
	}
	r->len = 0;
	eq_budget_uncharge(r->budget, r->msg_mem + eq_slots_mem(r->capacity));
	r->msg_mem = 0;
	kvfree(r->slots);
	r->slots = NULL;
	mutex_destroy(&r->lock);
}

/**
 * eq_ring_max_msg() - the largest message the ring accepts now
 * @r: the ring (lockless: the answer may be stale, eq_ring_push() re-checks)
 *
 * Return: min(max_msg_size, max_bytes), since a message larger than
 * max_bytes could never be queued.
 */
size_t eq_ring_max_msg(const struct eq_ring *r)
{
	return min_t(u64, READ_ONCE(r->cfg.max_msg_size),
		     READ_ONCE(r->cfg.max_bytes));
}

static bool eq_ring_full_for(const struct eq_ring *r, u32 len)
{
	return eq_ring_occupancy(r) >= r->cfg.max_capacity ||
	       r->bytes + len > r->cfg.max_bytes;
}

/* Would @len fit if every queued (not taken) message were dropped? */
static bool eq_ring_room_after_drops(const struct eq_ring *r, u32 len)
{
	return r->taken < r->cfg.max_capacity &&
	       r->taken_bytes + len <= r->cfg.max_bytes;
}

static void eq_ring_drop_head(struct eq_ring *r)
{
	struct eq_msg *msg = r->slots[r->head];

	r->head = eq_ring_wrap(r, r->head + 1);
	WRITE_ONCE(r->len, r->len - 1);
	WRITE_ONCE(r->bytes, r->bytes - msg->len);
	r->msg_mem -= eq_msg_mem(msg);
	eq_budget_uncharge(r->budget, eq_msg_mem(msg));
	r->dropped++;
	eq_msg_free(msg);
}

/**
 * eq_ring_push() - append a message, growing the ring if it is full
 * @r:   the ring, with @r->lock held
 * @msg: the message; on success the ring owns it
 *
 * Under the drop-oldest policy a full ring first drops messages from the
 * head until @msg fits (they are counted in @r->dropped).
 *
 * Return: 0; -EAGAIN if the ring is full (at max_capacity or max_bytes) and
 * the caller may wait; -EMSGSIZE if @msg can never fit; -ENOBUFS if the
 * message, or the growth it needs, would pass the budget's limit; -ENOMEM if
 * the ring had to grow and could not.  On error the ring is unchanged and
 * the caller still owns @msg.
 */
int eq_ring_push(struct eq_ring *r, struct eq_msg *msg)
{
	size_t mem = eq_msg_mem(msg);
	int ret;

	lockdep_assert_held(&r->lock);

	if (msg->len > eq_ring_max_msg(r))
		return -EMSGSIZE;
	if (r->cfg.full_policy == ELASTICQ_FULL_DROP_OLDEST) {
		/* Drop nothing if even dropping everything queued is not enough. */
		if (!eq_ring_room_after_drops(r, msg->len))
			return -EAGAIN;
	} else if (eq_ring_full_for(r, msg->len)) {
		return -EAGAIN;
	}
	ret = eq_budget_charge(r->budget, mem);
	if (ret)
		return ret;
	/* Dropping frees a slot, so a push that drops never needs to grow. */
	while (eq_ring_full_for(r, msg->len))
		eq_ring_drop_head(r);
	if (eq_ring_occupancy(r) == r->capacity) {
		ret = eq_ring_resize(r, eq_grow_target(r));
		if (ret) {
			eq_budget_uncharge(r->budget, mem);
			return ret;
		}
		r->grows++;
	}
	msg->seq = r->enqueued;
	r->slots[eq_ring_wrap(r, r->head + r->len)] = msg;
	WRITE_ONCE(r->len, r->len + 1);
	WRITE_ONCE(r->bytes, r->bytes + msg->len);
	r->msg_mem += mem;
	r->enqueued++;
	r->high_water = max_t(u64, r->high_water, eq_ring_occupancy(r));
	return 0;
}

/**
 * eq_ring_count_rejected() - count a push given up because the ring was full
 * @r: the ring, with @r->lock held
 */
void eq_ring_count_rejected(struct eq_ring *r)
{
	lockdep_assert_held(&r->lock);
	r->rejected++;
}

/**
 * eq_ring_peek() - the oldest queued message, left in place
 * @r: the ring, with @r->lock held
 *
 * Return: the message, or NULL if none is queued.
 */
struct eq_msg *eq_ring_peek(struct eq_ring *r)
{
	lockdep_assert_held(&r->lock);
	return r->len ? r->slots[r->head] : NULL;
}

/**
 * eq_ring_take() - detach the oldest message for copying out
 * @r: the ring, with @r->lock held
 *
 * The message's slot stays reserved until eq_ring_commit() or
 * eq_ring_untake(); one of them must follow.
 *
 * Return: the message, or NULL if none is queued.
 */
struct eq_msg *eq_ring_take(struct eq_ring *r)
{
	struct eq_msg *msg = eq_ring_peek(r);

	if (!msg)
		return NULL;
	r->head = eq_ring_wrap(r, r->head + 1);
	WRITE_ONCE(r->len, r->len - 1);
	WRITE_ONCE(r->taken, r->taken + 1);
	WRITE_ONCE(r->taken_bytes, r->taken_bytes + msg->len);
	return msg;
}

/**
 * eq_ring_commit() - finish the removal of a message that was delivered
 * @r:   the ring, with @r->lock held
 * @msg: a message from eq_ring_take(); the caller frees it afterwards
 *
 * This is the pop the shrink rule speaks of: it may shrink the ring.
 */
void eq_ring_commit(struct eq_ring *r, struct eq_msg *msg)
{
	lockdep_assert_held(&r->lock);
	WRITE_ONCE(r->taken, r->taken - 1);
	WRITE_ONCE(r->taken_bytes, r->taken_bytes - msg->len);
	WRITE_ONCE(r->bytes, r->bytes - msg->len);
	r->msg_mem -= eq_msg_mem(msg);
	eq_budget_uncharge(r->budget, eq_msg_mem(msg));
	r->dequeued++;
	eq_ring_maybe_shrink(r);
}

/**
 * eq_ring_untake() - put a taken message back at the head
 * @r:   the ring, with @r->lock held
 * @msg: a message from eq_ring_take() that could not be delivered
 *
 * Never fails: the slot was reserved by eq_ring_take().
 */
void eq_ring_untake(struct eq_ring *r, struct eq_msg *msg)
{
	u32 i, pos, next;

	lockdep_assert_held(&r->lock);
	/*
	 * Back in front of everything queued after it, but behind messages
	 * other readers put back that are older still (their copies faulted
	 * after ours was taken): shift those one slot towards the new head.
	 * Only put-back messages can be older, so this walks at most as
	 * many slots as there are concurrent readers.
	 */
	r->head = eq_ring_wrap(r, r->head + r->capacity - 1);
	pos = r->head;
	for (i = 0; i < r->len; i++) {
		next = eq_ring_wrap(r, pos + 1);
		if (r->slots[next]->seq > msg->seq)
			break;
		r->slots[pos] = r->slots[next];
		pos = next;
	}
	r->slots[pos] = msg;
	WRITE_ONCE(r->taken, r->taken - 1);
	WRITE_ONCE(r->taken_bytes, r->taken_bytes - msg->len);
	WRITE_ONCE(r->len, r->len + 1);
}

/**
 * eq_ring_set_config() - change the configuration of a live ring
 * @r:   the ring, with @r->lock held
 * @cfg: the new configuration (@cfg->size is ignored)
 *
 * The capacity is brought within the new [min, max] bounds at once.
 *
 * Return: 0; -EINVAL if @cfg is invalid or changes the variant; -EBUSY if
 * more is queued than the new max_capacity or max_bytes allow; -ENOMEM if
 * the capacity had to change and could not.  On error nothing changed.
 */
int eq_ring_set_config(struct eq_ring *r, const struct elasticq_config *cfg)
{
	u32 capacity;
	int ret;

	lockdep_assert_held(&r->lock);
	ret = eq_config_validate(cfg);
	if (ret)
		return ret;
	if (cfg->variant != r->cfg.variant)
		return -EINVAL;
	if (eq_ring_occupancy(r) > cfg->max_capacity ||
	    r->bytes > cfg->max_bytes)
		return -EBUSY;
	capacity = clamp(r->capacity, cfg->min_capacity, cfg->max_capacity);
	if (capacity != r->capacity) {
		ret = eq_ring_resize(r, capacity);
		if (ret)
			return ret;
	}
	eq_config_store(&r->cfg, cfg);
	return 0;
}

/**
 * eq_ring_get_config() - copy out the configuration
 * @r:   the ring, with @r->lock held
 * @cfg: filled in whole, @cfg->size = sizeof(*cfg)
 */
void eq_ring_get_config(struct eq_ring *r, struct elasticq_config *cfg)
{
	lockdep_assert_held(&r->lock);
	*cfg = r->cfg;
	cfg->size = sizeof(*cfg);
}

/**
 * eq_ring_get_stats() - fill in the ring's part of the statistics
 * @r:  the ring, with @r->lock held
 * @st: zeroed by the caller; producers and consumers are the caller's
 */
void eq_ring_get_stats(struct eq_ring *r, struct elasticq_stats *st)
{
	lockdep_assert_held(&r->lock);
	st->size = sizeof(*st);
	st->len = eq_ring_occupancy(r);
	st->capacity = r->capacity;
	st->bytes = r->bytes;
	st->mem_bytes = eq_ring_mem(r);
	st->high_water = r->high_water;
	st->enqueued = r->enqueued;
	st->dequeued = r->dequeued;
	st->dropped = r->dropped;
	st->rejected = r->rejected;
	st->grows = r->grows;
	st->shrinks = r->shrinks;
}

/**
 * eq_ring_has_message() - lockless hint: is a message queued?
 * @r: the ring
 *
 * Return: true if a pop would probably find a message.
 */
bool eq_ring_has_message(const struct eq_ring *r)
{
	return READ_ONCE(r->len) != 0;
}

/**
 * eq_ring_has_room() - lockless hint: would a push of @len bytes succeed?
 * @r:   the ring
 * @len: payload length
 *
 * Return: true if a push would probably not find the ring full.
 */
bool eq_ring_has_room(const struct eq_ring *r, size_t len)
{
	u64 occ = READ_ONCE(r->taken), bytes = READ_ONCE(r->taken_bytes);

	/* Under drop-oldest only taken messages cannot make room. */
	if (READ_ONCE(r->cfg.full_policy) != ELASTICQ_FULL_DROP_OLDEST) {
		occ += READ_ONCE(r->len);
		bytes = READ_ONCE(r->bytes);
	}
	return occ < READ_ONCE(r->cfg.max_capacity) &&
	       bytes + len <= READ_ONCE(r->cfg.max_bytes);
}

/**
 * eq_ring_mem() - kernel memory the ring holds: slots and queued messages
 * @r: the ring, with @r->lock held
 *
 * Return: bytes, as charged to the ring's budget.
 */
u64 eq_ring_mem(const struct eq_ring *r)
{
	return r->msg_mem + eq_slots_mem(r->capacity);
}
