// SPDX-License-Identifier: MIT
/*
 * ring_fuzz.c - libFuzzer target for the queue core (kmod/eq_ring.c), built
 * in userspace over the shim in selftests/core/shim and checked operation
 * by operation against the plain model in ring_model.h.
 *
 * Build and run from the top of the tree (selftests/fuzz/run.sh does this):
 *
 *   clang-14 -std=gnu11 -O1 -g -Wall -Wextra -Werror \
 *     -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
 *     -D_GNU_SOURCE -Iselftests/core/shim -Iuapi -Ikmod \
 *     -o build/fuzz/ring_fuzz kmod/eq_ring.c selftests/core/shim/shim.c \
 *     selftests/fuzz/ring_fuzz.c -lpthread
 *
 * or, without libFuzzer, as a replay program for any compiler
 * (add -DRING_FUZZ_REPLAY, drop "fuzzer," from -fsanitize):
 *
 *   build/fuzz/ring_replay FILE-OR-DIR...
 *
 * RING_FUZZ_TRACE=1 in the environment prints every operation.
 *
 * Input format (bytes past the end read as 0):
 *   config   see rf_cfg(); must pass eq_config_validate() exactly when the
 *            model's validator says so, else the input ends there
 *   u8       bit 0: make eq_ring_init() fail once first (-ENOMEM)
 *   ops...   an opcode byte (mod OP_NR) and its arguments, see rf_op()
 *
 * After every operation: the return code, the statistics (capacity,
 * counters, bytes, mem_bytes), the allocations attempted, the shim's fault
 * injection countdown, live allocations and bytes, and no WARN_ON; after
 * every top-level operation also the queued messages in order, the taken
 * count and bytes, the config, peek and the lockless hints.  At the end all
 * taken messages are put back, the ring destroyed, and nothing may be left.
 */
#include <dirent.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>

#include "eq_ring.h"
#include "ring_model.h"

/* Work bounds per input, so that every input runs in milliseconds. */
#ifndef RF_CAP_LIMIT
#define RF_CAP_LIMIT		(1u << 20)	/* largest capacity allocated */
#endif
#define RF_PAYLOAD_BUDGET	(4u << 20)	/* payload bytes allocated */
#define RF_OP_BUDGET		20000		/* single operations */
#define RF_LEN_CAP		(ELASTICQ_MSG_SIZE_LIMIT + 1)

enum {
	OP_PUSH, OP_POP, OP_TAKE, OP_UNTAKE, OP_COMMIT, OP_SETCFG,
	OP_TWEAK, OP_FAIL, OP_PUSH_BURST, OP_POP_BURST, OP_NR
};

static const char *const op_names[OP_NR] = {
	"push", "pop", "take", "untake", "commit", "set_config",
	"tweak_config", "fail_nth", "push_burst", "pop_burst",
};

struct rf {
	struct eq_ring r;
	struct rm m;
	const u8 *p;
	size_t n, off;
	u64 next_id;
	u64 payload;		/* payload bytes allocated so far */
	unsigned long ops;	/* single operations so far */
	unsigned long calls0;	/* eq_shim_alloc_calls() at the start */
};

static bool rf_trace;
static const char *rf_input;	/* the replayed file, if known */
static unsigned long rf_opno;
static const char *rf_opname = "init";

/* ---- reporting ---------------------------------------------------------- */

static void __attribute__((noreturn, format(printf, 4, 5)))
rf_fail(const char *file, int line, const char *cond, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "ring_fuzz: MISMATCH at op #%lu (%s), %s:%d: %s\n",
		rf_opno, rf_opname, file, line, cond);
	if (rf_input)
		fprintf(stderr, "ring_fuzz:   input %s\n", rf_input);
	if (fmt && fmt[strspn(fmt, " ")]) {
		fprintf(stderr, "ring_fuzz:   ");
		va_start(ap, fmt);
		vfprintf(stderr, fmt, ap);
		va_end(ap);
		fprintf(stderr, "\n");
	}
	fflush(stderr);
	__builtin_trap();
}

#define CHECK(cond, ...) do {						\
	if (!(cond))							\
		rf_fail(__FILE__, __LINE__, #cond, " " __VA_ARGS__);	\
} while (0)

/* core value first, model value second */
#define CHECK_EQ(core, model, what) do {				\
	unsigned long long __c = (unsigned long long)(core);		\
	unsigned long long __m = (unsigned long long)(model);		\
	if (__c != __m)							\
		rf_fail(__FILE__, __LINE__, what,			\
			"core %llu (%lld) != model %llu (%lld)",	\
			__c, (long long)__c, __m, (long long)__m);	\
} while (0)

#define TRACE(...) do {							\
	if (rf_trace)							\
		fprintf(stderr, __VA_ARGS__);				\
} while (0)

/* ---- input -------------------------------------------------------------- */

static bool rf_eof(const struct rf *f)
{
	return f->off >= f->n;
}

static u8 rd8(struct rf *f)
{
	return f->off < f->n ? f->p[f->off++] : 0;
}

static u16 rd16(struct rf *f)
{
	u16 v = rd8(f);

	return v | (u16)rd8(f) << 8;
}

static u32 rd32(struct rf *f)
{
	u32 v = rd16(f);

	return v | (u32)rd16(f) << 16;
}

static u64 rd64(struct rf *f)
{
	u64 v = rd32(f);

	return v | (u64)rd32(f) << 32;
}

/* ---- messages ----------------------------------------------------------- */

/*
 * The payload of message @id: its id (little-endian) in the first bytes, then
 * a byte that depends on the id.  memset() keeps megabyte messages cheap.
 */
static u8 pat(u64 id)
{
	return (u8)(id * 131 + (id >> 8) + 1);
}

static void fill_payload(struct eq_msg *msg, u64 id)
{
	u32 i;

	memset(msg->data, pat(id), msg->len);
	for (i = 0; i < msg->len && i < 8; i++)
		msg->data[i] = (u8)(id >> (8 * i));
}

/* The id bytes, and the pattern in the first and the last 64 bytes. */
static void check_payload(const struct eq_msg *msg, const struct rm_msg *e)
{
	u32 i;

	CHECK_EQ(msg->len, e->len, "message length");
	CHECK_EQ(msg->flags, 0, "message flags");
	for (i = 0; i < e->len; i++) {
		u8 want;

		if (i == 64 && e->len > 128)
			i = e->len - 64;
		want = i < 8 ? (u8)(e->id >> (8 * i)) : pat(e->id);
		if (msg->data[i] != want)
			CHECK_EQ(msg->data[i], want, "payload byte");
	}
}

/* ---- checks ------------------------------------------------------------- */

static void check_stats(struct rf *f)
{
	struct rm *m = &f->m;
	struct elasticq_stats s;
	u64 mem = m->mem + rm_slots_mem(m->cap);
	size_t i;

	memset(&s, 0, sizeof(s));	/* the core fills in its part */
	eq_ring_get_stats(&f->r, &s);
	CHECK_EQ(s.size, sizeof(s), "stats.size");
	CHECK_EQ(s.flags, 0, "stats.flags");
	CHECK_EQ(s.len, rm_occ(m), "stats.len");
	CHECK_EQ(s.capacity, m->cap, "stats.capacity");
	CHECK_EQ(s.bytes, m->bytes, "stats.bytes");
	CHECK_EQ(s.mem_bytes, mem, "stats.mem_bytes");
	CHECK_EQ(s.high_water, m->hw, "stats.high_water");
	CHECK_EQ(s.enqueued, m->enq, "stats.enqueued");
	CHECK_EQ(s.dequeued, m->deq, "stats.dequeued");
	CHECK_EQ(s.dropped, m->dropped, "stats.dropped");
	CHECK_EQ(s.rejected, m->rejected, "stats.rejected");
	CHECK_EQ(s.grows, m->grows, "stats.grows");
	CHECK_EQ(s.shrinks, m->shrinks, "stats.shrinks");
	CHECK_EQ(s.producers + s.consumers, 0, "stats.producers/consumers");
	for (i = 0; i < ARRAY_SIZE(s.reserved); i++)
		CHECK_EQ(s.reserved[i], 0, "stats.reserved");

	/* the shim: what the core allocated, attempted, and was told to fail */
	CHECK_EQ(eq_shim_alloc_calls() - f->calls0, m->allocs,
		 "allocation attempts");
	CHECK_EQ(__atomic_load_n(&eq_shim_fail_countdown, __ATOMIC_RELAXED),
		 m->fail, "fault injection countdown");
	CHECK_EQ(eq_shim_live_bytes(), mem, "live bytes (shim)");
	CHECK_EQ(eq_shim_live_allocs(), 1 + m->len + m->ntaken,
		 "live allocations (shim)");
	CHECK_EQ(eq_shim_warnings(), 0, "WARN_ON count");
}

static void check_full(struct rf *f)
{
	struct eq_ring *r = &f->r;
	struct rm *m = &f->m;
	struct elasticq_config c;
	u32 i;

	check_stats(f);
	/* contents, in order (white box: the slots from the head) */
	CHECK_EQ(r->capacity, m->cap, "ring capacity");
	CHECK_EQ(r->len, m->len, "queued messages");
	CHECK_EQ(r->taken, m->ntaken, "taken messages");
	CHECK_EQ(r->taken_bytes, rm_taken_bytes(m), "taken bytes");
	CHECK(r->head < r->capacity, "head %u capacity %u", r->head,
	      r->capacity);
	for (i = 0; i < m->len; i++) {
		struct eq_msg *msg = r->slots[(r->head + (u64)i) % r->capacity];

		CHECK(msg == m->q[i].m, "queue position %u of %u: core %p "
		      "model %p (id %llu)", i, m->len, (void *)msg, m->q[i].m,
		      (unsigned long long)m->q[i].id);
		CHECK_EQ(msg->len, m->q[i].len, "queued message length");
	}
	CHECK(eq_ring_peek(r) == (m->len ? m->q[0].m : NULL));
	CHECK_EQ(eq_ring_has_message(r), m->len != 0, "has_message");
	CHECK_EQ(eq_ring_max_msg(r), rm_max_msg(m), "max_msg");
	CHECK_EQ(eq_ring_has_room(r, 0), rm_has_room(m, 0), "has_room(0)");

	memset(&c, 0xa5, sizeof(c));
	eq_ring_get_config(r, &c);
	if (memcmp(&c, &m->cfg, sizeof(c))) {
		CHECK_EQ(c.size, m->cfg.size, "config.size");
		CHECK_EQ(c.min_capacity, m->cfg.min_capacity, "config.min");
		CHECK_EQ(c.max_capacity, m->cfg.max_capacity, "config.max");
		CHECK_EQ(c.initial_capacity, m->cfg.initial_capacity,
			 "config.initial");
		CHECK_EQ(c.growth_pct, m->cfg.growth_pct, "config.growth");
		CHECK_EQ(c.shrink_pct, m->cfg.shrink_pct, "config.shrink");
		CHECK_EQ(c.max_msg_size, m->cfg.max_msg_size, "config.msg");
		CHECK_EQ(c.max_bytes, m->cfg.max_bytes, "config.max_bytes");
		CHECK_EQ(c.full_policy, m->cfg.full_policy, "config.policy");
		CHECK(0, "config differs in another field");
	}
}

/* ---- configurations ----------------------------------------------------- */

static void cfg_set_field(struct elasticq_config *c, u8 field, u64 v)
{
	switch (field % 16) {
	case 0: c->flags = (u32)v; break;
	case 1: case 2: case 3: case 4: c->reserved[field % 16 - 1] = v; break;
	case 5: c->variant = (u32)v; break;
	case 6: c->min_capacity = (u32)v; break;
	case 7: c->max_capacity = (u32)v; break;
	case 8: c->initial_capacity = (u32)v; break;
	case 9: c->growth_pct = (u32)v; break;
	case 10: c->shrink_pct = (u32)v; break;
	case 11: c->max_msg_size = (u32)v; break;
	case 12: c->max_bytes = v; break;
	case 13: c->full_policy = (u32)v; break;
	case 14: c->push_timeout_ns = v; break;
	case 15: c->size = (u32)v; break;
	}
}

/*
 * A whole configuration, 12 bytes and more:
 *   u8 min, u16 span (max = min + span), u16 (initial = min + it % (span+1)),
 *   u8 (growth = 100 + it), u8 (shrink = it & 127), u16 max_msg_size,
 *   u16 max_bytes (0xffff: ~0), u8 policy (& 3; bit 2: push timeout none,
 *   bit 3: pop timeout none), then while a byte has bit 7 (at most 4):
 *   set field (byte & 15) to a raw u64 (cfg_set_field), bit 6: u32 only.
 * Most are valid; 0 bytes, growth 100, shrink 0 or >= 100, policy 3 and
 * shrink x growth >= 10000 are the common invalid ones.
 */
static void rf_cfg(struct rf *f, struct elasticq_config *c)
{
	u32 span, pol;
	u16 mb;
	u8 x;
	int i;

	memset(c, 0, sizeof(*c));
	c->size = sizeof(*c);
	c->min_capacity = rd8(f);
	span = rd16(f);
	c->max_capacity = c->min_capacity + span;
	c->initial_capacity = c->min_capacity + rd16(f) % (span + 1);
	c->growth_pct = 100 + rd8(f);
	c->shrink_pct = rd8(f) & 127;
	c->max_msg_size = rd16(f);
	mb = rd16(f);
	c->max_bytes = mb == 0xffff ? ~0ull : mb;
	pol = rd8(f);
	c->full_policy = pol & 3;
	c->push_timeout_ns = pol & 4 ? ELASTICQ_TIMEOUT_NONE : pol * 1000ull;
	c->pop_timeout_ns = pol & 8 ? ELASTICQ_TIMEOUT_NONE : 0;
	c->variant = ELASTICQ_VARIANT_LOCKED;
	for (i = 0; i < 4 && ((x = rd8(f)) & 0x80); i++)
		cfg_set_field(c, x & 15, x & 0x40 ? rd32(f) : rd64(f));
}

/*
 * One field of the current configuration changed, 3 bytes:
 *   u8 sel: field (sel & 15), bit 7: relative, bit 6: fix the rest up
 *   s16/u16 value.  Relative values are added to a base that matters:
 *   min -> capacity, max and min=max -> occupancy, max_bytes -> bytes.
 * Fields: 0 min, 1 max, 2 initial, 3 growth, 4 shrink, 5 max_msg_size,
 * 6 max_bytes, 7 policy, 8 min = max = initial (a forced resize), 9 flags,
 * 10 reserved, 11 variant, 12 timeouts, 13.. raw (cfg_set_field).
 */
static void rf_tweak(struct rf *f, struct elasticq_config *c)
{
	const struct rm *m = &f->m;
	u8 sel = rd8(f);
	u16 raw = rd16(f);
	bool rel = sel & 0x80;
	s64 d = (int16_t)raw, v = raw;
	u32 cap;

	*c = m->cfg;
	switch (sel & 15) {
	case 0: c->min_capacity = rel ? m->cap + d : v; break;
	case 1: c->max_capacity = rel ? rm_occ(m) + d : v; break;
	case 2: c->initial_capacity = rel ? c->initial_capacity + d : v; break;
	case 3: c->growth_pct = rel ? c->growth_pct + d : v; break;
	case 4: c->shrink_pct = rel ? c->shrink_pct + d : v; break;
	case 5: c->max_msg_size = rel ? c->max_msg_size + d : v; break;
	case 6: c->max_bytes = rel ? (s64)m->bytes + d : v; break;
	case 7: c->full_policy = rel ? c->full_policy + d : v; break;
	case 8:
		cap = rel ? rm_occ(m) + d : v;
		c->min_capacity = c->max_capacity = c->initial_capacity = cap;
		break;
	case 9: c->flags = raw; break;
	case 10: c->reserved[raw & 3] = raw >> 2; break;
	case 11: c->variant = raw; break;
	case 12:
		c->push_timeout_ns = raw & 1 ? ELASTICQ_TIMEOUT_NONE : raw;
		c->pop_timeout_ns = raw & 2 ? ELASTICQ_TIMEOUT_NONE : raw;
		break;
	default: cfg_set_field(c, raw & 15, raw >> 4); break;
	}
	if (sel & 0x40) {
		if (c->max_capacity < c->min_capacity)
			c->max_capacity = c->min_capacity;
		if (c->initial_capacity < c->min_capacity)
			c->initial_capacity = c->min_capacity;
		if (c->initial_capacity > c->max_capacity)
			c->initial_capacity = c->max_capacity;
		if (c->growth_pct > 100 &&
		    (u64)c->shrink_pct * c->growth_pct >= 10000)
			c->shrink_pct = 9999 / c->growth_pct;
	}
}

/* eq_config_validate() against the model's validator. */
static void check_validate(const struct elasticq_config *c)
{
	int want = rm_valid(c) ? 0 : -EINVAL;

	if (eq_config_validate(c) != want)
		CHECK_EQ(eq_config_validate(c), want, "eq_config_validate "
			 "(min initial max growth shrink msg bytes policy)");
}

/* ---- operations --------------------------------------------------------- */

static u32 cap_len(u64 len)
{
	return len > RF_LEN_CAP ? RF_LEN_CAP : (u32)len;
}

/* A message length: small, or one from the edges of what fits. */
static u32 rf_len(struct rf *f)
{
	const struct rm *m = &f->m;
	u64 room = m->cfg.max_bytes >= m->bytes ?
		   m->cfg.max_bytes - m->bytes : 0;
	u8 b = rd8(f);

	switch (b) {
	case 250: return rd16(f);
	case 251: return cap_len(rm_max_msg(m));
	case 252: return cap_len(rm_max_msg(m) + 1);
	case 253: return cap_len(room);
	case 254: return cap_len(room + 1);
	case 255: return cap_len((u64)rd16(f) * 16);
	default: return b;
	}
}

static bool rf_budget(struct rf *f)
{
	return ++f->ops <= RF_OP_BUDGET;
}

static void do_push(struct rf *f, u32 len)
{
	struct rm *m = &f->m;
	struct rm_msg e = { .len = len, .id = f->next_id };
	struct eq_msg *msg;
	bool fails, room;
	u32 dropped;
	int want, got;

	if (f->payload + len > RF_PAYLOAD_BUDGET || !rf_budget(f))
		return;
	/* a grow beyond what this harness allocates: skip */
	if (rm_occ(m) == m->cap &&
	    rm_grow_to(m->cap, rm_occ(m), &m->cfg) > RF_CAP_LIMIT)
		return;
	f->payload += len;
	f->next_id++;
	fails = rm_alloc(m);
	msg = eq_msg_alloc(len);
	CHECK((msg == NULL) == fails, "eq_msg_alloc(%u) %s", len,
	      fails ? "should have failed" : "failed");
	TRACE("  push id %llu len %u%s\n", (unsigned long long)e.id, len,
	      msg ? "" : ": allocation failed");
	if (!msg)
		return;
	fill_payload(msg, e.id);
	e.m = msg;

	room = len <= rm_max_msg(m) ? rm_has_room(m, len) : false;
	if (len <= rm_max_msg(m))
		CHECK_EQ(eq_ring_has_room(&f->r, len), room, "has_room(len)");
	want = rm_push(m, e, &dropped);
	got = eq_ring_push(&f->r, msg);
	TRACE("    -> %d (model %d), dropped %u, capacity %u\n", got, want,
	      dropped, m->cap);
	CHECK_EQ(got, want, "eq_ring_push return");
	if (got == -EAGAIN && m->cfg.full_policy == ELASTICQ_FULL_REJECT) {
		eq_ring_count_rejected(&f->r);
		m->rejected++;
	}
	if (got)
		eq_msg_free(msg);
	check_stats(f);
}

static void deliver(struct rf *f, struct eq_msg *msg, u32 idx)
{
	struct rm_msg e;

	CHECK(msg == f->m.taken[idx].m, "commit of the wrong message");
	check_payload(msg, &f->m.taken[idx]);
	e = rm_commit(&f->m, idx);
	eq_ring_commit(&f->r, msg);
	TRACE("  commit id %llu len %u -> capacity %u\n",
	      (unsigned long long)e.id, e.len, f->m.cap);
	eq_msg_free(msg);
	check_stats(f);
}

/* eq_ring_take() against the model; the message or NULL. */
static struct eq_msg *do_take(struct rf *f)
{
	struct eq_msg *msg = eq_ring_take(&f->r);
	struct rm_msg e;
	bool some = rm_take(&f->m, &e);

	CHECK((msg != NULL) == some, "take: core %p, model %s", (void *)msg,
	      some ? "a message" : "empty");
	if (msg) {
		CHECK(msg == e.m, "take: core %p model %p (id %llu)",
		      (void *)msg, e.m, (unsigned long long)e.id);
		check_payload(msg, &e);
		TRACE("  take id %llu\n", (unsigned long long)e.id);
	}
	check_stats(f);
	return msg;
}

/* take and commit; false if the queue was empty */
static bool do_pop(struct rf *f)
{
	struct eq_msg *msg;

	if (!rf_budget(f))
		return false;
	msg = do_take(f);
	if (msg)
		deliver(f, msg, f->m.ntaken - 1);
	return msg != NULL;
}

static void do_untake(struct rf *f, u32 idx)
{
	struct rm_msg e = f->m.taken[idx];

	TRACE("  untake id %llu (taken #%u of %u)\n",
	      (unsigned long long)e.id, idx, f->m.ntaken);
	eq_ring_untake(&f->r, e.m);
	rm_untake(&f->m, idx);
	check_stats(f);
}

static void do_set_config(struct rf *f, const struct elasticq_config *c)
{
	u32 cap;
	int want, got;

	check_validate(c);
	want = rm_set_config_plan(&f->m, c, &cap);
	TRACE("  set_config min %u init %u max %u growth %u shrink %u msg %u "
	      "bytes %llu policy %u flags %u variant %u -> plan %d cap %u\n",
	      c->min_capacity, c->initial_capacity, c->max_capacity,
	      c->growth_pct, c->shrink_pct, c->max_msg_size,
	      (unsigned long long)c->max_bytes, c->full_policy, c->flags,
	      c->variant, want, cap);
	if (!want && cap != f->m.cap && cap > RF_CAP_LIMIT)
		return;
	want = rm_set_config(&f->m, c);
	got = eq_ring_set_config(&f->r, c);
	TRACE("    -> %d (model %d), capacity %u\n", got, want, f->m.cap);
	CHECK_EQ(got, want, "eq_ring_set_config return");
	check_stats(f);
}

/*
 * Opcodes and arguments:
 *   0 push      len (rf_len)
 *   1 pop       -                  (take + commit)
 *   2 take      -
 *   3 untake    u8 i               (taken message i % taken, at the head)
 *   4 commit    u8 i               (taken message i % taken)
 *   5 set_config  config (rf_cfg)
 *   6 set_config  tweak (rf_tweak)
 *   7 fail_nth  u8 n               (the n-th next allocation fails)
 *   8 push_burst u8 count-1, len (rf_len), u8 step: len + (k * step) % 16
 *   9 pop_burst u8 count-1
 */
static void rf_op(struct rf *f)
{
	struct elasticq_config c;
	u8 op = rd8(f) % OP_NR;
	u32 k, n, len, step;

	rf_opname = op_names[op];
	TRACE("op #%lu %s\n", rf_opno, rf_opname);
	switch (op) {
	case OP_PUSH:
		do_push(f, rf_len(f));
		break;
	case OP_POP:
		do_pop(f);
		break;
	case OP_TAKE:
		if (rf_budget(f))
			do_take(f);
		break;
	case OP_UNTAKE:
		k = rd8(f);
		if (f->m.ntaken && rf_budget(f))
			do_untake(f, k % f->m.ntaken);
		break;
	case OP_COMMIT:
		k = rd8(f);
		if (f->m.ntaken && rf_budget(f)) {
			k %= f->m.ntaken;
			deliver(f, f->m.taken[k].m, k);
		}
		break;
	case OP_SETCFG:
		rf_cfg(f, &c);
		if (rf_budget(f))
			do_set_config(f, &c);
		break;
	case OP_TWEAK:
		rf_tweak(f, &c);
		if (rf_budget(f))
			do_set_config(f, &c);
		break;
	case OP_FAIL:
		n = rd8(f);
		TRACE("  fail_nth %u\n", n);
		eq_shim_fail_nth(n);
		f->m.fail = n;
		break;
	case OP_PUSH_BURST:
		n = rd8(f) + 1;
		len = rf_len(f);
		step = rd8(f);
		for (k = 0; k < n && f->ops < RF_OP_BUDGET; k++)
			do_push(f, cap_len(len + (k * step) % 16));
		break;
	case OP_POP_BURST:
		n = rd8(f) + 1;
		for (k = 0; k < n && do_pop(f); k++)
			;
		break;
	}
	check_full(f);
}

/* ---- one input ---------------------------------------------------------- */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static bool once;
	static struct rf rf;
	struct rf *f = &rf;
	struct elasticq_config c;
	int got, want;
	u8 flags;

	if (!once) {
		once = true;
		rf_trace = getenv("RING_FUZZ_TRACE") != NULL;
	}
	memset(f, 0, sizeof(*f));
	f->p = data;
	f->n = size;
	rf_opno = 0;
	rf_opname = "init";
	eq_shim_fail_nth(0);
	CHECK_EQ(eq_shim_live_allocs(), 0, "live allocations before init");
	CHECK_EQ(eq_shim_warnings(), 0, "WARN_ON count before init");
	f->calls0 = eq_shim_alloc_calls();

	rf_cfg(f, &c);
	flags = rd8(f);
	check_validate(&c);
	TRACE("init min %u init %u max %u growth %u shrink %u msg %u bytes "
	      "%llu policy %u: %s\n", c.min_capacity, c.initial_capacity,
	      c.max_capacity, c.growth_pct, c.shrink_pct, c.max_msg_size,
	      (unsigned long long)c.max_bytes, c.full_policy,
	      rm_valid(&c) ? "valid" : "invalid");
	if (!rm_valid(&c) || c.initial_capacity > RF_CAP_LIMIT)
		return 0;
	rm_init(&f->m, &c);

	if (flags & 1) {
		eq_shim_fail_nth(1);
		f->m.fail = 1;
		CHECK(rm_alloc(&f->m));
		got = eq_ring_init(&f->r, &c, NULL);
		CHECK_EQ(got, -ENOMEM, "eq_ring_init with a failing allocation");
		CHECK_EQ(eq_shim_live_allocs(), 0, "live allocations after a "
			 "failed init");
	}
	want = rm_alloc(&f->m) ? -ENOMEM : 0;
	got = eq_ring_init(&f->r, &c, NULL);
	CHECK_EQ(got, want, "eq_ring_init");
	mutex_lock(&f->r.lock);
	check_full(f);

	while (!rf_eof(f) && f->ops < RF_OP_BUDGET) {
		rf_opno++;
		rf_op(f);
	}

	/* put back whatever is taken, newest first, so the order is kept */
	rf_opname = "teardown";
	while (f->m.ntaken)
		do_untake(f, f->m.ntaken - 1);
	check_full(f);
	eq_shim_fail_nth(0);
	mutex_unlock(&f->r.lock);
	eq_ring_destroy(&f->r);
	CHECK_EQ(eq_shim_live_allocs(), 0, "live allocations after destroy");
	CHECK_EQ(eq_shim_live_bytes(), 0, "live bytes after destroy");
	CHECK_EQ(eq_shim_warnings(), 0, "WARN_ON count after destroy");
	rm_free(&f->m);
	return 0;
}

/* ---- replay without libFuzzer ------------------------------------------- */

#ifdef RING_FUZZ_REPLAY
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_UNDEFINED__)
#define RF_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(undefined_behavior_sanitizer)
#define RF_SANITIZED 1
#endif
#endif
#ifdef RF_SANITIZED
#include <sanitizer/common_interface_defs.h>

static void replay_died(void)
{
	if (rf_input)
		fprintf(stderr, "ring_replay: died on %s\n", rf_input);
}
#endif

static unsigned long replayed;

static int replay_file(const char *path)
{
	FILE *fp = fopen(path, "rb");
	u8 *buf = NULL;
	size_t n = 0, cap = 0, got;

	if (!fp) {
		perror(path);
		return 1;
	}
	do {
		if (n == cap) {
			cap = cap ? cap * 2 : 4096;
			buf = realloc(buf, cap);
			if (!buf)
				abort();
		}
		got = fread(buf + n, 1, cap - n, fp);
		n += got;
	} while (got);
	fclose(fp);
	if (rf_trace)
		fprintf(stderr, "== %s (%zu bytes)\n", path, n);
	/* a copy of exactly n bytes, so ASan sees reads past the end */
	{
		u8 *in = malloc(n ? n : 1);
		struct timespec t0, t1;

		if (!in)
			abort();
		memcpy(in, buf, n);
		rf_input = path;
		clock_gettime(CLOCK_MONOTONIC, &t0);
		LLVMFuzzerTestOneInput(in, n);
		clock_gettime(CLOCK_MONOTONIC, &t1);
		rf_input = NULL;
		if (getenv("RING_FUZZ_TIME"))
			fprintf(stderr, "%8.3f ms %s\n",
				(t1.tv_sec - t0.tv_sec) * 1e3 +
				(t1.tv_nsec - t0.tv_nsec) / 1e6, path);
		free(in);
	}
	free(buf);
	replayed++;
	return 0;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int replay_path(const char *path)
{
	struct dirent *de;
	struct stat st;
	char **names = NULL;
	size_t n = 0, i;
	int ret = 0;
	DIR *d;

	if (stat(path, &st)) {
		perror(path);
		return 1;
	}
	if (!S_ISDIR(st.st_mode))
		return replay_file(path);
	d = opendir(path);
	if (!d) {
		perror(path);
		return 1;
	}
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		names = realloc(names, (n + 1) * sizeof(*names));
		if (!names || asprintf(&names[n], "%s/%s", path,
				       de->d_name) < 0)
			abort();
		n++;
	}
	closedir(d);
	qsort(names, n, sizeof(*names), cmp_str);
	for (i = 0; i < n; i++) {
		ret |= replay_path(names[i]);
		free(names[i]);
	}
	free(names);
	return ret;
}

int main(int argc, char **argv)
{
	int i, ret = 0;

	if (argc < 2) {
		fprintf(stderr, "usage: %s FILE-OR-DIR...\n", argv[0]);
		return 2;
	}
#ifdef RF_SANITIZED
	__sanitizer_set_death_callback(replay_died);
#endif
	for (i = 1; i < argc; i++)
		ret |= replay_path(argv[i]);
	printf("ring_replay: %lu inputs replayed%s\n", replayed,
	       ret ? ", some unreadable" : "");
	return ret;
}
#endif
