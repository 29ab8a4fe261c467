/* SPDX-License-Identifier: MIT */
/*
 * eq_shim.h - the few kernel APIs the queue core (kmod/eq_ring.[ch]) uses,
 * mapped onto libc, pthreads and __atomic builtins, so the core builds and
 * runs in userspace under ASan/UBSan/TSan and libFuzzer.
 *
 * Every shim header under linux/ just includes this file.  Extras for tests:
 *   - WARN_ON() prints and counts; eq_shim_warnings() must stay 0.
 *   - lockdep_assert_held() WARNs unless the calling thread holds the mutex.
 *   - eq_shim_fail_nth(n): the n-th next allocation fails (n = 1: the next
 *     one); 0 disarms.  One-shot.
 *   - eq_shim_live_allocs()/eq_shim_live_bytes(): what is still allocated
 *     through the shim, in bytes the kernel's allocator would really hold
 *     (kmalloc size classes, see kmalloc_size_roundup()); the memory handed
 *     out is still exactly the size asked for, so ASan sees overruns;
 *     eq_shim_alloc_calls(): allocation attempts so far.
 */
#ifndef EQ_SHIM_H
#define EQ_SHIM_H

#include <linux/types.h>	/* the shim's: system __u32/__u64, then us */

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

typedef __u8 u8;
typedef __u16 u16;
typedef __u32 u32;
typedef __u64 u64;
typedef __s32 s32;
typedef __s64 s64;
typedef unsigned int gfp_t;

/* compiler.h */
#define likely(x)	__builtin_expect(!!(x), 1)
#define unlikely(x)	__builtin_expect(!!(x), 0)
#define READ_ONCE(x)	__atomic_load_n(&(x), __ATOMIC_RELAXED)
#define WRITE_ONCE(x, val) \
	do { __atomic_store_n(&(x), (val), __ATOMIC_RELAXED); } while (0)

/* bug.h */
void eq_shim_warn(const char *file, int line, const char *cond);
unsigned long eq_shim_warnings(void);
void eq_shim_reset_warnings(void);
#define WARN_ON(cond) ({						\
	bool __eq_warn = !!(cond);					\
	if (unlikely(__eq_warn))					\
		eq_shim_warn(__FILE__, __LINE__, #cond);		\
	__eq_warn;							\
})
#define WARN_ON_ONCE(cond)	WARN_ON(cond)

/* kernel.h, minmax.h, math64.h */
#ifndef ARRAY_SIZE
#define ARRAY_SIZE(a)	(sizeof(a) / sizeof((a)[0]))
#endif
#define min(x, y) ({ __typeof__(x) __a = (x); __typeof__(y) __b = (y);	\
		     __a < __b ? __a : __b; })
#define max(x, y) ({ __typeof__(x) __a = (x); __typeof__(y) __b = (y);	\
		     __a > __b ? __a : __b; })
#define min_t(t, x, y)	min((t)(x), (t)(y))
#define max_t(t, x, y)	max((t)(x), (t)(y))
#define max3(x, y, z)	max((__typeof__(x))max(x, y), z)
#define min3(x, y, z)	min((__typeof__(x))min(x, y), z)
#define clamp(v, lo, hi) min((__typeof__(v))max(v, lo), hi)

static inline u64 div_u64(u64 dividend, u32 divisor)
{
	return dividend / divisor;
}

/* overflow.h: saturating, like the kernel's */
#define check_mul_overflow(a, b, d)	__builtin_mul_overflow(a, b, d)
#define check_add_overflow(a, b, d)	__builtin_add_overflow(a, b, d)
static inline size_t size_mul(size_t a, size_t b)
{
	size_t r;

	return __builtin_mul_overflow(a, b, &r) ? SIZE_MAX : r;
}
static inline size_t size_add(size_t a, size_t b)
{
	size_t r;

	return __builtin_add_overflow(a, b, &r) ? SIZE_MAX : r;
}
#define flex_array_size(p, member, count) \
	size_mul(count, sizeof(*(p)->member))
#define struct_size(p, member, count) \
	size_add(sizeof(*(p)), flex_array_size(p, member, count))

/* gfp.h, slab.h, mm.h */
#define __GFP_ZERO		0x1u
#define __GFP_NOWARN		0x2u
#define __GFP_ACCOUNT		0x4u
#define __GFP_RETRY_MAYFAIL	0x8u
#define GFP_KERNEL		0x10u
#define GFP_NOWAIT		0x20u
#define GFP_KERNEL_ACCOUNT	(GFP_KERNEL | __GFP_ACCOUNT)

/*
 * The x86_64 kernel's numbers (SLUB, 4 KiB pages): kmalloc() serves up to
 * KMALLOC_MAX_CACHE_SIZE from the kmalloc-<class> caches, then whole pages
 * of the next order up to KMALLOC_MAX_SIZE (order 10).
 */
#define PAGE_SHIFT		12
#define PAGE_SIZE		(1UL << PAGE_SHIFT)
#define PAGE_ALIGN(x)		(((x) + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1))
#define KMALLOC_MAX_CACHE_SIZE	(1UL << (PAGE_SHIFT + 1))
#define KMALLOC_MAX_SIZE	(1UL << (PAGE_SHIFT + 10))

size_t kmalloc_size_roundup(size_t size);
void *kmalloc(size_t size, gfp_t flags);
void *kvmalloc(size_t size, gfp_t flags);
void *kvmalloc_array(size_t n, size_t size, gfp_t flags);
void kfree(const void *p);
void kvfree(const void *p);
#define kzalloc(size, flags)	kmalloc(size, (flags) | __GFP_ZERO)
#define kvzalloc(size, flags)	kvmalloc(size, (flags) | __GFP_ZERO)

void eq_shim_fail_nth(long n);
long eq_shim_live_allocs(void);
size_t eq_shim_live_bytes(void);
unsigned long eq_shim_alloc_calls(void);
extern long eq_shim_fail_countdown;	/* use eq_shim_fail_nth() */

/* atomic.h: the atomic64_t operations the core uses */
typedef struct {
	s64 counter;
} atomic64_t;
#define ATOMIC64_INIT(i)	{ (i) }
static inline s64 atomic64_read(const atomic64_t *v)
{
	return __atomic_load_n(&v->counter, __ATOMIC_RELAXED);
}
static inline void atomic64_set(atomic64_t *v, s64 i)
{
	__atomic_store_n(&v->counter, i, __ATOMIC_RELAXED);
}
static inline s64 atomic64_add_return(s64 i, atomic64_t *v)
{
	return __atomic_add_fetch(&v->counter, i, __ATOMIC_SEQ_CST);
}
static inline void atomic64_sub(s64 i, atomic64_t *v)
{
	__atomic_sub_fetch(&v->counter, i, __ATOMIC_SEQ_CST);
}
static inline void atomic64_add(s64 i, atomic64_t *v)
{
	__atomic_add_fetch(&v->counter, i, __ATOMIC_SEQ_CST);
}
static inline void atomic64_inc(atomic64_t *v)
{
	atomic64_add(1, v);
}
static inline void atomic64_dec(atomic64_t *v)
{
	atomic64_sub(1, v);
}
static inline s64 atomic64_inc_return(atomic64_t *v)
{
	return atomic64_add_return(1, v);
}
static inline s64 atomic64_dec_return(atomic64_t *v)
{
	return atomic64_add_return(-1, v);
}
static inline s64 atomic64_read_acquire(const atomic64_t *v)
{
	return __atomic_load_n(&v->counter, __ATOMIC_ACQUIRE);
}
static inline void atomic64_set_release(atomic64_t *v, s64 i)
{
	__atomic_store_n(&v->counter, i, __ATOMIC_RELEASE);
}
/* Full barrier on success, relaxed on failure, as the kernel's. */
static inline bool atomic64_try_cmpxchg(atomic64_t *v, s64 *old, s64 new)
{
	return __atomic_compare_exchange_n(&v->counter, old, new, false,
					   __ATOMIC_SEQ_CST, __ATOMIC_RELAXED);
}
static inline s64 atomic64_fetch_or(s64 i, atomic64_t *v)
{
	return __atomic_fetch_or(&v->counter, i, __ATOMIC_SEQ_CST);
}
typedef struct {
	int counter;
} atomic_t;
static inline int atomic_read(const atomic_t *v)
{
	return __atomic_load_n(&v->counter, __ATOMIC_RELAXED);
}
static inline void atomic_set(atomic_t *v, int i)
{
	__atomic_store_n(&v->counter, i, __ATOMIC_RELAXED);
}
#if defined(__SANITIZE_THREAD__)
/* TSan has no fences; where the core uses one, it is for liveness only. */
#define smp_rmb()	__asm__ __volatile__("" ::: "memory")
#define smp_mb()	({ int __f = 0; __atomic_fetch_add(&__f, 0, __ATOMIC_SEQ_CST); })
#else
#define smp_rmb()	__atomic_thread_fence(__ATOMIC_ACQUIRE)
#define smp_mb()	__atomic_thread_fence(__ATOMIC_SEQ_CST)
#endif
#define smp_mb__before_atomic()	smp_mb()
#define smp_load_acquire(p)	__atomic_load_n(p, __ATOMIC_ACQUIRE)

/* bits.h */
#define BIT_ULL(n)	(1ULL << (n))

/* err.h */
#define MAX_ERRNO	4095
#define IS_ERR_VALUE(x)	((unsigned long)(void *)(x) >= (unsigned long)-MAX_ERRNO)
static inline void *ERR_PTR(long error)
{
	return (void *)error;
}
static inline long PTR_ERR(const void *ptr)
{
	return (long)ptr;
}
static inline bool IS_ERR(const void *ptr)
{
	return IS_ERR_VALUE((unsigned long)ptr);
}

/*
 * rcupdate.h: liburcu (the memb flavour) in normal builds; under TSan,
 * which cannot see liburcu's synchronisation, a reader-writer lock with
 * the same guarantee.  Threads need no registration (the shim does it).
 * kvfree_rcu() waits for the grace period and frees at once.
 */
#define __rcu
#ifndef EQ_SHIM_URCU	/* shim.c uses liburcu's own struct rcu_head */
struct rcu_head {
	void *unused;
};
#endif
void rcu_read_lock(void);
void rcu_read_unlock(void);
void synchronize_rcu(void);
#define rcu_dereference(p)		__atomic_load_n(&(p), __ATOMIC_ACQUIRE)
#define rcu_dereference_protected(p, c)	__atomic_load_n(&(p), __ATOMIC_RELAXED)
#define rcu_assign_pointer(p, v)	__atomic_store_n(&(p), (v), __ATOMIC_RELEASE)
#define RCU_INIT_POINTER(p, v)		__atomic_store_n(&(p), (v), __ATOMIC_RELAXED)
#define kvfree_rcu(ptr, field)		do { synchronize_rcu(); kvfree(ptr); } while (0)

/* mutex.h, lockdep.h: error-checking mutex plus owner */
struct mutex {
	pthread_mutex_t m;
	const void *owner;	/* &eq_shim_self of the holder, or NULL */
};

void mutex_init(struct mutex *lock);
void mutex_destroy(struct mutex *lock);
void mutex_lock(struct mutex *lock);
int mutex_trylock(struct mutex *lock);
void mutex_unlock(struct mutex *lock);
bool mutex_is_locked(struct mutex *lock);
bool eq_shim_mutex_held(const struct mutex *lock);
#define lockdep_assert_held(l)		((void)WARN_ON(!eq_shim_mutex_held(l)))
#define lockdep_assert_not_held(l)	((void)WARN_ON(eq_shim_mutex_held(l)))

#endif /* EQ_SHIM_H */
