/* SPDX-License-Identifier: MIT */
/*
 * ring_model.h - a plain reference model of the queue core (kmod/eq_ring.c),
 * written from SPEC section 7 and the uapi header, not from the code.
 *
 * The queue is an array in FIFO order (q[0] is the head) and the taken
 * messages a second array in take order; no ring, no wrap, no slots.  The
 * capacity is only a number that follows the grow and shrink formulas.
 *
 * The model also mirrors the shim's allocator: every allocation the core (or
 * the harness) attempts goes through rm_alloc(), which counts it and says
 * whether eq_shim_fail_nth() makes it fail, so the harness can check both
 * the number of allocations per operation and the fault injection state.
 *
 * Decisions the SPEC leaves open, taken as the core and its unit tests do:
 *   - "occupancy" (queued + taken) is what grow, shrink, high_water and the
 *     capacity bounds see; a pop is the commit of a taken message;
 *   - a capacity change made by set_config is counted neither as a grow nor
 *     as a shrink;
 *   - a push refused under the reject policy is counted by the caller
 *     (eq_ring_count_rejected()), the ring itself counts nothing;
 *   - untake puts the message back in FIFO order: in front of everything
 *     queued after it, behind older messages other readers put back (ids
 *     grow in push order, so that is the first queued id above its own).
 *
 * Include after eq_ring.h (for the shim's u32/u64 and the uapi structs).
 */
#ifndef EQ_RING_MODEL_H
#define EQ_RING_MODEL_H

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#define RM_PTR_SIZE	sizeof(void *)	/* one slot of the ring */
#define RM_MSG_HDR	16		/* struct eq_msg: u32 len, u32 flags, u64 seq */

/*
 * What the kernel's allocator holds for a kvmalloc() of @size bytes on
 * x86_64: the next kmalloc size class up to 8 KiB (8, 16, 32, 64, 96, 128,
 * 192, then powers of two), then a power of two of 4 KiB pages up to
 * 4 MiB, and past that (vmalloc) whole pages.
 */
static inline u64 rm_kv_mem(u64 size)
{
	u64 c;

	if (size > (4u << 20))
		return (size + 4095) & ~4095ull;
	if (size > 64 && size <= 96)
		return 96;
	if (size > 128 && size <= 192)
		return 192;
	/* powers of two: the classes, then the page orders (8 KiB and up) */
	for (c = 8; c < size; c *= 2)
		;
	return c;
}

/* A message's memory: its header and payload as the allocator rounds it. */
static inline u64 rm_msg_mem(u32 len)
{
	return rm_kv_mem(RM_MSG_HDR + (u64)len);
}

/* The slot array's memory at capacity @cap. */
static inline u64 rm_slots_mem(u32 cap)
{
	return rm_kv_mem((u64)cap * RM_PTR_SIZE);
}

struct rm_msg {
	void *m;	/* the harness's struct eq_msg, compared by identity */
	u64 id;
	u32 len;
};

struct rm {
	struct elasticq_config cfg;
	u32 cap;
	struct rm_msg *q;	/* queued, head first */
	u32 len, q_size;
	struct rm_msg *taken;	/* taken, in take order */
	u32 ntaken, t_size;
	u64 bytes;		/* payload queued or taken */
	u64 mem;		/* rm_msg_mem() of those messages */
	u64 hw, enq, deq, dropped, rejected, grows, shrinks;
	long fail;		/* mirror of the shim's fail countdown */
	unsigned long allocs;	/* allocation attempts so far */
};

/* ---- SPEC section 7, integers only ------------------------------------- */

/* The validation table of SPEC 7 plus the uapi limits and zero rules. */
static inline bool rm_valid(const struct elasticq_config *c)
{
	unsigned int i;

	if (c->flags)
		return false;
	for (i = 0; i < 4; i++)
		if (c->reserved[i])
			return false;
	if (c->min_capacity < 1)
		return false;
	if (c->max_capacity < c->min_capacity ||
	    c->max_capacity > ELASTICQ_CAPACITY_LIMIT)
		return false;
	if (c->initial_capacity < c->min_capacity ||
	    c->initial_capacity > c->max_capacity)
		return false;
	if (c->growth_pct <= 100)
		return false;
	if (c->shrink_pct < 1 || c->shrink_pct > 99)
		return false;
	/* uapi: shrink_pct * growth_pct < 10000 */
	if ((unsigned long long)c->shrink_pct * c->growth_pct >= 10000)
		return false;
	if (c->max_msg_size < 1 || c->max_msg_size > ELASTICQ_MSG_SIZE_LIMIT)
		return false;
	if (c->max_bytes == 0)
		return false;
	if (c->variant != ELASTICQ_VARIANT_LOCKED &&
	    c->variant != ELASTICQ_VARIANT_LOCKFREE)
		return false;
	if (c->full_policy != ELASTICQ_FULL_BLOCK &&
	    c->full_policy != ELASTICQ_FULL_REJECT &&
	    c->full_policy != ELASTICQ_FULL_DROP_OLDEST)
		return false;
	/* uapi: the lock-free variant has no drop-oldest policy */
	if (c->variant == ELASTICQ_VARIANT_LOCKFREE &&
	    c->full_policy == ELASTICQ_FULL_DROP_OLDEST)
		return false;
	return true;
}

/* capacity = min(max, max(ceil(capacity x growth), len + 1)) */
static inline u32 rm_grow_to(u32 cap, u32 occ, const struct elasticq_config *c)
{
	u64 prod = (u64)cap * c->growth_pct;
	u64 t = prod / 100 + (prod % 100 ? 1 : 0);

	if (t < (u64)occ + 1)
		t = (u64)occ + 1;
	if (t > c->max_capacity)
		t = c->max_capacity;
	return (u32)t;
}

/* a pop that leaves len <= floor(capacity x threshold), capacity > min */
static inline bool rm_shrinks(u32 cap, u32 occ, const struct elasticq_config *c)
{
	return cap > c->min_capacity &&
	       (u64)occ <= (u64)cap * c->shrink_pct / 100;
}

/* capacity = max(floor(capacity / growth), len, min) */
static inline u32 rm_shrink_to(u32 cap, u32 occ, const struct elasticq_config *c)
{
	u64 t = (u64)cap * 100 / c->growth_pct;

	if (t < occ)
		t = occ;
	if (t < c->min_capacity)
		t = c->min_capacity;
	return (u32)t;
}

/* ---- the model --------------------------------------------------------- */

static inline void rm_init(struct rm *m, const struct elasticq_config *c)
{
	memset(m, 0, sizeof(*m));
	m->cfg = *c;
	m->cfg.size = sizeof(m->cfg);
	m->cap = c->initial_capacity;
}

static inline void rm_free(struct rm *m)
{
	free(m->q);
	free(m->taken);
	m->q = m->taken = NULL;
}

/* An allocation attempt: true if the shim's fault injection fails it. */
static inline bool rm_alloc(struct rm *m)
{
	m->allocs++;
	if (m->fail > 0) {
		m->fail--;
		return m->fail == 0;
	}
	return false;
}

static inline u32 rm_occ(const struct rm *m)
{
	return m->len + m->ntaken;
}

static inline u64 rm_taken_bytes(const struct rm *m)
{
	u64 b = 0;
	u32 i;

	for (i = 0; i < m->ntaken; i++)
		b += m->taken[i].len;
	return b;
}

static inline u64 rm_max_msg(const struct rm *m)
{
	return m->cfg.max_msg_size < m->cfg.max_bytes ?
	       m->cfg.max_msg_size : m->cfg.max_bytes;
}

static inline void rm_grow_array(struct rm_msg **a, u32 *size, u32 need)
{
	if (need <= *size)
		return;
	*size = need < 64 ? 64 : need * 2;
	*a = realloc(*a, *size * sizeof(**a));
	if (!*a)
		abort();
}

static inline void rm_insert(struct rm_msg **a, u32 *n, u32 *size, u32 at,
			     struct rm_msg e)
{
	rm_grow_array(a, size, *n + 1);
	memmove(&(*a)[at + 1], &(*a)[at], (*n - at) * sizeof(e));
	(*a)[at] = e;
	(*n)++;
}

static inline struct rm_msg rm_remove(struct rm_msg *a, u32 *n, u32 at)
{
	struct rm_msg e = a[at];

	memmove(&a[at], &a[at + 1], (*n - at - 1) * sizeof(e));
	(*n)--;
	return e;
}

/* Is the queue full for a message of @len bytes: no slot or no bytes left? */
static inline bool rm_full_for(const struct rm *m, u32 occ, u64 bytes, u32 len)
{
	return occ >= m->cfg.max_capacity || bytes + len > m->cfg.max_bytes;
}

/*
 * A push of @e.  Returns 0 or the errno the core must return; *dropped is
 * set to the number of messages drop-oldest removed (freed by the ring).
 * On error nothing changes (the caller still owns the message).
 */
static inline int rm_push(struct rm *m, struct rm_msg e, u32 *dropped)
{
	u32 occ = rm_occ(m), k = 0, i;
	u64 bytes = m->bytes;

	*dropped = 0;
	if (e.len > rm_max_msg(m))
		return -EMSGSIZE;
	if (m->cfg.full_policy == ELASTICQ_FULL_DROP_OLDEST) {
		/* drop from the head while full; taken ones cannot go */
		while (k < m->len && rm_full_for(m, occ, bytes, e.len)) {
			occ--;
			bytes -= m->q[k].len;
			k++;
		}
		/* dropping everything did not help: drop nothing at all */
		if (rm_full_for(m, occ, bytes, e.len))
			return -EAGAIN;
	}
	if (rm_full_for(m, occ, bytes, e.len))
		return -EAGAIN;
	if (occ == m->cap && rm_alloc(m))
		return -ENOMEM;		/* nothing dropped either */
	if (occ == m->cap) {
		m->cap = rm_grow_to(m->cap, occ, &m->cfg);
		m->grows++;
	}
	for (i = 0; i < k; i++) {
		struct rm_msg d = rm_remove(m->q, &m->len, 0);

		m->bytes -= d.len;
		m->mem -= rm_msg_mem(d.len);
		m->dropped++;
	}
	*dropped = k;
	rm_insert(&m->q, &m->len, &m->q_size, m->len, e);
	m->bytes += e.len;
	m->mem += rm_msg_mem(e.len);
	m->enq++;
	if (rm_occ(m) > m->hw)
		m->hw = rm_occ(m);
	return 0;
}

/* Would a push of @len find room (not -EAGAIN)?  For @len <= max_msg. */
static inline bool rm_has_room(const struct rm *m, u32 len)
{
	u32 occ = rm_occ(m), k;
	u64 bytes = m->bytes;

	if (m->cfg.full_policy == ELASTICQ_FULL_DROP_OLDEST)
		for (k = 0; k < m->len && rm_full_for(m, occ, bytes, len); k++) {
			occ--;
			bytes -= m->q[k].len;
		}
	return !rm_full_for(m, occ, bytes, len);
}

static inline bool rm_take(struct rm *m, struct rm_msg *out)
{
	if (!m->len)
		return false;
	*out = rm_remove(m->q, &m->len, 0);
	rm_insert(&m->taken, &m->ntaken, &m->t_size, m->ntaken, *out);
	return true;
}

static inline void rm_untake(struct rm *m, u32 idx)
{
	struct rm_msg e = rm_remove(m->taken, &m->ntaken, idx);
	u32 at = 0;

	while (at < m->len && m->q[at].id < e.id)
		at++;
	rm_insert(&m->q, &m->len, &m->q_size, at, e);
}

/* The pop proper: the commit of taken[idx], then maybe one shrink. */
static inline struct rm_msg rm_commit(struct rm *m, u32 idx)
{
	struct rm_msg e = rm_remove(m->taken, &m->ntaken, idx);

	m->bytes -= e.len;
	m->mem -= rm_msg_mem(e.len);
	m->deq++;
	/* an allocation failure only postpones the shrink */
	if (rm_shrinks(m->cap, rm_occ(m), &m->cfg) && !rm_alloc(m)) {
		m->cap = rm_shrink_to(m->cap, rm_occ(m), &m->cfg);
		m->shrinks++;
	}
	return e;
}

/*
 * What set_config must return if no allocation fails, and in *cap the
 * capacity it then leaves.  Changes nothing.
 */
static inline int rm_set_config_plan(const struct rm *m,
				     const struct elasticq_config *c, u32 *cap)
{
	*cap = m->cap;
	if (!rm_valid(c) || c->variant != m->cfg.variant)
		return -EINVAL;
	if (rm_occ(m) > c->max_capacity || m->bytes > c->max_bytes)
		return -EBUSY;
	if (*cap < c->min_capacity)
		*cap = c->min_capacity;
	if (*cap > c->max_capacity)
		*cap = c->max_capacity;
	return 0;
}

static inline int rm_set_config(struct rm *m, const struct elasticq_config *c)
{
	u32 cap;
	int err = rm_set_config_plan(m, c, &cap);

	if (err)
		return err;
	if (cap != m->cap && rm_alloc(m))
		return -ENOMEM;
	m->cap = cap;
	m->cfg = *c;
	m->cfg.size = sizeof(m->cfg);
	return 0;
}

#endif /* EQ_RING_MODEL_H */
